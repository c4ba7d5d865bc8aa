//! The interceptor as a library: the binary, the connector's local mode and the tests all run
//! this router.
//!
//! - [`push`]: turning a Pub/Sub push envelope into a conversation event.
//! - [`app`]: the four push endpoints (one handler, parameterised by event type), status,
//!   readiness and metrics.
//! - [`config`]: settings, read once at start.
//! - [`metrics`]: what operators graph.

pub mod app;
pub mod config;
pub mod metrics;
pub mod push;
