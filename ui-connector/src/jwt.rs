//! The connector's own tokens: issued by `/register` after the desktop platform vouched for the
//! agent, and checked on every Socket.IO connection and proxied Dialogflow call.
//!
//! HS256 only, with the claims of the Python service (`exp`, `gcp_agent_assist_project`,
//! `gcp_agent_assist_user`). The secret comes from a file (Secret Manager mounted as a volume);
//! unlike the Python service, an empty or missing secret is a start-up error, never an empty key.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::FromRef;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What a token says about its holder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    pub gcp_agent_assist_project: String,
    /// Whatever `/register` was asked to write: usually a string, but the Python service
    /// carried any JSON value into the token (a number stays a number), and so do we.
    /// `""` when the token has none.
    #[serde(default = "no_user")]
    pub gcp_agent_assist_user: serde_json::Value,
}

fn no_user() -> serde_json::Value {
    serde_json::Value::String(String::new())
}

/// Why a token was refused; each reason has its own message in the 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("missing token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("token algorithm {0} is not allowed, only HS256")]
    Algorithm(String),
    #[error("invalid token signature")]
    Signature,
    #[error("token has no expiry")]
    NoExpiry,
    #[error("token has expired")]
    Expired,
    #[error("token has no project")]
    NoProject,
    #[error("token is for another project")]
    WrongProject,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the JWT secret at {path} (JWT_SECRET_KEY_PATH): {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("the JWT secret at {path} (JWT_SECRET_KEY_PATH) is empty; refusing to sign tokens with an empty key")]
    Empty { path: String },
}

/// Issues and checks tokens for one project.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    project: String,
    lifetime: Duration,
}

impl JwtKeys {
    /// Reads the secret from `path` (surrounding whitespace trimmed).
    pub fn from_secret_file(
        path: &Path,
        project: String,
        lifetime: Duration,
    ) -> Result<Self, SecretError> {
        let display = path.display().to_string();
        let raw = std::fs::read(path).map_err(|source| SecretError::Unreadable {
            path: display.clone(),
            source,
        })?;
        let secret = raw.trim_ascii();
        if secret.is_empty() {
            return Err(SecretError::Empty { path: display });
        }
        Ok(Self::new(secret, project, lifetime))
    }

    /// `secret` must not be empty (checked by [`JwtKeys::from_secret_file`]).
    pub fn new(secret: &[u8], project: String, lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.required_spec_claims = ["exp".to_owned()].into();
        validation.validate_aud = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            project,
            lifetime,
        }
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    /// A token for `user`, valid for the configured lifetime.
    pub fn issue(&self, user: &str) -> String {
        self.issue_for(serde_json::Value::from(user))
    }

    /// A token whose `gcp_agent_assist_user` is `user` as given (any JSON value).
    pub fn issue_for(&self, user: serde_json::Value) -> String {
        let exp = now_secs() + self.lifetime.as_secs();
        self.sign(&Claims {
            exp,
            gcp_agent_assist_project: self.project.clone(),
            gcp_agent_assist_user: user,
        })
    }

    /// Signs arbitrary claims (also used by tests to build expired or foreign tokens).
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing with a non-empty secret cannot fail")
    }

    /// Checks a token, with or without a `Bearer ` prefix.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let token = agent_assist_core::bearer::token(token);
        if token.is_empty() {
            return Err(JwtError::Missing);
        }
        if let Some(alg) = header_algorithm(token) {
            if alg != "HS256" {
                return Err(JwtError::Algorithm(alg));
            }
        }
        #[derive(Deserialize)]
        struct Unchecked {
            exp: Option<u64>,
            gcp_agent_assist_project: Option<String>,
            // Absent is `""`; an explicit `null` stays `null` (as `/register` may issue it).
            #[serde(default = "no_user")]
            gcp_agent_assist_user: serde_json::Value,
        }
        let data = jsonwebtoken::decode::<Unchecked>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => JwtError::Signature,
                ErrorKind::ExpiredSignature => JwtError::Expired,
                ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => JwtError::NoExpiry,
                ErrorKind::InvalidAlgorithm => JwtError::Algorithm("unknown".into()),
                _ => JwtError::Malformed,
            })?;
        let claims = data.claims;
        let exp = claims.exp.ok_or(JwtError::NoExpiry)?;
        match claims.gcp_agent_assist_project {
            None => Err(JwtError::NoProject),
            Some(project) if project != self.project => Err(JwtError::WrongProject),
            Some(project) => Ok(Claims {
                exp,
                gcp_agent_assist_project: project,
                gcp_agent_assist_user: claims.gcp_agent_assist_user,
            }),
        }
    }
}

/// An extractor for routes that need a valid token in `Authorization`: a handler taking
/// `Authorized` only runs for an authenticated desktop; otherwise the answer is 401 with the
/// reason. Any state that holds the keys (`Arc<JwtKeys>: FromRef<S>`) can use it.
pub struct Authorized(pub Claims);

impl<S> axum::extract::FromRequestParts<S> for Authorized
where
    Arc<JwtKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Unauthorized;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let header = match parts.headers.get(axum::http::header::AUTHORIZATION) {
            None => "",
            Some(value) => value
                .to_str()
                .map_err(|_| Unauthorized(JwtError::Malformed))?,
        };
        Arc::<JwtKeys>::from_ref(state)
            .verify(header)
            .map(Authorized)
            .map_err(Unauthorized)
    }
}

