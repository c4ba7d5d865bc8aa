//! Pull mode end to end (issue 14): the interceptor's real `google-cloud-pubsub` subscriber
//! against the in-process fake of the Pub/Sub Subscriber service (`pubsub-test-server`, reached
//! through `PUBSUB_EMULATOR_HOST`), a real `redis-server`, and a real connector with a Socket.IO
//! desktop where delivery to desktops is the point.
//!
//! What the fake shows is what Pub/Sub would see: acknowledgements (`acked`), nacks,
//! redeliveries (`delivery_counts`), flow control (`outstanding`/`backlog` and each stream's
//! first request). Tests await its state and the services' answers, never a fixed sleep.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use agent_assist_core::{ConversationBus, ConversationName, EventType};
use agent_assist_intake::Outcome;
use agent_assist_test_support::{
    Event, PushEnvelope, RedisServer, Settings, SocketClient, TestConnector, TestInterceptor,
};
use cloud_pubsub_interceptor::pull::stream::{BATCHES_IN_FLIGHT, MAX_BATCH_MESSAGES};
use cloud_pubsub_interceptor::pull::PullOutcome;
use pubsub_test_server::{PublishOptions, PubsubTestServer, SubscriptionConfig};
use serde_json::{json, Value};

const MESSAGES: &str = "projects/test-project/subscriptions/aa-new-message-sub";
const RECOGNITION: &str = "projects/test-project/subscriptions/aa-recognition-sub";
const WAIT: Duration = Duration::from_secs(15);
const NO_ATTRIBUTES: [(&str, &str); 0] = [];

/// The fake with the two subscriptions the tests pull.
async fn fake_server(messages: SubscriptionConfig) -> PubsubTestServer {
    let fake = PubsubTestServer::start().await;
    fake.create_subscription_with(MESSAGES, messages);
    fake.create_subscription(RECOGNITION);
    fake
}

/// Pull-mode settings: both subscriptions on `fake`, Redis, a short malformed delay.
fn pull_settings(fake: &PubsubTestServer, redis: &RedisServer) -> Settings {
    Settings::from_pairs([
        ("REDIS_URL", redis.url()),
        ("PUBSUB_EMULATOR_HOST", fake.emulator_host()),
        (
            "PUBSUB_PULL_SUBSCRIPTIONS",
            format!(
                "new-message-event={MESSAGES},new-recognition-result-notification-event={RECOGNITION}"
            ),
        ),
        ("PUBSUB_PULL_MALFORMED_NACK_DELAY_SECONDS", "0.2".into()),
    ])
}

fn dialogflow_event(conversation: &str, n: u64) -> String {
    json!({"conversation": conversation, "n": n}).to_string()
}

async fn kept(bus: &ConversationBus, conversation: &str) -> Vec<Value> {
    bus.history(&ConversationName::parse(conversation).unwrap(), Some(0))
        .await
        .unwrap()
        .events
        .iter()
        .map(|e| serde_json::from_str(e.json()).unwrap())
        .collect()
}

fn message_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["message_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn next_event(socket: &mut SocketClient) -> Event {
    tokio::time::timeout(WAIT, socket.next_event())
        .await
        .expect("an event within the wait")
        .expect("a readable frame")
        .expect("still connected")
}

