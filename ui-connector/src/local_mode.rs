//! Local mode: the whole backend in one process, for a laptop with no cloud account.
//!
//! `ui-connector --local` serves, on `PORT` (default 8080): the connector (registration,
//! Socket.IO, integration keys, the Dialogflow proxy), the four push endpoints on the same bus
//! (the intake the interceptor serves), and the demo page at `/`. Its settings are
//! [`ConnectorConfig::local`](crate::config::ConnectorConfig::local)'s: the in-memory bus unless
//! `REDIS_URL` (or `REDISHOST`) is given, a secret generated at start (never written anywhere),
//! every desktop token accepted (`Skip`), and a refusal to start on Cloud Run.

use std::sync::Arc;

use agent_assist_core::ConversationBus;
use agent_assist_intake::{push_routes, Intake, IntakeMetrics};
use axum::Router;
use prometheus_client::registry::Registry;

/// Largest push body local mode accepts (the interceptor's default).
const MAX_PUSH_BODY_BYTES: usize = 16 * 1024 * 1024;

/// What local mode adds to the connector's router: the push endpoints and the demo page.
pub fn routes(bus: &ConversationBus) -> Router {
    // Local mode's push counters are not served: /metrics is the connector's.
    let metrics = IntakeMetrics::register(&mut Registry::default());
    let intake = Intake::new(bus.clone(), Arc::new(metrics));
    // No push authentication: local pushes come from the demo page, curl and the sample tool.
    push_routes(intake, MAX_PUSH_BODY_BYTES, None).merge(crate::demo_page::routes())
}

/// Says loudly what is running and where.
pub fn announce(port: u16, bus_kind: &str) {
    tracing::warn!(
        "LOCAL MODE: every desktop token is accepted (AUTH_OPTION=Skip), tokens are signed with \
         a throw-away secret, bus = {bus_kind}. Never use this in production."
    );
    let base = format!("http://localhost:{port}");
    println!("Agent Assist backend, local mode ({bus_kind} bus)");
    println!("  demo page        {base}/");
    println!("  register         POST {base}/register");
    println!("  Socket.IO        {base}/socket.io/");
    for event_type in agent_assist_core::EventType::ALL {
        println!("  push endpoint    POST {base}{}", event_type.route());
    }
    println!("  status           {base}/status");
}
