//! The webhook's settings, read once at start through [`Settings`] (the interceptor's
//! configuration holds a [`CxWebhookConfig`]).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CX_WEBHOOK_HEADER_SECRET_PATH` | | file holding the exact `Authorization` value CX sends (e.g. `Bearer <secret>`) |
//! | `CX_WEBHOOK_BASIC_AUTH_PATH` | | file holding `username:password` for HTTP basic auth |
//! | `CX_WEBHOOK_ID_TOKEN_AUDIENCE` | | comma-separated audiences of the Dialogflow service agent's ID token (the webhook URLs, no query string) |
//! | `CX_WEBHOOK_SERVICE_AGENT` | | comma-separated accounts allowed to sign those tokens (`service-<project number>@gcp-sa-dialogflow.iam.gserviceaccount.com`) |
//! | `CX_WEBHOOK_DEADLINE_MS` | `3000` | longest time to answer CX; past it, 503 (CX's default timeout is 5 s) |
//! | `INTEGRATION_KEY_TTL_SECONDS` | `86400` | how long a context waits for its integration key to be mapped |
//! | `DEDUP_WINDOW_SECONDS` | `600` | how long a call is remembered, so a retry publishes nothing and gets the same answer |
//!
//! Secret files are read when the webhook is built, not here, so a configuration can be
//! printed and compared without holding a secret.

use std::path::PathBuf;
use std::time::Duration;

use agent_assist_core::config::{ConfigError, Settings};

/// CX's default webhook timeout is 5 s: answering within 3 s leaves room for the network and
/// a cold start.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(3000);

/// CX lets a webhook's timeout be raised to 30 s; a deadline must stay below it.
pub const MAX_DEADLINE_MS: u64 = 29_000;

/// Who may call the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Only callers proving one of the configured credentials; none configured refuses every
    /// call (fail closed).
    Authenticated(Credentials),
    /// Everybody, logged loudly at start: local mode only (as its `AUTH_OPTION=Skip`).
    Open,
}

/// Where each accepted credential comes from. Several may be set; any one matching is enough.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `CX_WEBHOOK_HEADER_SECRET_PATH`.
    pub header_secret_path: Option<PathBuf>,
    /// `CX_WEBHOOK_BASIC_AUTH_PATH`.
    pub basic_auth_path: Option<PathBuf>,
    /// `CX_WEBHOOK_ID_TOKEN_AUDIENCE` with `CX_WEBHOOK_SERVICE_AGENT`.
    pub id_token: Option<IdTokenCredential>,
}

impl Credentials {
    pub fn is_empty(&self) -> bool {
        self.header_secret_path.is_none()
            && self.basic_auth_path.is_none()
            && self.id_token.is_none()
    }
}

/// The Dialogflow service agent's Google ID token: for one of these audiences, signed for one
/// of these accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenCredential {
    pub audiences: Vec<String>,
    pub service_agents: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct CxWebhookConfig {
    pub access: Access,
    /// `CX_WEBHOOK_DEADLINE_MS`.
    pub deadline: Duration,
    /// `INTEGRATION_KEY_TTL_SECONDS`, as the connector reads it.
    pub integration_key_ttl: Duration,
    /// `DEDUP_WINDOW_SECONDS`, as the bus reads it.
    pub dedup_window: Duration,
}

