//! The interceptor's settings, read once at start-up.

use agent_assist_core::config::{BusConfig, ConfigError, DefaultBus, Settings};
use agent_assist_core::google_id_token::{KeyCacheOptions, GOOGLE_JWKS_URL};
use agent_assist_intake::CxWebhookConfig;

use crate::pull::PullConfig;

/// Largest push body accepted (`MAX_PUSH_BODY_BYTES`, default 16 MiB). Pub/Sub messages are at
/// most 10 MiB, which base64 and the envelope grow to about 13.4 MiB.
pub const DEFAULT_MAX_PUSH_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct InterceptorConfig {
    /// `PORT` (default 8080).
    pub port: u16,
    /// `MAX_PUSH_BODY_BYTES`: larger bodies get 413.
    pub max_push_body_bytes: usize,
    /// `GCP_PROJECT_ID`, optional: formats the Cloud Trace id of request logs.
    pub project_id: Option<String>,
    /// Redis (`REDIS_URL`, or `REDISHOST`/`REDISPORT`, default `localhost:6379`) and history
    /// settings; see [`BusConfig`].
    pub bus: BusConfig,
    /// The Dialogflow CX webhook: credentials (`CX_WEBHOOK_*`), deadline, and the integration
    /// key lifetime (`INTEGRATION_KEY_TTL_SECONDS`, as the connector reads it).
    pub cx_webhook: CxWebhookConfig,
    /// `PUSH_AUTH_SERVICE_ACCOUNT` and `PUSH_AUTH_AUDIENCE`; `None` (both unset): pushes are
    /// trusted to the ingress.
    pub push_auth: Option<PushAuthConfig>,
    /// Where Google's signing keys come from, for whatever verifies Google ID tokens.
    pub google_keys: GoogleKeysConfig,
    /// Pull mode (`PUBSUB_PULL_SUBSCRIPTIONS` and its settings); `None`: push only.
    pub pull: Option<PullConfig>,
}

/// Who may push: Pub/Sub's OIDC token must name this account and audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushAuthConfig {
    /// `PUSH_AUTH_SERVICE_ACCOUNT`: the e-mail of the account the push subscriptions push as
    /// (`--push-auth-service-account`).
    pub service_account: String,
    /// `PUSH_AUTH_AUDIENCE`: the audience the subscriptions ask tokens for
    /// (`--push-auth-token-audience`). Required, never derived from the request's `Host`: that
    /// would accept a token minted for another service that reached us.
    pub audience: String,
}

/// Google's published signing keys and how they are cached.
#[derive(Debug, Clone)]
pub struct GoogleKeysConfig {
    /// `GOOGLE_JWKS_URL` (default Google's `https://www.googleapis.com/oauth2/v3/certs`);
    /// tests point it at a local stand-in.
    pub jwks_url: String,
    /// The key cache's intervals: production uses the defaults (see
    /// [`KeyCacheOptions`]); tests shorten them.
    pub cache: KeyCacheOptions,
}

impl InterceptorConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            port: settings.port()?,
            max_push_body_bytes: settings.at_least(
                "MAX_PUSH_BODY_BYTES",
                DEFAULT_MAX_PUSH_BODY_BYTES,
                10 * 1024 * 1024,
            )?,
            project_id: settings.get("GCP_PROJECT_ID"),
            bus: BusConfig::from_settings(settings, DefaultBus::LocalRedis)?,
            cx_webhook: CxWebhookConfig::from_settings(settings)?,
            push_auth: PushAuthConfig::from_settings(settings)?,
            google_keys: GoogleKeysConfig::from_settings(settings)?,
            pull: PullConfig::from_settings(settings)?,
        })
    }
}

impl PushAuthConfig {
    /// Both settings or neither: one without the other is a half-done configuration, and
    /// guessing the missing half would either trust everybody or refuse every push.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let account = settings.get("PUSH_AUTH_SERVICE_ACCOUNT");
        let audience = settings.get("PUSH_AUTH_AUDIENCE");
        match (account, audience) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new(
                "PUSH_AUTH_AUDIENCE",
                "must be set when PUSH_AUTH_SERVICE_ACCOUNT is: the audience the push \
                 subscriptions ask tokens for (--push-auth-token-audience); it is not taken \
                 from the request's Host, which would accept tokens minted for another service",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "PUSH_AUTH_SERVICE_ACCOUNT",
                "must be set when PUSH_AUTH_AUDIENCE is: the e-mail of the service account \
                 the push subscriptions push as (--push-auth-service-account)",
            )),
            (Some(service_account), Some(audience)) => {
                let looks_like_email = service_account
                    .split_once('@')
                    .is_some_and(|(name, domain)| !name.is_empty() && domain.contains('.'))
                    && !service_account.contains(char::is_whitespace);
                if !looks_like_email {
                    return Err(ConfigError::new(
                        "PUSH_AUTH_SERVICE_ACCOUNT",
                        format!(
                            "{service_account:?} is not a service account e-mail \
                             (name@project.iam.gserviceaccount.com)"
                        ),
                    ));
                }
                Ok(Some(Self {
                    service_account,
                    audience,
                }))
            }
        }
    }
}

