//! The interceptor service: built from its configuration, then run on a listener until a
//! shutdown token fires.
//!
//! Its HTTP surface is the intake's four push endpoints (see [`agent_assist_intake`]) plus
//! `/status`, `/ready` and `/metrics`. With pull subscriptions configured ([`crate::pull`]) it
//! also reads them through streaming pull; the HTTP surface stays (Cloud Run needs a port, and
//! operators `/ready` and `/metrics`).

use std::sync::Arc;

use agent_assist_core::ConversationBus;
use agent_assist_intake::{push_routes, Intake, IntakeMetrics};
use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::InterceptorConfig;
use crate::pull::{PullHealth, PullMetrics, PullMode};

/// A built interceptor, ready to serve.
pub struct Interceptor {
    config: InterceptorConfig,
    intake: Intake,
    pull: Option<PullMode>,
    router: Router,
}

/// What `/ready` and `/metrics` read.
#[derive(Clone)]
struct Operations {
    bus: ConversationBus,
    pull: PullHealth,
    registry: Arc<Registry>,
}

impl Interceptor {
    /// Connects the bus (lazily: Redis may be down at start) and builds the router. Background
    /// work (the bus listener) stops when `shutdown` fires. Pull streams start in [`run`].
    ///
    /// [`run`]: Interceptor::run
    pub fn build(config: InterceptorConfig, shutdown: &CancellationToken) -> anyhow::Result<Self> {
        let bus = ConversationBus::connect(config.bus.clone(), shutdown.clone())
            .context("conversation bus")?;
        let mut registry = Registry::default();
        let intake = Intake::new(
            bus.clone(),
            Arc::new(IntakeMetrics::register(&mut registry)),
        );
        let pull = config
            .pull
            .clone()
            .map(|pull| PullMode::new(pull, &mut registry));
        let operations = Operations {
            bus,
            pull: pull.as_ref().map(PullMode::health).unwrap_or_default(),
            registry: Arc::new(registry),
        };
        let router = Router::new()
            .route("/status", get(|| async { "OK" }))
            .route("/ready", get(ready))
            .route("/metrics", get(metrics))
            .with_state(operations)
            .merge(push_routes(intake.clone(), config.max_push_body_bytes))
            .layer(agent_assist_core::telemetry::http_trace_layer(
                config.project_id.clone(),
            ));
        Ok(Self {
            config,
            intake,
            pull,
            router,
        })
    }

    /// The intake (tests read its metrics).
    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    /// Pull mode's metrics, when it is on (tests read them).
    pub fn pull_metrics(&self) -> Option<Arc<PullMetrics>> {
        self.pull.as_ref().map(PullMode::metrics)
    }

    /// The whole HTTP surface.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves (and pulls) until `shutdown` is cancelled, then drains in-flight pushes and pulled
    /// batches and flushes acknowledgements, within [`agent_assist_core::shutdown::DRAIN_TIMEOUT`].
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let pulling = match self.pull {
            Some(pull) => Some(
                pull.start(self.intake.bus().clone(), shutdown.clone())
                    .await?,
            ),
            None => None,
        };
        tracing::info!(
            redis = self.config.bus.redacted_redis_url().unwrap_or_default(),
            address = %listener.local_addr()?,
            pull_subscriptions = self.config.pull.as_ref().map_or(0, |p| p.subscriptions.len()),
            "cloud-pubsub-interceptor listening"
        );
        let server = axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        agent_assist_core::shutdown::drain(shutdown, async {
            let (served, ()) = tokio::join!(async { server.await }, async {
                if let Some(pulling) = pulling {
                    pulling.finished().await;
                }
            });
            served
        })
        .await?;
        Ok(())
    }
}

/// 200 when the bus answers and no pull stream has failed; the body says which part is not.
async fn ready(State(operations): State<Operations>) -> Response {
    let bus = operations.bus.ping().await;
    let mut body = serde_json::json!({"bus": operations.bus.kind()});
    if let Err(e) = &bus {
        body["error"] = e.to_string().into();
    }
    let mut streams_healthy = true;
    if !operations.pull.is_empty() {
        let reports = operations.pull.reports();
        streams_healthy = reports.iter().all(|r| r.healthy);
        body["pull"] = serde_json::to_value(reports).unwrap_or_default();
    }
    let ready = bus.is_ok() && streams_healthy;
    body["ready"] = ready.into();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(operations): State<Operations>) -> Response {
    agent_assist_core::telemetry::metrics_response(&operations.registry)
}
