//! Reaching Redis: the client (with Memorystore's TLS CA when given) and the command
//! connection.
//!
//! Commands go through a `ConnectionManager` (one multiplexed connection, reconnecting on its
//! own); every call has a timeout so that a caller learns quickly that Redis is away (the
//! interceptor then answers 503).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::bus::BusError;
use crate::config::BusConfig;

/// A Redis client for `url`, trusting `config.redis_ca_cert` when set.
pub(crate) fn client(url: &str, config: &BusConfig) -> Result<redis::Client, BusError> {
    let Some(path) = &config.redis_ca_cert else {
        return Ok(redis::Client::open(url)?);
    };
    let root_cert = std::fs::read(path).map_err(|e| {
        BusError::Config(format!(
            "cannot read REDIS_CA_CERT_PATH {}: {e}",
            path.display()
        ))
    })?;
    Ok(redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        },
    )?)
}

/// The command connection, shared by every caller; cheap to clone.
#[derive(Clone)]
pub(crate) struct Commands {
    connection: ConnectionManager,
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
            connection: ConnectionManager::new_lazy_with_config(client, manager_config)?,
            timeout,
        })
    }

    /// A handle on the shared connection.
    pub(crate) fn connection(&self) -> ConnectionManager {
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
