//! The webhook's Prometheus metrics: calls by kind and outcome, and how long answers take.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Which webhook was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookKind {
    Standard,
    Flexible,
}

impl WebhookKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookKind::Standard => "standard",
            WebhookKind::Flexible => "flexible",
        }
    }
}

/// What became of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The context was published now.
    Published,
    /// The bus already had this call's context (a retry racing the first call, or the key was
    /// mapped meanwhile and the connector published it).
    Duplicate,
    /// A retry answered from the remembered answer.
    Replayed,
    /// Kept until the integration key is mapped.
    Pending,
    /// No conversation and no key: nothing published.
    Unrouted,
    Malformed,
    Unauthenticated,
    Forbidden,
    NotFound,
    Unavailable,
    Internal,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Published => "published",
            Outcome::Duplicate => "duplicate",
            Outcome::Replayed => "replayed",
            Outcome::Pending => "pending",
            Outcome::Unrouted => "unrouted",
            Outcome::Malformed => "malformed",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Forbidden => "forbidden",
            Outcome::NotFound => "not_found",
            Outcome::Unavailable => "unavailable",
            Outcome::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    webhook: &'static str,
    outcome: &'static str,
}

pub struct CxWebhookMetrics {
    calls: Family<CallLabels, Counter>,
    seconds: Histogram,
}

impl CxWebhookMetrics {
    /// Registers the webhook's metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "interceptor_cx_webhook_calls",
            "Dialogflow CX webhook calls, by webhook (standard, flexible) and outcome",
            calls.clone(),
        );
        // 1 ms to ~16 s.
        let seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "interceptor_cx_webhook_seconds",
            "Time to answer one Dialogflow CX webhook call",
            seconds.clone(),
        );
        Self { calls, seconds }
    }

    /// A call answered after `seconds`.
    pub fn call(&self, kind: WebhookKind, outcome: Outcome, seconds: f64) {
        self.count(kind, outcome);
        self.seconds.observe(seconds);
    }

    /// A call counted without timing (refused by the router before any work).
    pub fn count(&self, kind: WebhookKind, outcome: Outcome) {
        self.calls
            .get_or_create(&CallLabels {
                webhook: kind.as_str(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// The count for one kind and outcome (tests).
    pub fn calls(&self, kind: WebhookKind, outcome: Outcome) -> u64 {
        self.calls
            .get_or_create(&CallLabels {
                webhook: kind.as_str(),
                outcome: outcome.as_str(),
            })
            .get()
    }
}
