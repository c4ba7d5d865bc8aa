//! An in-process fake of the Pub/Sub `google.pubsub.v1.Subscriber` gRPC service for tests.
//!
//! No Google service is reachable from tests, and Google's emulator is a JVM program from the
//! Cloud SDK that the package registries do not carry (`tests/google_emulator.rs` uses it where
//! it is installed). Tests of the interceptor's pull mode point the real
//! `google-cloud-pubsub` subscriber at this fake instead: a tonic server on a free loopback port
//! that implements what that subscriber calls — StreamingPull, Acknowledge and ModifyAckDeadline —
//! with the service's at-least-once behaviour: per-stream flow control from the stream's first
//! request, leases that run out and bring the message back (with `delivery_attempt` when the
//! subscription has a dead-letter policy), nacks (deadline 0) redelivered at once, deadline
//! extensions honoured, acks accepted on the stream and through the Acknowledge RPC. Tests
//! publish through [`PubsubTestServer::publish`], inspect and await a subscription's state
//! ([`PubsubTestServer::snapshot`], [`PubsubTestServer::wait_for`]), break streams to make the
//! client reconnect, and stop and restart the listener.
//!
//! ```no_run
//! # async fn demo() {
//! use pubsub_test_server::PubsubTestServer;
//! let fake = PubsubTestServer::start().await;
//! fake.create_subscription("projects/p/subscriptions/s");
//! let id = fake.publish("projects/p/subscriptions/s", b"hello".to_vec(), [("k", "v")]);
//! // ... point a subscriber at fake.endpoint() with anonymous credentials ...
//! let state = fake
//!     .wait_for("projects/p/subscriptions/s", std::time::Duration::from_secs(5), |s| {
//!         s.acked.contains(&id)
//!     })
//!     .await
//!     .expect("acked");
//! assert_eq!(state.outstanding, 0);
//! # }
//! ```

mod broker;
mod call_log;
mod dispatcher;
mod flow_control;
pub mod google_emulator;
mod ledger;
pub mod proto;
mod publish_options;
mod pull_stream;
mod server;
mod snapshot;
mod subscriber_service;
mod subscription_config;

pub use publish_options::PublishOptions;
pub use pull_stream::StreamSettings;
pub use server::PubsubTestServer;
pub use snapshot::{SubscriptionSnapshot, WaitTimedOut};
pub use subscription_config::SubscriptionConfig;
