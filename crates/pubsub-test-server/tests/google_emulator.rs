//! The same subscriber against Google's own Pub/Sub emulator, when this machine has one.
//!
//! The emulator (a JVM program in the Cloud SDK's `platform/pubsub-emulator`) is not on any
//! package registry, so it cannot be a requirement; where it is installed (the Debian package
//! `google-cloud-cli-pubsub-emulator`, or `PUBSUB_EMULATOR_BIN` pointing at its launcher) this
//! test checks the client setup and the behaviours the fake imitates against Google's
//! implementation. Where it is not, the test says so on stderr ("SKIPPED: ...") and passes
//! without checking anything.

use google_cloud_pubsub::client::{Publisher, Subscriber, SubscriptionAdmin, TopicAdmin};
use google_cloud_pubsub::model::{DeadLetterPolicy, Message};
use google_cloud_pubsub::subscriber::handler::Handler;
use google_cloud_pubsub::subscriber::MessageStream;
use pubsub_test_server::google_emulator::{report_skipped, GoogleEmulator};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const TOPIC: &str = "projects/test-project/topics/new-message-event";
const DEAD_LETTERS: &str = "projects/test-project/topics/dead-letters";
const SUBSCRIPTION: &str = "projects/test-project/subscriptions/new-message-sub";

fn anonymous() -> google_cloud_auth::credentials::Credentials {
    google_cloud_auth::credentials::anonymous::Builder::new().build()
}

async fn next_message(stream: &mut MessageStream) -> (Message, Handler) {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a message within the wait")
        .expect("the stream is still open")
        .expect("no stream error")
}

#[tokio::test]
async fn the_subscriber_against_googles_emulator() -> anyhow::Result<()> {
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
    let publisher = Publisher::builder(TOPIC)
        .with_endpoint(&endpoint)
        .with_credentials(anonymous())
        .build()
        .await?;

    let subscriber = Subscriber::builder()
        .with_endpoint(&endpoint)
        .with_credentials(anonymous())
        .build()
        .await?;
    let mut stream = subscriber
        .subscribe(SUBSCRIPTION)
        .set_max_outstanding_messages(2)
        .build();

    let mut published = Vec::new();
    for i in 0..3 {
        let message = Message::new()
            .set_data(format!("m{i}"))
            .set_attributes([("n", i.to_string())]);
        published.push(publisher.publish(message).await?);
    }

    // Delivery with the message's fields and a delivery attempt (dead-letter policy set).
    let (first, first_handler) = next_message(&mut stream).await;
    assert_eq!(first.message_id, published[0]);
    assert_eq!(&first.data[..], b"m0");
    assert_eq!(first.attributes.get("n").map(String::as_str), Some("0"));
    assert_eq!(first_handler.delivery_attempt(), Some(1));

    // A nack comes back at once, with the next attempt number.
    first_handler.nack();
    let mut seen = Vec::new();
    let mut redelivered = None;
    while redelivered.is_none() {
        let (m, h) = next_message(&mut stream).await;
        if m.message_id == published[0] {
            assert_eq!(h.delivery_attempt(), Some(2));
            redelivered = Some(h);
        } else {
            seen.push((m, h));
        }
    }
    redelivered.expect("redelivered").ack();
    let mut received: Vec<String> = vec![published[0].clone()];
    for (m, h) in seen {
        received.push(m.message_id);
        h.ack();
    }

    // Everything published arrives, then shutdown flushes the acks.
    while received.len() < published.len() {
        let (m, h) = next_message(&mut stream).await;
        if !received.contains(&m.message_id) {
            received.push(m.message_id);
        }
        h.ack();
    }
    received.sort();
    let mut expected = published.clone();
    expected.sort();
    assert_eq!(received, expected);
    tokio::time::timeout(WAIT, stream.shutdown_token().shutdown())
        .await
        .expect("shutdown within the wait");
    Ok(())
}
