//! The connector's shared state and router.

use std::sync::{Arc, OnceLock};

use agent_assist_core::ConversationBus;
use anyhow::Context;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::Authenticators;
use crate::config::{ConnectorConfig, CorsOrigins};
use crate::dialogflow_proxy::DialogflowProxy;
use crate::jwt::JwtKeys;
use crate::metrics::ConnectorMetrics;

/// Everything a request handler may need, shared by all of them.
pub struct AppState {
    pub config: ConnectorConfig,
    pub jwt: JwtKeys,
    pub bus: ConversationBus,
    pub auth: Authenticators,
    pub proxy: DialogflowProxy,
    pub metrics: ConnectorMetrics,
    /// The Socket.IO handle, set when the router is built (to close sockets on shutdown).
    pub io: OnceLock<SocketIo>,
}

impl AppState {
    pub fn new(config: ConnectorConfig) -> anyhow::Result<Self> {
        let jwt = JwtKeys::from_secret_file(
            &config.jwt_secret_path,
            config.project_id.clone(),
            config.jwt_lifetime,
        )?;
        Self::with_jwt(config, jwt)
    }

    /// With keys made elsewhere (local mode generates its secret in memory).
    pub fn with_jwt(config: ConnectorConfig, jwt: JwtKeys) -> anyhow::Result<Self> {
        let bus = ConversationBus::connect(config.bus.clone()).context("conversation bus")?;
        Ok(Self {
            jwt,
            bus,
            auth: Authenticators::new(&config.auth)?,
            proxy: DialogflowProxy::new(&config.proxy)?,
            metrics: ConnectorMetrics::default(),
            io: OnceLock::new(),
            config,
        })
    }
}

/// The whole HTTP surface, Socket.IO included.
pub fn router(state: Arc<AppState>) -> Router {
    let cors = cors_layer(&state.config.cors_allowed_origins);
    let (socket_io, io) = crate::live::layer(state.clone());
    let _ = state.io.set(io);
    let project = state.config.project_id.clone();
    let mut router = Router::new()
        .route("/status", get(status))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .merge(crate::registration::routes())
        .merge(crate::integration_keys::routes())
        .merge(crate::dialogflow_proxy::routes())
        .with_state(state.clone());
    if state.config.local_mode {
        router = router.merge(crate::local_mode::routes(&state));
    }
    router
        .layer(socket_io)
        .layer(axum::middleware::map_request(detach_request_head))
        .layer(cors)
        .layer(agent_assist_core::telemetry::http_trace_layer(Some(
            project,
        )))
}

async fn status() -> &'static str {
    "Hello, cross-origin-world!"
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    agent_assist_core::health::readiness(&state.bus).await
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    state.metrics.render(state.bus.subscribed_conversations())
}

pub fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods(tower_http::cors::Any)
        .allow_headers(tower_http::cors::Any);
    match origins {
        CorsOrigins::Any => layer.allow_origin(AllowOrigin::any()),
        CorsOrigins::List(list) => layer.allow_origin(AllowOrigin::list(
            list.iter().filter_map(|o| o.parse().ok()),
        )),
    }
}

/// Serves until `shutdown` is cancelled, then closes every socket (clients reconnect to
/// another instance and recover with `since`) and drains HTTP requests.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(
        bus = state.bus.kind(),
        redis = state.config.bus.redacted_redis_url().unwrap_or_default(),
        "bus configured"
    );
    let app = router(state.clone());
    tracing::info!(address = %listener.local_addr()?, "ui-connector listening");
    let close_sockets = {
        let shutdown = shutdown.clone();
        let state = state.clone();
        async move {
            shutdown.cancelled().await;
            if let Some(io) = state.io.get() {
                io.close().await;
            }
        }
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(close_sockets);
    agent_assist_core::shutdown::drain(shutdown, async { server.await }).await?;
    Ok(())
}

/// Copies the URI, headers and `OriginalUri` of Socket.IO requests. hyper parses them as slices
/// of the connection's read buffer; socketioxide keeps the request parts (and axum's
/// `OriginalUri` extension) for the socket's whole life, which would keep that 8-16 KiB buffer
/// allocated per socket (measured with massif; see BENCHMARKS.md).
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
        if let Some(original) = request
            .extensions_mut()
            .get_mut::<axum::extract::OriginalUri>()
        {
            original.0 = uri.clone();
        }
        *request.uri_mut() = uri;
    }
    request
}
