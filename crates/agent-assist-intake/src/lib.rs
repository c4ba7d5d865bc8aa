//! The doors through which Agent Assist events enter the conversation bus.
//!
//! Both services need it: the interceptor serves it in production, and the connector's local
//! mode serves the same endpoints on its own port. It lives in its own crate so that neither
//! service depends on the other.
//!
//! - [`message`]: a Pub/Sub message (however it arrived) to the event desktops receive.
//! - [`envelope`]: the push envelope Pub/Sub POSTs, parsed into a message; and built, for the
//!   tools and tests that play Pub/Sub.
//! - [`intake`]: publishing an event on the bus and counting the outcome.
//! - [`routes`]: the four push endpoints, one handler parameterised by event type.
//! - [`cx_webhook`]: the Dialogflow CX webhook, which brings the virtual agent's context in as
//!   `virtual-agent-event`s.
//! - [`push_auth`]: Pub/Sub's signed push tokens, checked in front of the push endpoints.
//! - [`metrics`]: what operators graph.

pub mod cx_webhook;
pub mod envelope;
pub mod intake;
pub mod message;
pub mod metrics;
pub mod push_auth;
pub mod routes;

pub use cx_webhook::{cx_webhook_routes, CxWebhook, CxWebhookConfig};
pub use envelope::PushEnvelope;
pub use intake::{Intake, IntakeError};
pub use message::{MalformedMessage, PubsubMessage};
pub use metrics::{IntakeMetrics, Outcome};
pub use push_auth::PushAuth;
pub use routes::push_routes;
