//! The intake's Prometheus metrics: pushes by type and outcome, and how long the bus takes.

use agent_assist_core::EventType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Accepted,
    Duplicate,
    Malformed,
    Unavailable,
}

impl Outcome {
    /// The `outcome` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Malformed => "malformed",
            Outcome::Unavailable => "unavailable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PushLabels {
    r#type: &'static str,
    outcome: &'static str,
}

pub struct IntakeMetrics {
    pushes: Family<PushLabels, Counter>,
    publish_seconds: Histogram,
}

impl IntakeMetrics {
    /// Registers the intake's metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let pushes = Family::<PushLabels, Counter>::default();
        registry.register(
            "interceptor_pushes",
            "Pub/Sub pushes received, by event type and outcome",
            pushes.clone(),
        );
        // 100 µs to ~1.6 s.
        let publish_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 15));
        registry.register(
            "interceptor_bus_publish_seconds",
            "Time to store and publish one event on the conversation bus",
            publish_seconds.clone(),
        );
        Self {
            pushes,
            publish_seconds,
        }
    }

    pub fn push(&self, event_type: EventType, outcome: Outcome) {
        self.pushes
            .get_or_create(&PushLabels {
                r#type: event_type.as_str(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub fn publish_latency(&self, seconds: f64) {
        self.publish_seconds.observe(seconds);
    }

    /// The count for one type and outcome (tests).
    pub fn pushes(&self, event_type: EventType, outcome: Outcome) -> u64 {
        self.pushes
            .get_or_create(&PushLabels {
                r#type: event_type.as_str(),
                outcome: outcome.as_str(),
            })
            .get()
    }
}
