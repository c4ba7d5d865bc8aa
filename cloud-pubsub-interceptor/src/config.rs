//! The interceptor's settings, read once at start-up.

use agent_assist_core::config::{BusConfig, ConfigError, DefaultBus, Settings};

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
    /// Pull mode (`PUBSUB_PULL_SUBSCRIPTIONS` and its settings); `None`: push only.
    pub pull: Option<PullConfig>,
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
            pull: PullConfig::from_settings(settings)?,
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
        let err = InterceptorConfig::from_settings(&Settings::from_pairs([(
            "MAX_PUSH_BODY_BYTES",
            "1000",
        )]))
        .unwrap_err();
        assert_eq!(err.variable, "MAX_PUSH_BODY_BYTES");
    }
}
