//! `ui-connector`: streams Agent Assist events to agent desktops over Socket.IO, issues their
//! tokens, and proxies their Dialogflow calls. `ui-connector --local` runs everything (the
//! interceptor's push endpoints too) in one process on the in-memory bus, for laptops.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    agent_assist_core::telemetry::init();
    let local = std::env::args().skip(1).any(|a| a == "--local");
    let config = if local {
        ui_connector::local_mode::config_from_env().context("local mode")?
    } else {
        ui_connector::config::ConnectorConfig::from_env().context("configuration")?
    };
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port))
        .await
        .with_context(|| format!("cannot listen on port {}", config.port))?;
    let shutdown = agent_assist_core::shutdown::on_signal();
    ui_connector::app::serve(config, listener, shutdown).await
}
