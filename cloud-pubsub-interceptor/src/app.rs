//! The interceptor service: built from its configuration, then run on a listener until a
//! shutdown token fires.
//!
//! Its HTTP surface is the intake's four push endpoints and its Dialogflow CX webhook (see
//! [`agent_assist_intake`]) plus `/status`, `/ready` and `/metrics`. With `PUSH_AUTH_*` set, the
//! push endpoints (only them) require Pub/Sub's signed push token
//! ([`agent_assist_intake::push_auth`]). With pull subscriptions configured ([`crate::pull`]) it
//! also reads them through streaming pull; the HTTP surface stays (Cloud Run needs a port, and
//! operators `/ready` and `/metrics`).

use std::sync::Arc;

use agent_assist_core::google_id_token::{Expectation, GoogleKeys, IdTokenVerifier};
use agent_assist_core::ConversationBus;
use agent_assist_intake::{
    cx_webhook_routes, push_routes, CxWebhook, Intake, IntakeMetrics, PushAuth,
};
use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{GoogleKeysConfig, InterceptorConfig, PushAuthConfig};
use crate::pull::{PullHealth, PullMetrics, PullMode};

/// A built interceptor, ready to serve.
pub struct Interceptor {
    config: InterceptorConfig,
    intake: Intake,
    cx_webhook: CxWebhook,
    push_auth: Option<PushAuth>,
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
        // One cache of Google's signing keys per process, for everything that verifies Google
        // ID tokens; nothing is fetched until a token needs a key.
        let google_keys = google_keys(&config.google_keys)?;
        let push_auth = config
            .push_auth
            .as_ref()
            .map(|push_auth| build_push_auth(push_auth, &google_keys, &mut registry))
            .transpose()?;
        if push_auth.is_none() {
            warn_pushes_are_trusted();
        }
        let cx_webhook = CxWebhook::build(&config.cx_webhook, &bus, &google_keys, &mut registry)
            .context("Dialogflow CX webhook")?;
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
            .merge(push_routes(
                intake.clone(),
                config.max_push_body_bytes,
                push_auth.clone(),
            ))
            .merge(cx_webhook_routes(cx_webhook.clone()))
            .layer(agent_assist_core::telemetry::http_trace_layer(
                config.project_id.clone(),
            ));
        Ok(Self {
            config,
            intake,
            cx_webhook,
            push_auth,
            pull,
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

    /// The push authentication, when on (tests read its counters and key cache).
    pub fn push_auth(&self) -> Option<&PushAuth> {
        self.push_auth.as_ref()
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

fn google_keys(config: &GoogleKeysConfig) -> anyhow::Result<GoogleKeys> {
    let http = reqwest::Client::builder()
        .build()
        .context("HTTP client for Google's signing keys")?;
    Ok(GoogleKeys::with_options(
        &config.jwks_url,
        http,
        config.cache.clone(),
    ))
}

/// The check in front of the push endpoints.
fn build_push_auth(
    push_auth: &PushAuthConfig,
    google_keys: &GoogleKeys,
    registry: &mut Registry,
) -> anyhow::Result<PushAuth> {
    let verifier = IdTokenVerifier::new(
        google_keys.clone(),
        Expectation::new(&push_auth.audience, &push_auth.service_account),
    )
    .context("push authentication")?;
    tracing::info!(
        account = %push_auth.service_account,
        audience = %push_auth.audience,
        keys = %google_keys.jwks_url(),
        "push authentication on: every push must carry a Google ID token of the push account \
         for this audience"
    );
    Ok(PushAuth::new(verifier, registry))
}

/// Said once at start when push authentication is off.
fn warn_pushes_are_trusted() {
    tracing::warn!(
        "PUSH AUTHENTICATION IS OFF: PUSH_AUTH_SERVICE_ACCOUNT and PUSH_AUTH_AUDIENCE are unset, \
         so every request that reaches the push endpoints is trusted to have passed the ingress \
         (Cloud Run IAM); anyone who can reach this service can post events to agents' desktops"
    );
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
