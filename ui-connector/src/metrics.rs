//! The connector's Prometheus metrics, served at `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

pub struct ConnectorMetrics {
    registry: Registry,
    sockets_connected: Gauge,
    events_delivered: Counter,
    slow_sockets: Counter,
    conversations_subscribed: Gauge,
    registrations: Family<OutcomeLabel, Counter>,
    proxy_requests: Family<StatusLabel, Counter>,
    proxy_seconds: Histogram,
}

impl Default for ConnectorMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let sockets_connected = Gauge::default();
        registry.register(
            "connector_sockets_connected",
            "Socket.IO connections currently open",
            sockets_connected.clone(),
        );
        let events_delivered = Counter::default();
        registry.register(
            "connector_events_delivered",
            "Events emitted to sockets",
            events_delivered.clone(),
        );
        let slow_sockets = Counter::default();
        registry.register(
            "connector_slow_sockets",
            "Sockets disconnected because they stopped reading (their buffer stayed full)",
            slow_sockets.clone(),
        );
        let conversations_subscribed = Gauge::default();
        registry.register(
            "connector_conversations_subscribed",
            "Conversations this instance is subscribed to on the bus",
            conversations_subscribed.clone(),
        );
        let registrations = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "connector_registrations",
            "Token registrations by outcome",
            registrations.clone(),
        );
        let proxy_requests = Family::<StatusLabel, Counter>::default();
        registry.register(
            "connector_proxy_requests",
            "Dialogflow proxy requests by response status",
            proxy_requests.clone(),
        );
        // 1 ms to ~33 s.
        let proxy_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "connector_proxy_request_seconds",
            "Dialogflow proxy latency until response headers",
            proxy_seconds.clone(),
        );
        Self {
            registry,
            sockets_connected,
            events_delivered,
            slow_sockets,
            conversations_subscribed,
            registrations,
            proxy_requests,
            proxy_seconds,
        }
    }
}

impl ConnectorMetrics {
    pub fn socket_connected(&self) {
        self.sockets_connected.inc();
    }

    pub fn socket_disconnected(&self) {
        self.sockets_connected.dec();
    }

    pub fn sockets_connected(&self) -> i64 {
        self.sockets_connected.get()
    }

    pub fn event_delivered(&self) {
        self.events_delivered.inc();
    }

    pub fn events_delivered(&self) -> u64 {
        self.events_delivered.get()
    }

    pub fn slow_socket(&self) {
        self.slow_sockets.inc();
    }

    pub fn slow_sockets(&self) -> u64 {
        self.slow_sockets.get()
    }

    /// `outcome`: `accepted`, `refused`, `provider_unavailable`, `bad_request`.
    pub fn registration(&self, outcome: &'static str) {
        self.registrations
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub fn proxy_request(&self, status: u16, seconds: f64) {
        self.proxy_requests
            .get_or_create(&StatusLabel { status })
            .inc();
        self.proxy_seconds.observe(seconds);
    }

    /// The exposition, with point-in-time gauges refreshed first.
    pub fn render(&self, conversations_subscribed: usize) -> axum::response::Response {
        self.conversations_subscribed
            .set(conversations_subscribed as i64);
        agent_assist_core::telemetry::metrics_response(&self.registry)
    }
}
