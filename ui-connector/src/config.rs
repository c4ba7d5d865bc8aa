//! The connector's settings, read once at start-up (names as in the Python service).
//!
//! [`ConnectorConfig::from_settings`] is the production configuration;
//! [`ConnectorConfig::local`] is local mode's, built from the same settings with local
//! defaults. Tests build either from a [`Settings`] map and adjust the few fields that are not
//! environment settings.

use std::path::PathBuf;
use std::time::Duration;

use agent_assist_core::config::{BusConfig, ConfigError, DefaultBus, Settings};

use crate::auth::AuthConfig;
use crate::dialogflow_proxy::ProxyConfig;

/// The project written into local tokens unless `GCP_PROJECT_ID` is set.
pub const LOCAL_PROJECT: &str = "local-project";

#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// `PORT` (default 8080).
    pub port: u16,
    /// `GCP_PROJECT_ID`: written into every token and required when checking one.
    pub project_id: String,
    /// Where the token-signing secret comes from.
    pub jwt_secret: JwtSecret,
    /// `JWT_TOKEN_LIFETIME` in minutes (default 60).
    pub jwt_lifetime: Duration,
    /// `CORS_ALLOWED_ORIGINS`: `*` (default) or a comma-separated list of origins.
    pub cors_allowed_origins: CorsOrigins,
    /// `INTEGRATION_KEY_TTL_SECONDS` (default 86400): lifetime of `/conversation-name` entries.
    pub integration_key_ttl: Duration,
    /// `DISCONNECT_ON_TOKEN_EXPIRY` (default `false`): end a socket when its token expires. Off,
    /// a token is checked at connect only, as the Python service did.
    pub disconnect_on_token_expiry: bool,
    pub bus: BusConfig,
    pub auth: AuthConfig,
    pub proxy: ProxyConfig,
    /// Local mode: mount the push endpoints and the demo page too.
    pub local_mode: bool,
    /// How long an event waits for room in a socket's buffer before the socket is closed as too
    /// slow (default 5 s; not an environment setting, tests shorten it).
    pub slow_socket_grace: Duration,
}

/// The secret tokens are signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtSecret {
    /// `JWT_SECRET_KEY_PATH` (default `/secret/jwt_secret_key`): a Secret Manager volume.
    File(PathBuf),
    /// Generated at start, never written anywhere (local mode).
    Generated,
}

impl ConnectorConfig {
    /// The production configuration.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let project_id =
            settings.required("GCP_PROJECT_ID", "the project tokens are issued for")?;
        Ok(Self {
            port: settings.port()?,
            jwt_secret: JwtSecret::File(
                settings
                    .get("JWT_SECRET_KEY_PATH")
                    .unwrap_or_else(|| "/secret/jwt_secret_key".into())
                    .into(),
            ),
            jwt_lifetime: jwt_lifetime(settings)?,
            cors_allowed_origins: CorsOrigins::parse(
                &settings
                    .get("CORS_ALLOWED_ORIGINS")
                    .unwrap_or_else(|| "*".into()),
            ),
            integration_key_ttl: settings.seconds_or("INTEGRATION_KEY_TTL_SECONDS", 86_400)?,
            disconnect_on_token_expiry: disconnect_on_token_expiry(settings)?,
            bus: BusConfig::from_settings(settings, DefaultBus::LocalRedis)?,
            auth: AuthConfig::from_settings(settings)?,
            proxy: ProxyConfig::from_settings(settings, &project_id)?,
            project_id,
            local_mode: false,
            slow_socket_grace: crate::live::DEFAULT_SLOW_SOCKET_GRACE,
        })
    }

    /// Local mode: the in-memory bus unless `REDIS_URL` (or `REDISHOST`) is set, a secret
    /// generated at start, every desktop token accepted (`Skip`), any origin, the push endpoints
    /// and the demo page mounted. Refused on Cloud Run (`K_SERVICE` set): local mode is never
    /// the production default.
    pub fn local(settings: &Settings) -> Result<Self, ConfigError> {
        if let Some(service) = settings.get("K_SERVICE") {
            return Err(ConfigError::new(
                "K_SERVICE",
                format!(
                    "is {service:?}: refusing to start in local mode on Cloud Run (local mode \
                     accepts every token); deploy without --local"
                ),
            ));
        }
        let project_id = settings
            .get("GCP_PROJECT_ID")
            .unwrap_or_else(|| LOCAL_PROJECT.into());
        Ok(Self {
            port: settings.port()?,
            jwt_secret: JwtSecret::Generated,
            jwt_lifetime: jwt_lifetime(settings)?,
            cors_allowed_origins: CorsOrigins::Any,
            integration_key_ttl: settings.seconds_or("INTEGRATION_KEY_TTL_SECONDS", 86_400)?,
            disconnect_on_token_expiry: disconnect_on_token_expiry(settings)?,
            bus: BusConfig::from_settings(settings, DefaultBus::Memory)?,
            auth: AuthConfig::skip(),
            proxy: ProxyConfig::from_settings(settings, &project_id)?,
            project_id,
            local_mode: true,
            slow_socket_grace: crate::live::DEFAULT_SLOW_SOCKET_GRACE,
        })
    }
}

