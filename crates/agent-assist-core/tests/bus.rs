//! One suite for both conversation bus stores: every behaviour is checked against the
//! in-memory store, against a real `redis-server` started for the test, and against a real
//! Redis Cluster (3 primaries, a replica each) started for the test, in cluster mode.

use std::sync::Arc;
use std::time::Duration;

use agent_assist_core::bus::{PublishOutcome, Subscription};
use agent_assist_core::config::BusConfig;
use agent_assist_core::event::PendingEvent;
use agent_assist_core::{BusEvent, ConversationBus, ConversationName, EventType};
use redis_test_server::{RedisCluster, RedisServer};
use tokio_util::sync::CancellationToken;

mod support;
use support::event_of;

#[derive(Clone, Copy)]
enum Store {
    Memory,
    Redis,
    RedisCluster,
}

/// One store, and "instances" of the bus on it: separate connections for Redis (as separate
/// connector processes would have), the same bus for memory (it lives in one process).
struct Harness {
    redis: Option<RedisServer>,
    cluster: Option<RedisCluster>,
    memory: Option<ConversationBus>,
}

impl Harness {
    fn new(store: Store) -> Self {
        Self::with_config(store, |_| {})
    }

    fn with_config(store: Store, adjust: impl Fn(&mut BusConfig)) -> Self {
        match store {
            Store::Memory => {
                let mut config = BusConfig::with_redis(None);
                adjust(&mut config);
                Self {
                    redis: None,
                    cluster: None,
                    memory: Some(
                        ConversationBus::connect(config, CancellationToken::new()).unwrap(),
                    ),
                }
            }
            Store::Redis => Self {
                redis: Some(RedisServer::start()),
                cluster: None,
                memory: None,
            },
            Store::RedisCluster => Self {
                redis: None,
                cluster: Some(RedisCluster::start()),
                memory: None,
            },
        }
    }

    fn instance(&self) -> ConversationBus {
        self.instance_with(|_| {})
    }

    fn instance_with(&self, adjust: impl Fn(&mut BusConfig)) -> ConversationBus {
        let mut config = match (&self.memory, &self.redis, &self.cluster) {
            (Some(bus), _, _) => return bus.clone(),
            (None, Some(redis), _) => BusConfig::with_redis(Some(redis.url())),
            (None, None, Some(cluster)) => BusConfig::with_redis_cluster(cluster.seed_urls()),
            _ => unreachable!(),
        };
        adjust(&mut config);
        ConversationBus::connect(config, CancellationToken::new()).unwrap()
    }

    /// `INFO commandstats` calls of `command` (e.g. `evalsha`), over every primary.
    fn command_calls(&self, command: &str) -> u64 {
        let stats: Vec<String> = match (&self.redis, &self.cluster) {
            (Some(redis), _) => vec![redis.command("INFO commandstats")],
            (None, Some(cluster)) => cluster
                .primaries()
                .iter()
                .map(|node| {
                    cluster
                        .query(node, redis::cmd("INFO").arg("commandstats"))
                        .unwrap()
                })
                .collect(),
            _ => return 0,
        };
        let prefix = format!("cmdstat_{command}:calls=");
        stats
            .iter()
            .flat_map(|stats| stats.lines())
            .filter_map(|line| line.strip_prefix(prefix.as_str()))
            .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
            .sum()
    }

    /// How many connections subscribe to the conversation's live channel: `PUBSUB NUMSUB`
    /// standalone, `PUBSUB SHARDNUMSUB` on the slot's primary on a cluster.
    fn channel_subscribers(&self, conversation: &str) -> Option<u64> {
        let channel = format!("agent-assist:{{{conversation}}}:events");
        match (&self.redis, &self.cluster) {
            (Some(redis), _) => {
                let reply = redis.command(&format!("PUBSUB NUMSUB {channel}"));
                let count = reply.trim_end().rsplit(':').next()?;
                count.parse().ok()
            }
            (None, Some(cluster)) => {
                let node = cluster.node_for_slot(cluster.key_slot(&channel));
                let (_, count): (String, u64) = cluster
                    .query(&node, redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(&channel))
                    .unwrap();
                Some(count)
            }
            _ => None,
        }
    }
}

fn name(raw: &str) -> ConversationName {
    ConversationName::parse(raw).unwrap()
}

fn event(conversation: &str, n: u32, message_id: Option<&str>) -> PendingEvent {
    event_of(
        EventType::HumanAgentAssistantEvent,
        conversation,
        n,
        message_id,
    )
}

