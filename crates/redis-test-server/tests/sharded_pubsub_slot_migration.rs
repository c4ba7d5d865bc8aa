//! Spike, part c: what happens to a sharded subscription when its slot migrates to another
//! primary, and how the bus keeps every event anyway.
//!
//! Found (redis 1.8.1, Redis 7.0.15): when the source primary hands the slot over
//! (`SETSLOT NODE`), it sends an unsolicited `sunsubscribe` push for every channel of the slot.
//! The crate records it in its subscription tracker exactly like an unsubscribe we asked for, so
//! it never subscribes again, not even after it has learned the new owner. Sending `SSUBSCRIBE`
//! again works (the stale route gets `MOVED`, the client follows it to the new owner).

mod sharded_subscriber;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{AsyncCommands, PushKind, Value};
use redis_test_server::RedisCluster;
use sharded_subscriber::{
    command_connection, conversation_on, message_payload, next_push, publish, publish_until,
    push_channel, run_topology_change, shard_subscribers, subscriber_connection,
    ConversationFollower, ConversationKeys, Resubscription,
};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_slot_unsubscribes_its_channels_and_the_client_does_not_subscribe_again() {
    let cluster = Arc::new(RedisCluster::start());
    let started = Instant::now();
    let keys = ConversationKeys::new("conversation-a");
    let slot = cluster.key_slot(&keys.channel);
    let from = cluster.node_for_slot(slot);
    let to = cluster
        .primaries()
        .into_iter()
        .find(|p| *p != from)
        .unwrap();
    let (mut subscriber, mut pushes) = subscriber_connection(&cluster).await;
    subscriber.ssubscribe(&keys.channel).await.unwrap();
    assert_eq!(next_push(&mut pushes).await.kind, PushKind::SSubscribe);

    let migrating = Arc::clone(&cluster);
    let target = to.clone();
    tokio::task::spawn_blocking(move || migrating.migrate_slot(slot, &target))
        .await
        .unwrap();

    // The old owner dropped the subscription and said so.
    let push = next_push(&mut pushes).await;
    assert_eq!(push.kind, PushKind::SUnsubscribe);
    assert_eq!(
        push.data,
        [
            Value::BulkString(keys.channel.clone().into_bytes()),
            Value::Int(0)
        ]
    );
    assert_eq!(shard_subscribers(&cluster, &from, &keys.channel), 0);

    // A command on the moved slot gets MOVED, so the client refreshes its slot map (and
    // re-subscribes what its tracker still lists); a second command on the same node connection
    // is answered only after anything queued before it. Still nobody listens on the new owner.
    let probe = "agent-assist:{conversation-a}:probe";
    for _ in 0..2 {
        let _: Option<String> = subscriber.get(probe).await.unwrap();
    }
    assert_eq!(shard_subscribers(&cluster, &to, &keys.channel), 0);
    let mut publisher = command_connection(&cluster).await;
    let receivers: usize = publisher.spublish(&keys.channel, "lost").await.unwrap();
    assert_eq!(receivers, 0, "the event reached nobody");

    // Subscribing again is what works.
    subscriber.ssubscribe(&keys.channel).await.unwrap();
    assert_eq!(next_push(&mut pushes).await.kind, PushKind::SSubscribe);
    assert_eq!(shard_subscribers(&cluster, &to, &keys.channel), 1);
    assert_eq!(publish(&mut publisher, &keys).await.unwrap(), 1);
    let message = next_push(&mut pushes).await;
    assert_eq!(message.kind, PushKind::SMessage);
    assert_eq!(message_payload(&message).as_deref(), Some("1"));
    eprintln!(
        "TIMING spike c (migration, raw behaviour): {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_delivers_every_event_while_a_busy_conversation_slot_migrates() {
    let cluster = Arc::new(RedisCluster::start());
    let started = Instant::now();
    let keys = ConversationKeys::new("busy-conversation");
    let slot = cluster.key_slot(&keys.channel);
    let from = cluster.node_for_slot(slot);
    let to = cluster
        .primaries()
        .into_iter()
        .find(|p| *p != from)
        .unwrap();

    let follower = ConversationFollower::subscribe(&cluster, keys.clone()).await;
    let (last_offset_tx, last_offset) = watch::channel(None);
    let following = tokio::spawn(follower.follow(last_offset));
    let mut publisher = command_connection(&cluster).await;
    for _ in 0..20 {
        publish(&mut publisher, &keys).await.unwrap();
    }

    // The keys move one MIGRATE at a time while events keep being published: the script meets
    // ASK and TRYAGAIN (keys split between the nodes), which the client retries.
    let target = to.clone();
    let (migration, done) = run_topology_change(&cluster, move |c| c.migrate_slot(slot, &target));
    let offsets = publish_until(&mut publisher, &keys, &done, 50).await;
    let ((), migration_time) = migration.await.unwrap();
    let last = *offsets.last().unwrap();
    last_offset_tx.send(Some(last)).unwrap();
    let report = following.await.unwrap();

    assert_eq!(cluster.node_for_slot(slot), to);
    assert_eq!(
        offsets,
        (21..=last).collect::<Vec<_>>(),
        "each publish counted once"
    );
    assert_eq!(
        report.offsets,
        (1..=last).collect::<Vec<_>>(),
        "every event, in order"
    );
    assert_eq!(report.resubscriptions, [Resubscription::ServerUnsubscribed]);
    // Live events after the re-subscription: the subscription really is back, on the new owner.
    assert!(report.live_after_last_resubscription > 0, "{report:?}");
    eprintln!(
        "TIMING spike c (follower through migration): migrate_slot {migration_time:?}, \
         {} events published meanwhile, re-subscribed after {:?}, {} events from history, \
         {} live after; whole test {:?}",
        offsets.len() - 50,
        report.recovery_times,
        report.filled_from_history,
        report.live_after_last_resubscription,
        started.elapsed()
    );
}

/// Why the bus must keep commands off its subscriber connection: the crate takes a push that
/// can be a reply (`sunsubscribe`) as the reply of the oldest command in flight on that node
/// connection, so an unsolicited one answers somebody else's command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsolicited_sunsubscribe_is_taken_as_the_reply_of_a_command_in_flight() {
    let cluster = Arc::new(RedisCluster::start());
    let started = Instant::now();
    let keys = ConversationKeys::new("conversation-a");
    let slot = cluster.key_slot(&keys.channel);
    let from = cluster.node_for_slot(slot);
    let to = cluster
        .primaries()
        .into_iter()
        .find(|p| *p != from)
        .unwrap();
    let (mut subscriber, mut pushes) = subscriber_connection(&cluster).await;
    subscriber.ssubscribe(&keys.channel).await.unwrap();
    assert_eq!(next_push(&mut pushes).await.kind, PushKind::SSubscribe);

    // A blocking command for another slot of the same node, on the same cluster connection.
    let other = conversation_on(&cluster, &from, "blocked");
    assert_ne!(cluster.key_slot(format!("{{{other}}}")), slot);
    let blocked_key = format!("agent-assist:{{{other}}}:queue");
    let mut blocking = subscriber.clone();
    let blpop = tokio::spawn(async move {
        let sent = Instant::now();
        let reply: redis::RedisResult<Value> = redis::cmd("BLPOP")
            .arg(&blocked_key)
            .arg(3)
            .query_async(&mut blocking)
            .await;
        (reply, sent.elapsed())
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let clients: String = cluster
            .query(&from, redis::cmd("INFO").arg("clients"))
            .unwrap();
        if clients.contains("blocked_clients:1") {
            break;
        }
        assert!(Instant::now() < deadline, "BLPOP never blocked");
        tokio::task::yield_now().await;
    }

    let migrating = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || migrating.migrate_slot(slot, &to))
        .await
        .unwrap();
    let (reply, waited) = blpop.await.unwrap();
    // BLPOP on an empty list answers nil after 3 s; it "answered" the sunsubscribe instead.
    match reply {
        Ok(Value::Push { kind, data }) => {
            assert_eq!(kind, PushKind::SUnsubscribe);
            assert_eq!(
                data.first(),
                Some(&Value::BulkString(keys.channel.clone().into_bytes()))
            );
        }
        other => panic!("expected the sunsubscribe push as BLPOP's reply, got {other:?}"),
    }
    assert!(
        waited < Duration::from_secs(3),
        "answered early: {waited:?}"
    );
    // The push still reaches the push receiver too.
    let push = next_push(&mut pushes).await;
    assert_eq!(push.kind, PushKind::SUnsubscribe);
    assert_eq!(push_channel(&push).as_deref(), Some(keys.channel.as_str()));
    eprintln!("TIMING spike c (in-flight hazard): {:?}", started.elapsed());
}