/// A refused token: 401 with `{"error": <reason>}`.
#[derive(Debug)]
pub struct Unauthorized(pub JwtError);

impl axum::response::IntoResponse for Unauthorized {
    fn into_response(self) -> axum::response::Response {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "error": self.0.to_string() })),
        )
            .into_response()
    }
}

/// The `alg` a token's header claims, read without trusting anything else in it.
fn header_algorithm(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(b"secret", "p".into(), Duration::from_secs(3600))
    }

    /// Builds a token by hand so tests can choose any header (jsonwebtoken refuses `none`).
    fn forge(header: &str, claims: &serde_json::Value, secret: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let head = b64.encode(header);
        let body = b64.encode(claims.to_string());
        let key = EncodingKey::from_secret(secret);
        let signature =
            jsonwebtoken::crypto::sign(format!("{head}.{body}").as_bytes(), &key, Algorithm::HS256)
                .unwrap();
        format!("{head}.{body}.{signature}")
    }

    #[test]
    fn issued_tokens_verify_with_or_without_bearer() {
        let keys = keys();
        let token = keys.issue("agent@example.com");
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.gcp_agent_assist_user, "agent@example.com");
        assert_eq!(claims.gcp_agent_assist_project, "p");
        assert!(claims.exp > now_secs() + 3500);
        assert_eq!(keys.verify(&format!("Bearer {token}")).unwrap(), claims);
    }

    #[test]
    fn any_json_user_is_carried_and_verifies() {
        // The Python service writes `gcp_agent_assist_user` as it was given (auth.py:70-78 at
        // 9425334), so a token may carry a number or an object there.
        let keys = keys();
        // `null` included: `/register` issues it for a body without the field (found by the
        // property tests: it used to come back as `""`).
        for user in [
            serde_json::json!(5),
            serde_json::json!({"a": [1]}),
            serde_json::Value::Null,
        ] {
            let claims = keys.verify(&keys.issue_for(user.clone())).unwrap();
            assert_eq!(claims.gcp_agent_assist_user, user);
        }
    }

    #[test]
    fn every_rejection_has_its_reason() {
        let keys = keys();
        let exp = now_secs() + 60;
        assert_eq!(keys.verify(""), Err(JwtError::Missing));
        assert_eq!(keys.verify("Bearer "), Err(JwtError::Missing));
        assert_eq!(keys.verify("not-a-token"), Err(JwtError::Malformed));
        let good = serde_json::json!({"exp": exp, "gcp_agent_assist_project": "p"});
        assert_eq!(
            keys.verify(&forge(r#"{"alg":"none","typ":"JWT"}"#, &good, b"secret")),
            Err(JwtError::Algorithm("none".into()))
        );
        assert_eq!(
            keys.verify(&forge(r#"{"alg":"HS512","typ":"JWT"}"#, &good, b"secret")),
            Err(JwtError::Algorithm("HS512".into()))
        );
        assert_eq!(
            keys.verify(&forge(r#"{"alg":"HS256","typ":"JWT"}"#, &good, b"other")),
            Err(JwtError::Signature)
        );
        let no_exp = serde_json::json!({"gcp_agent_assist_project": "p"});
        assert_eq!(
            keys.verify(&forge(r#"{"alg":"HS256","typ":"JWT"}"#, &no_exp, b"secret")),
            Err(JwtError::NoExpiry)
        );
        let past = Claims {
            exp: now_secs() - 10,
            gcp_agent_assist_project: "p".into(),
            gcp_agent_assist_user: no_user(),
        };
        assert_eq!(keys.verify(&keys.sign(&past)), Err(JwtError::Expired));
        let no_project = serde_json::json!({"exp": exp});
        assert_eq!(
            keys.verify(&forge(
                r#"{"alg":"HS256","typ":"JWT"}"#,
                &no_project,
                b"secret"
            )),
            Err(JwtError::NoProject)
        );
        let other = Claims {
            exp,
            gcp_agent_assist_project: "other".into(),
            gcp_agent_assist_user: no_user(),
        };
        assert_eq!(keys.verify(&keys.sign(&other)), Err(JwtError::WrongProject));
    }

    #[test]
    fn secret_file_is_trimmed_and_must_not_be_empty() {
        let dir = std::env::temp_dir().join(format!("jwt-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "  s3cret\n").unwrap();
        let keys = JwtKeys::from_secret_file(&path, "p".into(), Duration::from_secs(60)).unwrap();
        let same = JwtKeys::new(b"s3cret", "p".into(), Duration::from_secs(60));
        assert!(same.verify(&keys.issue("u")).is_ok());
        std::fs::write(&path, " \n").unwrap();
        assert!(matches!(
            JwtKeys::from_secret_file(&path, "p".into(), Duration::from_secs(60)),
            Err(SecretError::Empty { .. })
        ));
        assert!(matches!(
            JwtKeys::from_secret_file(&dir.join("missing"), "p".into(), Duration::from_secs(60)),
            Err(SecretError::Unreadable { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