/// `JWT_TOKEN_LIFETIME`, in minutes (default 60, at least 1).
fn jwt_lifetime(settings: &Settings) -> Result<Duration, ConfigError> {
    let minutes: u64 = settings.at_least("JWT_TOKEN_LIFETIME", 60, 1)?;
    Ok(Duration::from_secs(minutes * 60))
}

/// `DISCONNECT_ON_TOKEN_EXPIRY`: `true` or `false` (default).
fn disconnect_on_token_expiry(settings: &Settings) -> Result<bool, ConfigError> {
    settings.parsed_or("DISCONNECT_ON_TOKEN_EXPIRY", false)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

impl CorsOrigins {
    pub fn parse(raw: &str) -> Self {
        let origins: Vec<String> = raw
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        if origins.is_empty() || origins.iter().any(|o| o == "*") {
            CorsOrigins::Any
        } else {
            CorsOrigins::List(origins)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins() {
        assert_eq!(CorsOrigins::parse("*"), CorsOrigins::Any);
        assert_eq!(CorsOrigins::parse(""), CorsOrigins::Any);
        assert_eq!(
            CorsOrigins::parse("https://a.example, https://b.example/"),
            CorsOrigins::List(vec!["https://a.example".into(), "https://b.example".into()])
        );
    }

    #[test]
    fn production_needs_a_project_and_local_mode_refuses_cloud_run() {
        let err = ConnectorConfig::from_settings(&Settings::default()).unwrap_err();
        assert_eq!(err.variable, "GCP_PROJECT_ID");
        let config =
            ConnectorConfig::from_settings(&Settings::from_pairs([("GCP_PROJECT_ID", "p")]))
                .unwrap();
        assert_eq!(
            config.jwt_secret,
            JwtSecret::File("/secret/jwt_secret_key".into())
        );
        assert_eq!(config.jwt_lifetime, Duration::from_secs(3600));
        assert!(!config.local_mode);
        assert!(
            !config.disconnect_on_token_expiry,
            "off by default, as in Python"
        );
        let strict = ConnectorConfig::from_settings(&Settings::from_pairs([
            ("GCP_PROJECT_ID", "p"),
            ("DISCONNECT_ON_TOKEN_EXPIRY", "true"),
        ]))
        .unwrap();
        assert!(strict.disconnect_on_token_expiry);
        let err = ConnectorConfig::from_settings(&Settings::from_pairs([
            ("GCP_PROJECT_ID", "p"),
            ("DISCONNECT_ON_TOKEN_EXPIRY", "yes"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "DISCONNECT_ON_TOKEN_EXPIRY");

        let local = ConnectorConfig::local(&Settings::default()).unwrap();
        assert_eq!(local.project_id, LOCAL_PROJECT);
        assert_eq!(local.jwt_secret, JwtSecret::Generated);
        assert_eq!(local.bus.redis_url, None);
        assert!(local.local_mode);
        let err = ConnectorConfig::local(&Settings::from_pairs([("K_SERVICE", "ui-connector")]))
            .unwrap_err();
        assert_eq!(err.variable, "K_SERVICE");
        let err = ConnectorConfig::local(&Settings::from_pairs([("JWT_TOKEN_LIFETIME", "0")]))
            .unwrap_err();
        assert_eq!(err.variable, "JWT_TOKEN_LIFETIME");
    }
}
