//! [`PubsubTestServer`]: the fake's handle for a test. It serves the Subscriber service on a free
//! loopback port, lets the test create subscriptions and publish, inspect and await the
//! subscription's state, break streams, and stop and start the listener on the same port.

use crate::broker::Broker;
use crate::call_log::CallLog;
use crate::dispatcher;
use crate::proto::subscriber_server::SubscriberServer;
use crate::publish_options::PublishOptions;
use crate::snapshot::{SubscriptionSnapshot, WaitTimedOut};
use crate::subscriber_service::SubscriberService;
use crate::subscription_config::SubscriptionConfig;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::Status;
use tower::util::MapRequestLayer;

/// How long `stop` waits for client connections to close after telling them to go away.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// An in-process fake of the Pub/Sub Subscriber service for one test.
///
/// Point a subscriber at [`PubsubTestServer::endpoint`] (plain-text HTTP/2, no credentials), or
/// set `PUBSUB_EMULATOR_HOST` to [`PubsubTestServer::emulator_host`] for code that reads it.
/// Dropping the handle stops the fake.
pub struct PubsubTestServer {
    port: u16,
    broker: Arc<Broker>,
    calls: CallLog,
    serving: Option<Serving>,
    _dispatcher: DropGuard,
}

/// A running gRPC listener.
struct Serving {
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl PubsubTestServer {
    /// Starts the fake on a free loopback port. Must be called inside a Tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start() -> Self {
        let listener = bind(0).expect("bind a free loopback port for the Pub/Sub test server");
        let port = listener
            .local_addr()
            .expect("local address of a bound listener")
            .port();
        let broker = Arc::new(Broker::new());
        let stop_dispatcher = CancellationToken::new();
        dispatcher::spawn(broker.clone(), stop_dispatcher.clone());
        let mut server = Self {
            port,
            broker,
            calls: CallLog::default(),
            serving: None,
            _dispatcher: stop_dispatcher.drop_guard(),
        };
        server.serve(listener);
        server
    }

    /// The port the fake listens on (kept across [`stop`](Self::stop) and
    /// [`start_again`](Self::start_again)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, for a client builder's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`, the form `PUBSUB_EMULATOR_HOST` takes.
    pub fn emulator_host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates a plain subscription (full name, `projects/<p>/subscriptions/<s>`).
    ///
    /// # Panics
    /// If it already exists.
    pub fn create_subscription(&self, name: &str) {
        self.create_subscription_with(name, SubscriptionConfig::default());
    }

    /// Creates a subscription with a dead-letter policy or a lease cap.
    ///
    /// # Panics
    /// If it already exists.
    pub fn create_subscription_with(&self, name: &str, config: SubscriptionConfig) {
        assert!(
            self.broker.create_subscription(name, config),
            "subscription {name} already exists on the Pub/Sub test server"
        );
    }

