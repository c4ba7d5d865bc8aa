//! `ui-connector`: streams Agent Assist events to agent desktops over Socket.IO, issues their
//! tokens, and proxies their Dialogflow calls. `ui-connector --local` runs everything (the
//! interceptor's push endpoints too) in one process on the in-memory bus, for laptops.

use std::sync::Arc;

use anyhow::Context;
use ui_connector::app::{self, AppState};
use ui_connector::config::ConnectorConfig;
use ui_connector::local_mode;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    agent_assist_core::telemetry::init();
    let local = std::env::args().skip(1).any(|a| a == "--local");
    let state = if local {
        let (config, jwt) = local_mode::prepare().context("local mode")?;
        AppState::with_jwt(config, jwt)?
    } else {
        AppState::new(ConnectorConfig::from_env().context("configuration")?)?
    };
    let port = state.config.port;
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("cannot listen on port {port}"))?;
    if local {
        local_mode::announce(listener.local_addr()?.port(), state.bus.kind());
    }
    let shutdown = agent_assist_core::shutdown::on_signal();
    app::serve(Arc::new(state), listener, shutdown).await
}