async fn publish(bus: &ConversationBus, event: &PendingEvent) -> u64 {
    match bus.publish(event).await.unwrap() {
        PublishOutcome::Published { offset } => offset,
        PublishOutcome::Duplicate => panic!("unexpected duplicate"),
    }
}

/// The `n` carried in an event's data.
fn n_of(event: &BusEvent) -> u32 {
    let outer: serde_json::Value = serde_json::from_str(event.json()).unwrap();
    let data: serde_json::Value = serde_json::from_str(outer["data"].as_str().unwrap()).unwrap();
    data["n"].as_u64().unwrap() as u32
}

async fn next(subscription: &mut Subscription) -> Arc<BusEvent> {
    tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .expect("an event within 5 s")
        .expect("the bus is open")
}

/// Runs a scenario against both stores (Redis standalone and as a cluster).
macro_rules! both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn memory() {
                super::$scenario(super::Store::Memory).await
            }
            #[tokio::test]
            async fn redis() {
                super::$scenario(super::Store::Redis).await
            }
            #[tokio::test]
            async fn redis_cluster() {
                super::$scenario(super::Store::RedisCluster).await
            }
        }
    )*};
}

both_stores!(
    offsets_increase_by_one_and_events_carry_them,
    events_before_anyone_listens_are_kept,
    since_replays_then_continues_live_without_gap_or_duplicate,
    recovery_is_reported_when_history_does_not_reach_back,
    redeliveries_are_acknowledged_but_not_published,
    every_subscriber_on_every_instance_gets_every_event_once,
    subscribers_joining_during_a_burst_see_a_contiguous_stream,
    a_slow_subscriber_catches_up_from_history_or_is_told,
    conversations_are_isolated,
    key_values_expire_and_delete,
    a_batch_is_published_in_order_with_redeliveries_recognised,
    concurrent_publishes_each_get_their_own_offset,
);

async fn a_batch_is_published_in_order_with_redeliveries_recognised(store: Store) {
    let harness = Harness::new(store);
    let bus = harness.instance();
    let (a, b) = (
        "projects/p/conversations/batch-a",
        "projects/p/conversations/batch-b",
    );
    let mut live = bus.subscribe(name(a), None).await.unwrap();
    let earlier = publish(&bus, &event(a, 0, Some("m-0"))).await;
    let outcomes = bus
        .publish_batch(vec![
            event(a, 1, Some("m-1")),
            event(b, 1, Some("m-1")), // the same id on another conversation is another message
            event(a, 0, Some("m-0")), // a redelivery of an event published before
            event(a, 2, None),
            event(a, 1, Some("m-1")), // a redelivery inside the batch
            event(b, 2, Some("m-2")),
        ])
        .await
        .unwrap();
    let offsets: Vec<Option<u64>> = outcomes
        .iter()
        .map(|outcome| match outcome {
            PublishOutcome::Published { offset } => Some(*offset),
            PublishOutcome::Duplicate => None,
        })
        .collect();
    assert_eq!(offsets[0], Some(earlier + 1));
    assert_eq!(offsets[2], None);
    assert_eq!(offsets[3], Some(earlier + 2));
    assert_eq!(offsets[4], None);
    let b_first = offsets[1].expect("published");
    assert_eq!(offsets[5], Some(b_first + 1));
    for expected in [0, 1, 2] {
        assert_eq!(n_of(&*next(&mut live).await), expected);
    }
    let kept = bus.history(&name(b), Some(0)).await.unwrap();
    assert_eq!(kept.events.len(), 2);
}

async fn concurrent_publishes_each_get_their_own_offset(store: Store) {
    let harness = Harness::new(store);
    let bus = harness.instance();
    let conversation = "projects/p/conversations/concurrent";
    let publishes: Vec<_> = (0..200u32)
        .map(|n| {
            let bus = bus.clone();
            tokio::spawn(async move {
                let id = format!("c-{n}");
                publish(&bus, &event(conversation, n, Some(&id))).await
            })
        })
        .collect();
    let mut offsets = Vec::new();
    for publish in publishes {
        offsets.push(publish.await.unwrap());
    }
    offsets.sort_unstable();
    offsets.dedup();
    assert_eq!(offsets.len(), 200, "every publish has an offset of its own");
    assert_eq!(offsets[199] - offsets[0], 199, "and they are consecutive");
    if !matches!(store, Store::Memory) {
        // Published together: far fewer script calls than events (group commit; one
        // conversation is one slot, so a cluster groups them too).
        let calls = harness.command_calls("evalsha");
        let script_loads = harness.command_calls("eval");
        assert!(
            calls + script_loads < 200,
            "{calls} EVALSHA + {script_loads} EVAL calls for 200 publishes"
        );
    }
}

