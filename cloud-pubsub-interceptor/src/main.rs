//! `cloud-pubsub-interceptor`: receives Agent Assist events from Pub/Sub push subscriptions and
//! publishes each to its conversation on the bus.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    agent_assist_core::telemetry::init();
    let config =
        cloud_pubsub_interceptor::config::InterceptorConfig::from_env().context("configuration")?;
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port))
        .await
        .with_context(|| format!("cannot listen on port {}", config.port))?;
    let shutdown = agent_assist_core::shutdown::on_signal();
    cloud_pubsub_interceptor::app::serve(config, listener, shutdown).await
}
