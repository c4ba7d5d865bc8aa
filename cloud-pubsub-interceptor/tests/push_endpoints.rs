//! The interceptor's real router over real HTTP, against a real `redis-server`.

use std::time::Duration;

use agent_assist_core::{ConversationBus, ConversationName, EventType};
use agent_assist_intake::Outcome;
use agent_assist_test_support::{PushEnvelope, RedisServer, TestInterceptor};
use base64::Engine;
use serde_json::{json, Value};

const MAX_BODY: usize = 16 * 1024 * 1024;

/// A push of `data` as Pub/Sub sends it, with a message id and a publish time.
fn push_body(data: &str, message_id: &str, attributes: &[(&str, &str)]) -> String {
    let mut envelope = PushEnvelope::new(data)
        .message_id(message_id)
        .publish_time("2026-11-23T13:00:00.123Z");
    for (name, value) in attributes {
        envelope = envelope.attribute(*name, *value);
    }
    envelope.to_body()
}

fn dialogflow_event(conversation: &str) -> String {
    json!({"conversation": conversation, "type": "CONVERSATION_STARTED"}).to_string()
}

async fn kept(bus: &ConversationBus, conversation: &str) -> Vec<Value> {
    let history = bus
        .history(&ConversationName::parse(conversation).unwrap(), Some(0))
        .await
        .unwrap();
    history
        .events
        .iter()
        .map(|e| serde_json::from_str(e.json()).unwrap())
        .collect()
}

#[tokio::test]
async fn each_endpoint_publishes_the_event_field_by_field() {
    let redis = RedisServer::start();
    let interceptor = TestInterceptor::on(&redis).await;
    let conversation = "projects/p/locations/global/conversations/fields";
    let data = dialogflow_event(conversation);
    let before = chrono::Utc::now().timestamp();
    for (i, event_type) in EventType::PUBSUB.into_iter().enumerate() {
        let body = push_body(
            &data,
            &format!("m-{i}"),
            &[
                ("participant_role", "END_USER"),
                ("message_id", "transcript-7"),
            ],
        );
        let (status, text) = interceptor.post(&event_type.route(), body).await;
        assert_eq!(status, 204, "{event_type}: {text}");
    }
    let events = kept(interceptor.bus(), "projects/p/conversations/fields").await;
    assert_eq!(events.len(), 4);
    let first_offset = events[0]["offset"].as_u64().unwrap();
    for (i, (event, event_type)) in events.iter().zip(EventType::PUBSUB).enumerate() {
        let object = event.as_object().unwrap();
        let mut expected_keys = vec![
            "ack_time",
            "conversation_name",
            "data",
            "data_type",
            "message_id",
            "offset",
            "publish_time",
        ];
        if event_type == EventType::NewRecognitionResultNotificationEvent {
            expected_keys.extend(["new_recognition_result_message_id", "participant_role"]);
            assert_eq!(event["participant_role"], "END_USER");
            assert_eq!(event["new_recognition_result_message_id"], "transcript-7");
        }
        expected_keys.sort();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, expected_keys);
        assert_eq!(
            event["conversation_name"],
            "projects/p/conversations/fields"
        );
        assert_eq!(
            event["data"],
            data.as_str(),
            "data is the decoded JSON text, unchanged"
        );
        assert_eq!(event["data_type"], event_type.as_str());
        assert_eq!(event["message_id"], format!("m-{i}"));
        assert_eq!(event["publish_time"], "2026-11-23T13:00:00.123Z");
        assert_eq!(event["offset"].as_u64().unwrap(), first_offset + i as u64);
        let ack_time = event["ack_time"].as_str().unwrap();
        let parsed = chrono::NaiveDateTime::parse_from_str(ack_time, "%Y-%m-%dT%H:%M:%SZ")
            .unwrap_or_else(|e| panic!("ack_time {ack_time}: {e}"));
        assert!(parsed.and_utc().timestamp() >= before);
    }
    assert_eq!(
        interceptor
            .intake()
            .metrics()
            .pushes(EventType::NewMessageEvent, Outcome::Accepted),
        1
    );
}