async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls `/ready` until `accept` holds (bounded): readiness has no change to await.
async fn ready_until(interceptor: &TestInterceptor, accept: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get_json(&interceptor.url("/ready")).await;
        if accept(status, &body) {
            return body;
        }
        assert!(Instant::now() < deadline, "/ready stayed {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn pulled_messages_reach_desktops_and_are_acknowledged() {
    let redis = RedisServer::start();
    let fake = fake_server(SubscriptionConfig::default()).await;
    let interceptor = TestInterceptor::spawn(pull_settings(&fake, &redis)).await;
    let connector = TestConnector::builder().redis(&redis).spawn().await;
    let mut socket = connector.socket().await;
    let conversation = "projects/p/locations/global/conversations/pulled";
    socket.join(conversation).await.unwrap();

    let ids: Vec<String> = (1..=3)
        .map(|n| fake.publish(MESSAGES, dialogflow_event(conversation, n), NO_ATTRIBUTES))
        .collect();
    let recognition = fake.publish(
        RECOGNITION,
        dialogflow_event(conversation, 4),
        [
            ("participant_role", "END_USER"),
            ("message_id", "transcript-4"),
        ],
    );

    let mut received = BTreeMap::new();
    for _ in 0..4 {
        let event = next_event(&mut socket).await;
        assert_eq!(event.payload["data_type"], event.name.as_str());
        assert_eq!(
            event.payload["conversation_name"],
            "projects/p/conversations/pulled"
        );
        received.insert(
            event.payload["message_id"].as_str().unwrap().to_owned(),
            event,
        );
    }
    let ids_received: HashSet<&String> = received.keys().collect();
    let ids_published: HashSet<&String> = ids.iter().chain([&recognition]).collect();
    assert_eq!(ids_received, ids_published);
    let transcript = &received[&recognition].payload;
    assert_eq!(transcript["participant_role"], "END_USER");
    assert_eq!(
        transcript["new_recognition_result_message_id"],
        "transcript-4"
    );
    let mut offsets: Vec<u64> = received
        .values()
        .map(|e| e.payload["offset"].as_u64().unwrap())
        .collect();
    offsets.sort();
    assert!(
        offsets.windows(2).all(|w| w[1] == w[0] + 1),
        "one conversation, consecutive offsets: {offsets:?}"
    );

    let state = fake
        .wait_for(MESSAGES, WAIT, |s| s.acked.len() == 3)
        .await
        .expect("the three messages are acknowledged");
    assert_eq!((state.outstanding, state.backlog, state.nacks), (0, 0, 0));
    assert!(state.delivery_counts.values().all(|n| *n == 1));
    fake.wait_for(RECOGNITION, WAIT, |s| s.acked == [recognition.clone()])
        .await
        .expect("the transcript is acknowledged");
    // The flow-control defaults reach the service.
    let opened = &state.streams_opened[0];
    assert_eq!(opened.max_outstanding_messages, 4_000);
    assert_eq!(opened.max_outstanding_bytes, 64 * 1024 * 1024);

    let metrics = interceptor.pull_metrics();
    assert_eq!(
        metrics.messages(EventType::NewMessageEvent, PullOutcome::Accepted),
        3
    );
    assert_eq!(metrics.in_flight(), 0, "every message taken was settled");
    assert_eq!(
        metrics.messages(
            EventType::NewRecognitionResultNotificationEvent,
            PullOutcome::Accepted
        ),
        1
    );
    let (status, ready) = get_json(&interceptor.url("/ready")).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["pull"][0]["type"], "new-message-event");
    assert_eq!(ready["pull"][0]["subscription"], MESSAGES);
    assert_eq!(ready["pull"][0]["state"], "receiving");
    assert_eq!(ready["pull"][0]["messages"], 3);
    assert_eq!(ready["pull"][1]["state"], "receiving");

    let text = reqwest::get(interceptor.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"interceptor_pulled_messages_total{type="new-message-event",outcome="accepted"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains("interceptor_pull_ack_latency_seconds_count 4"),
        "{text}"
    );
    assert!(
        text.contains("interceptor_pull_batch_messages_count"),
        "{text}"
    );
    // The batch-size buckets reach the largest batch, and no further.
    let largest =
        format!("interceptor_pull_batch_messages_bucket{{le=\"{MAX_BATCH_MESSAGES}.0\"}}");
    let beyond = format!(
        "interceptor_pull_batch_messages_bucket{{le=\"{}.0\"}}",
        2 * MAX_BATCH_MESSAGES
    );
    assert!(text.contains(&largest) && !text.contains(&beyond), "{text}");
    // Pulls are not pushes.
    assert_eq!(
        interceptor
            .intake()
            .metrics()
            .pushes(EventType::NewMessageEvent, Outcome::Accepted),
        0
    );
}

