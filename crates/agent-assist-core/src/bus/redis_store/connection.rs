//! Reaching Redis: the clients (with Memorystore's TLS CA when given) and the command
//! connection, standalone or cluster.
//!
//! Standalone, commands go through a `ConnectionManager` (one multiplexed connection,
//! reconnecting on its own). On a Redis Cluster they go through the crate's cluster connection,
//! which routes each command to its slot's primary and follows `MOVED`/`ASK` on its own. Both
//! sit behind one [`Connection`] that implements the crate's `ConnectionLike`, so every caller
//! (scripts, the key-value store, readiness) is the same code in both modes. Every call has a
//! timeout so that a caller learns quickly that Redis is away (the interceptor then answers 503).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use tokio::sync::OnceCell;

use crate::bus::BusError;
use crate::config::BusConfig;

/// The PEM CA of `REDIS_CA_CERT_PATH`, when set.
fn root_cert(config: &BusConfig) -> Result<Option<Vec<u8>>, BusError> {
    let Some(path) = &config.redis_ca_cert else {
        return Ok(None);
    };
    std::fs::read(path).map(Some).map_err(|e| {
        BusError::Config(format!(
            "cannot read REDIS_CA_CERT_PATH {}: {e}",
            path.display()
        ))
    })
}

/// A Redis client for `url`, trusting `config.redis_ca_cert` when set.
pub(crate) fn client(url: &str, config: &BusConfig) -> Result<redis::Client, BusError> {
    let Some(root_cert) = root_cert(config)? else {
        return Ok(redis::Client::open(url)?);
    };
    Ok(redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        },
    )?)
}

/// How to build cluster clients: the seed nodes (password and scheme in their URLs), the CA and
/// the timeouts. The listener builds a client per connection (its push channel is part of the
/// client), so this is kept rather than one client.
#[derive(Clone)]
pub(crate) struct ClusterSettings {
    nodes: Vec<String>,
    root_cert: Option<Vec<u8>>,
    timeout: Duration,
}

impl ClusterSettings {
    pub(crate) fn new(config: &BusConfig) -> Result<Self, BusError> {
        let settings = Self {
            nodes: config.redis_cluster_nodes.clone(),
            root_cert: root_cert(config)?,
            timeout: config.redis_timeout,
        };
        // Fails now (at start) on what the client refuses: different passwords among the seeds...
        settings.builder().build()?;
        Ok(settings)
    }

    /// A builder with the seeds, the CA and our pacing. The crate's default retry pacing waits
    /// at least 1.28 s before a retry (after `TRYAGAIN` during a slot migration, `CLUSTERDOWN` or
    /// a refused connection during a failover), longer than the whole command timeout; short
    /// waits let a retry land within it.
    pub(crate) fn builder(&self) -> ClusterClientBuilder {
        let mut builder = ClusterClientBuilder::new(self.nodes.clone())
            .retries(8)
            .min_retry_wait(5)
            .max_retry_wait(200)
            .connection_timeout(self.timeout)
            .response_timeout(self.timeout);
        if let Some(root_cert) = &self.root_cert {
            builder = builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert.clone()),
            });
        }
        builder
    }
}

/// The command connection of either mode; cheap to clone.
#[derive(Clone)]
pub(crate) enum Connection {
    Standalone(ConnectionManager),
    Cluster(LazyCluster),
}

/// A cluster connection made on first use. The crate's cluster connection is made eagerly (it
/// fails when no seed answers), while a service must start with Redis down and answer 503 until
/// it is back: so the first command connects, and a command that fails to connect leaves the
/// next one to try again. Once made, the connection reconnects to nodes on its own.
#[derive(Clone)]
pub(crate) struct LazyCluster {
    client: Arc<ClusterClient>,
    connection: Arc<OnceCell<ClusterConnection>>,
}

impl LazyCluster {
    async fn get(&self) -> redis::RedisResult<ClusterConnection> {
        self.connection
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Standalone(manager) => manager.req_packed_command(cmd),
            Connection::Cluster(lazy) => Box::pin(async move {
                let mut connection = lazy.get().await?;
                connection.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Standalone(manager) => manager.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(lazy) => Box::pin(async move {
                let mut connection = lazy.get().await?;
                connection
                    .req_packed_commands(pipeline, offset, count)
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Standalone(manager) => manager.get_db(),
            Connection::Cluster(_) => 0,
        }
    }
}

/// The command connection, shared by every caller; cheap to clone.
#[derive(Clone)]
pub(crate) struct Commands {
    connection: Connection,
    timeout: Duration,
}

impl Commands {
    /// Connects lazily: a service starts while Redis is down and answers 503 until it is back.
    pub(crate) fn open(client: redis::Client, timeout: Duration) -> Result<Self, BusError> {
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        Ok(Self {
            connection: Connection::Standalone(ConnectionManager::new_lazy_with_config(
                client,
                manager_config,
            )?),
            timeout,
        })
    }

    /// The cluster connection, also lazy.
    pub(crate) fn open_cluster(settings: &ClusterSettings) -> Result<Self, BusError> {
        Ok(Self {
            connection: Connection::Cluster(LazyCluster {
                client: Arc::new(settings.builder().build()?),
                connection: Arc::new(OnceCell::new()),
            }),
            timeout: settings.timeout,
        })
    }

    /// A handle on the shared connection.
    pub(crate) fn connection(&self) -> Connection {
        self.connection.clone()
    }

    /// Makes sure the shared connection is a live one, reconnecting it if a command fails: after
    /// Redis restarted, the first command on the old connection fails and the manager
    /// reconnects in the background, so the second one goes through the new connection.
    pub(crate) async fn ensure_live(&self) -> Result<(), BusError> {
        let ping = || async {
            let mut connection = self.connection();
            self.timed(redis::cmd("PING").query_async::<String>(&mut connection))
                .await
        };
        match ping().await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "command connection was stale, reconnecting");
                ping().await.map(drop)
            }
        }
    }

    /// Runs `call`, giving up after the configured timeout.
    pub(crate) async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, BusError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(BusError::Timeout(self.timeout)),
        }
    }
}
