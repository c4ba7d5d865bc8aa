//! Settings, read once at start-up through one reader.
//!
//! Every service configuration (the bus's, the interceptor's, the connector's and each of its
//! features') is built from a [`Settings`]: the process environment in production, a map in
//! tests, so a test never has to touch the process environment (tests run in parallel in one
//! process). A missing or invalid value stops the service with a [`ConfigError`] naming the
//! variable, rather than surfacing later as a confusing failure. Values are trimmed, and blank
//! values count as unset (Cloud Run deploys often set empty values).
//!
//! The bus settings, shared by both services, live here too ([`BusConfig`]).

use std::collections::HashMap;
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

/// Where settings come from: values given explicitly first, then (in production) the process
/// environment.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    given: HashMap<String, String>,
    environment: bool,
}

impl Settings {
    /// The process environment.
    pub fn from_env() -> Self {
        Self {
            given: HashMap::new(),
            environment: true,
        }
    }

    /// Exactly these settings, nothing from the environment (tests, tools).
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            given: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            environment: false,
        }
    }

    /// These settings with `name` set to `value`, whatever the environment says.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.given.insert(name.into(), value.into());
        self
    }

    /// The trimmed value of `name`; `None` when unset or blank.
    pub fn get(&self, name: &'static str) -> Option<String> {
        let raw = match self.given.get(name) {
            Some(value) => Some(value.clone()),
            None if self.environment => std::env::var(name).ok(),
            None => None,
        };
        raw.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// The value of `name`; `purpose` says in the error what it is for.
    pub fn required(&self, name: &'static str, purpose: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name, format!("must be set ({purpose})")))
    }

    /// The value of `name` parsed as `T`, or `default` when unset.
    pub fn parsed_or<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| ConfigError::new(name, format!("{raw:?} is not valid: {e}"))),
        }
    }

    /// A whole number, at least `min`, or `default`.
    pub fn at_least<T>(&self, name: &'static str, default: T, min: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Display + Copy,
        T::Err: Display,
    {
        let value = self.parsed_or(name, default)?;
        if value < min {
            return Err(ConfigError::new(name, format!("must be at least {min}")));
        }
        Ok(value)
    }

    /// A whole number of seconds, at least 1, or `default_secs`.
    pub fn seconds_or(
        &self,
        name: &'static str,
        default_secs: u64,
    ) -> Result<Duration, ConfigError> {
        let secs: u64 = self.parsed_or(name, default_secs)?;
        if secs == 0 {
            return Err(ConfigError::new(name, "must be at least 1 second"));
        }
        Ok(Duration::from_secs(secs))
    }

    /// A positive number of seconds, fractions allowed (`0.5`), at most `max_secs`.
    pub fn fractional_seconds_or(
        &self,
        name: &'static str,
        default: Duration,
        max_secs: f64,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let secs: f64 = raw
            .parse()
            .map_err(|e| ConfigError::new(name, format!("{raw:?} is not a number: {e}")))?;
        if !(secs > 0.0 && secs <= max_secs) {
            return Err(ConfigError::new(
                name,
                format!("{raw:?} must be more than 0 and at most {max_secs} seconds"),
            ));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// `true` or `false` (also `1`/`0`, `yes`/`no`, any case), or `default` when unset.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(ConfigError::new(
                name,
                format!("{other:?} is not true or false"),
            )),
        }
    }

    /// A comma-separated list, items trimmed, empty items dropped; `None` when unset.
    pub fn list(&self, name: &'static str) -> Option<Vec<String>> {
        self.get(name).map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        })
    }

    /// `PORT`, as Cloud Run sets it; 8080 by default.
    pub fn port(&self) -> Result<u16, ConfigError> {
        self.parsed_or("PORT", 8080)
    }
}