#[tokio::test]
async fn a_pulled_event_is_the_pushed_event_but_for_ack_time_and_offset() {
    let redis = RedisServer::start();
    let fake = fake_server(SubscriptionConfig::default()).await;
    let interceptor = TestInterceptor::spawn(pull_settings(&fake, &redis)).await;
    let conversation = "projects/p/locations/global/conversations/same-fields";
    let data = json!({
        "conversation": conversation,
        "payload": {"newRecognitionResult": {"transcript": "héllo", "isFinal": true}},
    })
    .to_string();
    // 2026-11-23T13:04:04.120Z: Pub/Sub's push writes the milliseconds as three digits.
    let publish_time = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_439_044_120);
    let attributes = [
        ("participant_role", "HUMAN_AGENT"),
        ("message_id", "transcript-9"),
    ];
    let id = fake.publish_with(
        RECOGNITION,
        data.clone(),
        attributes,
        PublishOptions::default()
            .message_id("5200000000000001")
            .publish_time(publish_time),
    );
    fake.wait_for(RECOGNITION, WAIT, |s| s.acked == [id.clone()])
        .await
        .expect("acknowledged");
    let pulled = kept(interceptor.bus(), conversation).await;
    assert_eq!(pulled.len(), 1);

    // The same message pushed to the same interceptor (a topic with a push and a pull
    // subscription): recognised as the message already stored.
    let mut envelope = PushEnvelope::new(data.clone())
        .message_id(&id)
        .publish_time("2026-11-23T13:04:04.120Z");
    for (name, value) in attributes {
        envelope = envelope.attribute(name, value);
    }
    let event_type = EventType::NewRecognitionResultNotificationEvent;
    let (status, _) = interceptor.push(event_type, &envelope).await;
    assert_eq!(status, 204);
    assert_eq!(
        interceptor
            .intake()
            .metrics()
            .pushes(event_type, Outcome::Duplicate),
        1
    );
    assert_eq!(kept(interceptor.bus(), conversation).await.len(), 1);

    // Pushed where it was never stored: the event desktops get is the pulled one, field by field.
    redis.command("FLUSHALL");
    let (status, _) = interceptor.push(event_type, &envelope).await;
    assert_eq!(status, 204);
    let pushed = kept(interceptor.bus(), conversation).await;
    assert_eq!(pushed.len(), 1);
    let without_receipt = |event: &Value| {
        let mut event = event.clone();
        let object = event.as_object_mut().unwrap();
        let ack_time = object.remove("ack_time").expect("ack_time");
        assert!(ack_time.as_str().is_some_and(|t| t.ends_with('Z')));
        object.remove("offset").expect("offset");
        event
    };
    assert_eq!(without_receipt(&pulled[0]), without_receipt(&pushed[0]));
    assert_eq!(pulled[0]["publish_time"], "2026-11-23T13:04:04.120Z");
    assert_eq!(pulled[0]["data"], data.as_str());
    assert_eq!(pulled[0]["message_id"], id.as_str());
}

