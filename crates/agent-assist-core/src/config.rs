//! Reading settings from the environment, once, at start-up.
//!
//! Each service has a typed configuration struct built from these functions; a missing or
//! invalid value stops the service with an error that names the variable, rather than surfacing
//! later as a confusing failure. The bus settings, shared by both services, live here too.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

/// A setting that is missing or does not parse, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, reason: impl Into<String>) -> Self {
        Self {
            variable,
            reason: reason.into(),
        }
    }
}

/// The value of `name`, or `None` when unset or empty (Cloud Run deploys often set empty values).
pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The value of `name` parsed as `T`, or `default` when unset or empty.
pub fn parsed_or<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match optional(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e| ConfigError::new(name, format!("{raw:?} is not valid: {e}"))),
    }
}

/// A whole number of seconds, at least 1, or `default`.
pub fn seconds_or(name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    let secs: u64 = parsed_or(name, default)?;
    if secs == 0 {
        return Err(ConfigError::new(name, "must be at least 1 second"));
    }
    Ok(Duration::from_secs(secs))
}

/// `PORT`, as Cloud Run sets it; 8080 by default.
pub fn port() -> Result<u16, ConfigError> {
    parsed_or("PORT", 8080)
}

/// Where the conversation bus lives and how much it keeps.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `None`: the in-memory bus (local mode and tests only).
    pub redis_url: Option<String>,
    /// Events kept per conversation for recovery (`CONVERSATION_HISTORY_LENGTH`, default 100).
    pub history_len: usize,
    /// How long a conversation's history outlives its last event
    /// (`CONVERSATION_HISTORY_TTL_SECONDS`, default 3600).
    pub history_ttl: Duration,
    /// How long an accepted Pub/Sub `message_id` is remembered to drop redeliveries
    /// (`DEDUP_WINDOW_SECONDS`, default 600).
    pub dedup_window: Duration,
    /// PEM file of the CA that signed Redis's TLS certificate (`REDIS_CA_CERT_PATH`), for
    /// Memorystore's in-transit encryption, whose server CA is not a public one. Without it,
    /// `rediss://` verifies against the public web roots.
    pub redis_ca_cert: Option<std::path::PathBuf>,
    /// Longest wait for one Redis command before the caller is told the bus is unavailable
    /// (`REDIS_TIMEOUT_MS`, default 2000).
    pub redis_timeout: Duration,
}

impl BusConfig {
    /// Redis settings as existing deployments spell them: `REDIS_URL` (`redis://` or `rediss://`,
    /// with a password when Memorystore AUTH is on) wins; otherwise `REDISHOST` and `REDISPORT`
    /// (default 6379). With neither, `default_redis` decides: production services fall back to
    /// `localhost:6379` as the Python services did; local mode passes `None` for the memory bus.
    pub fn from_env(default_redis: Option<&str>) -> Result<Self, ConfigError> {
        let redis_url = match (optional("REDIS_URL"), optional("REDISHOST")) {
            (Some(url), _) => {
                if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                    return Err(ConfigError::new(
                        "REDIS_URL",
                        "must start with redis:// or rediss://",
                    ));
                }
                Some(url)
            }
            (None, Some(host)) => {
                let port: u16 = parsed_or("REDISPORT", 6379)?;
                Some(format!("redis://{}:{port}", host.trim()))
            }
            (None, None) => default_redis.map(str::to_owned),
        };
        let history_len: usize = parsed_or("CONVERSATION_HISTORY_LENGTH", 100)?;
        if history_len == 0 {
            return Err(ConfigError::new(
                "CONVERSATION_HISTORY_LENGTH",
                "must be at least 1",
            ));
        }
        let timeout_ms: u64 = parsed_or("REDIS_TIMEOUT_MS", 2000)?;
        if timeout_ms == 0 {
            return Err(ConfigError::new("REDIS_TIMEOUT_MS", "must be at least 1"));
        }
        Ok(Self {
            redis_url,
            history_len,
            history_ttl: seconds_or("CONVERSATION_HISTORY_TTL_SECONDS", 3600)?,
            dedup_window: seconds_or("DEDUP_WINDOW_SECONDS", 600)?,
            redis_ca_cert: optional("REDIS_CA_CERT_PATH").map(Into::into),
            redis_timeout: Duration::from_millis(timeout_ms),
        })
    }

    /// Defaults with the given Redis URL (tests, benchmarks).
    pub fn with_redis(redis_url: Option<String>) -> Self {
        Self {
            redis_url,
            history_len: 100,
            history_ttl: Duration::from_secs(3600),
            dedup_window: Duration::from_secs(600),
            redis_ca_cert: None,
            redis_timeout: Duration::from_secs(2),
        }
    }

    /// The Redis address without its password, for logs.
    pub fn redacted_redis_url(&self) -> Option<String> {
        self.redis_url.as_deref().map(redact_url)
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("rediss://:secret@10.0.0.3:6378"),
            "rediss://***@10.0.0.3:6378"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