#[tokio::test]
async fn malformed_pushes_get_400_with_a_reason_and_are_counted() {
    let redis = RedisServer::start();
    let interceptor = TestInterceptor::on(&redis).await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cases = [
        ("not json".to_owned(), "not a JSON push envelope"),
        ("{}".to_owned(), "no message"),
        (json!({"message": {}}).to_string(), "no data"),
        (
            json!({"message": {"data": "%%%"}}).to_string(),
            "not base64",
        ),
        (
            json!({"message": {"data": b64("nope")}}).to_string(),
            "not a JSON object",
        ),
        (
            json!({"message": {"data": b64("{\"a\":1}")}}).to_string(),
            "no conversation",
        ),
    ];
    for (body, reason) in &cases {
        let (status, text) = interceptor.post("/new-message-event", body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(text.starts_with("Bad Request: "), "{text}");
        assert!(text.contains(reason), "{text} should mention {reason}");
    }
    assert_eq!(
        interceptor
            .intake()
            .metrics()
            .pushes(EventType::NewMessageEvent, Outcome::Malformed),
        cases.len() as u64
    );
    // Unknown paths and methods are not push endpoints.
    let (status, _) = interceptor.post("/no-such-event", "{}").await;
    assert_eq!(status, 404);
    // The virtual agent's events come through the CX webhook, never as a push.
    let (status, _) = interceptor.post("/virtual-agent-event", "{}").await;
    assert_eq!(status, 404);
    let response = reqwest::get(interceptor.url("/new-message-event"))
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn oversized_bodies_get_413_and_10_mib_messages_fit() {
    let redis = RedisServer::start();
    let interceptor = TestInterceptor::on(&redis).await;
    let (status, _) = interceptor
        .post("/new-message-event", vec![b' '; MAX_BODY + 1])
        .await;
    assert_eq!(status, 413);
    // A 10 MiB Pub/Sub message (the largest there is) is accepted.
    let filler = "x".repeat(10 * 1024 * 1024 - 200);
    let data =
        json!({"conversation": "projects/p/conversations/big", "filler": filler}).to_string();
    let (status, text) = interceptor
        .post("/new-message-event", push_body(&data, "big-1", &[]))
        .await;
    assert_eq!(status, 204, "{text}");
}

#[tokio::test]
async fn redeliveries_are_acknowledged_and_published_once() {
    let redis = RedisServer::start();
    let interceptor = TestInterceptor::on(&redis).await;
    let data = dialogflow_event("projects/p/conversations/redelivered");
    for _ in 0..3 {
        let (status, _) = interceptor
            .post(
                "/human-agent-assistant-event",
                push_body(&data, "same-id", &[]),
            )
            .await;
        assert_eq!(status, 204);
    }
    assert_eq!(
        kept(interceptor.bus(), "projects/p/conversations/redelivered")
            .await
            .len(),
        1
    );
    let metrics = interceptor.intake().metrics();
    assert_eq!(
        metrics.pushes(EventType::HumanAgentAssistantEvent, Outcome::Accepted),
        1
    );
    assert_eq!(
        metrics.pushes(EventType::HumanAgentAssistantEvent, Outcome::Duplicate),
        2
    );
    let text = reqwest::get(interceptor.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"interceptor_pushes_total{type="human-agent-assistant-event",outcome="duplicate"} 2"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn redis_down_means_503_and_redelivery_after_restart_loses_nothing() {
    let mut redis = RedisServer::start();
    let interceptor = TestInterceptor::on(&redis).await;
    let conversation = "projects/p/conversations/outage";
    let data = dialogflow_event(conversation);
    let (status, _) = interceptor
        .post("/new-message-event", push_body(&data, "before", &[]))
        .await;
    assert_eq!(status, 204);
    let ready = reqwest::get(interceptor.url("/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);

    redis.stop();
    let (status, text) = interceptor
        .post("/new-message-event", push_body(&data, "during", &[]))
        .await;
    assert_eq!(status, 503, "{text}");
    let ready = reqwest::get(interceptor.url("/ready")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let status = reqwest::get(interceptor.url("/status")).await.unwrap();
    assert_eq!(status.status(), 200, "/status does not depend on Redis");

    redis.restart();
    // Pub/Sub redelivers the refused push until it is accepted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = interceptor
            .post("/new-message-event", push_body(&data, "during", &[]))
            .await;
        if status == 204 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            tokio::time::Instant::now() < deadline,
            "Redis did not come back"
        );
    }
    let events = kept(interceptor.bus(), conversation).await;
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["message_id"].as_str().unwrap())
        .collect();
    // Redis restarted empty (no persistence in the test): the redelivered event is there.
    assert_eq!(ids, vec!["during"]);
}

/// Keys of different kinds cannot collide (issue 10). With the earlier layout
/// (`agent-assist:<conversation>:seq`, `agent-assist:dedup:<type>:<messageId>`), the message id
/// `X:seq` and the conversation `dedup:new-message-event:X` named the same key: one order
/// answered 503 (WRONGTYPE) forever, the other dropped a genuine event as a redelivery.
#[tokio::test]
async fn hostile_message_ids_and_names_cannot_reach_other_keys() {
    let redis = RedisServer::start();
    let interceptor = TestInterceptor::on(&redis).await;
    let genuine = dialogflow_event("projects/p/conversations/genuine");

    // A conversation shaped like another kind of key is not a conversation: 400, counted.
    let crafted = dialogflow_event("dedup:new-message-event:Y");
    let (status, text) = interceptor
        .post("/new-message-event", push_body(&crafted, "c-1", &[]))
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("invalid conversation"), "{text}");
    // The id that would have matched its key is an ordinary id of a genuine event.
    let (status, text) = interceptor
        .post("/new-message-event", push_body(&genuine, "Y:seq", &[]))
        .await;
    assert_eq!(status, 204, "{text}");
    // And the other order: the id first, then a genuine event of the same conversation.
    let (status, _) = interceptor
        .post("/new-message-event", push_body(&genuine, "X:seq", &[]))
        .await;
    assert_eq!(status, 204);
    let (status, text) = interceptor
        .post("/new-message-event", push_body(&genuine, "X2", &[]))
        .await;
    assert_eq!(status, 204, "{text}");
    let ids: Vec<String> = kept(interceptor.bus(), "projects/p/conversations/genuine")
        .await
        .iter()
        .map(|e| e["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["Y:seq", "X:seq", "X2"]);

    // Unbounded message ids are refused before they reach a key or a log line.
    let (status, text) = interceptor
        .post(
            "/new-message-event",
            push_body(&genuine, &"9".repeat(257), &[]),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("message id is longer than 256 bytes"),
        "{text}"
    );
    assert_eq!(
        interceptor
            .intake()
            .metrics()
            .pushes(EventType::NewMessageEvent, Outcome::Malformed),
        2
    );
    // Every key the backend wrote is under the conversation's hash tag.
    let keys = redis.command("KEYS *");
    assert!(
        keys.contains(
            "agent-assist:{projects/p/conversations/genuine}:dedup:new-message-event:X:seq"
        ),
        "{keys}"
    );
    assert!(!keys.contains("agent-assist:dedup:"), "{keys}");
}
