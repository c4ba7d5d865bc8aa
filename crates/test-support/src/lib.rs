//! Running the services in tests, one way for every suite.
//!
//! [`TestInterceptor::spawn`] and [`TestConnector::builder`] build the real service from its
//! real configuration (a [`Settings`] map, never the process environment), run it with the
//! real `run` on `127.0.0.1:0`, and stop it through its shutdown token when dropped or
//! [`stop`](TestInterceptor::stop)ped. Dependencies are real too: `redis-server` through
//! [`redis_test_server`], Socket.IO clients through [`socketio_test_client`], and push bodies
//! built with [`agent_assist_intake::PushEnvelope`], and Google's signing keys through
//! [`jwks_stand_in`].

mod connector;
mod interceptor;
pub mod jwks_stand_in;
mod secret_file;

use std::net::SocketAddr;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use agent_assist_core::config::Settings;
pub use agent_assist_intake::PushEnvelope;
pub use connector::{ConnectorBuilder, TestConnector};
pub use interceptor::TestInterceptor;
pub use redis_test_server::RedisServer;
pub use secret_file::SecretFile;
pub use socketio_test_client::{Event, SocketClient};

/// A service running on a loopback port until stopped.
struct Running {
    address: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Binds `127.0.0.1:0` and runs `serve` on it; `serve` must return once `shutdown` fires.
    async fn start<F, Fut>(serve: F) -> (Self, CancellationToken)
    where
        F: FnOnce(tokio::net::TcpListener, CancellationToken) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, shutdown.clone()));
        (
            Self {
                address,
                shutdown: shutdown.clone(),
                task: Some(task),
            },
            shutdown,
        )
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Fires the shutdown token and waits for the service to return (its drain included).
    async fn stop(&mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.expect("the service task does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
