//! The connector service: built from its configuration, then run on a listener until a
//! shutdown token fires.
//!
//! Each feature gets only the state it needs (registration, integration keys, the proxy, live
//! events) and returns its own router; this module composes them and owns the shared layers
//! (CORS, request logs, Socket.IO).

use std::sync::Arc;

use agent_assist_core::ConversationBus;
use agent_assist_intake::cx_webhook::PendingContexts;
use anyhow::Context;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticators;
use crate::closable_connection::{ClosableListener, CloseHandle, UpgradedConnections};
use crate::config::{ConnectorConfig, JwtSecret};
use crate::cors::cors_layer;
use crate::demo_page::PageMode;
use crate::dialogflow_proxy::{DialogflowProxy, ProxyState};
use crate::integration_keys::IntegrationKeysState;
use crate::jwt::JwtKeys;
use crate::live::LiveState;
use crate::memory_release::MemoryRelease;
use crate::metrics::ConnectorMetrics;
use crate::registration::RegistrationState;

/// A built connector, ready to serve.
pub struct Connector {
    config: ConnectorConfig,
    jwt: Arc<JwtKeys>,
    bus: ConversationBus,
    metrics: Arc<ConnectorMetrics>,
    io: SocketIo,
    router: Router,
}

/// What `/ready` and `/metrics` read.
#[derive(Clone)]
struct Operations {
    bus: ConversationBus,
    metrics: Arc<ConnectorMetrics>,
}

impl Connector {
    /// Reads the signing secret, connects the bus (lazily: Redis may be down at start), builds
    /// the providers and the router. Background work (the bus listener, the token-expiry
    /// watcher, the memory release) stops when `shutdown` fires.
    pub fn build(config: ConnectorConfig, shutdown: &CancellationToken) -> anyhow::Result<Self> {
        let jwt = Arc::new(match &config.jwt_secret {
            JwtSecret::File(path) => {
                JwtKeys::from_secret_file(path, config.project_id.clone(), config.jwt_lifetime)?
            }
            JwtSecret::Generated => {
                let secret: [u8; 32] = rand::random();
                JwtKeys::new(&secret, config.project_id.clone(), config.jwt_lifetime)
            }
        });
        let bus = ConversationBus::connect(config.bus.clone(), shutdown.clone())
            .context("conversation bus")?;
        let metrics = Arc::new(ConnectorMetrics::default());
        let upgraded = Arc::new(UpgradedConnections::default());
        let memory = Arc::new(MemoryRelease::default());
        tokio::spawn(memory.clone().run(shutdown.clone()));
        let (socket_io, io) = crate::live::layer(
            LiveState {
                jwt: jwt.clone(),
                bus: bus.clone(),
                metrics: metrics.clone(),
                upgraded: upgraded.clone(),
                slow_socket_grace: config.slow_socket_grace,
                memory,
            },
            config.disconnect_on_token_expiry,
            shutdown,
        );
        let router = Router::new()
            .route("/status", get(status))
            .route("/ready", get(ready))
            .route("/metrics", get(render_metrics))
            .with_state(Operations {
                bus: bus.clone(),
                metrics: metrics.clone(),
            })
            .merge(crate::registration::routes(RegistrationState {
                auth: Arc::new(Authenticators::new(&config.auth)?),
                jwt: jwt.clone(),
                metrics: metrics.clone(),
            }))
            .merge(crate::integration_keys::routes(IntegrationKeysState::new(
                &bus,
                config.integration_key_ttl,
                jwt.clone(),
                PendingContexts::new(&bus, config.integration_key_ttl),
            )))
            .merge(crate::dialogflow_proxy::routes(ProxyState {
                proxy: Arc::new(DialogflowProxy::new(&config.proxy)?),
                jwt: jwt.clone(),
                metrics: metrics.clone(),
            }));
        // The test page at `/` in every mode, as the Python connector served its own; local
        // mode's also posts samples through the push endpoints and the CX webhook it adds.
        let router = match config.local_mode {
            true => router.merge(crate::local_mode::routes(&bus, &config)?),
            false => router.merge(crate::demo_page::routes(PageMode::Production)),
        };
        let router = router
            .layer(socket_io)
            .layer(axum::middleware::from_fn(
                crate::live::handshake_checks::refuse_with_reasons,
            ))
            .layer(axum::middleware::map_request_with_state(
                upgraded,
                remember_upgrade,
            ))
            .layer(axum::middleware::map_request(detach_request_head))
            .layer(cors_layer(&config.cors_allowed_origins))
            .layer(agent_assist_core::telemetry::http_trace_layer(Some(
                config.project_id.clone(),
            )));
        Ok(Self {
            config,
            jwt,
            bus,
            metrics,
            io,
            router,
        })
    }

    /// The keys tokens are issued and checked with (tests mint tokens with them).
    pub fn jwt(&self) -> &Arc<JwtKeys> {
        &self.jwt
    }

    pub fn bus(&self) -> &ConversationBus {
        &self.bus
    }

    pub fn metrics(&self) -> &Arc<ConnectorMetrics> {
        &self.metrics
    }

    pub fn config(&self) -> &ConnectorConfig {
        &self.config
    }

