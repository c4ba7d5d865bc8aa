//! Local mode: the whole backend in one process, for a laptop with no cloud account.
//!
//! `ui-connector --local` serves, on `PORT` (default 8080): the connector (registration,
//! Socket.IO, integration keys, the Dialogflow proxy), the interceptor's four push endpoints on
//! the same bus, and the demo page at `/`. It runs on the in-memory bus unless `REDIS_URL` (or
//! `REDISHOST`) is given, signs tokens with a secret generated at start (never written
//! anywhere), and accepts every desktop token (`Skip`). It refuses to start on Cloud Run
//! (`K_SERVICE` set): local mode is never the production default.

use std::sync::Arc;

use agent_assist_core::config::{self as env, BusConfig};
use anyhow::bail;
use axum::Router;
use cloud_pubsub_interceptor::app::{push_routes, InterceptorState};
use cloud_pubsub_interceptor::config::DEFAULT_MAX_PUSH_BODY_BYTES;

use crate::app::AppState;
use crate::auth::AuthConfig;
use crate::config::{ConnectorConfig, CorsOrigins};
use crate::jwt::JwtKeys;

/// The project written into local tokens unless `GCP_PROJECT_ID` is set.
pub const LOCAL_PROJECT: &str = "local-project";

/// Local settings and a freshly generated signing key.
pub fn prepare() -> anyhow::Result<(ConnectorConfig, JwtKeys)> {
    if let Some(service) = env::optional("K_SERVICE") {
        bail!(
            "refusing to start in local mode on Cloud Run (K_SERVICE={service}): local mode \
             accepts every token; deploy without --local"
        );
    }
    let project_id = env::optional("GCP_PROJECT_ID").unwrap_or_else(|| LOCAL_PROJECT.into());
    let config = ConnectorConfig {
        port: env::port()?,
        jwt_secret_path: "(generated in memory)".into(),
        jwt_lifetime: crate::config::jwt_lifetime()?,
        cors_allowed_origins: CorsOrigins::Any,
        integration_key_ttl: crate::config::integration_key_ttl()?,
        bus: BusConfig::from_env(None)?,
        auth: AuthConfig::skip(),
        proxy: crate::dialogflow_proxy::ProxyConfig::from_env(&project_id)?,
        project_id,
        local_mode: true,
    };
    let secret: [u8; 32] = rand::random();
    let jwt = JwtKeys::new(&secret, config.project_id.clone(), config.jwt_lifetime);
    Ok((config, jwt))
}

/// What local mode adds to the connector's router: the push endpoints and the demo page.
pub fn routes(state: &Arc<AppState>) -> Router {
    let interceptor = Arc::new(InterceptorState::new(state.bus.clone()));
    push_routes(interceptor, DEFAULT_MAX_PUSH_BODY_BYTES).merge(crate::demo_page::routes())
}

/// Says loudly what is running and where.
pub fn announce(port: u16, bus_kind: &str) {
    tracing::warn!(
        "LOCAL MODE: every desktop token is accepted (AUTH_OPTION=Skip), tokens are signed with \
         a throw-away secret, bus = {bus_kind}. Never use this in production."
    );
    let base = format!("http://localhost:{port}");
    println!("Agent Assist backend, local mode ({bus_kind} bus)");
    println!("  demo page        {base}/");
    println!("  register         POST {base}/register");
    println!("  Socket.IO        {base}/socket.io/");
    for event_type in agent_assist_core::EventType::ALL {
        println!("  push endpoint    POST {base}{}", event_type.route());
    }
    println!("  status           {base}/status");
}
