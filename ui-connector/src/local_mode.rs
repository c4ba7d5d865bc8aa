//! Local mode: the whole backend in one process, for a laptop with no cloud account.
//!
//! `ui-connector --local` serves, on `PORT` (default 8080): the connector (registration,
//! Socket.IO, integration keys, the Dialogflow proxy), the four push endpoints and the
//! Dialogflow CX webhook on the same bus (the intake the interceptor serves), and the demo page
//! at `/`. The CX webhook accepts every call without authentication, as local mode accepts every
//! desktop token, and says so at start. Its settings are
//! [`ConnectorConfig::local`](crate::config::ConnectorConfig::local)'s: the in-memory bus unless
//! `REDIS_URL` (or `REDISHOST`) is given, a secret generated at start (never written anywhere),
//! every desktop token accepted (`Skip`), and a refusal to start on Cloud Run.

use std::sync::Arc;

use agent_assist_core::google_id_token::{GoogleKeys, GOOGLE_JWKS_URL};
use agent_assist_core::ConversationBus;
use agent_assist_intake::cx_webhook::{cx_webhook_routes, CxWebhook, CxWebhookConfig};
use agent_assist_intake::{push_routes, Intake, IntakeMetrics};
use axum::Router;
use prometheus_client::registry::Registry;

use crate::config::ConnectorConfig;
use crate::demo_page::PageMode;

/// Largest push body local mode accepts (the interceptor's default).
const MAX_PUSH_BODY_BYTES: usize = 16 * 1024 * 1024;

/// What local mode adds to the connector's router: the push endpoints, the CX webhook (open to
/// every caller) and the test page in its local form (with samples to post).
pub fn routes(bus: &ConversationBus, config: &ConnectorConfig) -> anyhow::Result<Router> {
    // Local mode's intake counters are not served: /metrics is the connector's.
    let mut unserved = Registry::default();
    let metrics = IntakeMetrics::register(&mut unserved);
    let intake = Intake::new(bus.clone(), Arc::new(metrics));
    let webhook_config = CxWebhookConfig::open(config.integration_key_ttl, config.bus.dedup_window);
    // The open webhook checks no token: these keys are never fetched.
    let google_keys = GoogleKeys::new(GOOGLE_JWKS_URL, reqwest::Client::new());
    let webhook = CxWebhook::build(&webhook_config, bus, &google_keys, &mut unserved)?;
    // No push authentication: local pushes come from the demo page, curl and the sample tool.
    Ok(push_routes(intake, MAX_PUSH_BODY_BYTES, None)
        .merge(cx_webhook_routes(webhook))
        .merge(crate::demo_page::routes(PageMode::Local)))
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
    for event_type in agent_assist_core::EventType::PUBSUB {
        println!("  push endpoint    POST {base}{}", event_type.route());
    }
    println!(
        "  CX webhook       POST {base}{}, {base}{} (no authentication)",
        agent_assist_intake::cx_webhook::STANDARD_PATH,
        agent_assist_intake::cx_webhook::FLEXIBLE_PATH
    );
    println!("  status           {base}/status");
}
