//! The connector, spawned in-process, configured through a builder.

use std::net::SocketAddr;
use std::sync::Arc;

use agent_assist_core::config::Settings;
use agent_assist_core::ConversationBus;
use redis_test_server::RedisServer;
use socketio_test_client::SocketClient;
use ui_connector::app::Connector;
use ui_connector::config::ConnectorConfig;
use ui_connector::jwt::JwtKeys;
use ui_connector::metrics::ConnectorMetrics;

use crate::{Running, SecretFile};

/// The project tests' tokens are issued for, unless a test sets `GCP_PROJECT_ID`.
pub const TEST_PROJECT: &str = "test-project";

/// A change to the configuration after it was read from the settings.
type Adjustment = Box<dyn FnOnce(&mut ConnectorConfig) + Send>;

/// Settings, then adjustments of the configuration built from them.
pub struct ConnectorBuilder {
    settings: Settings,
    local: bool,
    adjustments: Vec<Adjustment>,
}

impl ConnectorBuilder {
    /// On `redis` (`REDIS_URL`).
    pub fn redis(self, redis: &RedisServer) -> Self {
        self.setting("REDIS_URL", redis.url())
    }

    /// The in-memory bus (tests that do not exercise Redis).
    pub fn memory_bus(self) -> Self {
        self.adjust(|config| config.bus.redis_url = None)
    }

    /// Any environment setting, by its name.
    pub fn setting(mut self, name: &str, value: impl Into<String>) -> Self {
        self.settings = self.settings.with(name, value);
        self
    }

    /// Local mode's configuration instead of production's.
    pub fn local_mode(mut self) -> Self {
        self.local = true;
        self
    }

    /// A change to a configuration field that is not an environment setting.
    pub fn adjust(mut self, change: impl FnOnce(&mut ConnectorConfig) + Send + 'static) -> Self {
        self.adjustments.push(Box::new(change));
        self
    }

    /// The configuration, as the service would read it.
    pub fn config(self) -> (ConnectorConfig, SecretFile) {
        let secret = SecretFile::new("test-secret\n");
        let settings = self
            .settings
            .with("JWT_SECRET_KEY_PATH", secret.path().display().to_string());
        let mut config = if self.local {
            ConnectorConfig::local(&settings)
        } else {
            ConnectorConfig::from_settings(&settings)
        }
        .expect("valid settings");
        for change in self.adjustments {
            change(&mut config);
        }
        (config, secret)
    }

    pub async fn spawn(self) -> TestConnector {
        let (config, _secret) = self.config();
        let mut parts = None;
        let (running, _) = Running::start(|listener, shutdown| {
            let connector = Connector::build(config, &shutdown).expect("the connector builds");
            parts = Some((
                connector.jwt().clone(),
                connector.bus().clone(),
                connector.metrics().clone(),
            ));
            connector.run(listener, shutdown)
        })
        .await;
        let (jwt, bus, metrics) = parts.expect("built");
        TestConnector {
            running,
            jwt,
            bus,
            metrics,
            http: reqwest::Client::new(),
        }
    }
}

pub struct TestConnector {
    running: Running,
    jwt: Arc<JwtKeys>,
    bus: ConversationBus,
    metrics: Arc<ConnectorMetrics>,
    http: reqwest::Client,
}

impl TestConnector {
    /// A connector for [`TEST_PROJECT`] with a secret of its own and production defaults
    /// otherwise: call [`ConnectorBuilder::redis`] (or [`ConnectorBuilder::local_mode`] for the
    /// in-memory bus).
    pub fn builder() -> ConnectorBuilder {
        ConnectorBuilder {
            settings: Settings::from_pairs([("GCP_PROJECT_ID", TEST_PROJECT)]),
            local: false,
            adjustments: Vec::new(),
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.running.address
    }

    pub fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }

    /// A valid token for `user`.
    pub fn token(&self, user: &str) -> String {
        self.jwt.issue(user)
    }

    pub fn bus(&self) -> &ConversationBus {
        &self.bus
    }

    pub fn metrics(&self) -> &ConnectorMetrics {
        &self.metrics
    }

    /// A Socket.IO client connected with a valid token.
    pub async fn socket(&self) -> SocketClient {
        SocketClient::connect(self.address(), &self.token("agent@example.com"))
            .await
            .expect("the connector accepts the socket")
    }

    /// Stops it through its shutdown token and waits until it has drained.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.running.stop().await
    }
}