/// Where the conversation bus lives and how much it keeps.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `None`: the in-memory bus (local mode and tests only), unless cluster nodes are given.
    pub redis_url: Option<String>,
    /// Seed nodes of a Redis Cluster (`REDIS_CLUSTER_NODES`, comma-separated `redis://` or
    /// `rediss://` URLs, all of one scheme). Not empty: the bus runs in cluster mode (sharded
    /// pub/sub, see `bus::redis_store`) and `redis_url` is `None`. Empty: standalone.
    pub redis_cluster_nodes: Vec<String>,
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
    /// `PYTHON_CONNECTOR_BRIDGE` (default false): the interceptor also delivers each event to
    /// Python connectors on the same Redis, the way the Python interceptor did (their
    /// conversation key holds a server id; the event goes to `<server id>:<conversation>`), so
    /// the interceptor can be replaced before the connectors.
    pub python_connector_bridge: bool,
}

/// Where the bus lives when no Redis setting is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultBus {
    /// `redis://localhost:6379`, as the Python services did (production services).
    LocalRedis,
    /// The in-memory bus (local mode).
    Memory,
}

impl BusConfig {
    /// Redis settings as existing deployments spell them: `REDIS_URL` (`redis://` or `rediss://`,
    /// with a password when Memorystore AUTH is on) wins; otherwise `REDISHOST` and `REDISPORT`
    /// (default 6379). With neither, `default` decides.
    ///
    /// `REDIS_CLUSTER_NODES` switches to a Redis Cluster instead. Setting it together with
    /// `REDIS_URL` or `REDISHOST` is refused: which one was meant is ambiguous, and guessing
    /// would split a fleet between two stores. So is `PYTHON_CONNECTOR_BRIDGE`: the bridge
    /// publishes on Python's un-tagged keys, which a cluster script cannot reach.
    pub fn from_settings(settings: &Settings, default: DefaultBus) -> Result<Self, ConfigError> {
        let python_connector_bridge = settings.flag("PYTHON_CONNECTOR_BRIDGE", false)?;
        let redis_cluster_nodes = cluster_nodes(settings)?;
        if !redis_cluster_nodes.is_empty() {
            for other in ["REDIS_URL", "REDISHOST"] {
                if settings.get(other).is_some() {
                    return Err(ConfigError::new(
                        "REDIS_CLUSTER_NODES",
                        format!(
                            "cannot be used together with {other}: set REDIS_CLUSTER_NODES for a \
                             Redis Cluster or {other} for a standalone Redis, not both"
                        ),
                    ));
                }
            }
            if python_connector_bridge {
                return Err(ConfigError::new(
                    "PYTHON_CONNECTOR_BRIDGE",
                    "is not supported with REDIS_CLUSTER_NODES: the bridge publishes on the \
                     Python connectors' un-tagged keys, which cannot share a cluster slot with \
                     the conversation's keys; keep a standalone Redis while Python connectors run",
                ));
            }
        }
        let redis_url = match (settings.get("REDIS_URL"), settings.get("REDISHOST")) {
            _ if !redis_cluster_nodes.is_empty() => None,
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
                let port: u16 = settings.parsed_or("REDISPORT", 6379)?;
                Some(format!("redis://{host}:{port}"))
            }
            (None, None) => match default {
                DefaultBus::LocalRedis => Some("redis://localhost:6379".to_owned()),
                DefaultBus::Memory => None,
            },
        };
        let timeout_ms: u64 = settings.at_least("REDIS_TIMEOUT_MS", 2000, 1)?;
        Ok(Self {
            redis_url,
            redis_cluster_nodes,
            history_len: settings.at_least("CONVERSATION_HISTORY_LENGTH", 100, 1)?,
            history_ttl: settings.seconds_or("CONVERSATION_HISTORY_TTL_SECONDS", 3600)?,
            dedup_window: settings.seconds_or("DEDUP_WINDOW_SECONDS", 600)?,
            redis_ca_cert: settings.get("REDIS_CA_CERT_PATH").map(Into::into),
            redis_timeout: Duration::from_millis(timeout_ms),
            python_connector_bridge,
        })
    }

    /// Defaults with the given Redis URL (tests, benchmarks).
    pub fn with_redis(redis_url: Option<String>) -> Self {
        Self::from_settings(&Settings::default(), DefaultBus::Memory)
            .map(|config| Self {
                redis_url,
                ..config
            })
            .expect("the defaults are valid")
    }

    /// Defaults with the given cluster seed nodes (tests, benchmarks).
    pub fn with_redis_cluster(nodes: Vec<String>) -> Self {
        Self {
            redis_cluster_nodes: nodes,
            ..Self::with_redis(None)
        }
    }

    /// Whether the bus runs on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        !self.redis_cluster_nodes.is_empty()
    }

    /// The Redis address without its password, for logs; in cluster mode, the seed nodes
    /// (comma-separated).
    pub fn redacted_redis_url(&self) -> Option<String> {
        if self.is_cluster() {
            let nodes: Vec<String> = self
                .redis_cluster_nodes
                .iter()
                .map(|n| redact_url(n))
                .collect();
            return Some(nodes.join(","));
        }
        self.redis_url.as_deref().map(redact_url)
    }
}

