//! The connector's settings, read once at start-up (names as in the Python service).

use std::path::PathBuf;
use std::time::Duration;

use agent_assist_core::config::{self as env, BusConfig, ConfigError};

#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// `PORT` (default 8080).
    pub port: u16,
    /// `GCP_PROJECT_ID`: written into every token and required when checking one.
    pub project_id: String,
    /// `JWT_SECRET_KEY_PATH` (default `/secret/jwt_secret_key`).
    pub jwt_secret_path: PathBuf,
    /// `JWT_TOKEN_LIFETIME` in minutes (default 60).
    pub jwt_lifetime: Duration,
    /// `CORS_ALLOWED_ORIGINS`: `*` (default) or a comma-separated list of origins.
    pub cors_allowed_origins: CorsOrigins,
    /// `INTEGRATION_KEY_TTL_SECONDS` (default 86400): lifetime of `/conversation-name` entries.
    pub integration_key_ttl: Duration,
    pub bus: BusConfig,
    pub auth: crate::auth::AuthConfig,
    pub proxy: crate::dialogflow_proxy::ProxyConfig,
    /// Local mode: mount the interceptor's push endpoints and the demo page too.
    pub local_mode: bool,
}

/// `JWT_TOKEN_LIFETIME`, in minutes (default 60, at least 1).
pub(crate) fn jwt_lifetime() -> Result<Duration, ConfigError> {
    let minutes: u64 = env::parsed_or("JWT_TOKEN_LIFETIME", 60)?;
    if minutes == 0 {
        return Err(ConfigError::new(
            "JWT_TOKEN_LIFETIME",
            "must be at least 1 minute",
        ));
    }
    Ok(Duration::from_secs(minutes * 60))
}

/// `INTEGRATION_KEY_TTL_SECONDS` (default 86400).
pub(crate) fn integration_key_ttl() -> Result<Duration, ConfigError> {
    env::seconds_or("INTEGRATION_KEY_TTL_SECONDS", 86_400)
}

impl ConnectorConfig {
    /// Defaults for tests and tools: the in-memory bus, no platform provider (nobody gets a
    /// token through `/register`), the proxy's defaults for `project_id`.
    pub fn for_tests(project_id: &str, jwt_secret_path: PathBuf) -> Self {
        Self {
            port: 0,
            project_id: project_id.to_owned(),
            jwt_secret_path,
            jwt_lifetime: Duration::from_secs(3600),
            cors_allowed_origins: CorsOrigins::Any,
            integration_key_ttl: Duration::from_secs(86_400),
            bus: BusConfig::with_redis(None),
            auth: crate::auth::AuthConfig::default(),
            proxy: crate::dialogflow_proxy::ProxyConfig::default(),
            local_mode: false,
        }
    }
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

impl ConnectorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let project_id = env::optional("GCP_PROJECT_ID").ok_or_else(|| {
            ConfigError::new(
                "GCP_PROJECT_ID",
                "must be set (the project tokens are issued for)",
            )
        })?;
        Ok(Self {
            port: env::port()?,
            jwt_secret_path: env::optional("JWT_SECRET_KEY_PATH")
                .unwrap_or_else(|| "/secret/jwt_secret_key".into())
                .into(),
            jwt_lifetime: jwt_lifetime()?,
            cors_allowed_origins: CorsOrigins::parse(
                &env::optional("CORS_ALLOWED_ORIGINS").unwrap_or_else(|| "*".into()),
            ),
            integration_key_ttl: integration_key_ttl()?,
            bus: BusConfig::from_env(Some("redis://localhost:6379"))?,
            auth: crate::auth::AuthConfig::from_env()?,
            proxy: crate::dialogflow_proxy::ProxyConfig::from_env(&project_id)?,
            project_id,
            local_mode: false,
        })
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
}
