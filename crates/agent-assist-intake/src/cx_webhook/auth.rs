//! Only the configured Dialogflow CX agent may call the webhook.
//!
//! CX authenticates a webhook call one of three ways, and any of them may be configured here
//! (several at once, e.g. while moving from one to another; any one matching is enough):
//!
//! - **Static header**: `CX_WEBHOOK_HEADER_SECRET_PATH` names a file holding the exact
//!   `Authorization` value CX is configured to send (typically `Bearer <secret>`).
//! - **Basic auth**: `CX_WEBHOOK_BASIC_AUTH_PATH` names a file holding `username:password`;
//!   CX sends `Authorization: Basic base64(username:password)`.
//! - **Service agent ID token**: CX sends a Google-signed ID token of the project's Dialogflow
//!   service agent, for the webhook's URL. `CX_WEBHOOK_ID_TOKEN_AUDIENCE` lists the accepted
//!   audiences, `CX_WEBHOOK_SERVICE_AGENT` the accepted accounts; the core verifier
//!   ([`agent_assist_core::google_id_token`]) checks signature, issuer, time, audience and
//!   account.
//!
//! Nothing configured refuses every call (fail closed) and says so at start. Secrets are read
//! from their files once, at start, kept only as SHA-256 digests, and compared digest to
//! digest in constant time: neither the value nor its length shows in the timing, and no
//! secret is ever logged.
//!
//! | refusal | status |
//! |---|---|
//! | no `Authorization`, or nothing matches | 401 |
//! | a valid Google ID token for another audience or account | 403 |
//! | Google's keys cannot be fetched to check a token | 503 |

use std::path::Path;

use agent_assist_core::google_id_token::{
    Expectation, GoogleKeys, IdTokenError, IdTokenVerifier, RejectionClass, DEFAULT_CLOCK_SKEW,
};
use axum::http::HeaderValue;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::config::{Access, CxWebhookConfig};

/// A credential setting that cannot be used; the service does not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("{setting}: cannot read {path}: {reason}")]
    Unreadable {
        setting: &'static str,
        path: String,
        reason: String,
    },
    #[error("{setting}: {path} is empty")]
    Empty { setting: &'static str, path: String },
    #[error("CX_WEBHOOK_BASIC_AUTH_PATH: {path} must hold username:password")]
    NotUserPassword { path: String },
    #[error("CX_WEBHOOK_ID_TOKEN_AUDIENCE / CX_WEBHOOK_SERVICE_AGENT: {0}")]
    IdToken(String),
}

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no proof of being the agent.
    Unauthenticated(String),
    /// 403: a genuine Google identity, but not this webhook's agent.
    Forbidden(String),
    /// 503: the proof could not be checked now (Google's keys unavailable).
    Unavailable(String),
}

/// Who called, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Local mode: nobody is checked.
    Unchecked,
    HeaderSecret,
    BasicAuth,
    ServiceAgent(String),
}

/// The webhook's caller check; cheap to clone.
#[derive(Clone)]
pub struct WebhookAuth {
    open: bool,
    header_digest: Option<[u8; 32]>,
    basic_digest: Option<[u8; 32]>,
    id_token: Option<IdTokenVerifier>,
}

