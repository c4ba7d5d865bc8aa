//! Pull mode end to end against Google's own Pub/Sub emulator, where this machine has it.
//!
//! The same path as `pull_mode.rs` (publish → the interceptor's streaming pull through
//! `PUBSUB_EMULATOR_HOST` → Redis → a desktop), with Google's implementation of the service
//! instead of the fake, so the setting is honoured the way Google's clients honour it and the
//! fields of a real delivery reach the desktop. The emulator is not on any package registry:
//! where it is missing the test prints `SKIPPED: ...` on stderr.

use std::collections::HashSet;
use std::time::Duration;

use agent_assist_core::EventType;
use agent_assist_test_support::{RedisServer, Settings, TestConnector, TestInterceptor};
use cloud_pubsub_interceptor::pull::PullOutcome;
use google_cloud_pubsub::client::{Publisher, SubscriptionAdmin, TopicAdmin};
use google_cloud_pubsub::model::{DeadLetterPolicy, Message};
use pubsub_test_server::google_emulator::{report_skipped, GoogleEmulator};
use serde_json::json;

const TOPIC: &str = "projects/test-project/topics/aa-new-message-topic";
const DEAD_LETTERS: &str = "projects/test-project/topics/aa-dead-letters";
const SUBSCRIPTION: &str = "projects/test-project/subscriptions/aa-new-message-sub";
const WAIT: Duration = Duration::from_secs(20);

fn anonymous() -> google_cloud_auth::credentials::Credentials {
    google_cloud_auth::credentials::anonymous::Builder::new().build()
}

#[tokio::test]
async fn pull_mode_against_googles_emulator() -> anyhow::Result<()> {
    let Some(emulator) = GoogleEmulator::start() else {
        report_skipped();
        return Ok(());
    };
    let endpoint = emulator.endpoint();
    let topics = TopicAdmin::builder()
        .with_endpoint(&endpoint)
        .with_credentials(anonymous())
        .build()
        .await?;
    topics.create_topic().set_name(TOPIC).send().await?;
    topics.create_topic().set_name(DEAD_LETTERS).send().await?;
    SubscriptionAdmin::builder()
        .with_endpoint(&endpoint)
        .with_credentials(anonymous())
        .build()
        .await?
        .create_subscription()
        .set_name(SUBSCRIPTION)
        .set_topic(TOPIC)
        .set_ack_deadline_seconds(10)
        .set_dead_letter_policy(
            DeadLetterPolicy::new()
                .set_dead_letter_topic(DEAD_LETTERS)
                .set_max_delivery_attempts(5),
        )
        .send()
        .await?;

    let redis = RedisServer::start();
    let interceptor = TestInterceptor::spawn(Settings::from_pairs([
        ("REDIS_URL", redis.url()),
        ("PUBSUB_EMULATOR_HOST", emulator.host()),
        (
            "PUBSUB_PULL_SUBSCRIPTIONS",
            format!("new-message-event={SUBSCRIPTION}"),
        ),
        ("PUBSUB_PULL_MALFORMED_NACK_DELAY_SECONDS", "0.2".into()),
    ]))
    .await;
    let connector = TestConnector::builder().redis(&redis).spawn().await;
    let mut socket = connector.socket().await;
    let conversation = "projects/p/locations/global/conversations/emulated";
    socket.join(conversation).await?;

    let publisher = Publisher::builder(TOPIC)
        .with_endpoint(&endpoint)
        .with_credentials(anonymous())
        .build()
        .await?;
    let mut published = HashSet::new();
    for n in 0..3 {
        let data = json!({"conversation": conversation, "n": n}).to_string();
        published.insert(publisher.publish(Message::new().set_data(data)).await?);
    }
    publisher
        .publish(Message::new().set_data("not json"))
        .await?;

    let mut received = HashSet::new();
    while received.len() < published.len() {
        let event = tokio::time::timeout(WAIT, socket.next_event())
            .await
            .expect("an event within the wait")?
            .expect("still connected");
        assert_eq!(event.name, "new-message-event");
        assert_eq!(
            event.payload["conversation_name"],
            "projects/p/conversations/emulated"
        );
        // The emulator's publish time, written as a push writes it.
        let publish_time = event.payload["publish_time"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(publish_time).is_ok()
                && publish_time.ends_with('Z'),
            "{publish_time}"
        );
        let id = event.payload["message_id"].as_str().unwrap().to_owned();
        assert!(received.insert(id), "each event once");
    }
    assert_eq!(received, published);

    // The malformed one is counted (and nacked after its delay, for the dead-letter policy).
    let metrics = interceptor.pull_metrics();
    let deadline = tokio::time::Instant::now() + WAIT;
    while metrics.messages(EventType::NewMessageEvent, PullOutcome::Malformed) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "malformed not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        metrics.messages(EventType::NewMessageEvent, PullOutcome::Accepted),
        3
    );
    assert_eq!(metrics.in_flight(), 0);
    let ready: serde_json::Value = reqwest::get(interceptor.url("/ready"))
        .await?
        .json()
        .await?;
    assert_eq!(ready["pull"][0]["state"], "receiving", "{ready}");

    tokio::time::timeout(Duration::from_secs(10), interceptor.stop())
        .await
        .expect("stops within 10 s")?;
    Ok(())
}
