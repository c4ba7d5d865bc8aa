//! Push authentication at the HTTP level: the real interceptor (in-process through
//! `TestInterceptor`, and the real binary for start-up), a real `redis-server`, and a JWKS
//! stand-in on 127.0.0.1 serving RSA keys generated here (`GOOGLE_JWKS_URL` points at it).
//! Tokens are minted here the way Pub/Sub's look. The verifier's own cases (every claim, the
//! cache's rules) are tested in `agent-assist-core/tests/google_id_token.rs`; this file checks
//! what a pusher sees: the answer, its reason, the count in `/metrics`, and that nothing refused
//! reaches the bus.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use agent_assist_core::{ConversationBus, ConversationName, EventType};
use agent_assist_intake::Outcome;
use agent_assist_test_support::{PushEnvelope, RedisServer, Settings, TestInterceptor};
use base64::Engine;
use cloud_pubsub_interceptor::config::InterceptorConfig;
use google_jwks_test_server::{pubsub_push_claims, JwksStandIn, TestKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use redis_test_server::free_port;
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_cloud-pubsub-interceptor");

const AUDIENCE: &str = "https://cloud-pubsub-interceptor-123456789012.europe-west1.run.app";
const PUSHER: &str = "cloud-run-pubsub-invoker@demo-project.iam.gserviceaccount.com";
const ENDPOINT: EventType = EventType::NewMessageEvent;
/// Upper bound of any wait in these tests; they finish far sooner.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

// RSA key generation is the slow part: keys are shared by the tests of this binary.
static KEY_A: LazyLock<TestKey> = LazyLock::new(|| TestKey::generate("key-a"));
static KEY_B: LazyLock<TestKey> = LazyLock::new(|| TestKey::generate("key-b"));
/// Never published: an attacker's key.
static KEY_EVIL: LazyLock<TestKey> = LazyLock::new(|| TestKey::generate("key-evil"));

// --- the interceptor under test --------------------------------------------------------------

struct Pushing {
    interceptor: TestInterceptor,
    jwks: JwksStandIn,
    http: reqwest::Client,
    _redis: RedisServer,
}

/// The interceptor on a fresh Redis with push authentication on, keys from a stand-in
/// publishing `keys`. The key cache may re-fetch at once (no minimum interval), so a test sees
/// each fetch the rules call for rather than the rate limit (tested in the core crate).
async fn pushing(keys: &[&TestKey]) -> Pushing {
    let redis = RedisServer::start();
    let jwks = JwksStandIn::start(keys).await;
    let mut config = InterceptorConfig::from_settings(&Settings::from_pairs([
        ("REDIS_URL", redis.url()),
        ("PUSH_AUTH_SERVICE_ACCOUNT", PUSHER.to_owned()),
        ("PUSH_AUTH_AUDIENCE", AUDIENCE.to_owned()),
        ("GOOGLE_JWKS_URL", jwks.url().to_owned()),
    ]))
    .expect("valid settings");
    config.google_keys.cache.min_refetch_interval = Duration::ZERO;
    let interceptor = TestInterceptor::spawn_config(config).await;
    Pushing {
        interceptor,
        jwks,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        _redis: redis,
    }
}

/// What came back from one push.
#[derive(Debug)]
struct Answer {
    status: u16,
    challenge: Option<String>,
    body: String,
}

impl Pushing {
    /// Pushes a message of `conversation` with `authorization` (the whole header value).
    async fn push(
        &self,
        conversation: &str,
        message_id: &str,
        authorization: Option<&str>,
    ) -> Answer {
        let data = json!({"conversation": conversation, "type": "CONVERSATION_STARTED"});
        let body = PushEnvelope::new(data.to_string())
            .message_id(message_id)
            .publish_time("2026-11-23T13:00:00.123Z")
            .to_body();
        let mut request = self
            .http
            .post(self.interceptor.url(&ENDPOINT.route()))
            .header("content-type", "application/json")
            .body(body);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.expect("the interceptor answers");
        Answer {
            status: response.status().as_u16(),
            challenge: response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: response.text().await.unwrap(),
        }
    }

    async fn push_token(&self, conversation: &str, message_id: &str, token: &str) -> Answer {
        self.push(conversation, message_id, Some(&format!("Bearer {token}")))
            .await
    }

    fn refusals(&self, reason: &'static str) -> u64 {
        self.interceptor
            .push_auth()
            .expect("push authentication is on")
            .refusals(ENDPOINT, reason)
    }

    fn accepted(&self) -> u64 {
        self.interceptor
            .intake()
            .metrics()
            .pushes(ENDPOINT, Outcome::Accepted)
    }

    async fn metrics_text(&self) -> String {
        let response = self
            .http
            .get(self.interceptor.url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }
}

/// The events the bus keeps for `conversation` (as pushed, with a location).
async fn kept(bus: &ConversationBus, conversation: &str) -> usize {
    let name = ConversationName::parse(conversation).unwrap();
    bus.history(&name, Some(0)).await.unwrap().events.len()
}

fn claims_with(changes: Value) -> Value {
    let mut claims = pubsub_push_claims(AUDIENCE, PUSHER);
    for (name, value) in changes.as_object().unwrap() {
        claims[name] = value.clone();
    }
    claims
}

fn valid_token(key: &TestKey) -> String {
    key.sign(&pubsub_push_claims(AUDIENCE, PUSHER))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

// --- accepted ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_valid_push_token_is_accepted_and_the_event_published() {
    let pushing = pushing(&[&KEY_A]).await;
    let conversation = "projects/p/locations/global/conversations/accepted";
    let answer = pushing
        .push_token(conversation, "m-1", &valid_token(&KEY_A))
        .await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert_eq!(kept(pushing.interceptor.bus(), conversation).await, 1);
    assert_eq!(pushing.accepted(), 1);
    // Every endpoint is behind it, and the same token (Pub/Sub reuses one for its hour) serves
    // every push with one key fetch.
    for (i, event_type) in EventType::PUBSUB.into_iter().enumerate() {
        let response = pushing
            .http
            .post(pushing.interceptor.url(&event_type.route()))
            .bearer_auth(valid_token(&KEY_A))
            .body(
                PushEnvelope::new(json!({"conversation": conversation}).to_string())
                    .message_id(format!("each-{i}"))
                    .to_body(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{event_type}");
    }
    assert_eq!(kept(pushing.interceptor.bus(), conversation).await, 5);
    assert_eq!(pushing.jwks.fetches(), 1);
}

#[tokio::test]
async fn only_the_push_endpoints_are_behind_it() {
    let pushing = pushing(&[&KEY_A]).await;
    for path in ["/status", "/ready", "/metrics"] {
        let response = pushing
            .http
            .get(pushing.interceptor.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path} needs no push token");
    }
    // Another method on a push endpoint is still 405, not a token question.
    let response = pushing
        .http
        .get(pushing.interceptor.url(&ENDPOINT.route()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(pushing.jwks.fetches(), 0);
}

// --- refused ------------------------------------------------------------------------------------

#[tokio::test]
async fn tokens_that_prove_nothing_are_401_with_a_reason_counted_and_nothing_published() {
    let pushing = pushing(&[&KEY_A]).await;
    let conversation = "projects/p/locations/global/conversations/refused";
    let valid = valid_token(&KEY_A);
    let (header, payload) = {
        let mut parts = valid.split('.');
        (parts.next().unwrap(), parts.next().unwrap())
    };
    let alg_none = format!(
        "{}.{payload}.",
        b64(json!({"alg": "none", "typ": "JWT", "kid": "key-a"})
            .to_string()
            .as_bytes())
    );
    // Algorithm confusion: HS256 "signed" with the published public key as the secret.
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some(KEY_A.kid.clone());
    let confused = jsonwebtoken::encode(
        &hs256,
        &pubsub_push_claims(AUDIENCE, PUSHER),
        &EncodingKey::from_secret(KEY_A.public_pem.as_bytes()),
    )
    .unwrap();
    let now = google_jwks_test_server::unix_now();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no Authorization header", None, "missing_authorization"),
        ("Basic scheme", Some(format!("Basic {valid}")), "not_bearer"),
        ("a bare token", Some(valid.clone()), "not_bearer"),
        ("garbage", Some("Bearer garbage".into()), "malformed_token"),
        (
            "two parts",
            Some(format!("Bearer {header}.{payload}")),
            "malformed_token",
        ),
        (
            "alg none",
            Some(format!("Bearer {alg_none}")),
            "disallowed_algorithm",
        ),
        (
            "HS256 with the public key",
            Some(format!("Bearer {confused}")),
            "disallowed_algorithm",
        ),
        (
            "signed by another key under a published kid",
            Some(format!(
                "Bearer {}",
                KEY_EVIL.sign_with_kid("key-a", &pubsub_push_claims(AUDIENCE, PUSHER))
            )),
            "invalid_signature",
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                KEY_A.sign(&claims_with(json!({"iat": now - 7200, "exp": now - 3600})))
            )),
            "expired",
        ),
        (
            "not yet valid",
            Some(format!(
                "Bearer {}",
                KEY_A.sign(&claims_with(json!({"iat": now + 600, "exp": now + 4200})))
            )),
            "not_yet_valid",
        ),
        (
            "another issuer",
            Some(format!(
                "Bearer {}",
                KEY_A.sign(&claims_with(json!({"iss": "https://evil.example"})))
            )),
            "wrong_issuer",
        ),
        (
            "email not verified",
            Some(format!(
                "Bearer {}",
                KEY_A.sign(&claims_with(json!({"email_verified": false})))
            )),
            "email_not_verified",
        ),
    ];
    for (i, (case, authorization, reason)) in cases.iter().enumerate() {
        let answer = pushing
            .push(conversation, &format!("r-{i}"), authorization.as_deref())
            .await;
        assert_eq!(answer.status, 401, "{case}: {answer:?}");
        assert!(
            answer.body.starts_with("Unauthorized: ")
                && answer.body.ends_with(&format!("({reason})")),
            "{case}: {answer:?}"
        );
        let challenge = if *reason == "missing_authorization" {
            "Bearer"
        } else {
            "Bearer error=\"invalid_token\""
        };
        assert_eq!(answer.challenge.as_deref(), Some(challenge), "{case}");
        // A refused token is not echoed back.
        assert!(!answer.body.contains(payload), "{case}: {answer:?}");
        assert_eq!(
            pushing.refusals(reason),
            1 + cases[..i].iter().filter(|c| c.2 == *reason).count() as u64,
            "{case}"
        );
    }
    assert_eq!(kept(pushing.interceptor.bus(), conversation).await, 0);
    assert_eq!(pushing.accepted(), 0);
    let metrics = pushing.metrics_text().await;
    for (reason, count) in [
        ("expired", 1),
        ("not_bearer", 2),
        ("disallowed_algorithm", 2),
    ] {
        let line = format!(
            "interceptor_push_auth_refusals_total{{type=\"new-message-event\",reason=\"{reason}\"}} {count}"
        );
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    // Refused before the intake: no push outcome was counted either.
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("interceptor_pushes_total{"))
    {
        assert!(line.ends_with(" 0"), "{line}");
    }
}

#[tokio::test]
async fn a_valid_token_for_another_audience_or_account_is_403() {
    let pushing = pushing(&[&KEY_A]).await;
    let conversation = "projects/p/locations/global/conversations/misdirected";
    let cases = [
        (
            json!({"aud": "https://another-service-123456789012.europe-west1.run.app"}),
            "wrong_audience",
        ),
        (
            json!({"aud": format!("{AUDIENCE}/new-message-event")}),
            "wrong_audience",
        ),
        (
            json!({"email": "someone-else@demo-project.iam.gserviceaccount.com"}),
            "wrong_email",
        ),
    ];
    for (i, (changes, reason)) in cases.into_iter().enumerate() {
        let token = KEY_A.sign(&claims_with(changes.clone()));
        let answer = pushing
            .push_token(conversation, &format!("f-{i}"), &token)
            .await;
        assert_eq!(answer.status, 403, "{changes}: {answer:?}");
        assert!(answer.body.starts_with("Forbidden: "), "{answer:?}");
        assert!(answer.body.ends_with(&format!("({reason})")), "{answer:?}");
        assert_eq!(answer.challenge, None);
    }
    assert_eq!(pushing.refusals("wrong_audience"), 2);
    assert_eq!(pushing.refusals("wrong_email"), 1);
    assert_eq!(kept(pushing.interceptor.bus(), conversation).await, 0);
}

// --- the key cache over HTTP --------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_kid_is_refetched_once_then_accepted_if_published_else_refused() {
    let pushing = pushing(&[&KEY_A]).await;
    let conversation = "projects/p/locations/global/conversations/new-kid";
    let answer = pushing
        .push_token(conversation, "k-1", &valid_token(&KEY_A))
        .await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert_eq!(pushing.jwks.fetches(), 1);

    // Google publishes B before signing with it: one re-fetch, accepted, then cached.
    pushing.jwks.publish(&[&KEY_A, &KEY_B]);
    let answer = pushing
        .push_token(conversation, "k-2", &valid_token(&KEY_B))
        .await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert_eq!(pushing.jwks.fetches(), 2);
    let answer = pushing
        .push_token(conversation, "k-3", &valid_token(&KEY_B))
        .await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert_eq!(pushing.jwks.fetches(), 2, "the new key is cached");

    // A kid nobody publishes: one re-fetch, then 401.
    let answer = pushing
        .push_token(conversation, "k-4", &valid_token(&KEY_EVIL))
        .await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert!(answer.body.ends_with("(unknown_key)"), "{answer:?}");
    assert_eq!(pushing.jwks.fetches(), 3);
    assert_eq!(kept(pushing.interceptor.bus(), conversation).await, 3);
}

#[tokio::test]
async fn rotated_keys_are_followed_and_retired_keys_refused() {
    let pushing = pushing(&[&KEY_A]).await;
    let conversation = "projects/p/locations/global/conversations/rotation";
    let old = valid_token(&KEY_A);
    assert_eq!(
        pushing.push_token(conversation, "o-1", &old).await.status,
        204
    );
    pushing.jwks.publish(&[&KEY_B]);
    assert_eq!(
        pushing
            .push_token(conversation, "o-2", &valid_token(&KEY_B))
            .await
            .status,
        204
    );
    let answer = pushing.push_token(conversation, "o-3", &old).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert!(answer.body.ends_with("(unknown_key)"), "{answer:?}");
    assert_eq!(kept(pushing.interceptor.bus(), conversation).await, 2);
}

#[tokio::test]
async fn keys_unavailable_without_a_cached_key_is_503_and_pubsubs_retry_then_succeeds() {
    let pushing = pushing(&[&KEY_A]).await;
    pushing.jwks.set_up(false);
    let conversation = "projects/p/locations/global/conversations/jwks-down";
    let token = valid_token(&KEY_A);
    let answer = pushing.push_token(conversation, "d-1", &token).await;
    // 503, never 401: Pub/Sub retries it instead of dead-lettering a good event.
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(
        answer.body.starts_with("Service Unavailable: "),
        "{answer:?}"
    );
    assert!(answer.body.ends_with("(keys_unavailable)"), "{answer:?}");
    assert_eq!(answer.challenge, None);
    assert_eq!(pushing.refusals("keys_unavailable"), 1);
    assert_eq!(kept(pushing.interceptor.bus(), conversation).await, 0);

    // Google is back; Pub/Sub's redelivery (same message id) goes through, once.
    pushing.jwks.set_up(true);
    let answer = pushing.push_token(conversation, "d-1", &token).await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert_eq!(kept(pushing.interceptor.bus(), conversation).await, 1);
}

#[tokio::test]
async fn keys_unavailable_with_a_cached_key_keeps_accepting_what_it_matches() {
    let pushing = pushing(&[&KEY_A]).await;
    // Stale at once, so every later push would like a refresh.
    pushing.jwks.set_max_age(Some(0));
    let conversation = "projects/p/locations/global/conversations/jwks-down-cached";
    assert_eq!(
        pushing
            .push_token(conversation, "c-1", &valid_token(&KEY_A))
            .await
            .status,
        204
    );
    pushing.jwks.set_up(false);
    for i in 2..6 {
        let answer = pushing
            .push_token(conversation, &format!("c-{i}"), &valid_token(&KEY_A))
            .await;
        assert_eq!(answer.status, 204, "{answer:?}");
    }
    assert!(pushing.jwks.fetches() >= 2, "refreshes were attempted");
    // A key that is not cached cannot be checked while Google is unreachable: 503.
    let answer = pushing
        .push_token(conversation, "c-9", &valid_token(&KEY_B))
        .await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(kept(pushing.interceptor.bus(), conversation).await, 5);
}

// --- 200 concurrent pushes during a key refresh -------------------------------------------------

const CONCURRENT: usize = 200;

/// `CONCURRENT` pushes at once (one connection each), all with `token`, each its own message.
fn push_concurrently(
    pushing: &Arc<Pushing>,
    token: &str,
    label: &str,
) -> Vec<tokio::task::JoinHandle<Answer>> {
    let start = Arc::new(tokio::sync::Barrier::new(CONCURRENT));
    (0..CONCURRENT)
        .map(|i| {
            let pushing = Arc::clone(pushing);
            let token = token.to_owned();
            let start = Arc::clone(&start);
            let conversation = format!(
                "projects/p/locations/global/conversations/{label}-{}",
                i % 10
            );
            let message_id = format!("{label}-{i}");
            tokio::spawn(async move {
                start.wait().await;
                pushing.push_token(&conversation, &message_id, &token).await
            })
        })
        .collect()
}

async fn all_accepted(tasks: Vec<tokio::task::JoinHandle<Answer>>) {
    for task in tasks {
        let answer = tokio::time::timeout(EVENT_TIMEOUT, task)
            .await
            .expect("a push hung")
            .unwrap();
        assert_eq!(answer.status, 204, "{answer:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_with_a_new_kid_wait_for_one_fetch_and_are_all_accepted() {
    let pushing = Arc::new(pushing(&[&KEY_A]).await);
    assert_eq!(
        pushing
            .push_token("projects/p/conversations/warm", "w", &valid_token(&KEY_A))
            .await
            .status,
        204
    );
    pushing.jwks.publish(&[&KEY_A, &KEY_B]);

    // Every push needs the new key: the fetch is held until all 200 wait on it.
    pushing.jwks.hold();
    let tasks = push_concurrently(&pushing, &valid_token(&KEY_B), "new-kid");
    let keys = pushing
        .interceptor
        .push_auth()
        .unwrap()
        .verifier()
        .keys()
        .clone();
    tokio::time::timeout(EVENT_TIMEOUT, async {
        while keys.stats().waiting_for_fetch < CONCURRENT {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "only {} pushes joined the fetch",
            keys.stats().waiting_for_fetch
        )
    });
    pushing.jwks.wait_for_fetches(2).await;
    pushing.jwks.release();
    all_accepted(tasks).await;
    assert_eq!(
        pushing.jwks.fetches(),
        2,
        "200 pushes with a new kid, one fetch"
    );
    assert_eq!(pushing.accepted(), 1 + CONCURRENT as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_during_a_background_refresh_are_answered_without_waiting_for_it() {
    let pushing = Arc::new(pushing(&[&KEY_A]).await);
    pushing.jwks.set_max_age(Some(0));
    let token = valid_token(&KEY_A);
    assert_eq!(
        pushing
            .push_token("projects/p/conversations/warm", "w", &token)
            .await
            .status,
        204
    );
    // The set is stale: the first of these pushes starts a refresh, which is held until every
    // push has been answered, proving that none of them waited for it.
    pushing.jwks.hold();
    all_accepted(push_concurrently(&pushing, &token, "refresh")).await;
    pushing.jwks.wait_for_fetches(2).await;
    assert_eq!(pushing.jwks.fetches(), 2, "one refresh for 200 pushes");
    assert_eq!(pushing.accepted(), 1 + CONCURRENT as u64);
    pushing.jwks.release();
}

// --- the binary: settings and the start-up line --------------------------------------------------

/// Runs the binary with `settings` until it logs "listening" (or exits); its JSON log lines.
fn start_up_log(settings: &[(&str, &str)]) -> (Vec<Value>, Option<std::process::ExitStatus>) {
    let redis = RedisServer::start();
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("PORT", free_port().to_string())
        .env("REDIS_URL", redis.url())
        .envs(settings.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut entries = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let entry: Value = serde_json::from_str(&line).expect("JSON log line");
        let listening = entry["message"]
            .as_str()
            .unwrap_or("")
            .contains("listening");
        entries.push(entry);
        if listening {
            child.kill().unwrap();
            child.wait().unwrap();
            return (entries, None);
        }
    }
    // stdout closed: the process exited.
    (entries, Some(child.wait().unwrap()))
}

fn messages_at(entries: &[Value], severity: &str, needle: &str) -> usize {
    entries
        .iter()
        .filter(|e| e["severity"] == severity)
        .filter(|e| e["message"].as_str().unwrap_or("").contains(needle))
        .count()
}

#[test]
fn without_push_authentication_the_start_up_log_says_so_once_and_loudly() {
    let (entries, exited) = start_up_log(&[]);
    assert_eq!(exited, None, "{entries:?}");
    assert_eq!(
        messages_at(&entries, "WARNING", "PUSH AUTHENTICATION IS OFF"),
        1,
        "{entries:#?}"
    );
    let all = serde_json::to_string(&entries).unwrap();
    assert!(all.contains("PUSH_AUTH_SERVICE_ACCOUNT"), "{all}");

    let (entries, exited) = start_up_log(&[
        ("PUSH_AUTH_SERVICE_ACCOUNT", PUSHER),
        ("PUSH_AUTH_AUDIENCE", AUDIENCE),
    ]);
    assert_eq!(exited, None, "{entries:?}");
    assert_eq!(
        messages_at(&entries, "WARNING", "PUSH AUTHENTICATION"),
        0,
        "{entries:#?}"
    );
    assert_eq!(
        messages_at(&entries, "INFO", "push authentication on"),
        1,
        "{entries:#?}"
    );
}

#[test]
fn half_a_push_authentication_setting_stops_the_service_naming_the_missing_one() {
    for (settings, named) in [
        (
            vec![("PUSH_AUTH_SERVICE_ACCOUNT", PUSHER)],
            "PUSH_AUTH_AUDIENCE",
        ),
        (
            vec![("PUSH_AUTH_AUDIENCE", AUDIENCE)],
            "PUSH_AUTH_SERVICE_ACCOUNT",
        ),
        (
            vec![
                ("PUSH_AUTH_SERVICE_ACCOUNT", "not-an-email"),
                ("PUSH_AUTH_AUDIENCE", AUDIENCE),
            ],
            "PUSH_AUTH_SERVICE_ACCOUNT",
        ),
        (
            vec![("GOOGLE_JWKS_URL", "file:///etc/keys.json")],
            "GOOGLE_JWKS_URL",
        ),
    ] {
        let output = Command::new(BINARY)
            .env_clear()
            .env("PORT", free_port().to_string())
            .envs(settings.iter().copied())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{settings:?} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{settings:?}: {stderr}");
    }
}