async fn offsets_increase_by_one_and_events_carry_them(store: Store) {
    let harness = Harness::new(store);
    let bus = harness.instance();
    let before = now_micros();
    let first = publish(&bus, &event("projects/p/conversations/a", 1, None)).await;
    let second = publish(&bus, &event("projects/p/conversations/a", 2, None)).await;
    assert!(
        first > before,
        "first offset {first} is seeded from the clock ({before})"
    );
    assert!(first < 1 << 53, "offsets stay exact in JavaScript");
    assert_eq!(second, first + 1);
    let history = bus
        .history(&name("projects/p/conversations/a"), Some(0))
        .await
        .unwrap();
    assert_eq!(history.latest, second);
    let offsets: Vec<u64> = history.events.iter().map(|e| e.offset).collect();
    assert_eq!(offsets, vec![first, second]);
    let json: serde_json::Value = serde_json::from_str(history.events[1].json()).unwrap();
    assert_eq!(json["offset"], second);
    assert_eq!(json["data_type"], "human-agent-assistant-event");
    assert_eq!(json["conversation_name"], "projects/p/conversations/a");
}

async fn events_before_anyone_listens_are_kept(store: Store) {
    let harness = Harness::new(store);
    let publisher = harness.instance();
    let offset = publish(
        &publisher,
        &event("projects/p/conversations/early", 7, None),
    )
    .await;
    let listener = harness.instance();
    let mut subscription = listener
        .subscribe(name("projects/p/conversations/early"), Some(0))
        .await
        .unwrap();
    assert!(subscription.recovery().recovered);
    let received = next(&mut subscription).await;
    assert_eq!((received.offset, n_of(&received)), (offset, 7));
}

async fn since_replays_then_continues_live_without_gap_or_duplicate(store: Store) {
    let harness = Harness::new(store);
    let bus = harness.instance();
    let conversation = "projects/p/conversations/replay";
    let mut offsets = Vec::new();
    for n in 1..=5 {
        offsets.push(publish(&bus, &event(conversation, n, None)).await);
    }
    let listener = harness.instance();
    let mut subscription = listener
        .subscribe(name(conversation), Some(offsets[1]))
        .await
        .unwrap();
    let recovery = subscription.recovery();
    assert!(recovery.recovered);
    assert_eq!(recovery.offset, offsets[4]);
    for n in 6..=8 {
        publish(&bus, &event(conversation, n, None)).await;
    }
    for expected in 3..=8 {
        assert_eq!(n_of(&*next(&mut subscription).await), expected);
    }
    // A plain subscription starts live: nothing old, then the next event.
    let mut live = listener.subscribe(name(conversation), None).await.unwrap();
    publish(&bus, &event(conversation, 9, None)).await;
    assert_eq!(n_of(&*next(&mut live).await), 9);
    assert_eq!(n_of(&*next(&mut subscription).await), 9);
}

async fn recovery_is_reported_when_history_does_not_reach_back(store: Store) {
    let harness = Harness::with_config(store, |c| c.history_len = 3);
    let bus = harness.instance_with(|c| c.history_len = 3);
    let conversation = "projects/p/conversations/trimmed";
    let mut offsets = Vec::new();
    for n in 1..=6 {
        offsets.push(publish(&bus, &event(conversation, n, None)).await);
    }
    // Kept: 4, 5, 6. Asking after 3 is complete; asking after 1 is not.
    let history = bus
        .history(&name(conversation), Some(offsets[2]))
        .await
        .unwrap();
    assert!(history.complete);
    assert_eq!(history.events.len(), 3);
    // From the start (0): the first three were trimmed.
    let from_start = bus.history(&name(conversation), Some(0)).await.unwrap();
    assert!(!from_start.complete);
    assert_eq!(from_start.events.len(), 3);
    let mut subscription = bus
        .subscribe(name(conversation), Some(offsets[0]))
        .await
        .unwrap();
    assert!(!subscription.recovery().recovered);
    assert_eq!(subscription.recovery().offset, offsets[5]);
    // What is kept is still delivered, oldest first.
    assert_eq!(n_of(&*next(&mut subscription).await), 4);
    // Up to date, and ahead of the conversation (an offset from elsewhere).
    let current = bus
        .subscribe(name(conversation), Some(offsets[5]))
        .await
        .unwrap();
    assert!(current.recovery().recovered);
    let ahead = bus
        .subscribe(name(conversation), Some(offsets[5] + 10))
        .await
        .unwrap();
    assert!(!ahead.recovery().recovered);
    // A conversation the bus has never seen: since 0 is complete, anything else is not.
    let unknown = bus
        .history(&name("projects/p/conversations/none"), Some(0))
        .await
        .unwrap();
    assert!(unknown.complete);
    assert_eq!(unknown.latest, 0);
    let unknown = bus
        .history(&name("projects/p/conversations/none"), Some(5))
        .await
        .unwrap();
    assert!(!unknown.complete);
}