/// `REDIS_CLUSTER_NODES`, checked: no empty entry (a stray comma is a typo worth stopping for),
/// every entry a `redis://` or `rediss://` URL the client can read, all of one scheme (the
/// client speaks TLS to every node or to none). Empty when unset.
fn cluster_nodes(settings: &Settings) -> Result<Vec<String>, ConfigError> {
    const NAME: &str = "REDIS_CLUSTER_NODES";
    let Some(raw) = settings.get(NAME) else {
        return Ok(Vec::new());
    };
    let mut nodes = Vec::new();
    for (position, entry) in raw.split(',').map(str::trim).enumerate() {
        let number = position + 1;
        if entry.is_empty() {
            return Err(ConfigError::new(
                NAME,
                format!("entry {number} is empty (a stray comma?)"),
            ));
        }
        if !(entry.starts_with("redis://") || entry.starts_with("rediss://")) {
            return Err(ConfigError::new(
                NAME,
                format!(
                    "entry {number} ({}) must start with redis:// or rediss://",
                    redact_url(entry)
                ),
            ));
        }
        if let Err(e) = redis::IntoConnectionInfo::into_connection_info(entry) {
            return Err(ConfigError::new(
                NAME,
                format!(
                    "entry {number} ({}) is not a valid URL: {e}",
                    redact_url(entry)
                ),
            ));
        }
        nodes.push(entry.to_owned());
    }
    let tls = nodes.iter().filter(|n| n.starts_with("rediss://")).count();
    if tls != 0 && tls != nodes.len() {
        return Err(ConfigError::new(
            NAME,
            "mixes redis:// and rediss:// nodes: use rediss:// for all of them (TLS) or none",
        ));
    }
    Ok(nodes)
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

    #[test]
    fn values_are_trimmed_and_blank_is_unset() {
        let settings = Settings::from_pairs([("A", "  x "), ("B", "   "), ("N", " 7 ")]);
        assert_eq!(settings.get("A").as_deref(), Some("x"));
        assert_eq!(settings.get("B"), None);
        assert_eq!(settings.get("C"), None);
        assert_eq!(settings.parsed_or("N", 1u32).unwrap(), 7);
        assert_eq!(settings.parsed_or("B", 1u32).unwrap(), 1);
        let err = settings.parsed_or::<u32>("A", 1).unwrap_err();
        assert_eq!(err.variable, "A");
        assert_eq!(
            settings.with("L", "a, b,,c ").list("L"),
            Some(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])
        );
    }

    #[test]
    fn durations_are_checked() {
        let settings = Settings::from_pairs([("Z", "0"), ("F", "0.5"), ("BIG", "301")]);
        assert_eq!(settings.seconds_or("Z", 5).unwrap_err().variable, "Z");
        assert_eq!(settings.seconds_or("U", 5).unwrap(), Duration::from_secs(5));
        assert_eq!(
            settings
                .fractional_seconds_or("F", Duration::from_secs(1), 300.0)
                .unwrap(),
            Duration::from_millis(500)
        );
        assert!(settings
            .fractional_seconds_or("BIG", Duration::from_secs(1), 300.0)
            .is_err());
    }

    #[test]
    fn bus_settings() {
        let config = BusConfig::from_settings(
            &Settings::from_pairs([("REDISHOST", "10.0.0.3"), ("REDISPORT", "6380")]),
            DefaultBus::Memory,
        )
        .unwrap();
        assert_eq!(config.redis_url.as_deref(), Some("redis://10.0.0.3:6380"));
        let config =
            BusConfig::from_settings(&Settings::default(), DefaultBus::LocalRedis).unwrap();
        assert_eq!(config.redis_url.as_deref(), Some("redis://localhost:6379"));
        assert_eq!(config.history_len, 100);
        for (name, value) in [
            ("REDIS_URL", "http://x"),
            ("REDISPORT", "x"),
            ("CONVERSATION_HISTORY_LENGTH", "0"),
            ("REDIS_TIMEOUT_MS", "0"),
            ("DEDUP_WINDOW_SECONDS", "0"),
        ] {
            let mut pairs = vec![(name, value)];
            if name == "REDISPORT" {
                pairs.push(("REDISHOST", "h"));
            }
            let err = BusConfig::from_settings(&Settings::from_pairs(pairs), DefaultBus::Memory)
                .unwrap_err();
            assert_eq!(err.variable, name);
        }
    }

    fn bus(pairs: &[(&str, &str)]) -> Result<BusConfig, ConfigError> {
        BusConfig::from_settings(
            &Settings::from_pairs(pairs.iter().copied()),
            DefaultBus::LocalRedis,
        )
    }

    #[test]
    fn cluster_nodes_switch_to_cluster_mode() {
        let config = bus(&[(
            "REDIS_CLUSTER_NODES",
            " rediss://:secret@10.0.0.3:6379 , rediss://:secret@10.0.0.4:6379",
        )])
        .unwrap();
        assert!(config.is_cluster());
        assert_eq!(
            config.redis_url, None,
            "no standalone default beside a cluster"
        );
        assert_eq!(
            config.redis_cluster_nodes,
            [
                "rediss://:secret@10.0.0.3:6379",
                "rediss://:secret@10.0.0.4:6379"
            ]
        );
        assert_eq!(
            config.redacted_redis_url().as_deref(),
            Some("rediss://***@10.0.0.3:6379,rediss://***@10.0.0.4:6379")
        );
        let standalone = bus(&[]).unwrap();
        assert!(!standalone.is_cluster());
        assert!(standalone.redis_cluster_nodes.is_empty());
    }

    #[test]
    fn bad_cluster_nodes_are_refused_with_the_reason() {
        for (value, reason) in [
            ("redis://a:1,,redis://b:1", "entry 2 is empty"),
            ("redis://a:1,", "entry 2 is empty"),
            (
                "http://a:1",
                "entry 1 (http://a:1) must start with redis://",
            ),
            ("redis://a:1,a:2", "entry 2 (a:2) must start with redis://"),
            ("redis://a:1,rediss://b:1", "mixes redis:// and rediss://"),
            (
                "redis://:pw@a:notaport",
                "entry 1 (redis://***@a:notaport) is not a valid URL",
            ),
        ] {
            let err = bus(&[("REDIS_CLUSTER_NODES", value)]).unwrap_err();
            assert_eq!(err.variable, "REDIS_CLUSTER_NODES", "{value}");
            assert!(err.reason.contains(reason), "{value}: {}", err.reason);
            assert!(!err.to_string().contains("pw"), "no password in {err}");
        }
    }

    #[test]
    fn cluster_nodes_beside_a_standalone_setting_are_ambiguous() {
        for other in ["REDIS_URL", "REDISHOST"] {
            let err = bus(&[
                ("REDIS_CLUSTER_NODES", "redis://a:1"),
                (other, "redis://b:1"),
            ])
            .unwrap_err();
            assert_eq!(err.variable, "REDIS_CLUSTER_NODES");
            assert!(err.reason.contains(other), "{}", err.reason);
        }
    }

    #[test]
    fn the_python_bridge_is_refused_on_a_cluster() {
        let err = bus(&[
            ("REDIS_CLUSTER_NODES", "redis://a:1"),
            ("PYTHON_CONNECTOR_BRIDGE", "true"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "PYTHON_CONNECTOR_BRIDGE");
        assert!(err.reason.contains("REDIS_CLUSTER_NODES"), "{}", err.reason);
        let allowed = bus(&[
            ("REDIS_CLUSTER_NODES", "redis://a:1"),
            ("PYTHON_CONNECTOR_BRIDGE", "false"),
        ]);
        assert!(allowed.is_ok());
    }
}
