//! A local stand-in for Google's signing keys, and Google ID tokens signed with them.
//!
//! Whatever verifies Google ID tokens (the interceptor's push authentication, the verifier in
//! `agent-assist-core`) is pointed at [`JwksStandIn::url`] through its documented setting
//! (`GOOGLE_JWKS_URL`) instead of `https://www.googleapis.com/oauth2/v3/certs`. The stand-in is a
//! real HTTP server on 127.0.0.1 serving a JWK Set in the shape Google publishes, with the
//! `Cache-Control: max-age` Google sends; a test can change its keys (rotation), take it down,
//! hold its answers (to keep a fetch in flight for as long as it needs), and count and await
//! fetches. [`TestKey`]s are RSA keys generated per run; [`TestKey::sign`] mints tokens with
//! them, and [`pubsub_push_claims`] gives the claims Pub/Sub's push tokens carry.
//!
//! It is its own crate (like `redis-test-server`) rather than part of `test-support` because the
//! core crate's tests and the benchmark use it too, and neither may depend on the services.

mod keys;
mod server;

pub use keys::{pubsub_push_claims, unix_now, TestKey};
pub use server::JwksStandIn;