async fn redeliveries_are_acknowledged_but_not_published(store: Store) {
    let harness = Harness::new(store);
    let bus = harness.instance();
    let conversation = "projects/p/conversations/dedup";
    let mut subscription = bus.subscribe(name(conversation), None).await.unwrap();
    let first = publish(&bus, &event(conversation, 1, Some("m-1"))).await;
    assert_eq!(
        bus.publish(&event(conversation, 1, Some("m-1")))
            .await
            .unwrap(),
        PublishOutcome::Duplicate
    );
    // The same message id on another endpoint is another message.
    let other = event_of(EventType::NewMessageEvent, conversation, 2, Some("m-1"));
    let second = publish(&bus, &other).await;
    assert_eq!(second, first + 1);
    // Events without a message id are never deduplicated.
    publish(&bus, &event(conversation, 3, None)).await;
    publish(&bus, &event(conversation, 4, None)).await;
    let received: Vec<u32> = [
        next(&mut subscription).await,
        next(&mut subscription).await,
        next(&mut subscription).await,
        next(&mut subscription).await,
    ]
    .iter()
    .map(|e| n_of(e))
    .collect();
    assert_eq!(received, vec![1, 2, 3, 4]);
    let history = bus.history(&name(conversation), Some(0)).await.unwrap();
    assert_eq!(history.events.len(), 4);
}

async fn every_subscriber_on_every_instance_gets_every_event_once(store: Store) {
    let harness = Harness::new(store);
    let interceptor = harness.instance();
    let instances = [harness.instance(), harness.instance()];
    let conversation = "projects/p/conversations/fanout";
    let mut subscriptions = Vec::new();
    for instance in &instances {
        for _ in 0..3 {
            subscriptions.push(instance.subscribe(name(conversation), None).await.unwrap());
        }
    }
    if !matches!(store, Store::Memory) {
        // One Redis subscription per instance, however many subscribers it has.
        assert_eq!(harness.channel_subscribers(conversation), Some(2));
    }
    for n in 1..=20 {
        publish(&interceptor, &event(conversation, n, None)).await;
    }
    // A sentinel proves nothing was delivered twice in between.
    publish(&interceptor, &event(conversation, 999, None)).await;
    for subscription in &mut subscriptions {
        for n in 1..=20 {
            assert_eq!(n_of(&*next(subscription).await), n);
        }
        assert_eq!(n_of(&*next(subscription).await), 999);
    }
    for instance in &instances {
        assert_eq!(instance.subscribed_conversations(), 1);
    }
    drop(subscriptions);
    for instance in &instances {
        wait_until(|| instance.subscribed_conversations() == 0).await;
    }
    if !matches!(store, Store::Memory) {
        wait_until(|| harness.channel_subscribers(conversation) == Some(0)).await;
    }
}