impl CxWebhookConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let audiences = settings
            .list("CX_WEBHOOK_ID_TOKEN_AUDIENCE")
            .filter(|l| !l.is_empty());
        let agents = settings
            .list("CX_WEBHOOK_SERVICE_AGENT")
            .filter(|l| !l.is_empty());
        let id_token =
            match (audiences, agents) {
                (Some(audiences), Some(service_agents)) => Some(IdTokenCredential {
                    audiences,
                    service_agents,
                }),
                (None, None) => None,
                (Some(_), None) => {
                    return Err(ConfigError::new(
                        "CX_WEBHOOK_SERVICE_AGENT",
                        "must be set with CX_WEBHOOK_ID_TOKEN_AUDIENCE (the Dialogflow service \
                     agent, service-<project number>@gcp-sa-dialogflow.iam.gserviceaccount.com)",
                    ))
                }
                (None, Some(_)) => return Err(ConfigError::new(
                    "CX_WEBHOOK_ID_TOKEN_AUDIENCE",
                    "must be set with CX_WEBHOOK_SERVICE_AGENT (the webhook URLs, without query \
                     string)",
                )),
            };
        let deadline_ms: u64 = settings.at_least("CX_WEBHOOK_DEADLINE_MS", 3000, 1)?;
        if deadline_ms > MAX_DEADLINE_MS {
            return Err(ConfigError::new(
                "CX_WEBHOOK_DEADLINE_MS",
                format!("must be at most {MAX_DEADLINE_MS} (below CX's longest webhook timeout)"),
            ));
        }
        Ok(Self {
            access: Access::Authenticated(Credentials {
                header_secret_path: settings
                    .get("CX_WEBHOOK_HEADER_SECRET_PATH")
                    .map(Into::into),
                basic_auth_path: settings.get("CX_WEBHOOK_BASIC_AUTH_PATH").map(Into::into),
                id_token,
            }),
            deadline: Duration::from_millis(deadline_ms),
            integration_key_ttl: settings.seconds_or("INTEGRATION_KEY_TTL_SECONDS", 86_400)?,
            dedup_window: settings.seconds_or("DEDUP_WINDOW_SECONDS", 600)?,
        })
    }

    /// Local mode's webhook: open to every caller, with the given key lifetime and window.
    pub fn open(integration_key_ttl: Duration, dedup_window: Duration) -> Self {
        Self {
            access: Access::Open,
            deadline: DEFAULT_DEADLINE,
            integration_key_ttl,
            dedup_window,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fail_closed() {
        let config = CxWebhookConfig::from_settings(&Settings::default()).unwrap();
        assert_eq!(config.access, Access::Authenticated(Credentials::default()));
        assert_eq!(config.deadline, DEFAULT_DEADLINE);
        assert_eq!(config.integration_key_ttl, Duration::from_secs(86_400));
        assert_eq!(config.dedup_window, Duration::from_secs(600));
    }

    #[test]
    fn every_credential_is_read() {
        let config = CxWebhookConfig::from_settings(&Settings::from_pairs([
            ("CX_WEBHOOK_HEADER_SECRET_PATH", "/secret/header"),
            ("CX_WEBHOOK_BASIC_AUTH_PATH", "/secret/basic"),
            (
                "CX_WEBHOOK_ID_TOKEN_AUDIENCE",
                "https://a/x, https://a/x/flexible",
            ),
            (
                "CX_WEBHOOK_SERVICE_AGENT",
                "service-1@gcp-sa-dialogflow.iam.gserviceaccount.com",
            ),
            ("CX_WEBHOOK_DEADLINE_MS", "1500"),
        ]))
        .unwrap();
        let Access::Authenticated(credentials) = config.access else {
            panic!("authenticated")
        };
        assert_eq!(
            credentials.header_secret_path,
            Some("/secret/header".into())
        );
        assert_eq!(credentials.basic_auth_path, Some("/secret/basic".into()));
        let id_token = credentials.id_token.unwrap();
        assert_eq!(id_token.audiences, ["https://a/x", "https://a/x/flexible"]);
        assert_eq!(
            id_token.service_agents,
            ["service-1@gcp-sa-dialogflow.iam.gserviceaccount.com"]
        );
        assert_eq!(config.deadline, Duration::from_millis(1500));
    }

    #[test]
    fn half_an_id_token_setting_or_a_bad_deadline_stops_the_service() {
        for (pairs, variable) in [
            (
                vec![("CX_WEBHOOK_ID_TOKEN_AUDIENCE", "https://a/x")],
                "CX_WEBHOOK_SERVICE_AGENT",
            ),
            (
                vec![("CX_WEBHOOK_SERVICE_AGENT", "s@x")],
                "CX_WEBHOOK_ID_TOKEN_AUDIENCE",
            ),
            (
                vec![("CX_WEBHOOK_DEADLINE_MS", "0")],
                "CX_WEBHOOK_DEADLINE_MS",
            ),
            (
                vec![("CX_WEBHOOK_DEADLINE_MS", "30000")],
                "CX_WEBHOOK_DEADLINE_MS",
            ),
        ] {
            let err = CxWebhookConfig::from_settings(&Settings::from_pairs(pairs)).unwrap_err();
            assert_eq!(err.variable, variable);
        }
    }
}
