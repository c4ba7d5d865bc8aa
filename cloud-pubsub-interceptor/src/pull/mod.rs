//! Pull mode: the interceptor reads its subscriptions through streaming pull, with no inbound
//! endpoint, beside (or instead of) the push endpoints.
//!
//! It uses Google's `google-cloud-pubsub` subscriber, which keeps a streaming pull open per
//! subscription, extends the leases of the messages it handed out, reconnects after transient
//! errors and sends acknowledgements in batches. Each pulled message becomes the same
//! [`agent_assist_intake::PubsubMessage`] a push does, so events, offsets, redelivery detection
//! and history are the push path's.
//!
//! - [`settings`]: `PUBSUB_PULL_SUBSCRIPTIONS`, `PUBSUB_EMULATOR_HOST`, flow control.
//! - [`message`]: a pulled message as the intake reads it (fields identical to push).
//! - [`stream`]: the worker of one subscription: batches, pacing, reopening, shutdown.
//! - [`batch`]: storing a batch with one bus call, then the ack/nack decisions.
//! - [`malformed`]: malformed messages, nacked after a delay.
//! - [`health`]: each stream's state, for `/ready`.
//! - [`metrics`]: pulled messages by type and outcome, ack latency, batch sizes.

pub mod batch;
pub mod health;
pub mod malformed;
pub mod message;
pub mod metrics;
pub mod settings;
pub mod stream;

use std::sync::Arc;

use agent_assist_core::ConversationBus;
use anyhow::Context;
use google_cloud_pubsub::client::Subscriber;
use prometheus_client::registry::Registry;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use health::{PullHealth, StreamReport};
pub use metrics::{PullMetrics, PullOutcome};
pub use settings::{PubsubEndpoint, PullConfig, PulledSubscription};

use stream::StreamWorker;

/// Pull mode, configured and registered, not yet connected.
pub struct PullMode {
    config: Arc<PullConfig>,
    metrics: Arc<PullMetrics>,
    health: PullHealth,
    workers: Vec<(PulledSubscription, Arc<health::StreamHealth>)>,
}

impl PullMode {
    /// Registers the metrics and a health entry per subscription.
    pub fn new(config: PullConfig, registry: &mut Registry) -> Self {
        let metrics = Arc::new(PullMetrics::register(registry));
        let mut health = PullHealth::default();
        let workers = config
            .subscriptions
            .iter()
            .map(|pulled| {
                (
                    pulled.clone(),
                    health.add(pulled.event_type, &pulled.subscription),
                )
            })
            .collect();
        Self {
            config: Arc::new(config),
            metrics,
            health,
            workers,
        }
    }

    pub fn health(&self) -> PullHealth {
        self.health.clone()
    }

    pub fn metrics(&self) -> Arc<PullMetrics> {
        self.metrics.clone()
    }

    /// Creates the Pub/Sub client and starts one worker per subscription; they stop when
    /// `shutdown` fires (await [`PullStreams::finished`]).
    pub async fn start(
        self,
        bus: ConversationBus,
        shutdown: CancellationToken,
    ) -> anyhow::Result<PullStreams> {
        let client = subscriber_client(&self.config.endpoint).await?;
        let mut workers = JoinSet::new();
        for (pulled, health) in self.workers {
            tracing::info!(
                event_type = %pulled.event_type,
                subscription = %pulled.subscription,
                max_outstanding_messages = self.config.max_outstanding_messages,
                max_outstanding_bytes = self.config.max_outstanding_bytes,
                "pulling"
            );
            let worker = StreamWorker {
                pulled,
                client: client.clone(),
                config: self.config.clone(),
                bus: bus.clone(),
                metrics: self.metrics.clone(),
                health,
            };
            workers.spawn(worker.run(shutdown.clone()));
        }
        Ok(PullStreams { workers })
    }
}

/// Google's service with Application Default Credentials, or the emulator as Google's clients
/// reach it: `http://<PUBSUB_EMULATOR_HOST>` (plain-text HTTP/2) and no credentials. The
/// library does not read `PUBSUB_EMULATOR_HOST` itself (1.7).
async fn subscriber_client(endpoint: &PubsubEndpoint) -> anyhow::Result<Subscriber> {
    let builder = Subscriber::builder();
    let builder = match endpoint {
        PubsubEndpoint::Google => builder,
        PubsubEndpoint::Emulator { host } => builder
            .with_endpoint(format!("http://{host}"))
            .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build()),
    };
    builder.build().await.with_context(|| match endpoint {
        PubsubEndpoint::Google => {
            "Pub/Sub subscriber client (Application Default Credentials)".to_owned()
        }
        PubsubEndpoint::Emulator { host } => {
            format!("Pub/Sub subscriber client for the emulator at {host}")
        }
    })
}

/// The running workers. Dropping this aborts them (the drain deadline passed).
pub struct PullStreams {
    workers: JoinSet<()>,
}

impl PullStreams {
    /// Returns once every worker has stopped after shutdown.
    pub async fn finished(mut self) {
        while self.workers.join_next().await.is_some() {}
    }
}
