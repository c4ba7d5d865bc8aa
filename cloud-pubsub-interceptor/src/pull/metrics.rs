//! Pull mode's Prometheus metrics: what became of each pulled message, how long it waited for
//! its acknowledgement, how large the batches stored together were, how many are being stored,
//! and stream failures.
//!
//! Push and pull are counted apart (`interceptor_pushes_total` is the push endpoints') because
//! their outcomes differ: a pull has no HTTP answer, and "nacked" is the pull form of a 503.

use agent_assist_core::EventType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::stream::MAX_BATCH_MESSAGES;

/// What became of one pulled message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullOutcome {
    /// Stored and published; acknowledged.
    Accepted,
    /// A redelivery of a stored message; acknowledged, not published again.
    Duplicate,
    /// Can never be published; nacked after a delay, left to the dead-letter policy.
    Malformed,
    /// The bus failed; nacked for Pub/Sub to redeliver.
    Nacked,
}

impl PullOutcome {
    pub const ALL: [PullOutcome; 4] = [
        PullOutcome::Accepted,
        PullOutcome::Duplicate,
        PullOutcome::Malformed,
        PullOutcome::Nacked,
    ];

    /// The `outcome` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            PullOutcome::Accepted => "accepted",
            PullOutcome::Duplicate => "duplicate",
            PullOutcome::Malformed => "malformed",
            PullOutcome::Nacked => "nacked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MessageLabels {
    r#type: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StreamLabels {
    r#type: &'static str,
}

pub struct PullMetrics {
    messages: Family<MessageLabels, Counter>,
    ack_seconds: Histogram,
    batch_messages: Histogram,
    in_flight: Gauge,
    stream_failures: Family<StreamLabels, Counter>,
}

impl PullMetrics {
    /// Registers pull mode's metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "interceptor_pulled_messages",
            "Pub/Sub messages pulled, by event type and outcome",
            messages.clone(),
        );
        // 100 µs to ~3.3 s.
        let ack_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "interceptor_pull_ack_latency_seconds",
            "Time from receiving a pulled message to acknowledging it (the library sends \
             acknowledgements in batches within 100 ms)",
            ack_seconds.clone(),
        );
        // 1, 2, 4... up to the largest batch: one script call of at most MAX_BATCH_MESSAGES.
        let batch_buckets = MAX_BATCH_MESSAGES.ilog2() as u16 + 1;
        let batch_messages = Histogram::new(exponential_buckets(1.0, 2.0, batch_buckets));
        registry.register(
            "interceptor_pull_batch_messages",
            "Messages stored together in one bus call",
            batch_messages.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "interceptor_pull_messages_in_flight",
            "Messages taken off the streams and not yet acknowledged or nacked (stuck here: \
             Redis is slow)",
            in_flight.clone(),
        );
        let stream_failures = Family::<StreamLabels, Counter>::default();
        registry.register(
            "interceptor_pull_stream_failures",
            "Pull streams ended by a permanent error (then reopened after a backoff)",
            stream_failures.clone(),
        );
        Self {
            messages,
            ack_seconds,
            batch_messages,
            in_flight,
            stream_failures,
        }
    }

    pub fn message(&self, event_type: EventType, outcome: PullOutcome) {
        self.messages
            .get_or_create(&MessageLabels {
                r#type: event_type.as_str(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub fn acked_after(&self, seconds: f64) {
        self.ack_seconds.observe(seconds);
    }

    pub fn batch(&self, messages: usize) {
        self.batch_messages.observe(messages as f64);
    }

    /// `count` messages were taken off a stream.
    pub fn taken(&self, count: usize) {
        self.in_flight.inc_by(count as i64);
    }

    /// `count` messages were acknowledged or nacked (or handed to the malformed hold).
    pub fn settled(&self, count: usize) {
        self.in_flight.dec_by(count as i64);
    }

    /// Messages taken and not yet settled.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    pub fn stream_failed(&self, event_type: EventType) {
        self.stream_failures
            .get_or_create(&StreamLabels {
                r#type: event_type.as_str(),
            })
            .inc();
    }

    /// The count for one type and outcome (tests).
    pub fn messages(&self, event_type: EventType, outcome: PullOutcome) -> u64 {
        self.messages
            .get_or_create(&MessageLabels {
                r#type: event_type.as_str(),
                outcome: outcome.as_str(),
            })
            .get()
    }
}
