//! Verifying Google-signed OIDC ID tokens, so a service trusts only Google: Pub/Sub's
//! authenticated push (the interceptor) and Dialogflow CX webhooks both send
//! `Authorization: Bearer <Google ID token>`.
//!
//! ```no_run
//! # async fn example(request_headers: &axum::http::HeaderMap) {
//! use agent_assist_core::google_id_token::{
//!     Expectation, GoogleKeys, IdTokenVerifier, GOOGLE_JWKS_URL,
//! };
//! // One key cache per process, shared by every verifier (clones share it).
//! let keys = GoogleKeys::new(GOOGLE_JWKS_URL, reqwest::Client::new());
//! let verifier = IdTokenVerifier::new(
//!     keys,
//!     Expectation::new("https://interceptor.example/push", "pusher@project.iam.gserviceaccount.com"),
//! )
//! .expect("an audience and an email");
//! match verifier.verify(request_headers.get(axum::http::header::AUTHORIZATION)).await {
//!     Ok(identity) => { /* identity.email is the pushing account */ }
//!     Err(refusal) => {
//!         // 401, 403 or 503; refusal.reason_label() is a stable label to count by.
//!         let _ = (refusal.status(), refusal.reason_label(), refusal.detail());
//!     }
//! }
//! # }
//! ```
//!
//! # What a token must be
//!
//! - `Authorization: Bearer <token>` ([`bearer_token`]); else 401.
//! - Header `alg` exactly `RS256` (so `none`, and HS256 "signed" with the public key as the
//!   secret, are refused by name before any key lookup), with a `kid`; else 401.
//! - Signature valid under Google's current key with that `kid`; else 401.
//! - `iss` `accounts.google.com` or `https://accounts.google.com`; else 401.
//! - `exp` not passed and `iat` (and `nbf` if present) not in the future, each give or take
//!   the clock skew; else 401.
//! - `aud` one of the expected audiences; else 403.
//! - `email` one of the allowed accounts; else 403. Then `email_verified` true; else 401 (the
//!   token claims one of our accounts without Google vouching for it).
//!
//! Untrustworthy tokens are checked before merely misdirected ones, so 403 always means a real,
//! current Google token for someone else (a misconfigured subscription, typically), and 401 means
//! the request did not prove anything. Refusals carry a reason from a closed set
//! ([`IdTokenError::reason_label`]) to count by.
//!
//! # Clock skew
//!
//! [`DEFAULT_CLOCK_SKEW`] is 30 seconds, both ways: a token is accepted until 30 s after its
//! `exp` and from 30 s before its `iat`. Cloud Run's and Google's clocks are NTP-synchronised, so
//! this only absorbs small drift; Google ID tokens live one hour, so it extends a leaked token's
//! life by under 1 %. [`Expectation::clock_skew`] changes it.
//!
//! # The key cache ([`GoogleKeys`])
//!
//! - Fetched on first use (or [`GoogleKeys::load`] at start-up), then shared by every request
//!   and every verifier cloned from it.
//! - Fresh for the response's `Cache-Control: max-age` (less `Age`; 1 h if absent, at most
//!   24 h). Past that, a request whose `kid` is cached is still answered at once from the
//!   cache while one background fetch replaces the set; a request never waits on a refresh
//!   while a cached key matches.
//! - An unknown `kid` triggers one re-fetch (Google publishes new keys before signing with
//!   them, so in practice this only happens for forged `kid`s or just after start). All callers
//!   that need a fetch at the same time share one (single flight), and fetches start at most
//!   once per [`KeyCacheOptions::min_refetch_interval`] (10 s): a flood of forged `kid`s costs
//!   Google at most one request per interval, and is answered 401 from the last fetched set.
//! - A failed fetch keeps the old set: cached keys keep verifying (for up to
//!   [`KeyCacheOptions::max_stale`], 24 h, after the set went stale). A token whose key is not
//!   cached while the key set cannot be fetched gets 503, never 401: Pub/Sub retries a 503,
//!   whereas refusing a good push as unauthenticated would eventually dead-letter it.
//! - A successful fetch replaces the set: keys Google stopped publishing stop verifying.
//!
//! # Cost
//!
//! With a warm cache a verification is a header decode, a hash lookup, one RSA-2048 signature
//! check and a claims decode; the signature check is nearly all of it. Measured with
//! `cargo run --release -p agent-assist-core --example id_token_bench` on the shared 2-core
//! development machine: about 0.2 ms of CPU per verification with jsonwebtoken's `rust_crypto`
//! backend (the workspace's), about 0.03 ms with its `aws_lc_rs` backend. This module works with
//! either; the backend is a workspace-wide jsonwebtoken feature (enabling both makes jsonwebtoken
//! panic), so switching it is a workspace decision.
//!
//! # Why not `google-cloud-auth`'s `idtoken` verifier
//!
//! The workspace already depends on `google-cloud-auth` (1.18), whose `idtoken` feature has a
//! verifier. Its source (`src/credentials/internal/jwk_client.rs`, `JwkClient::get_or_load_cert`)
//! rules it out for a push endpoint:
//! - Every verification, cache hits included, takes the cache's `RwLock` with `try_write()` and
//!   fails ("failed to obtain lock to read certificate cache") if anyone else holds it, and the
//!   holder keeps it across the `await` of the key set fetch: concurrent pushes fail while one
//!   fetches, and can even collide on a warm cache.
//! - Keys are cached a fixed hour, ignoring `Cache-Control`; an unknown `kid` fetches again on
//!   every request (no interval, no single flight), so forged `kid`s translate into requests to
//!   Google; and a fetch failure and an unknown `kid` are the same error kind, so the 503-vs-401
//!   distinction above cannot be made.
//! - It builds a new HTTP client per fetch, takes the algorithm from the token header (ES256
//!   accepted too), and its default `idtoken` backend turns on jsonwebtoken's `aws_lc_rs`
//!   feature next to our `rust_crypto`, with which jsonwebtoken cannot pick a crypto provider
//!   and panics on the first verification unless one is installed by hand.
//!
//! So the cache and checks are built here on `jsonwebtoken` (already used for the connector's
//! tokens), which does the RS256 signature check.

mod bearer;
mod error;
mod jwks_fetch;
mod key_cache;
mod verifier;

#[cfg(test)]
mod properties;

pub use bearer::bearer_token;
pub use error::{ForbiddenReason, IdTokenError, RejectionClass, UnauthenticatedReason};
pub use key_cache::{GoogleKeys, KeyCacheOptions, KeyCacheStats, GOOGLE_JWKS_URL};
pub use verifier::{
    Expectation, ExpectationError, IdTokenVerifier, VerifiedIdentity, DEFAULT_CLOCK_SKEW,
    GOOGLE_ISSUERS,
};