impl GoogleKeysConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let jwks_url = settings
            .get("GOOGLE_JWKS_URL")
            .unwrap_or_else(|| GOOGLE_JWKS_URL.to_owned());
        let valid = reqwest::Url::parse(&jwks_url)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some());
        if !valid {
            return Err(ConfigError::new(
                "GOOGLE_JWKS_URL",
                format!("{jwks_url:?} is not an http:// or https:// URL"),
            ));
        }
        Ok(Self {
            jwks_url,
            cache: KeyCacheOptions::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_limits() {
        let config = InterceptorConfig::from_settings(&Settings::default()).unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.max_push_body_bytes, DEFAULT_MAX_PUSH_BODY_BYTES);
        assert_eq!(config.project_id, None);
        assert_eq!(config.pull, None);
        assert_eq!(
            config.bus.redis_url.as_deref(),
            Some("redis://localhost:6379")
        );
        assert_eq!(config.push_auth, None);
        assert_eq!(
            config.google_keys.jwks_url,
            "https://www.googleapis.com/oauth2/v3/certs"
        );
        let err = InterceptorConfig::from_settings(&Settings::from_pairs([(
            "MAX_PUSH_BODY_BYTES",
            "1000",
        )]))
        .unwrap_err();
        assert_eq!(err.variable, "MAX_PUSH_BODY_BYTES");
    }

    #[test]
    fn the_python_bridge_is_refused_on_a_redis_cluster() {
        let err = InterceptorConfig::from_settings(&Settings::from_pairs([
            ("REDIS_CLUSTER_NODES", "redis://10.0.0.3:6379"),
            ("PYTHON_CONNECTOR_BRIDGE", "true"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "PYTHON_CONNECTOR_BRIDGE");
        assert!(err.to_string().contains("REDIS_CLUSTER_NODES"), "{err}");
        let cluster = InterceptorConfig::from_settings(&Settings::from_pairs([(
            "REDIS_CLUSTER_NODES",
            "redis://10.0.0.3:6379",
        )]))
        .unwrap();
        assert!(cluster.bus.is_cluster());
        assert_eq!(cluster.bus.redis_url, None);
    }

    const ACCOUNT: &str = "pusher@demo.iam.gserviceaccount.com";
    const AUDIENCE: &str = "https://cloud-pubsub-interceptor-123.europe-west1.run.app";

    fn push_auth_error(pairs: &[(&str, &str)]) -> ConfigError {
        InterceptorConfig::from_settings(&Settings::from_pairs(pairs.iter().copied()))
            .expect_err("refused")
    }

    #[test]
    fn push_auth_needs_both_settings() {
        let config = InterceptorConfig::from_settings(&Settings::from_pairs([
            ("PUSH_AUTH_SERVICE_ACCOUNT", ACCOUNT),
            ("PUSH_AUTH_AUDIENCE", AUDIENCE),
            ("GOOGLE_JWKS_URL", "http://127.0.0.1:9999/certs"),
        ]))
        .unwrap();
        assert_eq!(
            config.push_auth,
            Some(PushAuthConfig {
                service_account: ACCOUNT.into(),
                audience: AUDIENCE.into(),
            })
        );
        assert_eq!(config.google_keys.jwks_url, "http://127.0.0.1:9999/certs");

        let err = push_auth_error(&[("PUSH_AUTH_SERVICE_ACCOUNT", ACCOUNT)]);
        assert_eq!(err.variable, "PUSH_AUTH_AUDIENCE");
        assert!(err.to_string().contains("Host"), "{err}");
        let err = push_auth_error(&[("PUSH_AUTH_AUDIENCE", AUDIENCE)]);
        assert_eq!(err.variable, "PUSH_AUTH_SERVICE_ACCOUNT");
        // Blank counts as unset, like every setting.
        let err = push_auth_error(&[
            ("PUSH_AUTH_SERVICE_ACCOUNT", ACCOUNT),
            ("PUSH_AUTH_AUDIENCE", "  "),
        ]);
        assert_eq!(err.variable, "PUSH_AUTH_AUDIENCE");
    }

    #[test]
    fn push_auth_account_must_be_an_email() {
        for account in [
            "pusher",
            "@demo.iam.gserviceaccount.com",
            "a b@c.d",
            "pusher@local",
        ] {
            let err = push_auth_error(&[
                ("PUSH_AUTH_SERVICE_ACCOUNT", account),
                ("PUSH_AUTH_AUDIENCE", AUDIENCE),
            ]);
            assert_eq!(err.variable, "PUSH_AUTH_SERVICE_ACCOUNT", "{account}");
        }
    }

    #[test]
    fn jwks_url_must_be_http() {
        for url in [
            "ftp://keys.example/certs",
            "www.googleapis.com/oauth2/v3/certs",
            "http://",
        ] {
            let err = push_auth_error(&[("GOOGLE_JWKS_URL", url)]);
            assert_eq!(err.variable, "GOOGLE_JWKS_URL", "{url}");
        }
    }
}
