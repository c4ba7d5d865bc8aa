//! A Dialogflow CX webhook that carries the virtual agent's context (why the caller called,
//! the parameters it collected, the last intent and page, the sentiment) to the desktop of the
//! conversation the caller is handed over to, as a `virtual-agent-event`.
//!
//! Served by the interceptor and by the connector's local mode, next to the push endpoints:
//! `POST /dialogflow-cx-webhook` (standard: CX's `WebhookRequest` / `WebhookResponse`) and
//! `/dialogflow-cx-webhook/flexible` (GET, POST, PUT, PATCH with what the designer configured).
//!
//! - [`config`]: the settings.
//! - [`auth`]: only the configured agent may call (static header, basic auth, service agent ID
//!   token; none configured refuses everyone).
//! - [`request`]: what CX sends, read and checked.
//! - [`context`]: the context a desktop gets, and its event.
//! - [`resolution`]: which conversation (named, or through an integration key).
//! - [`pending`]: contexts waiting for their integration key to be mapped.
//! - [`idempotency`]: a retried call publishes nothing more and gets the same answer.
//! - `delivery`: one call, from read to answer.
//! - [`response`]: what CX gets back, never over 64 KiB.
//! - [`error`]: every failure and its status.
//! - [`routes`]: the endpoints, the deadline.
//! - [`metrics`]: calls by outcome, answer latency.

pub mod auth;
pub mod config;
pub mod context;
mod delivery;
pub mod error;
pub mod idempotency;
pub mod metrics;
pub mod pending;
pub mod request;
pub mod resolution;
pub mod response;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use agent_assist_core::google_id_token::GoogleKeys;
use agent_assist_core::integration_key::IntegrationKeys;
use agent_assist_core::ConversationBus;
use prometheus_client::registry::Registry;

pub use auth::{AuthSetupError, WebhookAuth};
pub use config::CxWebhookConfig;
pub use metrics::{CxWebhookMetrics, Outcome, WebhookKind};
pub use pending::{PendingContexts, PendingOutcome};
pub use routes::{cx_webhook_routes, FLEXIBLE_PATH, STANDARD_PATH};

use delivery::Delivery;
use idempotency::AnswerCache;

/// The built webhook; cheap to clone.
#[derive(Clone)]
pub struct CxWebhook {
    inner: Arc<Inner>,
}

struct Inner {
    auth: WebhookAuth,
    delivery: Delivery,
    metrics: CxWebhookMetrics,
    deadline: Duration,
}

impl CxWebhook {
    /// Reads the credentials `config` names (a missing or empty secret file is an error: the
    /// service must not start), and registers the metrics in `registry`. Service agent ID
    /// tokens are checked against `google_keys`, the process's one cache of Google's keys.
    pub fn build(
        config: &CxWebhookConfig,
        bus: &ConversationBus,
        google_keys: &GoogleKeys,
        registry: &mut Registry,
    ) -> Result<Self, AuthSetupError> {
        let auth = WebhookAuth::from_config(config, google_keys)?;
        Ok(Self {
            inner: Arc::new(Inner {
                auth,
                delivery: Delivery {
                    bus: bus.clone(),
                    keys: IntegrationKeys::new(bus),
                    pending: PendingContexts::new(bus, config.integration_key_ttl),
                    answers: AnswerCache::new(bus, config.dedup_window),
                },
                metrics: CxWebhookMetrics::register(registry),
                deadline: config.deadline,
            }),
        })
    }

    pub fn metrics(&self) -> &CxWebhookMetrics {
        &self.inner.metrics
    }
}
