//! Each pull stream's health, for `/ready`.
//!
//! What can be seen of a stream is limited by the library: it reopens a stream broken by a
//! transient error (UNAVAILABLE, a dropped connection...) by itself and says nothing, and hands
//! back only permanent errors (NOT_FOUND, PERMISSION_DENIED...), after which the stream is over.
//! So a stream is reported as `waiting` (open, nothing received yet), `receiving` (messages
//! arrived; how long ago is reported), `failed` (a permanent error; the worker reopens it after
//! a backoff) or `stopped` (shut down). A reopened stream counts as recovered once a message
//! arrives on it or it has stayed open [`RECOVERY_GRACE`] without error: permanent errors come
//! as soon as a stream opens, and an idle subscription must not keep `/ready` at 503 forever.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_assist_core::EventType;
use serde::Serialize;

/// How long a reopened stream must stay open without error to count as recovered.
pub const RECOVERY_GRACE: Duration = Duration::from_secs(10);

/// The health of every pull stream of the process.
#[derive(Clone, Default)]
pub struct PullHealth {
    streams: Vec<Arc<StreamHealth>>,
}

impl PullHealth {
    /// Adds a stream and returns the handle its worker reports through.
    pub fn add(&mut self, event_type: EventType, subscription: &str) -> Arc<StreamHealth> {
        let stream = Arc::new(StreamHealth {
            event_type,
            subscription: subscription.to_owned(),
            state: Mutex::default(),
        });
        self.streams.push(stream.clone());
        stream
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Every stream's report, in configuration order.
    pub fn reports(&self) -> Vec<StreamReport> {
        let now = Instant::now();
        self.streams.iter().map(|s| s.report(now)).collect()
    }
}

/// One stream's health, updated by its worker.
pub struct StreamHealth {
    event_type: EventType,
    subscription: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    opened_at: Option<Instant>,
    last_message_at: Option<Instant>,
    messages: u64,
    last_failure: Option<(Instant, String)>,
    failures: u64,
    stopped: bool,
}

/// What `/ready` says about one stream.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamReport {
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub subscription: String,
    /// `waiting`, `receiving`, `failed` or `stopped`.
    pub state: &'static str,
    pub healthy: bool,
    pub messages: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message_seconds_ago: Option<f64>,
    /// Permanent errors so far.
    pub failures: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl StreamHealth {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the counters are still meaningful.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new stream was built (it connects on its first read).
    pub fn opened(&self) {
        self.state().opened_at = Some(Instant::now());
    }

    /// `count` messages arrived.
    pub fn received(&self, count: usize) {
        let mut state = self.state();
        state.last_message_at = Some(Instant::now());
        state.messages += count as u64;
    }

    /// The stream ended with a permanent error.
    pub fn failed(&self, error: String) {
        let mut state = self.state();
        state.last_failure = Some((Instant::now(), error));
        state.failures += 1;
    }

    pub fn stopped(&self) {
        self.state().stopped = true;
    }

    fn report(&self, now: Instant) -> StreamReport {
        let state = self.state();
        let failing = state.last_failure.as_ref().is_some_and(|(failed_at, _)| {
            let message_since = state.last_message_at.is_some_and(|m| m > *failed_at);
            let open_long_enough = state
                .opened_at
                .is_some_and(|o| o > *failed_at && now.duration_since(o) >= RECOVERY_GRACE);
            !message_since && !open_long_enough
        });
        let (name, healthy) = if state.stopped {
            ("stopped", false)
        } else if failing {
            ("failed", false)
        } else if state.last_message_at.is_some() {
            ("receiving", true)
        } else {
            ("waiting", true)
        };
        StreamReport {
            event_type: self.event_type,
            subscription: self.subscription.clone(),
            state: name,
            healthy,
            messages: state.messages,
            last_message_seconds_ago: state
                .last_message_at
                .map(|at| (now.duration_since(at).as_secs_f64() * 1000.0).round() / 1000.0),
            failures: state.failures,
            last_error: state.last_failure.as_ref().map(|(_, e)| e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_failed_until_it_recovers() {
        let mut health = PullHealth::default();
        let stream = health.add(EventType::NewMessageEvent, "projects/p/subscriptions/s");
        stream.opened();
        let report = &health.reports()[0];
        assert_eq!((report.state, report.healthy), ("waiting", true));

        stream.failed("NOT_FOUND: no such subscription".into());
        let report = &health.reports()[0];
        assert_eq!((report.state, report.healthy), ("failed", false));
        assert_eq!(
            report.last_error.as_deref(),
            Some("NOT_FOUND: no such subscription")
        );
        // Reopened a moment ago: not yet trusted.
        stream.opened();
        assert_eq!(health.reports()[0].state, "failed");
        // A message on the reopened stream proves it.
        stream.received(2);
        let report = &health.reports()[0];
        assert_eq!((report.state, report.healthy), ("receiving", true));
        assert_eq!((report.messages, report.failures), (2, 1));

        // Open long enough without an error also counts.
        let reopened = health.add(EventType::NewMessageEvent, "projects/p/subscriptions/t");
        reopened.failed("PERMISSION_DENIED".into());
        let now = Instant::now();
        reopened.state().opened_at = Some(now - RECOVERY_GRACE);
        assert_eq!(
            health.reports()[1].state,
            "failed",
            "opened before the failure"
        );
        reopened.state().last_failure =
            Some((now - RECOVERY_GRACE * 2, "PERMISSION_DENIED".into()));
        assert_eq!(
            health.reports()[1].state,
            "waiting",
            "reopened 10 s without error"
        );

        stream.stopped();
        assert_eq!(
            (health.reports()[0].state, health.reports()[0].healthy),
            ("stopped", false)
        );
    }
}
