//! The Dialogflow CX webhook, as CX calls it: the interceptor's real router over real HTTP, a
//! real `redis-server`, a real connector for `/conversation-name` and for desktops (the Rust
//! Socket.IO client), and a JWKS stand-in for the service agent's ID tokens.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use agent_assist_core::{ConversationBus, ConversationName};
use agent_assist_intake::cx_webhook::{Outcome, WebhookKind};
use agent_assist_test_support::jwks_stand_in::{google_claims, JwksStandIn, TestKey};
use agent_assist_test_support::{
    RedisServer, SecretFile, Settings, SocketClient, TestConnector, TestInterceptor,
};
use base64::Engine;
use cloud_pubsub_interceptor::app::Interceptor;
use cloud_pubsub_interceptor::config::InterceptorConfig;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const STANDARD: &str = "/dialogflow-cx-webhook";
const FLEXIBLE: &str = "/dialogflow-cx-webhook/flexible";
const SECRET: &str = "Bearer cx-static-secret-0123456789";
const AUDIENCE: &str = "https://interceptor.example.test/dialogflow-cx-webhook";
const FLEXIBLE_AUDIENCE: &str = "https://interceptor.example.test/dialogflow-cx-webhook/flexible";
const SERVICE_AGENT: &str = "service-123456789012@gcp-sa-dialogflow.iam.gserviceaccount.com";
/// Upper bound for waiting on an event that should come; they arrive in milliseconds.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

static KEY: LazyLock<TestKey> = LazyLock::new(|| TestKey::generate("cx-key"));
/// Never published by the stand-in.
static FORGED: LazyLock<TestKey> = LazyLock::new(|| TestKey::generate("cx-forged"));

// --- helpers -----------------------------------------------------------------------------

/// An interceptor on `redis` accepting the static header [`SECRET`], with `extra` settings.
async fn interceptor(redis: &RedisServer, extra: &[(&str, &str)]) -> (TestInterceptor, SecretFile) {
    let secret = SecretFile::new(&format!("{SECRET}\n"));
    let mut settings = Settings::from_pairs([
        ("REDIS_URL", redis.url()),
        (
            "CX_WEBHOOK_HEADER_SECRET_PATH",
            secret.path().display().to_string(),
        ),
    ]);
    for (name, value) in extra {
        settings = settings.with(*name, *value);
    }
    (TestInterceptor::spawn(settings).await, secret)
}

/// A `WebhookRequest` as CX sends it, with these session parameters.
fn cx_request(id: &str, parameters: Value) -> Value {
    json!({
        "detectIntentResponseId": id,
        "languageCode": "en",
        "fulfillmentInfo": {"tag": "handoff"},
        "intentInfo": {
            "lastMatchedIntent": "projects/p/locations/global/agents/a/intents/i",
            "displayName": "billing.dispute_charge",
            "confidence": 0.93,
        },
        "pageInfo": {
            "currentPage": "projects/p/locations/global/agents/a/flows/f/pages/x",
            "displayName": "Transfer to an agent",
        },
        "sessionInfo": {
            "session": "projects/p/locations/global/agents/a/sessions/s-1",
            "parameters": parameters,
        },
        "messages": [{"text": {"text": ["Transferring you now."]}}],
        "sentimentAnalysisResult": {"score": -0.6, "magnitude": 1.4},
        "text": "I was charged twice",
    })
}

