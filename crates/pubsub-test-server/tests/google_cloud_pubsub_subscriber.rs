//! The real `google-cloud-pubsub` 1.x streaming-pull subscriber against the fake.
//!
//! This is the spike for the interceptor's pull mode: it pins down how the library behaves
//! (what it calls, how it acks, nacks, extends leases, reconnects and shuts down) and proves the
//! fake speaks the protocol well enough for the interceptor's tests to rely on it.
//!
//! The library does not read `PUBSUB_EMULATOR_HOST` itself (1.7.0 has no mention of it; see the
//! crate's README in this repository). [`subscriber_for_emulator_host`] does what Google's other
//! clients do with that value — plain-text HTTP/2 to it, no credentials — through the client
//! builder, so these tests, which share one process and run in parallel, never touch the
//! process environment.

use futures::FutureExt;
use google_cloud_pubsub::client::Subscriber;
use google_cloud_pubsub::model::Message;
use google_cloud_pubsub::subscriber::handler::Handler;
use google_cloud_pubsub::subscriber::MessageStream;
use pubsub_test_server::{PubsubTestServer, SubscriptionConfig};
use std::collections::HashSet;
use std::time::Duration;

const SUBSCRIPTION: &str = "projects/test-project/subscriptions/new-message-sub";
const WAIT: Duration = Duration::from_secs(10);

/// What the interceptor will do with `PUBSUB_EMULATOR_HOST=<host:port>`.
async fn subscriber_for_emulator_host(host: &str) -> Subscriber {
    Subscriber::builder()
        .with_endpoint(format!("http://{host}"))
        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
        .build()
        .await
        .expect("build a subscriber client for the fake")
}

async fn next_message(stream: &mut MessageStream) -> (Message, Handler) {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a message within the wait")
        .expect("the stream is still open")
        .expect("no stream error")
}

async fn fake_with_subscription(config: SubscriptionConfig) -> PubsubTestServer {
    let fake = PubsubTestServer::start().await;
    fake.create_subscription_with(SUBSCRIPTION, config);
    fake
}

#[tokio::test]
async fn receives_messages_with_their_fields_and_acks_reach_the_server() {
    let fake = fake_with_subscription(SubscriptionConfig::default()).await;
    let first = fake.publish(SUBSCRIPTION, b"one".to_vec(), [("kind", "transcript")]);
    let second = fake.publish(SUBSCRIPTION, b"two".to_vec(), [] as [(&str, &str); 0]);

    let client = subscriber_for_emulator_host(&fake.emulator_host()).await;
    let mut stream = client.subscribe(SUBSCRIPTION).build();
    let (m1, h1) = next_message(&mut stream).await;
    let (m2, h2) = next_message(&mut stream).await;
    assert_eq!(
        (m1.message_id.as_str(), &m1.data[..]),
        (first.as_str(), &b"one"[..])
    );
    assert_eq!(
        m1.attributes.get("kind").map(String::as_str),
        Some("transcript")
    );
    assert!(m1.publish_time.is_some(), "publish_time is carried");
    assert_eq!(m2.message_id, second);
    assert_eq!(
        h1.delivery_attempt(),
        None,
        "no dead-letter policy, no attempt count"
    );
    h1.ack();
    h2.ack();

    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| s.acked.len() == 2)
        .await
        .expect("both acks reach the server");
    assert_eq!(state.acked, [first, second]);
    assert_eq!(
        (state.outstanding, state.backlog, state.late_acks),
        (0, 0, 0)
    );

    // The stream's first request carries the library's defaults.
    let opened = &state.streams_opened[0];
    assert_eq!(opened.stream_ack_deadline_seconds, 60);
    assert_eq!(opened.max_outstanding_messages, 1000);
    assert_eq!(opened.max_outstanding_bytes, 100 * 1024 * 1024);
    assert_eq!(opened.protocol_version, 1);
    assert!(!opened.client_id.is_empty());

    // Nothing but the three streaming-pull RPCs is called; acks go through Acknowledge.
    let calls: HashSet<String> = fake.calls().into_iter().collect();
    let expected: HashSet<String> = [
        "/google.pubsub.v1.Subscriber/StreamingPull",
        "/google.pubsub.v1.Subscriber/Acknowledge",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let unexpected: Vec<_> = calls
        .difference(&expected)
        .filter(|c| c.as_str() != "/google.pubsub.v1.Subscriber/ModifyAckDeadline")
        .collect();
    assert!(calls.is_superset(&expected), "calls: {calls:?}");
    assert!(unexpected.is_empty(), "unexpected RPCs: {unexpected:?}");
}

