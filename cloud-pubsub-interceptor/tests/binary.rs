//! The real binary: configuration errors, JSON logs, readiness and SIGTERM, as Cloud Run sees them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis_test_server::{free_port, RedisServer};

const BINARY: &str = env!("CARGO_BIN_EXE_cloud-pubsub-interceptor");

#[test]
fn an_invalid_setting_stops_the_service_naming_the_variable() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("REDISHOST", "127.0.0.1")
        .env("REDISPORT", "not-a-port")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("REDISPORT"), "{stderr}");
}

#[test]
fn serves_logs_json_and_drains_on_sigterm() {
    let redis = RedisServer::start();
    let port = free_port();
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("PORT", port.to_string())
        .env("REDIS_URL", redis.url())
        .env("GCP_PROJECT_ID", "trace-project")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The "listening" line says the port is bound.
    let listening = loop {
        let line = lines.next().expect("a log line").unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        assert!(entry["severity"].is_string(), "{line}");
        if entry["message"]
            .as_str()
            .unwrap_or("")
            .contains("listening")
        {
            break entry;
        }
    };
    assert_eq!(listening["severity"], "INFO");
    let status = http_status(&format!("http://127.0.0.1:{port}/status"));
    assert_eq!(status, 200);
    // A request log line carries the Cloud Trace id of its request.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/status?token=never-logged"))
            .header(
                "x-cloud-trace-context",
                "105445aa7843bc8bf206b12000100000/1;o=1",
            )
            .send()
            .await
            .unwrap()
    });
    let request_log = loop {
        let line = lines.next().expect("a request log line").unwrap();
        assert!(
            !line.contains("never-logged"),
            "query strings are not logged: {line}"
        );
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
        if entry
            .get("logging.googleapis.com/trace")
            .is_some_and(|t| t != "")
        {
            break entry;
        }
    };
    assert_eq!(
        request_log["logging.googleapis.com/trace"],
        "projects/trace-project/traces/105445aa7843bc8bf206b12000100000"
    );
    assert_eq!(request_log["path"], "/status");
    let ready = http_status(&format!("http://127.0.0.1:{port}/ready"));
    assert_eq!(ready, 200);

    let sent = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(sent.elapsed() < Duration::from_secs(10));
}

/// The status of a GET (the tests above are synchronous).
fn http_status(url: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { reqwest::get(url).await.unwrap().status().as_u16() })
}

#[test]
fn an_unknown_pulled_event_type_stops_the_service_naming_the_setting() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env(
            "PUBSUB_PULL_SUBSCRIPTIONS",
            "new-messages=projects/p/subscriptions/aa-new-message-sub",
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PUBSUB_PULL_SUBSCRIPTIONS"), "{stderr}");
    assert!(stderr.contains("new-messages"), "{stderr}");
}

/// Pull mode in the real binary: it pulls through `PUBSUB_EMULATOR_HOST` and, on SIGTERM while
/// messages flow, exits within Cloud Run's 10 s having acknowledged exactly what it stored.
#[test]
fn pulls_and_drains_on_sigterm_acknowledging_only_what_was_stored() {
    use pubsub_test_server::{PubsubTestServer, SubscriptionConfig};
    const SUBSCRIPTION: &str = "projects/p/subscriptions/aa-new-message-sub";
    const MESSAGES: u32 = 20_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(async {
        let fake = PubsubTestServer::start().await;
        fake.create_subscription_with(SUBSCRIPTION, SubscriptionConfig::default());
        fake
    });
    let redis = RedisServer::start();
    let port = free_port();
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("PORT", port.to_string())
        .env("REDIS_URL", redis.url())
        .env("PUBSUB_EMULATOR_HOST", fake.emulator_host())
        // History keeps every message, so its length counts what was stored: with a shorter
        // history the publish script trims it (once it holds 1/8 more than it keeps), and a fast
        // machine stores that many before SIGTERM lands (a CI run stored 12,352 and the list
        // held 11,101).
        .env("CONVERSATION_HISTORY_LENGTH", MESSAGES.to_string())
        .env(
            "PUBSUB_PULL_SUBSCRIPTIONS",
            format!("new-message-event={SUBSCRIPTION}"),
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let data = |n: u32| {
        serde_json::json!({"conversation": "projects/p/conversations/binary", "n": n}).to_string()
    };
    // A steady flow, so SIGTERM finds batches being stored and messages not yet taken.
    for n in 0..MESSAGES {
        fake.publish(SUBSCRIPTION, data(n), [] as [(&str, &str); 0]);
    }
    let state = runtime
        .block_on(fake.wait_for(SUBSCRIPTION, Duration::from_secs(30), |s| {
            s.acked.len() >= 500
        }))
        .expect("pulled and acknowledged");
    assert!(
        state.acked.len() < MESSAGES as usize,
        "still flowing at SIGTERM"
    );
    let ready = http_status(&format!("http://127.0.0.1:{port}/ready"));
    assert_eq!(ready, 200);

    let sent = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(sent.elapsed() < Duration::from_secs(10));
    // No waiting: the acknowledgements were flushed before the process exited.
    let state = fake.snapshot(SUBSCRIPTION);
    let stored = redis.command("LLEN agent-assist:{projects/p/conversations/binary}:history");
    assert_eq!(
        stored.trim(),
        format!(":{}", state.acked.len()),
        "acknowledged is exactly what was stored"
    );
    // What it had received and not stored was given back (nacked) or, if still on the wire
    // when the stream closed, stays leased until its lease runs out, as on the service.
    assert_eq!(
        state.acked.len() + state.backlog + state.outstanding,
        MESSAGES as usize
    );
    drop(runtime);
}
