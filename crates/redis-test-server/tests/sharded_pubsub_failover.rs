//! Spike, part d: what happens to a sharded subscription when its primary fails over, and how the
//! bus keeps every event anyway.
//!
//! Found (redis 1.8.1, Redis 7.0.15):
//! - Primary killed: the client gets a `Disconnection` push (no server message can come). Its
//!   tracker still lists the channel, but it subscribes again only when something makes it refresh
//!   its slot map (a command that meets the dead node or a `MOVED`); an idle subscriber stays deaf
//!   after the cluster has long recovered.
//! - Coordinated failover (`CLUSTER FAILOVER`): the old primary, now a replica, sends
//!   `sunsubscribe` for its channels, exactly as after a slot migration; the crate forgets them.
//! - Re-subscribing several channels concurrently right after a failover loses subscriptions
//!   silently: each redirected `SSUBSCRIBE` opens its own connection to the promoted node and the
//!   crate keeps only the last one; every call still returns `Ok` and every confirmation arrives.
//!   Re-subscribing one command at a time keeps them all.

mod sharded_subscriber;

use std::sync::Arc;
use std::time::Instant;

use redis::{AsyncCommands, PushKind};
use redis_test_server::RedisCluster;
use sharded_subscriber::{
    command_connection, conversation_on, message_payload, next_push, publish, publish_until,
    run_topology_change, shard_subscribers, subscriber_connection, ConversationFollower,
    ConversationKeys, Resubscription,
};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_leaves_an_idle_subscriber_deaf_until_it_subscribes_again() {
    let cluster = Arc::new(RedisCluster::start());
    let started = Instant::now();
    let keys = ConversationKeys::new("conversation-a");
    let primary = cluster.node_for_slot(cluster.key_slot(&keys.channel));
    let (mut subscriber, mut pushes) = subscriber_connection(&cluster).await;
    subscriber.ssubscribe(&keys.channel).await.unwrap();
    assert_eq!(next_push(&mut pushes).await.kind, PushKind::SSubscribe);

    let failing = Arc::clone(&cluster);
    let promoted = tokio::task::spawn_blocking(move || failing.failover(&primary))
        .await
        .unwrap();
    let failover_time = started.elapsed();

    let push = next_push(&mut pushes).await;
    assert_eq!(push.kind, PushKind::Disconnection);
    assert!(push.data.is_empty());
    // The cluster has converged on the promoted replica; the idle client has not moved.
    assert_eq!(shard_subscribers(&cluster, &promoted, &keys.channel), 0);
    let mut publisher = command_connection(&cluster).await;
    let receivers: usize = publisher.spublish(&keys.channel, "lost").await.unwrap();
    assert_eq!(receivers, 0, "the event reached nobody");

    // SSUBSCRIBE again: the stale route fails, the client refreshes its slots and reaches the
    // promoted node (its own re-subscription of the tracked channel may confirm too).
    subscriber.ssubscribe(&keys.channel).await.unwrap();
    assert_eq!(next_push(&mut pushes).await.kind, PushKind::SSubscribe);
    assert_eq!(shard_subscribers(&cluster, &promoted, &keys.channel), 1);
    assert_eq!(publish(&mut publisher, &keys).await.unwrap(), 1);
    let message = loop {
        let push = next_push(&mut pushes).await;
        if push.kind == PushKind::SMessage {
            break push;
        }
        assert_eq!(push.kind, PushKind::SSubscribe, "{push:?}");
    };
    assert_eq!(message_payload(&message).as_deref(), Some("1"));
    eprintln!(
        "TIMING spike d (kill, raw behaviour): failover {failover_time:?}, test {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_resubscriptions_after_a_failover_are_all_kept() {
    let cluster = Arc::new(RedisCluster::start());
    let started = Instant::now();
    let primary = cluster.primaries().remove(0);
    let channels = |prefix: &str| -> Vec<String> {
        (0..8)
            .map(|i| {
                ConversationKeys::new(&conversation_on(
                    &cluster,
                    &primary,
                    &format!("{prefix}{i}"),
                ))
                .channel
            })
            .collect()
    };
    let (concurrent_channels, serial_channels) = (channels("concurrent-"), channels("serial-"));
    let (mut concurrent, mut concurrent_pushes) = subscriber_connection(&cluster).await;
    let (mut serial, mut serial_pushes) = subscriber_connection(&cluster).await;
    for channel in &concurrent_channels {
        concurrent.ssubscribe(channel).await.unwrap();
    }
    for channel in &serial_channels {
        serial.ssubscribe(channel).await.unwrap();
    }

    let failing = Arc::clone(&cluster);
    let failed = primary.clone();
    let promoted = tokio::task::spawn_blocking(move || failing.failover(&failed))
        .await
        .unwrap();
    for pushes in [&mut concurrent_pushes, &mut serial_pushes] {
        while next_push(pushes).await.kind != PushKind::Disconnection {}
    }

    let results = futures::future::join_all(concurrent_channels.iter().map(|channel| {
        let mut connection = concurrent.clone();
        async move { connection.ssubscribe(channel).await }
    }))
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for channel in &serial_channels {
        serial.ssubscribe(channel).await.unwrap();
    }
    // Each call above returns only after its confirmation was read, so the server state is final.
    let live = |channels: &[String]| {
        channels
            .iter()
            .filter(|c| shard_subscribers(&cluster, &promoted, c) == 1)
            .count()
    };
    let (concurrent_live, serial_live) = (live(&concurrent_channels), live(&serial_channels));
    eprintln!("after failover: {concurrent_live}/8 concurrent and {serial_live}/8 serial re-subscriptions live");
    assert_eq!(serial_live, serial_channels.len());
    // Concurrent re-subscriptions are only observed, not asserted: whether the crate drops some of
    // them depends on how the confirmations interleave (8/8 were kept in one CI run, fewer in
    // others), which is exactly why the bus sends one subscription command at a time.
    eprintln!(
        "TIMING spike d (concurrent vs serial): {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_delivers_every_event_while_the_conversation_primary_is_killed_and_replaced() {
    let cluster = Arc::new(RedisCluster::start());
    let started = Instant::now();
    let keys = ConversationKeys::new("busy-conversation");
    let slot = cluster.key_slot(&keys.channel);
    let primary = cluster.node_for_slot(slot);

    let follower = ConversationFollower::subscribe(&cluster, keys.clone()).await;
    let (last_offset_tx, last_offset) = watch::channel(None);
    let following = tokio::spawn(follower.follow(last_offset));
    let mut publisher = command_connection(&cluster).await;
    for _ in 0..20 {
        publish(&mut publisher, &keys).await.unwrap();
    }

    // Replication is asynchronous: an event acknowledged just before the kill may never reach the
    // replica, and the promoted node would hand its offset out again. That is Redis's durability
    // model, not the bus's doing, so the kill comes once the replica has everything; from then
    // on the publisher keeps going through the whole failover.
    let killing = Arc::clone(&cluster);
    let killed = primary.clone();
    tokio::task::spawn_blocking(move || {
        killing.wait_until_replicas_caught_up(&killed);
        killing.stop_node(&killed);
    })
    .await
    .unwrap();
    let (failover, done) = run_topology_change(&cluster, |c| c.wait_until_converged());
    let offsets = publish_until(&mut publisher, &keys, &done, 50).await;
    let ((), failover_time) = failover.await.unwrap();
    let last = *offsets.last().unwrap();
    last_offset_tx.send(Some(last)).unwrap();
    let report = following.await.unwrap();

    assert_ne!(cluster.node_for_slot(slot), primary);
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
    assert!(
        report
            .resubscriptions
            .contains(&Resubscription::Disconnected),
        "{report:?}"
    );
    // Whether the events after the re-subscription came live is observed, not asserted: in one
    // CI run (re-subscribed 56 ms after the kill, long before the promotion) none did and all
    // came from history. The `redis` crate (1.8) also re-subscribes tracked channels on its own
    // after reconnecting, and this spike's follower races it; the bus's listener checks history
    // again after every re-subscription and its own test
    // (`agent-assist-core/tests/bus_cluster_topology.rs`) asserts the subscription is live on
    // the slot's shard afterwards.
    eprintln!(
        "TIMING spike d (follower through kill): failover {failover_time:?}, \
         re-subscribed after {:?} ({:?}), {} events from history, {} live after; test {:?}",
        report.recovery_times,
        report.resubscriptions,
        report.filled_from_history,
        report.live_after_last_resubscription,
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_delivers_every_event_through_a_coordinated_failover() {
    let cluster = Arc::new(RedisCluster::start());
    let started = Instant::now();
    let keys = ConversationKeys::new("busy-conversation");
    let slot = cluster.key_slot(&keys.channel);
    let primary = cluster.node_for_slot(slot);

    let follower = ConversationFollower::subscribe(&cluster, keys.clone()).await;
    let (last_offset_tx, last_offset) = watch::channel(None);
    let following = tokio::spawn(follower.follow(last_offset));
    let mut publisher = command_connection(&cluster).await;
    for _ in 0..20 {
        publish(&mut publisher, &keys).await.unwrap();
    }

    let old_primary = primary.clone();
    let (failover, done) =
        run_topology_change(&cluster, move |c| c.graceful_failover(&old_primary));
    let offsets = publish_until(&mut publisher, &keys, &done, 50).await;
    let (promoted, failover_time) = failover.await.unwrap();
    let last = *offsets.last().unwrap();
    let subscribers = (
        shard_subscribers(&cluster, &promoted, &keys.channel),
        shard_subscribers(&cluster, &primary, &keys.channel),
    );
    last_offset_tx.send(Some(last)).unwrap();
    let report = following.await.unwrap();

    assert_eq!(cluster.node_for_slot(slot), promoted);
    assert_eq!(
        report.offsets,
        (1..=last).collect::<Vec<_>>(),
        "every event, in order"
    );
    assert_eq!(report.resubscriptions, [Resubscription::ServerUnsubscribed]);
    assert!(report.live_after_last_resubscription > 0, "{report:?}");
    eprintln!(
        "TIMING spike d (follower through CLUSTER FAILOVER): failover {failover_time:?}, \
         re-subscribed after {:?}, {} events from history, {} live after, subscribers \
         (promoted, old primary now replica) {subscribers:?}; test {:?}",
        report.recovery_times,
        report.filled_from_history,
        report.live_after_last_resubscription,
        started.elapsed()
    );
}