#[tokio::test]
async fn a_nacked_message_is_redelivered_with_its_delivery_attempt() {
    let fake =
        fake_with_subscription(SubscriptionConfig::default().with_dead_letter_after(5)).await;
    let id = fake.publish(SUBSCRIPTION, b"retry me".to_vec(), [] as [(&str, &str); 0]);
    let client = subscriber_for_emulator_host(&fake.emulator_host()).await;
    let mut stream = client.subscribe(SUBSCRIPTION).build();

    let (m, h) = next_message(&mut stream).await;
    assert_eq!(
        (m.message_id.as_str(), h.delivery_attempt()),
        (id.as_str(), Some(1))
    );
    h.nack();
    let (again, h) = next_message(&mut stream).await;
    assert_eq!(again.message_id, id);
    assert_eq!(h.delivery_attempt(), Some(2));
    h.ack();

    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| s.acked.len() == 1)
        .await
        .expect("the redelivered copy is acked");
    assert_eq!((state.nacks, state.deliveries_of(&id)), (1, 2));
}

#[tokio::test]
async fn a_dropped_handler_is_a_nack() {
    let fake = fake_with_subscription(SubscriptionConfig::default()).await;
    let id = fake.publish(SUBSCRIPTION, b"x".to_vec(), [] as [(&str, &str); 0]);
    let client = subscriber_for_emulator_host(&fake.emulator_host()).await;
    let mut stream = client.subscribe(SUBSCRIPTION).build();

    let (_, handler) = next_message(&mut stream).await;
    drop(handler);
    let (again, handler) = next_message(&mut stream).await;
    assert_eq!(again.message_id, id);
    handler.ack();
    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| s.acked.len() == 1)
        .await
        .expect("acked after the redelivery");
    assert_eq!(state.nacks, 1);
}

#[tokio::test]
async fn the_stream_is_re_established_after_the_server_breaks_it() {
    let fake = fake_with_subscription(SubscriptionConfig::default()).await;
    fake.publish(SUBSCRIPTION, b"before".to_vec(), [] as [(&str, &str); 0]);
    let client = subscriber_for_emulator_host(&fake.emulator_host()).await;
    let mut stream = client.subscribe(SUBSCRIPTION).build();
    let (_, held) = next_message(&mut stream).await;

    assert_eq!(fake.break_streams(), 1);
    let after = fake.publish(SUBSCRIPTION, b"after".to_vec(), [] as [(&str, &str); 0]);
    let (m, h) = next_message(&mut stream).await;
    assert_eq!(m.message_id, after, "delivered on the new stream");
    h.ack();
    // A message received on the broken stream can still be acked: acks are unary RPCs.
    held.ack();

    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| s.acked.len() == 2)
        .await
        .expect("both acked");
    assert_eq!(state.streams_opened.len(), 2, "one reconnect");
    assert_eq!(state.open_streams, 1);
    assert_eq!(state.late_acks, 0);
}

#[tokio::test]
async fn server_side_flow_control_holds_back_the_stream() {
    let fake = fake_with_subscription(SubscriptionConfig::default()).await;
    let ids: Vec<String> = (0..5)
        .map(|i| fake.publish(SUBSCRIPTION, vec![b'x'; 10], [("n", i.to_string())]))
        .collect();
    let client = subscriber_for_emulator_host(&fake.emulator_host()).await;
    let mut stream = client
        .subscribe(SUBSCRIPTION)
        .set_max_outstanding_messages(2)
        .build();

    let mut held = vec![
        next_message(&mut stream).await,
        next_message(&mut stream).await,
    ];
    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| s.outstanding == 2)
        .await
        .expect("two outstanding");
    assert_eq!(state.backlog, 3, "the rest waits for room on the stream");
    assert_eq!(state.streams_opened[0].max_outstanding_messages, 2);

    let (_, first) = held.remove(0);
    first.ack();
    let (third, h) = next_message(&mut stream).await;
    assert_eq!(third.message_id, ids[2]);
    let state = fake.snapshot(SUBSCRIPTION);
    assert!(
        state.outstanding <= 2,
        "never more than the limit: {state:?}"
    );
    h.ack();
    for (_, h) in held {
        h.ack();
    }
    let (_, h4) = next_message(&mut stream).await;
    h4.ack();
    let (_, h5) = next_message(&mut stream).await;
    h5.ack();
    fake.wait_for(SUBSCRIPTION, WAIT, |s| s.acked.len() == 5)
        .await
        .expect("all five acked");
}

#[tokio::test]
async fn an_expired_lease_is_redelivered_and_the_late_ack_is_ignored() {
    // The fake grants at most 300 ms per lease; the library extends leases only on its lease
    // tick (0.5 s after the stream starts, then every 3 s), so the message expires while the
    // client still holds it and comes again: a duplicate delivery, as a slow client sees.
    let cap = Duration::from_millis(300);
    let fake =
        fake_with_subscription(SubscriptionConfig::default().with_ack_deadline_cap(cap)).await;
    let id = fake.publish(SUBSCRIPTION, b"slow".to_vec(), [] as [(&str, &str); 0]);
    let client = subscriber_for_emulator_host(&fake.emulator_host()).await;
    let mut stream = client.subscribe(SUBSCRIPTION).build();

    let (first, stale) = next_message(&mut stream).await;
    let (second, current) = next_message(&mut stream).await;
    assert_eq!(
        (first.message_id.as_str(), second.message_id.as_str()),
        (id.as_str(), id.as_str())
    );
    stale.ack();
    current.ack();
    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| {
            s.acked.len() == 1 && s.late_acks == 1
        })
        .await
        .expect("one ack counted, the stale one ignored");
    assert!(state.expirations >= 1);
    assert_eq!(state.deliveries_of(&id), 2);
}

