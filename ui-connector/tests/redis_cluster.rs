//! The services on a Redis Cluster (issue 15): one interceptor and two connectors started with
//! `REDIS_CLUSTER_NODES` on a real 3-primary cluster (a replica each), desktops joined over
//! Socket.IO on both connectors, events pushed over HTTP the way Pub/Sub pushes (each retried
//! until answered 204) while one busy conversation's slot migrates to another primary and then
//! another primary hands over to its replica (`CLUSTER FAILOVER`).
//!
//! What must hold: both services are ready on the cluster; every acknowledged event reaches
//! every desktop of its conversation exactly once; no desktop sees the offsets jump on an open
//! connection; nobody is told `recovered: false` (history covers every re-subscription here).
//! The figures are printed to stderr (`-- --nocapture`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_assist_core::EventType;
use agent_assist_test_support::{PushEnvelope, Settings, TestConnector, TestInterceptor};
use redis_test_server::RedisCluster;

mod desktop_under_load;
use desktop_under_load::{
    assert_every_acknowledged_event_arrived, desktop, push_until_accepted, Acked, Seen,
    PUSH_DEADLINE,
};
use serde_json::json;

/// Two per primary.
const CONVERSATIONS: usize = 6;
/// Per conversation: 50 a second, 300 a second in all.
const PUSH_INTERVAL: Duration = Duration::from_millis(20);
/// Load goes on this long after the last topology change.
const AFTER_CHANGES: Duration = Duration::from_millis(1000);
const LOAD_TIME: Duration = Duration::from_secs(30);

/// Conversation names, two whose slots are on each primary.
fn conversations(cluster: &RedisCluster) -> Vec<String> {
    let mut names = Vec::new();
    for primary in cluster.primaries() {
        let on_it = (0..10_000)
            .map(|i| format!("projects/p/conversations/cluster-{i}"))
            .filter(|c| cluster.node_for_slot(slot_of(cluster, c)) == primary)
            .take(2);
        names.extend(on_it);
    }
    assert_eq!(names.len(), CONVERSATIONS);
    names
}

fn slot_of(cluster: &RedisCluster, conversation: &str) -> u16 {
    cluster.key_slot(format!("agent-assist:{{{conversation}}}:events"))
}

/// Subscribers of the conversation's sharded channel over its shard (primary and replicas).
fn shard_subscribers(cluster: &RedisCluster, conversation: &str) -> u64 {
    let channel = format!("agent-assist:{{{conversation}}}:events");
    let primary = cluster.node_for_slot(slot_of(cluster, conversation));
    std::iter::once(primary.clone())
        .chain(cluster.replicas_of(&primary))
        .map(|node| {
            let (_, count): (String, u64) = cluster
                .query(&node, redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(&channel))
                .unwrap();
            count
        })
        .sum()
}

