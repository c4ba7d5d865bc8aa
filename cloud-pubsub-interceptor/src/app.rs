//! The interceptor's router: one push handler serving the four endpoints, plus `/status`,
//! `/ready` and `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use agent_assist_core::bus::{BusError, PublishOutcome};
use agent_assist_core::{ConversationBus, EventType};
use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::InterceptorConfig;
use crate::metrics::{InterceptorMetrics, Outcome};
use crate::push::{self, MalformedPush};

pub struct InterceptorState {
    pub bus: ConversationBus,
    pub metrics: InterceptorMetrics,
}

impl InterceptorState {
    pub fn new(bus: ConversationBus) -> Self {
        Self {
            bus,
            metrics: InterceptorMetrics::default(),
        }
    }
}

/// Why a push was not accepted, as Pub/Sub sees it: 400 is final (Pub/Sub retries it anyway,
/// then dead-letters it), 503 asks for redelivery.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Malformed(#[from] MalformedPush),
    #[error("conversation bus unavailable: {0}")]
    Unavailable(#[from] BusError),
}

impl IntoResponse for PushError {
    fn into_response(self) -> Response {
        match self {
            PushError::Malformed(reason) => {
                (StatusCode::BAD_REQUEST, format!("Bad Request: {reason}")).into_response()
            }
            PushError::Unavailable(e) => {
                tracing::warn!(error = %e, "push refused: bus unavailable, Pub/Sub will redeliver");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable: conversation bus unreachable, retry later",
                )
                    .into_response()
            }
        }
    }
}

/// The four push endpoints, for this service and for the connector's local mode.
pub fn push_routes(state: Arc<InterceptorState>, max_body_bytes: usize) -> Router {
    let mut router = Router::new();
    for event_type in EventType::ALL {
        router = router.route(
            &event_type.route(),
            post(
                move |State(state): State<Arc<InterceptorState>>, body: Bytes| {
                    receive_push(state, event_type, body)
                },
            ),
        );
    }
    router
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// The interceptor service's whole HTTP surface.
pub fn router(state: Arc<InterceptorState>, max_body_bytes: usize) -> Router {
    let project = agent_assist_core::config::optional("GCP_PROJECT_ID");
    Router::new()
        .route("/status", get(|| async { "OK" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state.clone())
        .merge(push_routes(state, max_body_bytes))
        .layer(agent_assist_core::telemetry::http_trace_layer(project))
}

async fn receive_push(
    state: Arc<InterceptorState>,
    event_type: EventType,
    body: Bytes,
) -> Result<StatusCode, PushError> {
    let received_at = chrono::Utc::now();
    let event = push::parse(&body, event_type, received_at).inspect_err(|e| {
        state.metrics.push(event_type, Outcome::Malformed);
        tracing::warn!(%event_type, reason = %e, "malformed push");
    })?;
    let started = Instant::now();
    let outcome = state.bus.publish(&event).await.inspect_err(|_| {
        state.metrics.push(event_type, Outcome::Unavailable);
    })?;
    state
        .metrics
        .publish_latency(started.elapsed().as_secs_f64());
    match outcome {
        PublishOutcome::Published { offset } => {
            state.metrics.push(event_type, Outcome::Accepted);
            tracing::debug!(%event_type, conversation = %event.conversation, offset, "event published");
        }
        PublishOutcome::Duplicate => {
            state.metrics.push(event_type, Outcome::Duplicate);
            tracing::info!(%event_type, message_id = event.message_id.as_deref().unwrap_or(""), "redelivery acknowledged, not published again");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn ready(State(state): State<Arc<InterceptorState>>) -> Response {
    agent_assist_core::health::readiness(&state.bus).await
}

async fn metrics(State(state): State<Arc<InterceptorState>>) -> Response {
    agent_assist_core::telemetry::metrics_response(&state.metrics.registry)
}

/// Serves until `shutdown` is cancelled, then drains in-flight pushes.
pub async fn serve(
    config: InterceptorConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let bus = ConversationBus::connect(config.bus.clone()).context("conversation bus")?;
    tracing::info!(
        bus = bus.kind(),
        redis = config.bus.redacted_redis_url().unwrap_or_default(),
        "bus configured"
    );
    let app = router(
        Arc::new(InterceptorState::new(bus)),
        config.max_push_body_bytes,
    );
    tracing::info!(address = %listener.local_addr()?, "cloud-pubsub-interceptor listening");
    let server =
        axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    agent_assist_core::shutdown::drain(shutdown, async { server.await }).await?;
    Ok(())
}
