//! What verifying one Google ID token costs with a warm key cache: the interceptor does this on
//! every push. Serves a generated RSA-2048 key from a JWKS stand-in on 127.0.0.1, mints one
//! Pub/Sub-shaped token, warms the cache, then times `IdTokenVerifier::verify` one call at a
//! time and prints the mean and percentiles in microseconds, and the CPU time per verify.
//!
//! `cargo run --release -p agent-assist-core --example id_token_bench [-- ITERATIONS]`

use std::time::{Duration, Instant};

use agent_assist_core::google_id_token::{Expectation, GoogleKeys, IdTokenVerifier};
use axum::http::HeaderValue;
use google_jwks_test_server::{pubsub_push_claims, JwksStandIn, TestKey};

const AUDIENCE: &str = "https://interceptor.example.test/push";
const PUSHER: &str = "pubsub-pusher@demo-project.iam.gserviceaccount.com";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("ITERATIONS is a number"))
        .unwrap_or(20_000)
        .clamp(100, 1_000_000);

    let key = TestKey::generate("bench");
    let jwks = JwksStandIn::start(&[&key]).await;
    let token = key.sign(&pubsub_push_claims(AUDIENCE, PUSHER));
    let authorization = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let verifier = IdTokenVerifier::new(
        GoogleKeys::new(jwks.url(), http),
        Expectation::new(AUDIENCE, PUSHER),
    )
    .unwrap();
    for _ in 0..100 {
        verifier.verify(Some(&authorization)).await.unwrap();
    }

    let mut samples = Vec::with_capacity(iterations);
    let cpu_before = thread_cpu_time();
    let started = Instant::now();
    for _ in 0..iterations {
        let one = Instant::now();
        verifier.verify(Some(&authorization)).await.unwrap();
        samples.push(one.elapsed());
    }
    let total = started.elapsed();
    let cpu = thread_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    samples.sort_unstable();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |q: f64| micros(samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)]);
    println!(
        "verify (warm cache, RSA-2048, {} token bytes), {iterations} calls on one thread:",
        token.len()
    );
    println!(
        "  mean {:.1} us  p50 {:.1} us  p99 {:.1} us  max {:.1} us  ({:.0} verifications/s)",
        micros(total) / iterations as f64,
        at(0.50),
        at(0.99),
        micros(samples[samples.len() - 1]),
        iterations as f64 / total.as_secs_f64(),
    );
    match cpu {
        // Wall-clock percentiles include time the thread waited for a core (the machine may be
        // shared); CPU time says what verification itself costs.
        Some(cpu) => println!(
            "  CPU time per verify: {:.1} us (wall-clock mean includes waiting for a core)",
            micros(cpu) / iterations as f64
        ),
        None => println!("  CPU time per verify: n/a (no /proc/thread-self/schedstat)"),
    }
    println!("  key set fetches: {}", verifier.keys().stats().fetches);
}

/// Time this thread has spent on a CPU (Linux: first field of schedstat, in nanoseconds).
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}
