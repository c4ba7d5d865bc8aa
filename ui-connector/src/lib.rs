//! The UI connector as a library, so integration tests and the benchmark harness run the same
//! router the binary serves.
//!
//! - [`app`]: the service, built from its configuration and run until shutdown.
//! - [`cors`]: CORS for every route.
//! - [`closable_connection`]: connections the connector can close one by one (slow sockets).
//! - [`config`]: every setting, read once at start.
//! - [`jwt`]: the connector's own tokens.
//! - [`auth`]: desktop platform providers behind one trait; [`registration`]: `/register` and
//!   `/register-app`.
//! - [`live`]: Socket.IO: authenticated connections, joining conversations, recovery.
//! - [`integration_keys`]: the `/conversation-name` API.
//! - [`dialogflow_proxy`]: the Dialogflow REST proxy.
//! - [`local_mode`]: one-process local runs with the demo page.
//! - [`metrics`]: what operators graph.
//! - [`memory_release`]: memory goes back to the system after a crowd of sockets leaves.

pub mod app;
pub mod auth;
pub mod closable_connection;
pub mod config;
pub mod cors;
pub mod demo_page;
pub mod dialogflow_proxy;
pub mod integration_keys;
pub mod jwt;
pub mod live;
pub mod local_mode;
pub mod memory_release;
pub mod metrics;
pub mod registration;
