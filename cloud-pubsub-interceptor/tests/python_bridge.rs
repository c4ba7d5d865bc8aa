//! `PYTHON_CONNECTOR_BRIDGE` (issue 11): our interceptor also delivers to Python connectors on
//! the same Redis, so the interceptor can be replaced before the connectors with every desktop
//! served throughout. The stand-in below listens exactly as the Python `ui-connector` does
//! (GoogleCloudPlatform/agent-assist-integrations @9425334, `aa-integration-backend`):
//! - on join it writes `SET <conversation without location> <SERVER_ID>` (`ui-connector/main.py`
//!   lines 274-282), and it listens with `PSUBSCRIBE <SERVER_ID>:*` (lines 69-71);
//! - it delivers each message's JSON to the room named by its `conversation_name`, as the event
//!   named by its `data_type` (lines 40-52);
//! - the Python interceptor publishes on `<GET conversation>:<conversation>`, nothing when the key
//!   does not exist (`cloud-pubsub-interceptor/main.py` lines 111-118).

use std::time::Duration;

use agent_assist_core::EventType;
use agent_assist_test_support::{PushEnvelope, RedisServer, Settings, TestInterceptor};
use futures::StreamExt;
use serde_json::{json, Value};

/// A server id as the Python connector makes one (`main.py` line 58).
const SERVER_ID: &str = "250082.44319422945-1796098639.169693";

/// A Python connector's process: its routing key for `conversation`, and its subscription.
struct PythonConnector {
    messages: futures::stream::BoxStream<'static, redis::Msg>,
}

impl PythonConnector {
    async fn joined(redis: &RedisServer, conversation: &str) -> Self {
        let client = redis::Client::open(redis.url()).unwrap();
        let mut commands = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SET")
            .arg(conversation)
            .arg(SERVER_ID)
            .query_async(&mut commands)
            .await
            .unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.psubscribe(format!("{SERVER_ID}:*")).await.unwrap();
        Self {
            messages: pubsub.into_on_message().boxed(),
        }
    }

    /// The next message, as `(channel, payload as JSON)`; `None` if nothing comes in 2 s.
    async fn next(&mut self) -> Option<(String, Value)> {
        let message = tokio::time::timeout(Duration::from_secs(2), self.messages.next())
            .await
            .ok()??;
        let payload: String = message.get_payload().unwrap();
        Some((
            message.get_channel_name().to_owned(),
            serde_json::from_str(&payload).unwrap(),
        ))
    }
}

fn push(conversation: &str, message_id: &str) -> PushEnvelope {
    PushEnvelope::new(json!({"conversation": conversation, "n": message_id}).to_string())
        .message_id(message_id)
        .publish_time("2026-11-23T13:00:00.123Z")
        .attribute("participant_role", "END_USER")
        .attribute("message_id", "transcript-1")
}

#[tokio::test]
async fn the_bridge_delivers_to_python_connectors_once() {
    let redis = RedisServer::start();
    let interceptor = TestInterceptor::spawn(Settings::from_pairs([
        ("REDIS_URL", redis.url()),
        ("PYTHON_CONNECTOR_BRIDGE", "true".into()),
    ]))
    .await;
    let served = "projects/p/conversations/on-python";
    let mut python = PythonConnector::joined(&redis, served).await;

    let event_type = EventType::NewRecognitionResultNotificationEvent;
    let (status, _) = interceptor
        .push(
            event_type,
            &push("projects/p/locations/global/conversations/on-python", "b-1"),
        )
        .await;
    assert_eq!(status, 204);
    let (channel, payload) = python
        .next()
        .await
        .expect("the Python connector is reached");
    assert_eq!(channel, format!("{SERVER_ID}:{served}"));
    // What the Python connector reads: the room and the event name (main.py lines 43-45), and
    // the fields desktops get from the Python interceptor (main.py lines 96-108).
    assert_eq!(payload["conversation_name"], served);
    assert_eq!(payload["data_type"], event_type.as_str());
    assert_eq!(
        payload["data"],
        json!({"conversation": "projects/p/locations/global/conversations/on-python", "n": "b-1"})
            .to_string()
    );
    assert_eq!(payload["message_id"], "b-1");
    assert_eq!(payload["publish_time"], "2026-11-23T13:00:00.123Z");
    assert_eq!(payload["participant_role"], "END_USER");
    assert_eq!(payload["new_recognition_result_message_id"], "transcript-1");

    // A redelivery is not sent again; a conversation no Python connector joined is not sent.
    interceptor.push(event_type, &push(served, "b-1")).await;
    interceptor
        .push(
            event_type,
            &push("projects/p/conversations/elsewhere", "b-2"),
        )
        .await;
    interceptor.push(event_type, &push(served, "b-3")).await;
    let (_, next) = python.next().await.expect("the next event");
    assert_eq!(next["message_id"], "b-3", "nothing else came before it");

    // Our own desktops got all three as well.
    let kept = interceptor
        .bus()
        .history(
            &agent_assist_core::ConversationName::parse(served).unwrap(),
            Some(0),
        )
        .await
        .unwrap();
    assert_eq!(kept.events.len(), 2);
}

#[tokio::test]
async fn without_the_setting_python_connectors_get_nothing() {
    let redis = RedisServer::start();
    let interceptor = TestInterceptor::on(&redis).await;
    let served = "projects/p/conversations/python-off";
    let mut python = PythonConnector::joined(&redis, served).await;
    let (status, _) = interceptor
        .push(EventType::NewMessageEvent, &push(served, "off-1"))
        .await;
    assert_eq!(status, 204);
    assert!(python.next().await.is_none());
}