async fn ready(http: &reqwest::Client, base: String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = http
            .get(format!("{base}/ready"))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if status.as_ref().is_ok_and(|s| *s == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "{base}/ready: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktops_get_every_acknowledged_event_through_a_slot_migration_and_a_failover() {
    let cluster = Arc::new(RedisCluster::start());
    let nodes = cluster.seed_urls().join(",");
    let names = Arc::new(conversations(&cluster));
    let interceptor = TestInterceptor::spawn(Settings::from_pairs([(
        "REDIS_CLUSTER_NODES",
        nodes.clone(),
    )]))
    .await;
    let connectors = [
        TestConnector::builder()
            .setting("REDIS_CLUSTER_NODES", nodes.clone())
            .spawn()
            .await,
        TestConnector::builder()
            .setting("REDIS_CLUSTER_NODES", nodes.clone())
            .spawn()
            .await,
    ];
    let http = reqwest::Client::new();
    ready(&http, interceptor.url("")).await;
    for connector in &connectors {
        ready(&http, connector.url("")).await;
    }

    let acked: Acked = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let mut desktops = Vec::new();
    for index in 0..CONVERSATIONS {
        for connector in &connectors {
            desktops.push(tokio::spawn(desktop(
                connector.address(),
                connector.token("agent@example.com"),
                names[index].clone(),
                index,
                acked.clone(),
                done.clone(),
                Instant::now() + LOAD_TIME + PUSH_DEADLINE + Duration::from_secs(10),
                |_: &Seen, _: &str| false,
            )));
        }
    }
    let joined = Instant::now() + Duration::from_secs(10);
    while !names.iter().all(|c| shard_subscribers(&cluster, c) == 2) {
        assert!(Instant::now() < joined, "desktops did not join");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The topology changes, one after the other, on a blocking thread while the load runs:
    // conversation 0's slot moves to the third primary, then conversation 2's primary hands
    // over to its replica.
    let primaries = cluster.primaries();
    let (migrated_slot, target) = (slot_of(&cluster, &names[0]), primaries[2].clone());
    let failing_over = cluster.node_for_slot(slot_of(&cluster, &names[2]));
    let changes_done = Arc::new(AtomicBool::new(false));
    let changes = {
        let (cluster, flag) = (cluster.clone(), changes_done.clone());
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(500));
            let started = Instant::now();
            cluster.migrate_slot(migrated_slot, &target);
            let migration = started.elapsed();
            let started = Instant::now();
            let promoted = cluster.graceful_failover(&failing_over);
            flag.store(true, Ordering::SeqCst);
            (migration, started.elapsed(), promoted)
        })
    };

    let url = interceptor.url(&EventType::HumanAgentAssistantEvent.route());
    let started = Instant::now();
    let mut changes_finished_at = None;
    let mut pushes = Vec::new();
    let mut n = 0usize;
    let mut ticks = tokio::time::interval(PUSH_INTERVAL);
    loop {
        ticks.tick().await;
        if changes_finished_at.is_none() && changes_done.load(Ordering::SeqCst) {
            changes_finished_at = Some(Instant::now());
        }
        if changes_finished_at.is_some_and(|at| at.elapsed() >= AFTER_CHANGES) {
            break;
        }
        assert!(
            started.elapsed() < LOAD_TIME,
            "the topology changes did not finish"
        );
        for index in 0..CONVERSATIONS {
            let message_id = format!("cluster-{index}-{n}");
            let data = json!({"conversation": names[index], "n": n}).to_string();
            let envelope = PushEnvelope::new(data).message_id(message_id.clone());
            pushes.push(tokio::spawn(push_until_accepted(
                http.clone(),
                url.clone(),
                envelope,
                acked.clone(),
                index,
                message_id,
                |_: &str| {},
            )));
        }
        n += 1;
    }
    let (migration, failover, promoted) = changes.await.unwrap();
    for push in pushes {
        push.await.unwrap();
    }
    // While the desktops are still joined: every conversation is subscribed by both
    // connectors, on its current shard.
    for conversation in names.iter() {
        assert_eq!(
            shard_subscribers(&cluster, conversation),
            2,
            "{conversation}"
        );
    }
    done.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    for desktop in desktops {
        seen.push(desktop.await.unwrap());
    }
    assert_eq!(cluster.node_for_slot(migrated_slot), primaries[2]);
    assert_eq!(
        cluster.node_for_slot(slot_of(&cluster, &names[2])),
        promoted
    );

    let acked = acked.lock().unwrap();
    let total: usize = acked.values().map(BTreeSet::len).sum();
    eprintln!(
        "cluster: {total} events acknowledged over {:?}; slot migration {migration:?}, \
         coordinated failover {failover:?}; desktops reconnected {} times, told \
         recovered=false {} times",
        started.elapsed(),
        seen.iter().map(|s| s.reconnects).sum::<usize>(),
        seen.iter().map(|s| s.told_not_recovered).sum::<usize>(),
    );
    assert_every_acknowledged_event_arrived("cluster", &seen, &acked, |_, _| false);
    for (i, desk) in seen.iter().enumerate() {
        assert_eq!(desk.told_not_recovered, 0, "desktop {i}");
    }
}
