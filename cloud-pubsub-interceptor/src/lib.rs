//! The interceptor as a library: the binary and the tests run this service.
//!
//! - [`config`]: settings, read once at start.
//! - [`app`]: the service, built from its configuration and run until shutdown.
//! - [`pull`]: pull mode, streaming pull from Pub/Sub subscriptions.
//!
//! What it does with a push (envelope to event to bus) is the intake's
//! ([`agent_assist_intake`]), shared with the connector's local mode.

pub mod app;
pub mod config;
pub mod pull;
