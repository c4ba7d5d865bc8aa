//! `cloud-pubsub-interceptor`: receives Agent Assist events from Pub/Sub push subscriptions and
//! publishes each to its conversation on the bus.

use agent_assist_core::config::Settings;
use anyhow::Context;
use cloud_pubsub_interceptor::app::Interceptor;
use cloud_pubsub_interceptor::config::InterceptorConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env();
    agent_assist_core::telemetry::init(&settings);
    let config = InterceptorConfig::from_settings(&settings).context("configuration")?;
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port))
        .await
        .with_context(|| format!("cannot listen on port {}", config.port))?;
    let shutdown = agent_assist_core::shutdown::on_signal();
    let interceptor = Interceptor::build(config, &shutdown)?;
    interceptor.run(listener, shutdown).await
}