impl WebhookAuth {
    /// Reads the secret files `config` names and builds the token verifier, and logs which
    /// credentials are accepted (or, loudly, that none are or that nobody is checked).
    pub fn from_config(
        config: &CxWebhookConfig,
        google_keys: &GoogleKeys,
    ) -> Result<Self, AuthSetupError> {
        let credentials = match &config.access {
            Access::Open => {
                tracing::warn!(
                    "CX webhook: LOCAL MODE, every call is accepted without authentication. \
                     Never use this in production."
                );
                return Ok(Self {
                    open: true,
                    header_digest: None,
                    basic_digest: None,
                    id_token: None,
                });
            }
            Access::Authenticated(credentials) => credentials,
        };
        let header_digest = credentials
            .header_secret_path
            .as_deref()
            .map(|path| read_secret("CX_WEBHOOK_HEADER_SECRET_PATH", path))
            .transpose()?
            .map(|secret| digest(secret.as_bytes()));
        let basic_digest = credentials
            .basic_auth_path
            .as_deref()
            .map(|path| {
                let secret = read_secret("CX_WEBHOOK_BASIC_AUTH_PATH", path)?;
                match secret.split_once(':') {
                    Some((user, _)) if !user.is_empty() => Ok(digest(secret.as_bytes())),
                    _ => Err(AuthSetupError::NotUserPassword {
                        path: path.display().to_string(),
                    }),
                }
            })
            .transpose()?;
        let id_token = credentials
            .id_token
            .as_ref()
            .map(|id_token| {
                let keys = google_keys.clone();
                let expectation = Expectation {
                    audiences: id_token.audiences.clone(),
                    emails: id_token.service_agents.clone(),
                    clock_skew: DEFAULT_CLOCK_SKEW,
                };
                IdTokenVerifier::new(keys, expectation)
                    .map_err(|e| AuthSetupError::IdToken(e.to_string()))
            })
            .transpose()?;
        let auth = Self {
            open: false,
            header_digest,
            basic_digest,
            id_token,
        };
        let accepted = auth.accepted();
        if accepted.is_empty() {
            tracing::warn!(
                "CX webhook: no credentials configured (CX_WEBHOOK_HEADER_SECRET_PATH, \
                 CX_WEBHOOK_BASIC_AUTH_PATH, CX_WEBHOOK_ID_TOKEN_AUDIENCE with \
                 CX_WEBHOOK_SERVICE_AGENT): every call is refused with 401"
            );
        } else {
            tracing::info!(accepted = accepted.join(", "), "CX webhook authentication");
        }
        Ok(auth)
    }

    /// The credential kinds accepted, for the start-up log.
    fn accepted(&self) -> Vec<&'static str> {
        let mut accepted = Vec::new();
        if self.header_digest.is_some() {
            accepted.push("static Authorization header");
        }
        if self.basic_digest.is_some() {
            accepted.push("HTTP basic auth");
        }
        if self.id_token.is_some() {
            accepted.push("Dialogflow service agent ID token");
        }
        accepted
    }

    /// Checks a call's `Authorization` header.
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> Result<Caller, Refusal> {
        if self.open {
            return Ok(Caller::Unchecked);
        }
        if self.header_digest.is_none() && self.basic_digest.is_none() && self.id_token.is_none() {
            return Err(Refusal::Unauthenticated(
                "the webhook has no credentials configured: every call is refused".into(),
            ));
        }
        let Some(value) = authorization else {
            return Err(Refusal::Unauthenticated("no Authorization header".into()));
        };
        if let Some(expected) = &self.header_digest {
            if matches(expected, value.as_bytes()) {
                return Ok(Caller::HeaderSecret);
            }
        }
        if let Some(expected) = &self.basic_digest {
            if let Some(presented) = basic_credentials(value) {
                if matches(expected, &presented) {
                    return Ok(Caller::BasicAuth);
                }
            }
        }
        if let Some(verifier) = &self.id_token {
            if is_bearer(value) {
                return match verifier.verify(Some(value)).await {
                    Ok(identity) => Ok(Caller::ServiceAgent(identity.email)),
                    Err(error) => Err(refusal_of(&error)),
                };
            }
        }
        Err(Refusal::Unauthenticated(
            "the Authorization header matches no configured credential".into(),
        ))
    }
}

fn refusal_of(error: &IdTokenError) -> Refusal {
    let detail = format!(
        "ID token refused ({}): {}",
        error.reason_label(),
        error.detail()
    );
    match error.class() {
        RejectionClass::Unauthenticated => Refusal::Unauthenticated(detail),
        RejectionClass::Forbidden => Refusal::Forbidden(detail),
        RejectionClass::KeysUnavailable => Refusal::Unavailable(detail),
    }
}

