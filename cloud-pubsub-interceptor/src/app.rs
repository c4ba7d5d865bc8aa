//! The interceptor service: built from its configuration, then run on a listener until a
//! shutdown token fires.
//!
//! Its HTTP surface is the intake's four push endpoints and its Dialogflow CX webhook (see
//! [`agent_assist_intake`]) plus `/status`, `/ready` and `/metrics`.

use std::sync::Arc;

use agent_assist_core::ConversationBus;
use agent_assist_intake::{cx_webhook_routes, push_routes, CxWebhook, Intake, IntakeMetrics};
use anyhow::Context;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::InterceptorConfig;

/// A built interceptor, ready to serve.
pub struct Interceptor {
    config: InterceptorConfig,
    intake: Intake,
    cx_webhook: CxWebhook,
    router: Router,
}

/// What `/ready` and `/metrics` read.
#[derive(Clone)]
struct Operations {
    bus: ConversationBus,
    registry: Arc<Registry>,
}

impl Interceptor {
    /// Connects the bus (lazily: Redis may be down at start) and builds the router. Background
    /// work (the bus listener) stops when `shutdown` fires.
    pub fn build(config: InterceptorConfig, shutdown: &CancellationToken) -> anyhow::Result<Self> {
        let bus = ConversationBus::connect(config.bus.clone(), shutdown.clone())
            .context("conversation bus")?;
        let mut registry = Registry::default();
        let intake = Intake::new(
            bus.clone(),
            Arc::new(IntakeMetrics::register(&mut registry)),
        );
        let cx_webhook = CxWebhook::build(&config.cx_webhook, &bus, &mut registry)
            .context("Dialogflow CX webhook")?;
        let operations = Operations {
            bus,
            registry: Arc::new(registry),
        };
        let router = Router::new()
            .route("/status", get(|| async { "OK" }))
            .route("/ready", get(ready))
            .route("/metrics", get(metrics))
            .with_state(operations)
            .merge(push_routes(intake.clone(), config.max_push_body_bytes))
            .merge(cx_webhook_routes(cx_webhook.clone()))
            .layer(agent_assist_core::telemetry::http_trace_layer(
                config.project_id.clone(),
            ));
        Ok(Self {
            config,
            intake,
            cx_webhook,
            router,
        })
    }

    /// The intake (tests read its metrics).
    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    /// The CX webhook (tests read its metrics).
    pub fn cx_webhook(&self) -> &CxWebhook {
        &self.cx_webhook
    }

    /// The whole HTTP surface.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight pushes.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        tracing::info!(
            redis = self.config.bus.redacted_redis_url().unwrap_or_default(),
            address = %listener.local_addr()?,
            "cloud-pubsub-interceptor listening"
        );
        let server = axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        agent_assist_core::shutdown::drain(shutdown, async { server.await }).await?;
        Ok(())
    }
}

async fn ready(State(operations): State<Operations>) -> Response {
    agent_assist_core::health::readiness(&operations.bus).await
}

async fn metrics(State(operations): State<Operations>) -> Response {
    agent_assist_core::telemetry::metrics_response(&operations.registry)
}