/// Sends a call; the status and the body (JSON when it is JSON).
async fn call(
    interceptor: &TestInterceptor,
    method: reqwest::Method,
    path_and_query: &str,
    authorization: Option<&str>,
    body: Option<String>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, interceptor.url(path_and_query));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("the interceptor answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// A standard call with the static secret.
async fn standard(interceptor: &TestInterceptor, request: &Value) -> (u16, Value) {
    call(
        interceptor,
        reqwest::Method::POST,
        STANDARD,
        Some(SECRET),
        Some(request.to_string()),
    )
    .await
}

fn parameters(answer: &Value) -> &Value {
    &answer["sessionInfo"]["parameters"]
}

fn published_to(conversation: &str) -> Value {
    json!({
        "agent_assist_conversation": conversation,
        "agent_assist_context_published": true,
        "agent_assist_context_pending": false,
    })
}

fn pending() -> Value {
    json!({
        "agent_assist_conversation": null,
        "agent_assist_context_published": false,
        "agent_assist_context_pending": true,
    })
}

/// The events kept for `conversation`, parsed.
async fn kept(bus: &ConversationBus, conversation: &str) -> Vec<Value> {
    bus.history(&ConversationName::parse(conversation).unwrap(), Some(0))
        .await
        .unwrap()
        .events
        .iter()
        .map(|e| serde_json::from_str(e.json()).unwrap())
        .collect()
}

fn context_of(event: &Value) -> Value {
    serde_json::from_str(event["data"].as_str().expect("data is text")).unwrap()
}

/// Maps `key` to `conversation` through the connector's real `POST /conversation-name`.
async fn map_key(connector: &TestConnector, key: &str, conversation: &str) {
    let response = connector
        .http()
        .post(connector.url("/conversation-name"))
        .bearer_auth(connector.token("agent@example.com"))
        .json(&json!({"conversationIntegrationKey": key, "conversationName": conversation}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

async fn next_event(socket: &mut SocketClient) -> Value {
    let event = tokio::time::timeout(EVENT_TIMEOUT, socket.next_event())
        .await
        .expect("an event within the timeout")
        .unwrap()
        .expect("the socket is still connected");
    assert_eq!(event.name, "virtual-agent-event");
    event.payload
}

// --- delivery ----------------------------------------------------------------------------

#[tokio::test]
async fn a_call_reaches_the_desktop_over_socket_io() {
    let redis = RedisServer::start();
    let (interceptor, _secret) = interceptor(&redis, &[]).await;
    let connector = TestConnector::builder().redis(&redis).spawn().await;
    let mut desktop = connector.socket().await;
    desktop
        .join("projects/p/locations/global/conversations/e2e")
        .await
        .unwrap();

    let request = cx_request(
        "d-e2e",
        json!({
            "agent_assist_conversation": "projects/p/locations/global/conversations/e2e",
            "reason": "charged twice",
            "amount": {"amount": 42.5, "currencyCode": "USD"},
        }),
    );
    let (status, answer) = standard(&interceptor, &request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"sessionInfo": {"parameters": published_to("projects/p/conversations/e2e")}})
    );

    let event = next_event(&mut desktop).await;
    assert_eq!(event["data_type"], "virtual-agent-event");
    assert_eq!(event["conversation_name"], "projects/p/conversations/e2e");
    assert!(event["message_id"].as_str().unwrap().starts_with("cx-"));
    assert!(event["offset"].as_u64().unwrap() > 0);
    assert!(event["ack_time"].as_str().unwrap().ends_with('Z'));
    assert!(chrono::DateTime::parse_from_rfc3339(event["publish_time"].as_str().unwrap()).is_ok());
    let context = context_of(&event);
    assert_eq!(context["source"], "dialogflow-cx-webhook");
    assert_eq!(context["detectIntentResponseId"], "d-e2e");
    assert_eq!(context["tag"], "handoff");
    assert_eq!(context["languageCode"], "en");
    assert_eq!(context["parameters"]["reason"], "charged twice");
    assert_eq!(context["parameters"]["amount"]["amount"], 42.5);
    assert_eq!(context["intent"]["displayName"], "billing.dispute_charge");
    assert_eq!(context["page"]["displayName"], "Transfer to an agent");
    assert_eq!(
        context["sentiment"],
        json!({"score": -0.6, "magnitude": 1.4})
    );
    assert_eq!(context["input"], json!({"text": "I was charged twice"}));
    assert_eq!(
        context["messages"][0]["text"]["text"][0],
        "Transferring you now."
    );

    // Kept in history like every other event: a desktop joining later gets it too.
    let history = kept(interceptor.bus(), "projects/p/conversations/e2e").await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["offset"], event["offset"]);
    let metrics = interceptor.cx_webhook().metrics();
    assert_eq!(metrics.calls(WebhookKind::Standard, Outcome::Published), 1);
    let exposition = reqwest::get(interceptor.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        exposition.contains(
            r#"interceptor_cx_webhook_calls_total{webhook="standard",outcome="published"} 1"#
        ),
        "{exposition}"
    );
    assert!(exposition.contains("interceptor_cx_webhook_seconds_bucket"));
}

#[tokio::test]
async fn the_conversation_is_found_in_order_parameter_then_key_then_caller_id() {
    let redis = RedisServer::start();
    let (interceptor, _secret) = interceptor(&redis, &[]).await;
    let connector = TestConnector::builder().redis(&redis).spawn().await;
    map_key(&connector, "key-1", "projects/p/conversations/by-key").await;
    map_key(
        &connector,
        "+15551234",
        "projects/p/conversations/by-caller",
    )
    .await;

    // 1. The session parameter wins over a key and a caller id.
    let mut request = cx_request(
        "d-1",
        json!({
            "agent_assist_conversation": "projects/p/conversations/by-name",
            "conversation_integration_key": "key-1",
        }),
    );
    request["payload"] = json!({"telephony": {"caller_id": "+15551234"}});
    let (status, answer) = standard(&interceptor, &request).await;
    assert_eq!(status, 200);
    assert_eq!(
        parameters(&answer),
        &published_to("projects/p/conversations/by-name")
    );

    // 2. Then the integration key parameter, over the caller id.
    let mut request = cx_request("d-2", json!({"conversation_integration_key": "key-1"}));
    request["payload"] = json!({"telephony": {"caller_id": "+15551234"}});
    let (_, answer) = standard(&interceptor, &request).await;
    assert_eq!(
        parameters(&answer),
        &published_to("projects/p/conversations/by-key")
    );

    // 3. Then the caller id.
    let mut request = cx_request("d-3", json!({}));
    request["payload"] = json!({"telephony": {"caller_id": "+15551234"}});
    let (_, answer) = standard(&interceptor, &request).await;
    assert_eq!(
        parameters(&answer),
        &published_to("projects/p/conversations/by-caller")
    );

    // Nothing: answered, nothing published.
    let (status, answer) = standard(&interceptor, &cx_request("d-4", json!({}))).await;
    assert_eq!(status, 200);
    assert_eq!(
        parameters(&answer),
        &json!({
            "agent_assist_conversation": null,
            "agent_assist_context_published": false,
            "agent_assist_context_pending": false,
        })
    );

    for conversation in ["by-name", "by-key", "by-caller"] {
        let events = kept(
            interceptor.bus(),
            &format!("projects/p/conversations/{conversation}"),
        )
        .await;
        assert_eq!(events.len(), 1, "{conversation}");
        assert_eq!(events[0]["data_type"], "virtual-agent-event");
    }
    let metrics = interceptor.cx_webhook().metrics();
    assert_eq!(metrics.calls(WebhookKind::Standard, Outcome::Published), 3);
    assert_eq!(metrics.calls(WebhookKind::Standard, Outcome::Unrouted), 1);
}

#[tokio::test]
async fn a_context_waits_for_its_key_and_is_published_when_conversation_name_maps_it() {
    let redis = RedisServer::start();
    let (interceptor, _secret) = interceptor(&redis, &[]).await;
    let connector = TestConnector::builder().redis(&redis).spawn().await;
    let conversation = "projects/p/locations/global/conversations/handed-over";
    let routed = "projects/p/conversations/handed-over";

    // The virtual agent calls before the desktop knows its conversation.
    let mut request = cx_request("d-pending", json!({"reason": "refund"}));
    request["payload"] = json!({"telephony": {"caller_id": "+15559876"}});
    let (status, answer) = standard(&interceptor, &request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(parameters(&answer), &pending());
    // CX retries: the same answer, nothing new kept.
    let (_, retried) = standard(&interceptor, &request).await;
    assert_eq!(retried, answer);

    // The desktop joins, then maps the key: the context arrives.
    let mut desktop = connector.socket().await;
    desktop.join(conversation).await.unwrap();
    map_key(&connector, "+15559876", conversation).await;
    let event = next_event(&mut desktop).await;
    assert_eq!(event["conversation_name"], routed);
    let context = context_of(&event);
    assert_eq!(context["parameters"]["reason"], "refund");
    assert_eq!(context["callerId"], "+15559876");

    // Mapping again (a retried POST, a second connector) publishes nothing more.
    map_key(&connector, "+15559876", conversation).await;
    let second = TestConnector::builder().redis(&redis).spawn().await;
    map_key(&second, "+15559876", conversation).await;
    assert_eq!(kept(interceptor.bus(), routed).await.len(), 1);

    // The next call of the session finds the conversation through the key directly.
    let mut later = cx_request("d-later", json!({"reason": "refund"}));
    later["payload"] = json!({"telephony": {"caller_id": "+15559876"}});
    let (_, answer) = standard(&interceptor, &later).await;
    assert_eq!(parameters(&answer), &published_to(routed));
    assert_eq!(next_event(&mut desktop).await["conversation_name"], routed);
    assert_eq!(kept(interceptor.bus(), routed).await.len(), 2);
    assert_eq!(
        interceptor
            .cx_webhook()
            .metrics()
            .calls(WebhookKind::Standard, Outcome::Pending),
        1
    );
}

#[tokio::test]
async fn the_latest_context_under_a_key_is_the_one_published() {
    let redis = RedisServer::start();
    let (interceptor, _secret) = interceptor(&redis, &[]).await;
    let connector = TestConnector::builder().redis(&redis).spawn().await;
    for (id, page) in [("d-a", "Collect reason"), ("d-b", "Transfer to an agent")] {
        let mut request = cx_request(id, json!({"conversation_integration_key": "call-77"}));
        request["pageInfo"]["displayName"] = json!(page);
        let (_, answer) = standard(&interceptor, &request).await;
        assert_eq!(parameters(&answer), &pending());
    }
    map_key(&connector, "call-77", "projects/p/conversations/latest").await;
    let events = kept(interceptor.bus(), "projects/p/conversations/latest").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        context_of(&events[0])["page"]["displayName"],
        "Transfer to an agent"
    );
}

#[tokio::test]
async fn a_retried_call_publishes_once_and_gets_the_same_answer() {
    let redis = RedisServer::start();
    let (interceptor, _secret) = interceptor(&redis, &[]).await;
    let request = cx_request(
        "d-retry",
        json!({"agent_assist_conversation": "projects/p/conversations/retry"}),
    );
    let first = standard(&interceptor, &request).await;
    let second = standard(&interceptor, &request).await;
    assert_eq!(first.0, 200);
    assert_eq!(first, second);
    assert_eq!(
        kept(interceptor.bus(), "projects/p/conversations/retry")
            .await
            .len(),
        1
    );

    // Another tag of the same response is another call.
    let mut other_tag = request.clone();
    other_tag["fulfillmentInfo"]["tag"] = json!("second-tag");
    assert_eq!(standard(&interceptor, &other_tag).await.0, 200);
    assert_eq!(
        kept(interceptor.bus(), "projects/p/conversations/retry")
            .await
            .len(),
        2
    );

    // Concurrent retries (the first still running when CX gives up and calls again).
    let mut racing = request.clone();
    racing["detectIntentResponseId"] = json!("d-race");
    let answers = futures::future::join_all((0..8).map(|_| standard(&interceptor, &racing))).await;
    assert!(
        answers.iter().all(|a| a == &answers[0] && a.0 == 200),
        "{answers:?}"
    );
    assert_eq!(
        kept(interceptor.bus(), "projects/p/conversations/retry")
            .await
            .len(),
        3
    );

    let metrics = interceptor.cx_webhook().metrics();
    let handled: u64 = [Outcome::Published, Outcome::Duplicate, Outcome::Replayed]
        .into_iter()
        .map(|o| metrics.calls(WebhookKind::Standard, o))
        .sum();
    assert_eq!(handled, 11);
    assert_eq!(metrics.calls(WebhookKind::Standard, Outcome::Published), 3);
}

#[tokio::test]
async fn the_answer_stays_under_64_kib_whatever_the_request_holds() {
    let redis = RedisServer::start();
    let (interceptor, _secret) = interceptor(&redis, &[]).await;
    // 200 KiB of session parameters: echoed, they would be three times CX's limit.
    let mut parameters_in = serde_json::Map::new();
    parameters_in.insert(
        "agent_assist_conversation".into(),
        json!("projects/p/conversations/big"),
    );
    for i in 0..50 {
        parameters_in.insert(format!("notes_{i}"), json!("x".repeat(4096)));
    }
    let request = cx_request("d-big", Value::Object(parameters_in));
    let response = reqwest::Client::new()
        .post(interceptor.url(STANDARD))
        .header("authorization", SECRET)
        .header("content-type", "application/json")
        .body(request.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "CX needs a JSON answer"
    );
    let body = response.bytes().await.unwrap();
    assert!(body.len() < 64 * 1024, "{} bytes", body.len());
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        parameters(&answer),
        &published_to("projects/p/conversations/big")
    );
    // The desktop still gets all of it.
    let events = kept(interceptor.bus(), "projects/p/conversations/big").await;
    assert_eq!(
        context_of(&events[0])["parameters"]["notes_49"]
            .as_str()
            .unwrap()
            .len(),
        4096
    );
}