async fn subscribers_joining_during_a_burst_see_a_contiguous_stream(store: Store) {
    let harness = Harness::new(store);
    let publisher = harness.instance();
    let listener = harness.instance();
    let conversation = "projects/p/conversations/burst";
    const EVENTS: u32 = 300;
    let burst = tokio::spawn({
        let publisher = publisher.clone();
        async move {
            for n in 1..=EVENTS {
                publish(&publisher, &event(conversation, n, None)).await;
                // Pushes arrive over HTTP: other tasks run between them. (The memory store's
                // publish never waits, so without this the burst would starve the readers.)
                tokio::task::yield_now().await;
            }
            publish(&publisher, &event(conversation, EVENTS + 1, None)).await;
        }
    });
    // Each subscriber reads as it goes, as a socket's forwarding task does.
    let mut readers = Vec::new();
    for _ in 0..8 {
        let mut subscription = listener.subscribe(name(conversation), None).await.unwrap();
        readers.push(tokio::spawn(async move {
            // Joined before the first event (latest 0): the generation's first offset is unknown.
            let mut expected = subscription.recovery().offset + 1;
            loop {
                let received = next(&mut subscription).await;
                if expected == 1 {
                    expected = received.offset;
                }
                assert_eq!(received.offset, expected, "no gap, no duplicate");
                expected += 1;
                if n_of(&received) == EVENTS + 1 {
                    break;
                }
            }
        }));
        tokio::task::yield_now().await;
    }
    burst.await.unwrap();
    for reader in readers {
        reader.await.unwrap();
    }
}

async fn a_slow_subscriber_catches_up_from_history_or_is_told(store: Store) {
    let harness = Harness::new(store);
    let bus = harness.instance();
    let conversation = "projects/p/conversations/slow";
    let mut slow = bus.subscribe(name(conversation), None).await.unwrap();
    let mut hopeless = bus.subscribe(name(conversation), None).await.unwrap();
    // More than the local buffer, less than history: caught up, nothing missing.
    for n in 1..=60 {
        publish(&bus, &event(conversation, n, None)).await;
    }
    for n in 1..=60 {
        assert_eq!(n_of(&*next(&mut slow).await), n);
    }
    // More than history keeps: the stream ends instead of skipping events.
    for n in 61..=250 {
        publish(&bus, &event(conversation, n, None)).await;
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), hopeless.next())
        .await
        .expect("an answer within 5 s");
    assert!(ended.is_none(), "a gap history cannot fill ends the stream");
}

async fn conversations_are_isolated(store: Store) {
    let harness = Harness::new(store);
    let bus = harness.instance();
    let mut a = bus
        .subscribe(name("projects/p/conversations/iso-a"), None)
        .await
        .unwrap();
    publish(&bus, &event("projects/p/conversations/iso-b", 1, None)).await;
    publish(&bus, &event("projects/p/conversations/iso-a", 2, None)).await;
    let received = next(&mut a).await;
    assert_eq!(n_of(&received), 2);
}

