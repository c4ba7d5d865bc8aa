//! Spike, parts a and b: with every key of a conversation under one hash tag, the publish script
//! runs atomically on a Redis Cluster through the async cluster client, and `SSUBSCRIBE` on a
//! RESP3 cluster connection delivers `SPUBLISH`ed events as push messages.

mod sharded_subscriber;

use std::time::Instant;

use redis::{AsyncCommands, PushKind, Value};
use redis_test_server::RedisCluster;
use sharded_subscriber::{
    command_connection, message_payload, next_push, publish, push_channel, shard_subscribers,
    subscriber_connection, ConversationKeys,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_script_runs_on_the_conversation_slot_and_refuses_foreign_slots() {
    let cluster = RedisCluster::start();
    let started = Instant::now();
    let keys = ConversationKeys::new("conversation-a");
    let slot = cluster.key_slot(&keys.seq);
    assert_eq!(cluster.key_slot(&keys.history), slot);
    assert_eq!(cluster.key_slot(&keys.channel), slot);
    let mut connection = command_connection(&cluster).await;

    for expected in 1..=3 {
        assert_eq!(publish(&mut connection, &keys).await.unwrap(), expected);
    }
    // The client routed the script to the slot's primary: the keys live there.
    let owner = cluster.node_for_slot(slot);
    let history: Vec<u64> = cluster
        .query(
            &owner,
            redis::cmd("LRANGE").arg(&keys.history).arg(0).arg(-1),
        )
        .unwrap();
    assert_eq!(history, [1, 2, 3]);

    // Keys of two slots in one script: the server refuses before running anything.
    let other = ConversationKeys::new("conversation-b");
    assert_ne!(cluster.key_slot(&other.seq), slot);
    let mixed = ConversationKeys {
        history: other.history.clone(),
        ..keys.clone()
    };
    let err = publish(&mut connection, &mixed).await.unwrap_err();
    assert_eq!(err.code(), Some("CROSSSLOT"), "{err}");

    // A channel of another slot: SPUBLISH inside the script is checked like a key access, and
    // fails mid-script - after HINCRBY and RPUSH already ran (scripts do not roll back). The bus
    // must derive the channel from the same hash tag, never take it from elsewhere.
    let foreign_channel = ConversationKeys {
        channel: other.channel.clone(),
        ..keys.clone()
    };
    let err = publish(&mut connection, &foreign_channel)
        .await
        .unwrap_err();
    eprintln!("foreign channel in script: {err}");
    assert!(err.to_string().contains("non local key"), "{err}");
    let history: Vec<u64> = connection.lrange(&keys.history, 0, -1).await.unwrap();
    assert_eq!(history, [1, 2, 3, 4], "the failed script's writes stay");
    eprintln!(
        "TIMING spike a (script on one slot): {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssubscribe_on_a_resp3_cluster_connection_delivers_spublished_events_as_pushes() {
    let cluster = RedisCluster::start();
    let started = Instant::now();
    let keys = ConversationKeys::new("conversation-a");
    let owner = cluster.node_for_slot(cluster.key_slot(&keys.channel));
    let (mut subscriber, mut pushes) = subscriber_connection(&cluster).await;

    subscriber.ssubscribe(&keys.channel).await.unwrap();
    let confirmation = next_push(&mut pushes).await;
    assert_eq!(confirmation.kind, PushKind::SSubscribe);
    assert_eq!(
        confirmation.data,
        [
            Value::BulkString(keys.channel.clone().into_bytes()),
            Value::Int(1)
        ]
    );
    // The subscription lives on the slot's primary only.
    for primary in cluster.primaries() {
        let expected = usize::from(primary == owner);
        assert_eq!(
            shard_subscribers(&cluster, &primary, &keys.channel),
            expected
        );
    }

    // From the publish script (another connection)...
    let mut publisher = command_connection(&cluster).await;
    assert_eq!(publish(&mut publisher, &keys).await.unwrap(), 1);
    let message = next_push(&mut pushes).await;
    assert_eq!(message.kind, PushKind::SMessage);
    assert_eq!(
        push_channel(&message).as_deref(),
        Some(keys.channel.as_str())
    );
    assert_eq!(message_payload(&message).as_deref(), Some("1"));
    // ...and from a plain SPUBLISH, which reports one receiver on the shard.
    let receivers: usize = publisher.spublish(&keys.channel, "hello").await.unwrap();
    assert_eq!(receivers, 1);
    let message = next_push(&mut pushes).await;
    assert_eq!(message.kind, PushKind::SMessage);
    assert_eq!(message_payload(&message).as_deref(), Some("hello"));

    // One SSUBSCRIBE may only name channels of one slot: the bus subscribes per conversation.
    let other = ConversationKeys::new("conversation-b");
    let err = subscriber
        .ssubscribe(&[&keys.channel, &other.channel])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("CROSSSLOT"), "{err}");

    // Sharded subscriptions need RESP3 on the cluster connection.
    let err = publisher.ssubscribe(&keys.channel).await.unwrap_err();
    assert_eq!(err.kind(), redis::ErrorKind::InvalidClientConfig, "{err}");
    eprintln!("TIMING spike b (sharded pub/sub): {:?}", started.elapsed());
}
