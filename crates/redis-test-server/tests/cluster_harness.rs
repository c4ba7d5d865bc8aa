//! The cluster harness does what it says: forms a healthy 3+3 cluster, computes slots as the
//! server does, moves a slot with its keys, and fails primaries over (crash and coordinated),
//! bringing a killed node back as a replica.

use std::time::Instant;

use redis_test_server::{ClusterNode, RedisCluster};

fn keyslot(cluster: &RedisCluster, node: &ClusterNode, key: &str) -> u16 {
    cluster
        .query(node, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
        .expect("CLUSTER KEYSLOT")
}

fn set(cluster: &RedisCluster, node: &ClusterNode, key: &str, value: &str) {
    let reply: String = cluster
        .query(node, redis::cmd("SET").arg(key).arg(value))
        .expect("SET on the owning primary");
    assert_eq!(reply, "OK");
}

fn get(
    cluster: &RedisCluster,
    node: &ClusterNode,
    key: &str,
) -> redis::RedisResult<Option<String>> {
    cluster.query(node, redis::cmd("GET").arg(key))
}

/// Blocks until `primary`'s replicas have acknowledged every write so far (`WAIT`).
fn wait_for_replicas(cluster: &RedisCluster, primary: &ClusterNode) {
    let acked: usize = cluster
        .query(primary, redis::cmd("WAIT").arg(1).arg(5000))
        .expect("WAIT");
    assert_eq!(acked, 1, "the replica did not acknowledge the writes");
}

#[test]
fn forms_a_healthy_cluster_of_three_primaries_with_a_replica_each() {
    let started = Instant::now();
    let cluster = RedisCluster::start();
    eprintln!(
        "TIMING cluster start (6 nodes, converged): {:?}",
        started.elapsed()
    );

    let version: String = cluster
        .query(&cluster.nodes()[0], redis::cmd("INFO").arg("server"))
        .expect("INFO server");
    let version = version
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .expect("redis_version in INFO")
        .trim()
        .to_owned();
    eprintln!("redis-server version: {version}");
    let major: u32 = version.split('.').next().unwrap().parse().unwrap();
    assert!(
        major >= 7,
        "sharded pub/sub needs Redis 7.0+, found {version}"
    );

    let primaries = cluster.primaries();
    assert_eq!(primaries.len(), 3);
    for primary in &primaries {
        assert_eq!(cluster.replicas_of(primary).len(), 1);
    }
    assert_eq!(cluster.seed_urls().len(), 6);
    for node in cluster.nodes() {
        let info: String = cluster
            .query(&node, redis::cmd("CLUSTER").arg("INFO"))
            .unwrap();
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_slots_ok:16384"), "{info}");
        assert!(info.contains("cluster_known_nodes:6"), "{info}");
    }

    // The local slot computation agrees with the server, hash tags included.
    for key in [
        "agent-assist:{conversation-1}:seq",
        "agent-assist:{conversation-1}:history",
        "plain-key",
        "{}empty-tag",
        "a{b}{c}",
        "",
    ] {
        assert_eq!(
            cluster.key_slot(key),
            keyslot(&cluster, &primaries[0], key),
            "{key:?}"
        );
    }

    // node_for_slot names the primary that accepts the key; the others redirect.
    let key = "agent-assist:{conversation-1}:seq";
    let owner = cluster.node_for_slot(cluster.key_slot(key));
    set(&cluster, &owner, key, "1");
    let other = primaries.iter().find(|p| **p != owner).unwrap();
    let err = get(&cluster, other, key).expect_err("a non-owner must redirect");
    assert_eq!(err.code(), Some("MOVED"), "{err}");
}

#[test]
fn migrates_a_slot_with_its_keys_to_another_primary() {
    let cluster = RedisCluster::start();
    let keys = ["{migrating}:a", "{migrating}:b", "{migrating}:c"];
    let slot = cluster.key_slot(keys[0]);
    let from = cluster.node_for_slot(slot);
    for key in keys {
        set(&cluster, &from, key, key);
    }
    let to = cluster
        .primaries()
        .into_iter()
        .find(|p| *p != from)
        .unwrap();

    let started = Instant::now();
    cluster.migrate_slot(slot, &to);
    eprintln!("TIMING migrate_slot (3 keys): {:?}", started.elapsed());

    assert_eq!(cluster.node_for_slot(slot), to);
    for key in keys {
        assert_eq!(get(&cluster, &to, key).unwrap().as_deref(), Some(key));
        let err = get(&cluster, &from, key).expect_err("the old owner must redirect");
        assert_eq!(err.code(), Some("MOVED"), "{err}");
    }
    // Every node, replicas included, now routes the slot to the new owner.
    for node in cluster.nodes() {
        let slots: redis::Value = cluster
            .query(&node, redis::cmd("CLUSTER").arg("SHARDS"))
            .unwrap();
        assert!(format!("{slots:?}").contains(&to.port().to_string()));
    }
}

#[test]
fn a_killed_primary_is_replaced_by_its_replica_and_rejoins_as_replica() {
    let cluster = RedisCluster::start();
    let key = "{failover}:key";
    let slot = cluster.key_slot(key);
    let primary = cluster.node_for_slot(slot);
    let replica = cluster.replicas_of(&primary).remove(0);
    set(&cluster, &primary, key, "before");
    wait_for_replicas(&cluster, &primary);

    let started = Instant::now();
    let promoted = cluster.failover(&primary);
    eprintln!(
        "TIMING failover (kill -> replica promoted, converged): {:?}",
        started.elapsed()
    );

    assert_eq!(promoted, replica);
    assert_eq!(cluster.node_for_slot(slot), promoted);
    assert_eq!(
        get(&cluster, &promoted, key).unwrap().as_deref(),
        Some("before")
    );
    assert!(!cluster.seed_urls().contains(&primary.url()));

    let started = Instant::now();
    cluster.restart_node(&primary);
    eprintln!(
        "TIMING restart of the killed node (rejoined, synced): {:?}",
        started.elapsed()
    );
    assert_eq!(cluster.replicas_of(&promoted), vec![primary.clone()]);
    assert_eq!(cluster.primaries().len(), 3);
}

#[test]
fn a_graceful_failover_swaps_primary_and_replica() {
    let cluster = RedisCluster::start();
    let key = "{graceful}:key";
    let slot = cluster.key_slot(key);
    let primary = cluster.node_for_slot(slot);
    let replica = cluster.replicas_of(&primary).remove(0);
    set(&cluster, &primary, key, "before");

    let started = Instant::now();
    let promoted = cluster.graceful_failover(&primary);
    eprintln!(
        "TIMING graceful failover (CLUSTER FAILOVER, converged): {:?}",
        started.elapsed()
    );

    assert_eq!(promoted, replica);
    assert_eq!(cluster.node_for_slot(slot), promoted);
    // A coordinated failover loses nothing, even without WAIT.
    assert_eq!(
        get(&cluster, &promoted, key).unwrap().as_deref(),
        Some("before")
    );
    assert_eq!(cluster.replicas_of(&promoted), vec![primary]);
}