fn read_secret(setting: &'static str, path: &Path) -> Result<String, AuthSetupError> {
    let text = std::fs::read_to_string(path).map_err(|e| AuthSetupError::Unreadable {
        setting,
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(AuthSetupError::Empty {
            setting,
            path: path.display().to_string(),
        });
    }
    Ok(secret.to_owned())
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Constant-time comparison of digests: the time depends on neither the secret nor the
/// presented value.
fn matches(expected: &[u8; 32], presented: &[u8]) -> bool {
    bool::from(expected.ct_eq(&digest(presented)))
}

/// The decoded `username:password` of a `Basic` header.
fn basic_credentials(value: &HeaderValue) -> Option<Vec<u8>> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
}

fn is_bearer(value: &HeaderValue) -> bool {
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim_start().get(..7))
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "))
}

#[cfg(test)]
mod tests {
    use super::super::config::Credentials;
    use super::*;

    /// A key cache no test here fetches from.
    fn test_keys() -> GoogleKeys {
        GoogleKeys::new(
            agent_assist_core::google_id_token::GOOGLE_JWKS_URL,
            reqwest::Client::new(),
        )
    }
    use std::time::Duration;

    struct Files(std::path::PathBuf);

    impl Files {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("cx-auth-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
        fn write(&self, name: &str, contents: &str) -> std::path::PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            path
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn config(credentials: Credentials) -> CxWebhookConfig {
        CxWebhookConfig {
            access: Access::Authenticated(credentials),
            ..CxWebhookConfig::open(Duration::from_secs(60), Duration::from_secs(60))
        }
    }

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    #[tokio::test]
    async fn static_header_and_basic_auth() {
        let files = Files::new("static");
        let auth = WebhookAuth::from_config(
            &config(Credentials {
                header_secret_path: Some(files.write("header", "Bearer s3cret\n")),
                basic_auth_path: Some(files.write("basic", "cx-agent:pa:ss\n")),
                id_token: None,
            }),
            &test_keys(),
        )
        .unwrap();
        assert_eq!(
            auth.check(Some(&header("Bearer s3cret"))).await,
            Ok(Caller::HeaderSecret)
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("cx-agent:pa:ss");
        assert_eq!(
            auth.check(Some(&header(&format!("basic {basic}")))).await,
            Ok(Caller::BasicAuth)
        );
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "s3cret",
            "Basic Y3gtYWdlbnQ6cGE=",
        ] {
            assert!(
                matches!(
                    auth.check(Some(&header(wrong))).await,
                    Err(Refusal::Unauthenticated(_))
                ),
                "{wrong}"
            );
        }
        assert!(matches!(
            auth.check(None).await,
            Err(Refusal::Unauthenticated(_))
        ));
    }

    #[tokio::test]
    async fn nothing_configured_refuses_everyone_and_open_accepts_everyone() {
        let closed =
            WebhookAuth::from_config(&config(Credentials::default()), &test_keys()).unwrap();
        assert!(matches!(
            closed.check(Some(&header("Bearer anything"))).await,
            Err(Refusal::Unauthenticated(reason)) if reason.contains("no credentials")
        ));
        let open = WebhookAuth::from_config(
            &CxWebhookConfig::open(Duration::from_secs(60), Duration::from_secs(60)),
            &test_keys(),
        )
        .unwrap();
        assert_eq!(open.check(None).await, Ok(Caller::Unchecked));
    }

    #[test]
    fn unusable_secret_files_stop_the_service_without_showing_them() {
        let files = Files::new("bad");
        let cases = [
            (
                Credentials {
                    header_secret_path: Some(files.0.join("missing")),
                    ..Credentials::default()
                },
                "cannot read",
            ),
            (
                Credentials {
                    header_secret_path: Some(files.write("empty", " \n")),
                    ..Credentials::default()
                },
                "is empty",
            ),
            (
                Credentials {
                    basic_auth_path: Some(files.write("nocolon", "justapassword")),
                    ..Credentials::default()
                },
                "username:password",
            ),
        ];
        for (credentials, reason) in cases {
            let error = WebhookAuth::from_config(&config(credentials), &test_keys())
                .err()
                .unwrap();
            let text = error.to_string();
            assert!(text.contains(reason), "{text}");
            assert!(!text.contains("justapassword"), "{text}");
        }
    }
}
