//! `ui-connector`: streams Agent Assist events to agent desktops over Socket.IO, issues their
//! tokens, and proxies their Dialogflow calls. `ui-connector --local` runs everything (the
//! push endpoints too) in one process on the in-memory bus, for laptops.

use agent_assist_core::config::Settings;
use anyhow::Context;
use ui_connector::app::Connector;
use ui_connector::config::ConnectorConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env();
    agent_assist_core::telemetry::init(&settings);
    let local = std::env::args().skip(1).any(|a| a == "--local");
    let config = if local {
        ConnectorConfig::local(&settings).context("local mode")?
    } else {
        ConnectorConfig::from_settings(&settings).context("configuration")?
    };
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port))
        .await
        .with_context(|| format!("cannot listen on port {}", config.port))?;
    let shutdown = agent_assist_core::shutdown::on_signal();
    let connector = Connector::build(config, &shutdown)?;
    if local {
        ui_connector::local_mode::announce(listener.local_addr()?.port(), connector.bus().kind());
    }
    connector.run(listener, shutdown).await
}
