//! The connector's shared state and router.

use std::sync::Arc;

use agent_assist_core::ConversationBus;
use anyhow::Context;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::Authenticators;
use crate::config::{ConnectorConfig, CorsOrigins};
use crate::dialogflow_proxy::DialogflowProxy;
use crate::jwt::JwtKeys;

/// Everything a request handler may need, shared by all of them.
pub struct AppState {
    pub config: ConnectorConfig,
    pub jwt: JwtKeys,
    pub bus: ConversationBus,
    pub auth: Authenticators,
    pub proxy: DialogflowProxy,
}

impl AppState {
    pub fn new(config: ConnectorConfig) -> anyhow::Result<Self> {
        let jwt = JwtKeys::from_secret_file(
            &config.jwt_secret_path,
            config.project_id.clone(),
            config.jwt_lifetime,
        )?;
        let bus = ConversationBus::connect(config.bus.clone()).context("conversation bus")?;
        Ok(Self {
            jwt,
            bus,
            auth: Authenticators::new(&config.auth)?,
            proxy: DialogflowProxy::new(&config.proxy)?,
            config,
        })
    }
}

/// The whole HTTP surface.
pub fn router(state: Arc<AppState>) -> Router {
    let cors = cors_layer(&state.config.cors_allowed_origins);
    Router::new()
        .route("/status", get(status))
        .merge(crate::registration::routes())
        .merge(crate::integration_keys::routes())
        .merge(crate::dialogflow_proxy::routes())
        .with_state(state)
        .layer(cors)
}

async fn status() -> &'static str {
    "Hello, cross-origin-world!"
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

/// Serves until `shutdown` is cancelled, then drains.
pub async fn serve(
    config: ConnectorConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = Arc::new(AppState::new(config)?);
    let app = router(state);
    tracing::info!(address = %listener.local_addr()?, "ui-connector listening");
    let server =
        axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    agent_assist_core::shutdown::drain(shutdown, async { server.await }).await?;
    Ok(())
}