#[tokio::test]
async fn a_redelivered_message_reaches_desktops_once() {
    let redis = RedisServer::start();
    let fake = fake_server(SubscriptionConfig::default()).await;
    let interceptor = TestInterceptor::spawn(pull_settings(&fake, &redis)).await;
    let connector = TestConnector::builder().redis(&redis).spawn().await;
    let mut socket = connector.socket().await;
    let conversation = "projects/p/conversations/redelivered";
    socket.join(conversation).await.unwrap();

    let first = fake.publish(MESSAGES, dialogflow_event(conversation, 1), NO_ATTRIBUTES);
    assert_eq!(
        next_event(&mut socket).await.payload["message_id"],
        first.as_str()
    );
    fake.wait_for(MESSAGES, WAIT, |s| s.acked.len() == 1)
        .await
        .expect("acknowledged");
    // Pub/Sub delivers the acknowledged message again (at-least-once: an acknowledgement lost
    // on its way, a lease that ran out...).
    fake.publish_with(
        MESSAGES,
        dialogflow_event(conversation, 1),
        NO_ATTRIBUTES,
        PublishOptions::default().message_id(&first),
    );
    let state = fake
        .wait_for(MESSAGES, WAIT, |s| s.acked.len() == 2)
        .await
        .expect("the redelivery is acknowledged too");
    assert_eq!(state.deliveries_of(&first), 2);
    assert_eq!(state.acked, [first.clone(), first.clone()]);

    let second = fake.publish(MESSAGES, dialogflow_event(conversation, 2), NO_ATTRIBUTES);
    let next = next_event(&mut socket).await;
    assert_eq!(
        next.payload["message_id"],
        second.as_str(),
        "the redelivery did not reach the desktop"
    );
    let metrics = interceptor.pull_metrics();
    assert_eq!(
        metrics.messages(EventType::NewMessageEvent, PullOutcome::Duplicate),
        1
    );
    assert_eq!(
        metrics.messages(EventType::NewMessageEvent, PullOutcome::Accepted),
        2
    );
    assert_eq!(
        message_ids(&kept(interceptor.bus(), conversation).await),
        [first, second]
    );
}

#[tokio::test]
async fn redis_down_nacks_and_the_redelivery_is_stored_once_when_it_returns() {
    let mut redis = RedisServer::start();
    let fake = fake_server(SubscriptionConfig::default()).await;
    let interceptor = TestInterceptor::spawn(pull_settings(&fake, &redis)).await;
    let conversation = "projects/p/conversations/outage";
    let before = fake.publish(MESSAGES, dialogflow_event(conversation, 1), NO_ATTRIBUTES);
    fake.wait_for(MESSAGES, WAIT, |s| s.acked.len() == 1)
        .await
        .expect("stored before the outage");

    redis.stop();
    let during = fake.publish(MESSAGES, dialogflow_event(conversation, 2), NO_ATTRIBUTES);
    let state = fake
        .wait_for(MESSAGES, WAIT, |s| s.nacks >= 2)
        .await
        .expect("nacked while Redis is down, and again after the redelivery");
    assert!(
        !state.acked.contains(&during),
        "never acknowledged unstored"
    );
    assert!(
        interceptor
            .pull_metrics()
            .messages(EventType::NewMessageEvent, PullOutcome::Nacked)
            >= 2
    );
    let ready = ready_until(&interceptor, |status, _| status == 503).await;
    assert_eq!(ready["ready"], false);
    assert!(ready["error"].is_string(), "{ready}");

    redis.restart();
    let state = fake
        .wait_for(MESSAGES, WAIT, |s| s.acked.contains(&during))
        .await
        .expect("stored once Redis is back");
    assert!(state.deliveries_of(&during) >= 3, "{state:?}");
    // Redis came back empty (no persistence here): the redelivered event is there, once.
    assert_eq!(
        message_ids(&kept(interceptor.bus(), conversation).await),
        std::slice::from_ref(&during)
    );
    assert_eq!(state.acked, [before, during]);
    // While nacks went back and forth the worker paced itself: a few deliveries, not a storm.
    assert!(
        state.nacks < 40,
        "{} nacks during the outage: the stream did not back off",
        state.nacks
    );
}