// --- the flexible webhook ----------------------------------------------------------------

#[tokio::test]
async fn the_flexible_webhook_takes_query_parameters_and_a_body() {
    let redis = RedisServer::start();
    let (interceptor, _secret) = interceptor(&redis, &[]).await;
    let connector = TestConnector::builder().redis(&redis).spawn().await;
    map_key(&connector, "call-9", "projects/p/conversations/flex-key").await;

    // GET with everything in the query string.
    let (status, answer) = call(
        &interceptor,
        reqwest::Method::GET,
        &format!("{FLEXIBLE}?conversation=projects/p/conversations/flex&reason=late%20delivery"),
        Some(SECRET),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, published_to("projects/p/conversations/flex"));
    let events = kept(interceptor.bus(), "projects/p/conversations/flex").await;
    assert_eq!(
        context_of(&events[0]),
        json!({
            "source": "dialogflow-cx-flexible-webhook",
            "method": "GET",
            "query": {"conversation": "projects/p/conversations/flex", "reason": "late delivery"},
            "body": null,
        })
    );

    // POST with a body, routed by an integration key; the same body again is the same call.
    let body = json!({"reason": "refund", "amount": 42.5, "verified": true}).to_string();
    let path = format!("{FLEXIBLE}?integration_key=call-9");
    let first = call(
        &interceptor,
        reqwest::Method::POST,
        &path,
        Some(SECRET),
        Some(body.clone()),
    )
    .await;
    let again = call(
        &interceptor,
        reqwest::Method::POST,
        &path,
        Some(SECRET),
        Some(body),
    )
    .await;
    assert_eq!(first.0, 200);
    assert_eq!(first.1, published_to("projects/p/conversations/flex-key"));
    assert_eq!(first, again);
    // PUT and PATCH are taken too, and a different body is a different call.
    for method in [reqwest::Method::PUT, reqwest::Method::PATCH] {
        let (status, _) = call(
            &interceptor,
            method.clone(),
            &path,
            Some(SECRET),
            Some(json!({"method": method.as_str()}).to_string()),
        )
        .await;
        assert_eq!(status, 200, "{method}");
    }
    let events = kept(interceptor.bus(), "projects/p/conversations/flex-key").await;
    assert_eq!(events.len(), 3);
    let context = context_of(&events[0]);
    assert_eq!(context["method"], "POST");
    assert_eq!(
        context["body"],
        json!({"reason": "refund", "amount": 42.5, "verified": true})
    );

    // An unmapped key: kept, as for the standard webhook.
    let (status, answer) = call(
        &interceptor,
        reqwest::Method::POST,
        &format!("{FLEXIBLE}?integration_key=not-yet"),
        Some(SECRET),
        Some("{}".into()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer, pending());
    let metrics = interceptor.cx_webhook().metrics();
    assert_eq!(metrics.calls(WebhookKind::Flexible, Outcome::Published), 4);
    assert_eq!(metrics.calls(WebhookKind::Flexible, Outcome::Replayed), 1);
}

// --- errors ------------------------------------------------------------------------------

#[tokio::test]
async fn every_error_has_its_status() {
    let redis = RedisServer::start();
    let (interceptor, _secret) = interceptor(&redis, &[]).await;
    let post = |path: &'static str, auth: Option<&'static str>, body: String| {
        call(&interceptor, reqwest::Method::POST, path, auth, Some(body))
    };
    let good = cx_request(
        "d-err",
        json!({"agent_assist_conversation": "projects/p/conversations/e"}),
    );

    // 400: malformed JSON, or JSON that is not a CX request.
    for (body, reason) in [
        ("{not json".to_owned(), "not JSON"),
        ("[1, 2]".to_owned(), "not a JSON object"),
        (json!({"hello": "world"}).to_string(), "no detectIntentResponseId"),
        (
            json!({"detectIntentResponseId": "d", "sessionInfo": {"session": "s", "parameters": "x"}})
                .to_string(),
            "not a Dialogflow CX WebhookRequest",
        ),
        (
            cx_request("d", json!({"agent_assist_conversation": "not/a/conversation"})).to_string(),
            "agent_assist_conversation",
        ),
    ] {
        let (status, answer) = post(STANDARD, Some(SECRET), body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(reason), "{answer} / {reason}");
    }
    let (status, _) = post(FLEXIBLE, Some(SECRET), "[1]".into()).await;
    assert_eq!(status, 400);

    // 401: no credentials, or wrong ones; checked before the body is even read.
    for auth in [None, Some("Bearer wrong"), Some("Basic Y3g6cGFzcw==")] {
        let (status, answer) = post(STANDARD, auth, good.to_string()).await;
        assert_eq!(status, 401, "{auth:?}: {answer}");
        let (status, _) = post(STANDARD, auth, "{not json".into()).await;
        assert_eq!(status, 401);
    }

    // 404: unknown paths, and methods the path does not take.
    let (status, _) = post(
        "/dialogflow-cx-webhook/other",
        Some(SECRET),
        good.to_string(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &interceptor,
        reqwest::Method::GET,
        STANDARD,
        Some(SECRET),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &interceptor,
        reqwest::Method::DELETE,
        FLEXIBLE,
        Some(SECRET),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Nothing was published by any of them, and nothing above was a 500.
    assert!(kept(interceptor.bus(), "projects/p/conversations/e")
        .await
        .is_empty());
    let metrics = interceptor.cx_webhook().metrics();
    assert_eq!(metrics.calls(WebhookKind::Standard, Outcome::Malformed), 5);
    assert_eq!(
        metrics.calls(WebhookKind::Standard, Outcome::Unauthenticated),
        6
    );
    assert_eq!(metrics.calls(WebhookKind::Standard, Outcome::Internal), 0);
}

#[tokio::test]
async fn no_input_gets_a_500() {
    let redis = RedisServer::start();
    let (interceptor, _secret) = interceptor(&redis, &[]).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let huge = format!(r#"{{"x":"{}"}}"#, "y".repeat(2 * 1024 * 1024));
    let bodies = [
        String::new(),
        "\u{0}\u{1}garbage".to_owned(),
        deep.clone(),
        format!(
            r#"{{"detectIntentResponseId":"d","sessionInfo":{{"session":"s","parameters":{deep}}}}}"#
        ),
        huge,
        json!({"detectIntentResponseId": "", "sessionInfo": {"session": "s"}}).to_string(),
        json!({"detectIntentResponseId": "d", "sessionInfo": {"session": "s",
            "parameters": {"conversation_integration_key": "k".repeat(5000)}}})
        .to_string(),
        json!({"detectIntentResponseId": "d", "sessionInfo": {"session": "s",
            "parameters": {"conversation_integration_key": ["a"]}}})
        .to_string(),
        json!({"detectIntentResponseId": "d", "sessionInfo": {"session": "s"},
            "payload": {"telephony": {"caller_id": {"nested": 1}}}})
        .to_string(),
    ];
    for body in bodies {
        for path in [STANDARD, FLEXIBLE] {
            let (status, answer) = call(
                &interceptor,
                reqwest::Method::POST,
                path,
                Some(SECRET),
                Some(body.clone()),
            )
            .await;
            assert!(
                status == 200 || status == 400,
                "{path} {:?}: {status} {answer}",
                &body[..body.len().min(60)]
            );
        }
    }
    let (status, _) = call(
        &interceptor,
        reqwest::Method::GET,
        &format!("{FLEXIBLE}?conversation=%FF%FE"),
        Some(SECRET),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let metrics = interceptor.cx_webhook().metrics();
    assert_eq!(metrics.calls(WebhookKind::Standard, Outcome::Internal), 0);
    assert_eq!(metrics.calls(WebhookKind::Flexible, Outcome::Internal), 0);
}

#[tokio::test]
async fn redis_down_is_503_within_the_deadline() {
    let mut redis = RedisServer::start();
    let (interceptor, _secret) = interceptor(
        &redis,
        &[
            ("CX_WEBHOOK_DEADLINE_MS", "500"),
            ("REDIS_TIMEOUT_MS", "10000"),
        ],
    )
    .await;
    let request = |id: &str| {
        cx_request(
            id,
            json!({"agent_assist_conversation": "projects/p/conversations/slow"}),
        )
    };
    assert_eq!(standard(&interceptor, &request("d-warm")).await.0, 200);

    // Redis that does not answer (paused for 1.5 s; nothing, not even UNPAUSE, runs meanwhile):
    // the deadline, not Redis's 10 s timeout, decides.
    assert!(redis.command("CLIENT PAUSE 1500 ALL").starts_with("+OK"));
    let started = Instant::now();
    let (status, answer) = standard(&interceptor, &request("d-paused")).await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("retry later"));
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1400),
        "answered after {took:?}"
    );

    // Redis gone: 503 as well, within the deadline.
    redis.stop();
    let started = Instant::now();
    let (status, _) = standard(&interceptor, &request("d-gone")).await;
    assert_eq!(status, 503);
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
    assert!(
        interceptor
            .cx_webhook()
            .metrics()
            .calls(WebhookKind::Standard, Outcome::Unavailable)
            >= 2
    );

    // Back: the call CX retries is handled.
    redis.restart();
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let (status, _) = standard(&interceptor, &request("d-gone")).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Redis is back but the webhook still answers {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // the connection manager reconnects
    }
}

// --- authentication ----------------------------------------------------------------------

/// An interceptor accepting any of the three credentials.
struct AllCredentials {
    interceptor: TestInterceptor,
    jwks: JwksStandIn,
    _files: (SecretFile, SecretFile),
}

async fn all_credentials(redis: &RedisServer) -> AllCredentials {
    let jwks = JwksStandIn::start(&[&KEY]).await;
    let header = SecretFile::new(&format!("{SECRET}\n"));
    let basic = SecretFile::new("dialogflow-cx:b4sic-p4ss\n");
    let interceptor = TestInterceptor::spawn(Settings::from_pairs([
        ("REDIS_URL", redis.url()),
        (
            "CX_WEBHOOK_HEADER_SECRET_PATH",
            header.path().display().to_string(),
        ),
        (
            "CX_WEBHOOK_BASIC_AUTH_PATH",
            basic.path().display().to_string(),
        ),
        (
            "CX_WEBHOOK_ID_TOKEN_AUDIENCE",
            format!("{AUDIENCE}, {FLEXIBLE_AUDIENCE}"),
        ),
        ("CX_WEBHOOK_SERVICE_AGENT", SERVICE_AGENT.to_owned()),
        ("GOOGLE_JWKS_URL", jwks.url().to_owned()),
    ]))
    .await;
    AllCredentials {
        interceptor,
        jwks,
        _files: (header, basic),
    }
}

fn basic(credentials: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

fn id_token(key: &TestKey, audience: &str, email: &str) -> String {
    format!("Bearer {}", key.mint(&google_claims(audience, email)))
}

#[tokio::test]
async fn each_credential_is_accepted_and_the_wrong_ones_refused() {
    let redis = RedisServer::start();
    let setup = all_credentials(&redis).await;
    let interceptor = &setup.interceptor;
    let body = cx_request(
        "d-auth",
        json!({"agent_assist_conversation": "projects/p/conversations/auth"}),
    )
    .to_string();
    let cases: Vec<(String, u16)> = vec![
        (SECRET.to_owned(), 200),
        (basic("dialogflow-cx:b4sic-p4ss"), 200),
        (id_token(&KEY, AUDIENCE, SERVICE_AGENT), 200),
        // Wrong secret, wrong password, wrong user: 401.
        ("Bearer cx-static-secret-012345678".to_owned(), 401),
        (basic("dialogflow-cx:b4sic-p4sS"), 401),
        (basic("someone:b4sic-p4ss"), 401),
        // A token signed by a key Google never published: 401.
        (id_token(&FORGED, AUDIENCE, SERVICE_AGENT), 401),
        // Genuine tokens of another identity: 403.
        (
            id_token(&KEY, "https://elsewhere.example/hook", SERVICE_AGENT),
            403,
        ),
        (
            id_token(
                &KEY,
                AUDIENCE,
                "service-999@gcp-sa-dialogflow.iam.gserviceaccount.com",
            ),
            403,
        ),
    ];
    for (authorization, expected) in cases {
        let (status, answer) = call(
            interceptor,
            reqwest::Method::POST,
            STANDARD,
            Some(&authorization),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, expected, "{authorization}: {answer}");
        if expected != 200 {
            let reason = answer["error"].as_str().unwrap();
            assert!(
                !reason.contains("b4sic-p4ss") && !reason.contains("cx-static-secret"),
                "{reason}"
            );
        }
    }
    // The flexible webhook's own URL is an accepted audience too.
    let (status, _) = call(
        interceptor,
        reqwest::Method::GET,
        &format!("{FLEXIBLE}?conversation=projects/p/conversations/auth"),
        Some(&id_token(&KEY, FLEXIBLE_AUDIENCE, SERVICE_AGENT)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let metrics = interceptor.cx_webhook().metrics();
    assert_eq!(metrics.calls(WebhookKind::Standard, Outcome::Forbidden), 2);
    assert_eq!(
        metrics.calls(WebhookKind::Standard, Outcome::Unauthenticated),
        4
    );
}

#[tokio::test]
async fn google_keys_out_of_reach_is_503_not_401() {
    let redis = RedisServer::start();
    let setup = all_credentials(&redis).await;
    setup.jwks.set_up(false);
    let body = cx_request("d-keys", json!({})).to_string();
    let (status, _) = call(
        &setup.interceptor,
        reqwest::Method::POST,
        STANDARD,
        Some(&id_token(&KEY, AUDIENCE, SERVICE_AGENT)),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 503);
    assert!(setup.jwks.fetches() >= 1);
    // The static secret still works meanwhile.
    let (status, _) = call(
        &setup.interceptor,
        reqwest::Method::POST,
        STANDARD,
        Some(SECRET),
        Some(body),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn with_no_credentials_configured_every_call_is_refused() {
    let redis = RedisServer::start();
    let interceptor = TestInterceptor::on(&redis).await;
    let body = cx_request(
        "d-closed",
        json!({"agent_assist_conversation": "projects/p/conversations/c"}),
    )
    .to_string();
    for authorization in [None, Some(SECRET), Some("Basic YTpi")] {
        let (status, answer) = call(
            &interceptor,
            reqwest::Method::POST,
            STANDARD,
            authorization,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 401, "{answer}");
        assert!(answer["error"]
            .as_str()
            .unwrap()
            .contains("no credentials configured"));
    }
    assert!(kept(interceptor.bus(), "projects/p/conversations/c")
        .await
        .is_empty());
}

#[test]
fn unusable_credential_settings_stop_the_interceptor() {
    let empty = SecretFile::new("\n");
    let cases = [
        (
            Settings::from_pairs([("CX_WEBHOOK_HEADER_SECRET_PATH", "/nonexistent/cx-secret")]),
            "CX_WEBHOOK_HEADER_SECRET_PATH",
        ),
        (
            Settings::from_pairs([(
                "CX_WEBHOOK_BASIC_AUTH_PATH",
                empty.path().display().to_string(),
            )]),
            "CX_WEBHOOK_BASIC_AUTH_PATH",
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    for (settings, setting) in cases {
        let config = InterceptorConfig::from_settings(&settings).unwrap();
        let error = Interceptor::build(config, &CancellationToken::new())
            .err()
            .expect("refused");
        assert!(format!("{error:#}").contains(setting), "{error:#}");
    }
    let error = InterceptorConfig::from_settings(&Settings::from_pairs([(
        "CX_WEBHOOK_ID_TOKEN_AUDIENCE",
        AUDIENCE,
    )]))
    .unwrap_err();
    assert_eq!(error.variable, "CX_WEBHOOK_SERVICE_AGENT");
}