    /// The whole HTTP surface, Socket.IO included.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves until `shutdown` is cancelled, then closes every socket (clients reconnect to
    /// another instance and recover with `since`) and drains HTTP requests.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        tracing::info!(
            bus = self.bus.kind(),
            redis = self.config.bus.redacted_redis_url().unwrap_or_default(),
            address = %listener.local_addr()?,
            "ui-connector listening"
        );
        let io = self.io;
        let close_sockets = {
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                io.close().await;
            }
        };
        let server = axum::serve(
            ClosableListener::new(listener),
            self.router
                .into_make_service_with_connect_info::<CloseHandle>(),
        )
        .with_graceful_shutdown(close_sockets);
        agent_assist_core::shutdown::drain(shutdown, async { server.await }).await?;
        Ok(())
    }
}

async fn status() -> &'static str {
    "Hello, cross-origin-world!"
}

async fn ready(State(operations): State<Operations>) -> Response {
    agent_assist_core::health::readiness(&operations.bus).await
}

async fn render_metrics(State(operations): State<Operations>) -> Response {
    operations
        .metrics
        .render(operations.bus.subscribed_conversations())
}

/// Remembers the connection of each WebSocket upgrade of a long-polling session, so a socket
/// that stops reading can be closed for real (see [`crate::closable_connection`]).
async fn remember_upgrade(
    State(upgraded): State<Arc<UpgradedConnections>>,
    request: axum::extract::Request,
) -> axum::extract::Request {
    if request.uri().path().starts_with("/socket.io") {
        let query = request.uri().query().unwrap_or("");
        let mut pairs = query.split('&');
        let websocket = pairs.clone().any(|pair| pair == "transport=websocket");
        let session = pairs.find_map(|pair| pair.strip_prefix("sid="));
        let handle = request
            .extensions()
            .get::<axum::extract::ConnectInfo<CloseHandle>>();
        if let (true, Some(session), Some(handle)) = (websocket, session, handle) {
            upgraded.remember(session, handle.0.clone());
        }
    }
    request
}

/// Trims what a Socket.IO request keeps for the socket's whole life: socketioxide holds on to the
/// request parts until the socket closes.
/// - The URI and headers are copied: hyper parses them as slices of the connection's read
///   buffer, which would keep that 8-16 KiB buffer allocated per socket (measured with massif;
///   see BENCHMARKS.md, finding 2).
/// - Of the extensions, only the two the socket needs stay: hyper's upgrade handle (engineioxide
///   takes it to upgrade to a WebSocket) and the connection's [`CloseHandle`] (to close a slow
///   socket). Routing's own (`OriginalUri`, which also slices the read buffer, the matched path,
///   URL parameters) cost about 200 bytes per socket (heaptrack; BENCHMARKS.md, finding 2).
async fn detach_request_head(mut request: axum::extract::Request) -> axum::extract::Request {
    if !request.uri().path().starts_with("/socket.io") {
        return request;
    }
    let headers: axum::http::HeaderMap = request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((
                axum::http::HeaderName::from_bytes(name.as_str().as_bytes()).ok()?,
                axum::http::HeaderValue::from_bytes(value.as_bytes()).ok()?,
            ))
        })
        .collect();
    *request.headers_mut() = headers;
    if let Ok(uri) = request.uri().to_string().parse::<axum::http::Uri>() {
        *request.uri_mut() = uri;
    }
    let extensions = request.extensions_mut();
    let mut kept = http::Extensions::new();
    if let Some(upgrade) = extensions.remove::<hyper::upgrade::OnUpgrade>() {
        kept.insert(upgrade);
    }
    if let Some(connection) = extensions.remove::<axum::extract::ConnectInfo<CloseHandle>>() {
        kept.insert(connection);
    }
    *extensions = kept;
    request
}

#[cfg(test)]
mod tests {
    use axum::extract::{ConnectInfo, OriginalUri, Request};

    use super::*;

    fn socket_io_request() -> Request {
        let mut request = Request::builder()
            .uri("/socket.io/?EIO=4&transport=polling&token=t")
            .header("origin", "https://desk.example")
            .body(axum::body::Body::empty())
            .unwrap();
        let uri = request.uri().clone();
        let extensions = request.extensions_mut();
        extensions.insert(ConnectInfo(CloseHandle::default()));
        extensions.insert(OriginalUri(uri));
        // Stands in for routing's other extensions (matched path, URL parameters).
        extensions.insert(7_u32);
        request
    }

    /// socketioxide keeps a request's parts for the socket's life: of the extensions only the
    /// connection's close handle stays (and hyper's upgrade handle, which a request has only on
    /// a real connection: the WebSocket tests go through that), the head is the same.
    #[tokio::test]
    async fn a_socket_io_request_keeps_only_what_its_socket_needs() {
        let request = detach_request_head(socket_io_request()).await;
        assert_eq!(request.extensions().len(), 1);
        assert!(request
            .extensions()
            .get::<ConnectInfo<CloseHandle>>()
            .is_some());
        assert_eq!(request.uri(), "/socket.io/?EIO=4&transport=polling&token=t");
        assert_eq!(request.headers()["origin"], "https://desk.example");
    }

    #[tokio::test]
    async fn other_requests_keep_their_extensions() {
        let mut request = socket_io_request();
        *request.uri_mut() = "/register".parse().unwrap();
        let request = detach_request_head(request).await;
        assert_eq!(request.extensions().len(), 3);
    }
}