#[tokio::test]
async fn a_malformed_message_is_counted_and_left_to_the_dead_letter_policy() {
    let redis = RedisServer::start();
    let fake = fake_server(SubscriptionConfig::default().with_dead_letter_after(3)).await;
    let interceptor = TestInterceptor::spawn(pull_settings(&fake, &redis)).await;
    let conversation = "projects/p/conversations/poison";
    let started = Instant::now();
    let poison = fake.publish(MESSAGES, "not json", NO_ATTRIBUTES);
    let fine = fake.publish(MESSAGES, dialogflow_event(conversation, 1), NO_ATTRIBUTES);

    fake.wait_for(MESSAGES, WAIT, |s| s.acked.contains(&fine))
        .await
        .expect("the valid message beside it is stored and acknowledged");
    let state = fake
        .wait_for(MESSAGES, WAIT, |s| s.dead_lettered.contains(&poison))
        .await
        .expect("dead-lettered after three deliveries");
    // Three deliveries, each held 0.2 s before its nack: no loop.
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(state.deliveries_of(&poison), 3);
    assert_eq!(state.nacks, 3);
    assert!(!state.acked.contains(&poison), "never acknowledged");
    assert_eq!(
        interceptor
            .pull_metrics()
            .messages(EventType::NewMessageEvent, PullOutcome::Malformed),
        3
    );
    assert_eq!(
        message_ids(&kept(interceptor.bus(), conversation).await),
        [fine]
    );
}

/// A flood of malformed messages cannot take a stream's whole flow-control window: at most 100
/// are held per stream, the rest are nacked at once (and the dead-letter policy removes them);
/// at shutdown the held ones are given back, not acknowledged.
#[tokio::test]
async fn malformed_messages_are_held_at_most_a_hundred_and_given_back_at_shutdown() {
    let redis = RedisServer::start();
    let fake = fake_server(SubscriptionConfig::default().with_dead_letter_after(3)).await;
    let settings =
        pull_settings(&fake, &redis).with("PUBSUB_PULL_MALFORMED_NACK_DELAY_SECONDS", "600");
    let interceptor = TestInterceptor::spawn(settings).await;
    for n in 0..150 {
        fake.publish(MESSAGES, format!("not json {n}"), NO_ATTRIBUTES);
    }
    let state = fake
        .wait_for(MESSAGES, WAIT, |s| s.dead_lettered.len() == 50)
        .await
        .expect("the 50 beyond the hold are nacked at once until dead-lettered");
    assert_eq!(state.outstanding, 100, "100 held: {state:?}");
    assert!(state.acked.is_empty());
    let conversation = "projects/p/conversations/beside-the-flood";
    let fine = fake.publish(MESSAGES, dialogflow_event(conversation, 1), NO_ATTRIBUTES);
    fake.wait_for(MESSAGES, WAIT, |s| s.acked == [fine.clone()])
        .await
        .expect("valid messages still flow beside the held ones");

    let stopping = Instant::now();
    interceptor.stop().await.unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(10));
    let state = fake.snapshot(MESSAGES);
    assert_eq!(state.outstanding, 0, "{state:?}");
    assert_eq!(
        state.backlog, 100,
        "the held ones are back in the subscription"
    );
    assert_eq!(state.nacks, 50 * 3 + 100);
    assert_eq!(state.acked, [fine]);
}

