//! Push authentication for the push scenario (`--push-auth`): a JWKS stand-in in this process
//! (`google-jwks-test-server`) that the interceptor is pointed at with `GOOGLE_JWKS_URL`, the
//! settings that turn the check on, the one token every push carries, and what a verification
//! costs on its own.
//!
//! Pub/Sub mints a push token and reuses it for its hour, so the load generator does the same:
//! one RS256 token, signed once, sent with every push. The interceptor then does what it does in
//! production per push: parse, look the key up in its warm cache, check the signature and the
//! claims.

use std::time::{Duration, Instant};

use agent_assist_core::google_id_token::{Expectation, GoogleKeys, IdTokenVerifier};
use anyhow::Context;
use google_jwks_test_server::{pubsub_push_claims, JwksStandIn, TestKey};
use http::HeaderValue;

/// The audience and account the interceptor is configured with and the token carries.
const AUDIENCE: &str = "https://cloud-pubsub-interceptor-123456789012.bench-region.run.app";
const PUSH_ACCOUNT: &str = "cloud-run-pubsub-invoker@bench-project.iam.gserviceaccount.com";

pub struct PushAuthSetup {
    jwks: JwksStandIn,
    authorization: HeaderValue,
}

/// One thread verifying the same token over and over with a warm cache.
pub struct VerifyCost {
    pub iterations: usize,
    /// Wall-clock mean (includes waiting for a core on a busy machine).
    pub mean: Duration,
    /// CPU time per verification, when the kernel says (`/proc/thread-self/schedstat`).
    pub cpu: Option<Duration>,
}

impl PushAuthSetup {
    /// Generates a signing key, serves it on 127.0.0.1, and mints the push token.
    pub async fn start() -> anyhow::Result<Self> {
        let key = tokio::task::spawn_blocking(|| TestKey::generate("bench-key"))
            .await
            .context("generate the signing key")?;
        let jwks = JwksStandIn::start(&[&key]).await;
        let token = key.sign(&pubsub_push_claims(AUDIENCE, PUSH_ACCOUNT));
        let authorization = HeaderValue::from_str(&format!("Bearer {token}"))?;
        Ok(Self {
            jwks,
            authorization,
        })
    }

    /// The interceptor settings that turn push authentication on against this stand-in.
    pub fn interceptor_settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PUSH_AUTH_SERVICE_ACCOUNT", PUSH_ACCOUNT.to_owned()),
            ("PUSH_AUTH_AUDIENCE", AUDIENCE.to_owned()),
            ("GOOGLE_JWKS_URL", self.jwks.url().to_owned()),
        ]
    }

    /// `Bearer <token>`, for every push.
    pub fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// Requests the stand-in has answered (the interceptor should need one).
    pub fn key_fetches(&self) -> usize {
        self.jwks.fetches()
    }

    /// Verifies the push token `iterations` times in a row on one thread of its own, with a
    /// warm key cache, the way the interceptor does per push.
    pub async fn verify_cost(&self, iterations: usize) -> anyhow::Result<VerifyCost> {
        let url = self.jwks.url().to_owned();
        let authorization = self.authorization.clone();
        tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let http = reqwest::Client::builder().no_proxy().build()?;
                let verifier = IdTokenVerifier::new(
                    GoogleKeys::new(url, http),
                    Expectation::new(AUDIENCE, PUSH_ACCOUNT),
                )?;
                // Warm the cache (one fetch) and the code paths.
                for _ in 0..100 {
                    verifier
                        .verify(Some(&authorization))
                        .await
                        .context("the push token does not verify")?;
                }
                let cpu_before = thread_cpu_time();
                let started = Instant::now();
                for _ in 0..iterations {
                    verifier
                        .verify(Some(&authorization))
                        .await
                        .context("the push token does not verify")?;
                }
                let mean = started.elapsed() / iterations.max(1) as u32;
                let cpu = thread_cpu_time()
                    .zip(cpu_before)
                    .map(|(after, before)| (after - before) / iterations.max(1) as u32);
                Ok(VerifyCost {
                    iterations,
                    mean,
                    cpu,
                })
            })
        })
        .await?
    }
}

/// Time this thread has spent on a CPU (Linux: first field of schedstat, in nanoseconds).
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}