    /// Publishes a message to `subscription` (as if to a topic it is the only subscription of)
    /// and returns its message id.
    ///
    /// # Panics
    /// If the subscription was not created first: on the real service a message published
    /// before its subscription exists is never delivered to it.
    pub fn publish<K, V>(
        &self,
        subscription: &str,
        data: impl Into<Vec<u8>>,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) -> String
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.publish_with(subscription, data, attributes, PublishOptions::default())
    }

    /// As [`publish`](Self::publish), with a chosen message id or publish time.
    ///
    /// # Panics
    /// If the subscription was not created first, or `options` names the id of a message still
    /// pending on it (publish an id again only once it was acknowledged: a redelivery).
    pub fn publish_with<K, V>(
        &self,
        subscription: &str,
        data: impl Into<Vec<u8>>,
        attributes: impl IntoIterator<Item = (K, V)>,
        options: PublishOptions,
    ) -> String
    where
        K: Into<String>,
        V: Into<String>,
    {
        let attributes: HashMap<String, String> = attributes
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.broker
            .publish(subscription, data.into(), attributes, options)
            .unwrap_or_else(|| {
                panic!("publish to {subscription}: no such subscription on the Pub/Sub test server; create it first")
            })
    }

    /// The subscription's state now.
    ///
    /// # Panics
    /// If the subscription does not exist.
    pub fn snapshot(&self, subscription: &str) -> SubscriptionSnapshot {
        self.broker
            .snapshot(subscription)
            .unwrap_or_else(|| panic!("no subscription {subscription} on the Pub/Sub test server"))
    }

    /// The subscription's configuration.
    pub fn subscription_config(&self, subscription: &str) -> Option<SubscriptionConfig> {
        self.broker.subscription_config(subscription)
    }

    /// Waits until `condition` holds for the subscription's state, re-checking after every
    /// change, and returns that state; or the last state seen once `timeout` has passed.
    ///
    /// # Panics
    /// If the subscription does not exist.
    pub async fn wait_for(
        &self,
        subscription: &str,
        timeout: Duration,
        mut condition: impl FnMut(&SubscriptionSnapshot) -> bool,
    ) -> Result<SubscriptionSnapshot, WaitTimedOut> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.broker.watch_changes();
        loop {
            changes.borrow_and_update();
            let snapshot = self.snapshot(subscription);
            if condition(&snapshot) {
                return Ok(snapshot);
            }
            let changed = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                return Err(WaitTimedOut {
                    waited: timeout,
                    last: Box::new(self.snapshot(subscription)),
                });
            }
        }
    }

    /// Ends every open stream with UNAVAILABLE, as the service does when it moves a stream;
    /// a subscriber must open a new one. Leases are kept. Returns how many streams were open.
    pub fn break_streams(&self) -> usize {
        self.broker.end_streams(&Status::unavailable(
            "stream broken by the Pub/Sub test server",
        ))
    }

    /// Stops listening: tells connected clients to go away, ends open streams with UNAVAILABLE
    /// and closes the port, so new connections are refused. Messages and leases are kept and
    /// leases keep running out while stopped.
    pub async fn stop(&mut self) {
        let Some(mut serving) = self.serving.take() else {
            return;
        };
        // Shutdown first (GOAWAY: no new streams on existing connections, listener closed),
        // then end the streams so the connections can drain.
        serving.shutdown.cancel();
        self.broker
            .end_streams(&Status::unavailable("the Pub/Sub test server is stopping"));
        if tokio::time::timeout(STOP_GRACE, &mut serving.task)
            .await
            .is_err()
        {
            serving.task.abort();
        }
    }

    /// Listens again on the same port after [`stop`](Self::stop).
    ///
    /// # Panics
    /// If the port cannot be bound again within a few seconds.
    pub async fn start_again(&mut self) {
        if self.serving.is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match bind(self.port) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    // The old socket may take a moment to be released after an abort.
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("rebind the Pub/Sub test server on port {}: {e}", self.port),
            }
        };
        self.serve(listener);
    }

    /// Every gRPC method path the fake was asked for, in order, answered or not (for instance
    /// `/google.pubsub.v1.Subscriber/StreamingPull`).
    pub fn calls(&self) -> Vec<String> {
        self.calls.calls()
    }

    fn serve(&mut self, listener: TcpListener) {
        let shutdown = CancellationToken::new();
        let calls = self.calls.clone();
        let record = MapRequestLayer::new(move |request: http::Request<tonic::body::Body>| {
            calls.record(request.uri().path());
            request
        });
        let service = SubscriberServer::new(SubscriberService {
            broker: self.broker.clone(),
        })
        .max_decoding_message_size(usize::MAX);
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let task = tokio::spawn(
            Server::builder()
                .layer(record)
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned()),
        );
        self.serving = Some(Serving { shutdown, task });
    }
}

impl Drop for PubsubTestServer {
    fn drop(&mut self) {
        if let Some(serving) = self.serving.take() {
            serving.shutdown.cancel();
            self.broker
                .end_streams(&Status::unavailable("the Pub/Sub test server was dropped"));
        }
    }
}

/// A loopback listener with SO_REUSEADDR, so a restart can take the same port back at once.
fn bind(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(1024)
}