#[tokio::test]
async fn a_batch_in_one_response_can_be_drained_without_waiting() {
    // The interceptor wants to store what one response carried in one Redis round trip. The
    // stream hands messages out one at a time, but those already received are returned
    // without awaiting the network, so `now_or_never` drains the current batch.
    let fake = fake_with_subscription(SubscriptionConfig::default()).await;
    let published: HashSet<String> = (0..50)
        .map(|i| {
            fake.publish(
                SUBSCRIPTION,
                format!("m{i}").into_bytes(),
                [] as [(&str, &str); 0],
            )
        })
        .collect();
    let client = subscriber_for_emulator_host(&fake.emulator_host()).await;
    let mut stream = client.subscribe(SUBSCRIPTION).build();

    let mut received = HashSet::new();
    let mut batches = Vec::new();
    while received.len() < published.len() {
        let mut batch = vec![next_message(&mut stream).await];
        while let Some(Some(item)) = stream.next().now_or_never() {
            batch.push(item.expect("no stream error"));
        }
        batches.push(batch.len());
        for (m, h) in batch {
            assert!(received.insert(m.message_id), "no duplicates");
            h.ack();
        }
    }
    assert_eq!(received, published);
    assert_eq!(
        batches[0], 50,
        "all 50 were in the first response: {batches:?}"
    );
    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| s.acked.len() == 50)
        .await
        .expect("all acked");
    assert!(state.delivery_counts.values().all(|n| *n == 1));
}

#[tokio::test]
async fn shutdown_waits_for_held_messages_and_flushes_their_acks() {
    let fake = fake_with_subscription(SubscriptionConfig::default()).await;
    fake.publish(SUBSCRIPTION, b"a".to_vec(), [] as [(&str, &str); 0]);
    fake.publish(SUBSCRIPTION, b"b".to_vec(), [] as [(&str, &str); 0]);
    let client = subscriber_for_emulator_host(&fake.emulator_host()).await;
    let mut stream = client.subscribe(SUBSCRIPTION).build();
    let (_, a) = next_message(&mut stream).await;
    let (_, b) = next_message(&mut stream).await;
    a.ack();

    let token = stream.shutdown_token();
    let shutdown = tokio::spawn(async move { token.shutdown().await });
    // The default (WaitForProcessing) keeps the stream's lease loop alive while `b` is held.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.next())
            .await
            .expect("next() returns at once after shutdown")
            .is_none(),
        "no more messages after shutdown"
    );
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the held message"
    );
    b.ack();
    tokio::time::timeout(WAIT, shutdown)
        .await
        .expect("shutdown completes once every handler is used")
        .expect("shutdown task");
    // No waiting: shutdown returning means the acks were sent and answered.
    let state = fake.snapshot(SUBSCRIPTION);
    assert_eq!(state.acked.len(), 2, "{state:?}");
    assert_eq!(state.outstanding, 0);
}

#[tokio::test]
async fn the_subscriber_reconnects_after_the_server_restarts() {
    let mut fake = fake_with_subscription(SubscriptionConfig::default()).await;
    let client = subscriber_for_emulator_host(&fake.emulator_host()).await;
    let mut stream = client.subscribe(SUBSCRIPTION).build();
    fake.publish(SUBSCRIPTION, b"1".to_vec(), [] as [(&str, &str); 0]);
    let (_, h) = next_message(&mut stream).await;
    h.ack();
    fake.wait_for(SUBSCRIPTION, WAIT, |s| s.acked.len() == 1)
        .await
        .expect("first acked");

    fake.stop().await;
    let receiving = tokio::spawn(async move {
        let got = tokio::time::timeout(Duration::from_secs(30), stream.next()).await;
        (got, stream)
    });
    fake.start_again().await;
    let id = fake.publish(SUBSCRIPTION, b"2".to_vec(), [] as [(&str, &str); 0]);
    let (got, _stream) = receiving.await.expect("receiving task");
    let (m, h) = got
        .expect("a message within 30 s of the restart")
        .expect("the stream is still open")
        .expect("no stream error");
    assert_eq!(m.message_id, id);
    h.ack();
    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| s.acked.len() == 2)
        .await
        .expect("second acked");
    assert!(state.streams_opened.len() >= 2);
}

#[tokio::test]
async fn an_unknown_subscription_ends_the_stream_with_not_found() {
    let fake = PubsubTestServer::start().await;
    let client = subscriber_for_emulator_host(&fake.emulator_host()).await;
    let mut stream = client
        .subscribe("projects/test-project/subscriptions/missing")
        .build();
    let err = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("an answer within the wait")
        .expect("an item")
        .expect_err("NOT_FOUND is permanent");
    let status = err.status().expect("a gRPC status");
    assert_eq!(status.code, google_cloud_gax::error::rpc::Code::NotFound);
    assert!(stream.next().await.is_none(), "the stream is over");
}
