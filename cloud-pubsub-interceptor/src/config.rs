//! The interceptor's settings, read once at start-up.

use agent_assist_core::config::{self as env, BusConfig, ConfigError};

/// Largest push body accepted (`MAX_PUSH_BODY_BYTES`, default 16 MiB). Pub/Sub messages are at
/// most 10 MiB, which base64 and the envelope grow to about 13.4 MiB.
pub const DEFAULT_MAX_PUSH_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct InterceptorConfig {
    /// `PORT` (default 8080).
    pub port: u16,
    /// `MAX_PUSH_BODY_BYTES`: larger bodies get 413.
    pub max_push_body_bytes: usize,
    /// Redis (`REDIS_URL`, or `REDISHOST`/`REDISPORT`, default `localhost:6379`) and history
    /// settings; see [`BusConfig`].
    pub bus: BusConfig,
}

impl InterceptorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let max_push_body_bytes: usize =
            env::parsed_or("MAX_PUSH_BODY_BYTES", DEFAULT_MAX_PUSH_BODY_BYTES)?;
        if max_push_body_bytes < 10 * 1024 * 1024 {
            return Err(ConfigError::new(
                "MAX_PUSH_BODY_BYTES",
                "must be at least 10 MiB (10485760), Pub/Sub's largest message",
            ));
        }
        Ok(Self {
            port: env::port()?,
            max_push_body_bytes,
            bus: BusConfig::from_env(Some("redis://localhost:6379"))?,
        })
    }
}