#[tokio::test]
async fn flow_control_holds_back_the_stream() {
    let redis = RedisServer::start();
    let fake = fake_server(SubscriptionConfig::default()).await;
    let settings = pull_settings(&fake, &redis)
        .with("PUBSUB_PULL_MAX_OUTSTANDING_MESSAGES", "2")
        .with("PUBSUB_PULL_MAX_OUTSTANDING_BYTES", "20000000")
        // The bus waits for the paused Redis instead of giving up.
        .with("REDIS_TIMEOUT_MS", "20000");
    let interceptor = TestInterceptor::spawn(settings).await;
    let conversation = "projects/p/conversations/held-back";
    fake.wait_for(MESSAGES, WAIT, |s| s.open_streams == 1)
        .await
        .expect("the stream is open");

    // Redis stops answering writes: the first batch cannot be stored, so nothing is acked.
    assert!(redis.command("CLIENT PAUSE 20000 WRITE").starts_with("+OK"));
    let ids: Vec<String> = (1..=5)
        .map(|n| fake.publish(MESSAGES, dialogflow_event(conversation, n), NO_ATTRIBUTES))
        .collect();
    let state = fake
        .wait_for(MESSAGES, WAIT, |s| s.outstanding == 2)
        .await
        .expect("two messages handed out");
    assert_eq!(state.backlog, 3, "the rest waits at the service: {state:?}");
    assert_eq!(state.streams_opened[0].max_outstanding_messages, 2);
    assert_eq!(state.streams_opened[0].max_outstanding_bytes, 20_000_000);

    assert!(redis.command("CLIENT UNPAUSE").starts_with("+OK"));
    let state = fake
        .wait_for(MESSAGES, WAIT, |s| s.acked.len() == 5)
        .await
        .expect("everything stored once Redis answers");
    assert!(state.delivery_counts.values().all(|n| *n == 1), "{state:?}");
    let mut stored = message_ids(&kept(interceptor.bus(), conversation).await);
    stored.sort();
    let mut expected = ids;
    expected.sort();
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn shutdown_with_messages_in_flight_acknowledges_only_what_was_stored() {
    let redis = RedisServer::start();
    let fake = fake_server(SubscriptionConfig::default()).await;
    let settings = pull_settings(&fake, &redis)
        .with("REDIS_TIMEOUT_MS", "20000")
        .with("CONVERSATION_HISTORY_LENGTH", KEPT.to_string());
    let interceptor = TestInterceptor::spawn(settings.clone()).await;
    let conversation = "projects/p/conversations/draining";
    fake.wait_for(MESSAGES, WAIT, |s| s.open_streams == 1)
        .await
        .expect("the stream is open");

    // Batches get stuck storing (Redis paused for 3 s); more arrive than the worker takes at
    // once (its batches in flight, full), so some are received but not yet handed out.
    let taken_at_once = BATCHES_IN_FLIGHT * MAX_BATCH_MESSAGES;
    let total = taken_at_once + 144;
    assert!(total <= KEPT, "history must keep all {total} messages");
    assert!(redis.command("CLIENT PAUSE 3000 WRITE").starts_with("+OK"));
    let published: Vec<String> = (0..total as u64)
        .map(|n| fake.publish(MESSAGES, dialogflow_event(conversation, n), NO_ATTRIBUTES))
        .collect();
    fake.wait_for(MESSAGES, WAIT, |s| s.outstanding == total)
        .await
        .expect("all delivered to the interceptor");
    // They came in one response: the worker takes its full batches, then waits for Redis.
    // (`/ready` would wait for Redis too: its PING queues behind the paused scripts.)
    let deadline = Instant::now() + WAIT;
    while interceptor.pull_metrics().in_flight() < taken_at_once as i64 {
        assert!(Instant::now() < deadline, "the batches were not taken");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let stopping = Instant::now();
    interceptor.stop().await.unwrap();
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    // No waiting: when the interceptor has stopped, its acknowledgements were sent.
    let state = fake.snapshot(MESSAGES);
    let stored = message_ids(&kept_with(&redis, conversation).await);
    let stored_set: HashSet<&String> = stored.iter().collect();
    let acked: HashSet<&String> = state.acked.iter().collect();
    assert_eq!(stored.len(), stored_set.len(), "nothing stored twice");
    assert_eq!(
        acked, stored_set,
        "acknowledged exactly what was stored (took {took:?})"
    );
    assert_eq!(
        stored.len(),
        taken_at_once,
        "the batches in flight were finished, no more taken"
    );
    assert!(
        took >= Duration::from_secs(1),
        "it waited for Redis: {took:?}"
    );
    assert_eq!(
        state.outstanding, 0,
        "nothing left leased to the stopped interceptor"
    );
    assert_eq!(state.backlog, total - stored.len());

    // A new instance gets the rest: every message stored exactly once in all.
    let _next = TestInterceptor::spawn(settings).await;
    fake.wait_for(MESSAGES, WAIT, |s| s.acked.len() == total)
        .await
        .expect("the rest is stored by the next instance");
    let mut all = message_ids(&kept_with(&redis, conversation).await);
    all.sort();
    let mut expected = published;
    expected.sort();
    assert_eq!(all, expected);
}

/// History kept per conversation where a test reads back everything it stored: more than
/// the shutdown test publishes (its batches in flight, full, and more), so the history's
/// length counts what was stored.
const KEPT: usize = 2_000;

/// The history of `conversation` read through a bus of its own (the interceptor is stopped).
async fn kept_with(redis: &RedisServer, conversation: &str) -> Vec<Value> {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut config = agent_assist_core::config::BusConfig::with_redis(Some(redis.url()));
    config.history_len = KEPT;
    let bus = ConversationBus::connect(config, shutdown.clone()).unwrap();
    let events = kept(&bus, conversation).await;
    shutdown.cancel();
    events
}

#[tokio::test]
async fn a_stream_broken_by_the_server_is_reopened() {
    let redis = RedisServer::start();
    let mut fake = fake_server(SubscriptionConfig::default()).await;
    let interceptor = TestInterceptor::spawn(pull_settings(&fake, &redis)).await;
    let conversation = "projects/p/conversations/reconnect";
    let first = fake.publish(MESSAGES, dialogflow_event(conversation, 1), NO_ATTRIBUTES);
    fake.wait_for(MESSAGES, WAIT, |s| s.acked.len() == 1)
        .await
        .expect("first stored");

    assert_eq!(fake.break_streams(), 2, "one stream per subscription");
    let second = fake.publish(MESSAGES, dialogflow_event(conversation, 2), NO_ATTRIBUTES);
    let state = fake
        .wait_for(MESSAGES, WAIT, |s| s.acked.len() == 2)
        .await
        .expect("delivered on the reopened stream");
    assert_eq!(state.streams_opened.len(), 2);

    // The service goes away for a moment and comes back on the same address.
    fake.stop().await;
    let third = fake.publish(MESSAGES, dialogflow_event(conversation, 3), NO_ATTRIBUTES);
    fake.start_again().await;
    fake.wait_for(MESSAGES, Duration::from_secs(30), |s| s.acked.len() == 3)
        .await
        .expect("delivered after the service came back");

    assert_eq!(
        message_ids(&kept(interceptor.bus(), conversation).await),
        [first, second, third]
    );
    // Transient breaks are the library's to repair: the stream never counted as failed.
    let (status, ready) = get_json(&interceptor.url("/ready")).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["pull"][0]["failures"], 0);
}

#[tokio::test]
async fn a_missing_subscription_fails_readiness_until_it_exists() {
    let redis = RedisServer::start();
    let fake = PubsubTestServer::start().await;
    fake.create_subscription(RECOGNITION);
    let interceptor = TestInterceptor::spawn(pull_settings(&fake, &redis)).await;

    let ready = ready_until(&interceptor, |status, _| status == 503).await;
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["bus"], "redis");
    assert_eq!(ready["pull"][0]["state"], "failed", "{ready}");
    assert!(
        ready["pull"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.to_lowercase().contains("not found")),
        "{ready}"
    );
    assert_eq!(ready["pull"][1]["healthy"], true);

    // Created late (as when deploy.sh runs while the interceptor already starts): the stream is
    // reopened after its backoff and the message arrives.
    fake.create_subscription(MESSAGES);
    let conversation = "projects/p/conversations/late";
    let id = fake.publish(MESSAGES, dialogflow_event(conversation, 1), NO_ATTRIBUTES);
    fake.wait_for(MESSAGES, Duration::from_secs(30), |s| s.acked.contains(&id))
        .await
        .expect("pulled once the subscription exists");
    let ready = ready_until(&interceptor, |status, _| status == 200).await;
    assert_eq!(ready["pull"][0]["state"], "receiving");
    assert!(ready["pull"][0]["failures"].as_u64().unwrap() >= 1);
}
