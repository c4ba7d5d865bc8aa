//! Runs the real `post-sample-events` binary against a stand-in push endpoint on loopback and
//! checks what it sent: the route per kind, the Pub/Sub envelope, the decoded sample with the
//! conversation replaced, the recognition attributes, the bearer token, unique message ids, the
//! CX webhook request, and the exit status when the endpoint refuses a post.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use serde_json::Value;
use tokio::net::TcpListener;

const PLACEHOLDER: &str = "projects/demo-project/locations/global/conversations/demo-conversation";
const CONVERSATION: &str = "projects/test-project/locations/global/conversations/c-42";

/// One request the stand-in received.
#[derive(Debug, Clone)]
struct Recorded {
    kind: String,
    authorization: Option<String>,
    body: Value,
}

#[derive(Clone, Default)]
struct StandIn {
    recorded: Arc<Mutex<Vec<Recorded>>>,
    /// Kind whose endpoint answers 500.
    failing_kind: Option<&'static str>,
}

async fn record(
    State(stand_in): State<StandIn>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let status = if stand_in.failing_kind == Some(kind.as_str()) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    stand_in.recorded.lock().unwrap().push(Recorded {
        kind,
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        body,
    });
    status
}

/// Serves the stand-in on a free loopback port; returns its base URL.
async fn start(stand_in: StandIn) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/{kind}", post(record))
        .with_state(stand_in);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Runs the binary to completion.
async fn post_sample_events(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_post-sample-events"))
        .args(args)
        .output()
        .await
        .expect("run post-sample-events")
}

/// A sample file as the test expects it on the wire: the placeholder replaced textually.
fn expected_data(sample: &str) -> Value {
    serde_json::from_str(&sample.replace(PLACEHOLDER, CONVERSATION)).unwrap()
}

fn decode_data(body: &Value) -> Value {
    let data = body["message"]["data"].as_str().expect("message.data");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("message.data is base64");
    serde_json::from_slice(&bytes).expect("message.data is JSON")
}

#[tokio::test]
async fn posts_every_sample_as_a_pubsub_push() {
    let stand_in = StandIn::default();
    let url = start(stand_in.clone()).await;

    let output = post_sample_events(&[
        "--url",
        &url,
        "--conversation",
        CONVERSATION,
        "--bearer",
        "push-token",
    ])
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");

    let mut recorded = stand_in.recorded.lock().unwrap().clone();
    let kinds: Vec<&str> = recorded.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "human-agent-assistant-event",
            "conversation-lifecycle-event",
            "new-message-event",
            "new-recognition-result-notification-event",
            "dialogflow-cx-webhook",
        ]
    );

    // The virtual agent's sample is a CX WebhookRequest, POSTed as CX calls the webhook.
    let webhook = recorded.pop().unwrap();
    assert!(stdout.contains("virtual-agent-event: 204"), "{stdout}");
    assert_eq!(webhook.authorization.as_deref(), Some("Bearer push-token"));
    let mut expected: Value = expected_data(include_str!("../samples/virtual-agent-event.json"));
    let call_id = webhook.body["detectIntentResponseId"].as_str().unwrap();
    assert!(!call_id.is_empty() && call_id != expected["detectIntentResponseId"]);
    expected["detectIntentResponseId"] = call_id.into();
    assert_eq!(webhook.body, expected);
    assert_eq!(
        webhook.body["sessionInfo"]["parameters"]["agent_assist_conversation"],
        CONVERSATION
    );
    let samples = [
        include_str!("../samples/human-agent-assistant-event.json"),
        include_str!("../samples/conversation-lifecycle-event.json"),
        include_str!("../samples/new-message-event.json"),
        include_str!("../samples/new-recognition-result-notification-event.json"),
    ];

    let mut message_ids = Vec::new();
    for (request, sample) in recorded.iter().zip(samples) {
        let kind = &request.kind;
        assert!(
            stdout.contains(&format!("{kind}: 204")),
            "status printed for {kind}: {stdout}"
        );
        assert_eq!(request.authorization.as_deref(), Some("Bearer push-token"));

        let message = &request.body["message"];
        let message_id = message["messageId"].as_str().expect("messageId");
        assert!(!message_id.is_empty());
        message_ids.push(message_id.to_owned());
        let publish_time = message["publishTime"].as_str().expect("publishTime");
        assert!(
            chrono::DateTime::parse_from_rfc3339(publish_time).is_ok()
                && publish_time.ends_with('Z'),
            "publishTime {publish_time}"
        );
        assert_eq!(
            request.body["subscription"],
            format!("projects/test-project/subscriptions/agent-assist-{kind}")
        );

        let data = decode_data(&request.body);
        assert_eq!(data, expected_data(sample), "{kind}");
        assert_eq!(data["conversation"], CONVERSATION);

        let attributes = message["attributes"].as_object().expect("attributes");
        if kind == "new-recognition-result-notification-event" {
            assert_eq!(attributes["participant_role"], "END_USER");
            assert!(attributes["message_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()));
        } else {
            assert!(attributes.is_empty(), "{kind}: {attributes:?}");
        }
    }
    message_ids.sort();
    message_ids.dedup();
    assert_eq!(message_ids.len(), 4, "message ids are unique");
}

#[tokio::test]
async fn repeated_runs_use_new_message_ids_and_kind_selects() {
    let stand_in = StandIn::default();
    let url = start(stand_in.clone()).await;
    for _ in 0..2 {
        let output = post_sample_events(&["--url", &url, "--kind", "new-message-event"]).await;
        assert!(output.status.success(), "{output:?}");
    }
    let recorded = stand_in.recorded.lock().unwrap().clone();
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|r| r.kind == "new-message-event"));
    assert!(recorded.iter().all(|r| r.authorization.is_none()));
    assert_ne!(
        recorded[0].body["message"]["messageId"],
        recorded[1].body["message"]["messageId"]
    );
    // Without --conversation the placeholder is posted as it is.
    assert_eq!(decode_data(&recorded[0].body)["conversation"], PLACEHOLDER);
}

#[tokio::test]
async fn a_refused_post_fails_the_run_but_the_others_are_still_sent() {
    let stand_in = StandIn {
        failing_kind: Some("conversation-lifecycle-event"),
        ..StandIn::default()
    };
    let url = start(stand_in.clone()).await;
    let output = post_sample_events(&["--url", &url]).await;
    assert!(!output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("conversation-lifecycle-event: 500"),
        "{stdout}"
    );
    assert_eq!(stand_in.recorded.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_the_run() {
    // Bind then drop: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let output = post_sample_events(&["--url", &url, "--kind", "new-message-event"]).await;
    assert!(!output.status.success(), "{output:?}");
}

#[tokio::test]
async fn usage_errors_exit_with_2() {
    let output = post_sample_events(&["--kind", "new-message-event"]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--url is required"));
}