async fn key_values_expire_and_delete(store: Store) {
    let harness = Harness::new(store);
    let bus = harness.instance();
    let values = bus.key_value_store("test-values");
    let others = bus.key_value_store("other-values");
    values
        .put("k1", "v1", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(values.get("k1").await.unwrap().as_deref(), Some("v1"));
    assert_eq!(
        others.get("k1").await.unwrap(),
        None,
        "namespaces are apart"
    );
    assert!(values.delete("k1").await.unwrap());
    assert!(!values.delete("k1").await.unwrap());
    assert_eq!(values.get("k1").await.unwrap(), None);
}

#[tokio::test]
async fn offsets_never_go_backwards_after_history_expires() {
    // Memory: a short TTL. Redis: the same, plus an emptied server.
    let harness =
        Harness::with_config(Store::Memory, |c| c.history_ttl = Duration::from_millis(50));
    let bus = harness.instance();
    let conversation = "projects/p/conversations/expiring";
    let before = publish(&bus, &event(conversation, 1, None)).await;
    tokio::time::sleep(Duration::from_millis(80)).await; // the expiry under test, not a sync
    let history = bus
        .history(&name(conversation), Some(before))
        .await
        .unwrap();
    assert_eq!(history.latest, 0, "expired history is gone");
    let after = publish(&bus, &event(conversation, 2, None)).await;
    assert!(after > before);

    let redis = Harness::new(Store::Redis);
    let bus = redis.instance();
    let before = publish(&bus, &event(conversation, 1, None)).await;
    redis.redis.as_ref().unwrap().command("FLUSHALL");
    let mut subscription = bus
        .subscribe(name(conversation), Some(before))
        .await
        .unwrap();
    assert!(
        !subscription.recovery().recovered,
        "an emptied Redis is reported"
    );
    let after = publish(&bus, &event(conversation, 2, None)).await;
    assert!(after > before);
    assert_eq!(next(&mut subscription).await.offset, after);
}

#[tokio::test]
async fn a_publish_that_fails_half_way_is_not_remembered_as_accepted() {
    let harness = Harness::new(Store::Redis);
    let redis = harness.redis.as_ref().unwrap();
    let bus = harness.instance();
    let conversation = "projects/p/conversations/halfway";
    // Make the history append fail inside the script: the key holds a string, not a list.
    redis.command(&format!(
        "SET agent-assist:{{{conversation}}}:history not-a-list"
    ));
    assert!(bus
        .publish(&event(conversation, 1, Some("m-halfway")))
        .await
        .is_err());
    redis.command(&format!("DEL agent-assist:{{{conversation}}}:history"));
    // Pub/Sub redelivers: it must be published now, not dropped as a duplicate.
    assert!(matches!(
        bus.publish(&event(conversation, 1, Some("m-halfway")))
            .await
            .unwrap(),
        PublishOutcome::Published { .. }
    ));
}

#[tokio::test]
async fn subscribers_survive_a_redis_restart_and_miss_nothing_published_after_it() {
    // With persistence, Redis comes back with its history: the stream just goes on.
    let mut redis = RedisServer::start_persistent();
    let bus = |redis: &RedisServer| {
        ConversationBus::connect(
            BusConfig::with_redis(Some(redis.url())),
            CancellationToken::new(),
        )
        .unwrap()
    };
    let (publisher, listener) = (bus(&redis), bus(&redis));
    let conversation = "projects/p/conversations/restart";
    let mut subscription = listener.subscribe(name(conversation), None).await.unwrap();
    publish(&publisher, &event(conversation, 1, None)).await;
    assert_eq!(n_of(&*next(&mut subscription).await), 1);
    redis.stop();
    assert!(publisher
        .publish(&event(conversation, 2, None))
        .await
        .is_err());
    assert!(publisher.ping().await.is_err());
    redis.restart();
    // Published as soon as Redis is back, most likely before the listener has re-subscribed:
    // the reconnect gap-fill from history must deliver it anyway.
    publish_until_accepted(&publisher, &event(conversation, 2, None)).await;
    assert_eq!(n_of(&*next(&mut subscription).await), 2);
    publish(&publisher, &event(conversation, 3, None)).await;
    assert_eq!(n_of(&*next(&mut subscription).await), 3);
}

#[tokio::test]
async fn after_redis_restarts_empty_the_stream_ends_and_a_rejoin_is_told() {
    // Without persistence Redis forgets the conversation: what was published just before the
    // crash may be gone, so the subscriber is not allowed to go on as if nothing happened.
    let mut harness = Harness::new(Store::Redis);
    let publisher = harness.instance();
    let listener = harness.instance();
    let conversation = "projects/p/conversations/restart-empty";
    let mut subscription = listener.subscribe(name(conversation), None).await.unwrap();
    let first = publish(&publisher, &event(conversation, 1, None)).await;
    assert_eq!(n_of(&*next(&mut subscription).await), 1);
    harness.redis.as_mut().unwrap().restart();
    publish_until_accepted(&publisher, &event(conversation, 2, None)).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .expect("an answer within 5 s");
    assert!(ended.is_none(), "the stream ends instead of skipping");
    let mut rejoined = listener
        .subscribe(name(conversation), Some(first))
        .await
        .unwrap();
    assert!(!rejoined.recovery().recovered);
    assert_eq!(n_of(&*next(&mut rejoined).await), 2);
    publish(&publisher, &event(conversation, 3, None)).await;
    assert_eq!(n_of(&*next(&mut rejoined).await), 3);
}

/// Retries a publish while Redis comes back, as Pub/Sub's redelivery would.
async fn publish_until_accepted(bus: &ConversationBus, event: &PendingEvent) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match bus.publish(event).await {
            Ok(_) => return,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("publish did not recover: {e}"),
        }
    }
}

/// Waits for state that changes asynchronously (a subscription released by a background task),
/// checking often and failing after 5 s.
async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in 5 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

#[tokio::test]
async fn the_redis_listener_stops_on_shutdown() {
    let redis = RedisServer::start();
    let shutdown = CancellationToken::new();
    let bus = ConversationBus::connect(BusConfig::with_redis(Some(redis.url())), shutdown.clone())
        .unwrap();
    let live = bus
        .subscribe(name("projects/p/conversations/before-shutdown"), None)
        .await
        .unwrap();
    drop(live);
    shutdown.cancel();
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        bus.subscribe(name("projects/p/conversations/after-shutdown"), None),
    )
    .await
    .expect("answered at once, not after a timeout");
    assert!(
        matches!(refused, Err(agent_assist_core::BusError::ListenerStopped)),
        "{refused:?}"
    );
}
