//! A real Redis Cluster for tests: three primaries with one replica each, on loopback.
//!
//! The bus's cluster mode must survive what a managed cluster does to it (a slot moving to another
//! primary, a primary failing over to its replica), so its tests need a cluster that really does
//! those things, through the same protocol steps a resharding tool or a crash would take:
//! [`RedisCluster::migrate_slot`] runs `SETSLOT IMPORTING/MIGRATING`, `GETKEYSINSLOT` + `MIGRATE`
//! and `SETSLOT NODE`; [`RedisCluster::failover`] kills a primary and lets the cluster promote its
//! replica; [`RedisCluster::graceful_failover`] asks the replica to take over (`CLUSTER FAILOVER`).
//!
//! The cluster is formed over the Redis protocol (`CLUSTER MEET`, `ADDSLOTSRANGE`, `REPLICATE`),
//! so only `redis-server` is needed, not `redis-cli`. Every change returns only once every running
//! node holds the same view of the cluster (see [`RedisCluster::wait_until_converged`]), so a test
//! never races the cluster's gossip.
//!
//! Nodes run with persistence off and a short `cluster-node-timeout` so that a failover takes a
//! couple of seconds, not the production default of fifteen.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::{Connection, FromRedisValue, RedisResult};

use crate::cluster_topology::Topology;
use crate::free_port;
use crate::hash_slot::{self, SLOT_COUNT};

const PRIMARY_COUNT: usize = 3;
const REPLICAS_PER_PRIMARY: usize = 1;
/// How long a node may be silent before the others suspect it. One second keeps failovers fast
/// while leaving room for a busy 2-core machine (a shorter timeout risks spurious failovers when
/// the test binary and the cluster compete for CPU).
const NODE_TIMEOUT_MS: u64 = 1000;
/// Upper bound for any topology change (formation, migration, failover) to settle.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Keys moved per `MIGRATE`. One at a time, so a multi-key script on a migrating slot really meets
/// the half-moved state (`ASK`, `TRYAGAIN`) that a resharding of a busy slot produces.
const KEYS_PER_MIGRATE: usize = 1;
const START_ATTEMPTS: usize = 3;

/// A node of the cluster, as tests name it: its cluster node id and its port. Roles change
/// (a failover swaps them), so ask the cluster for the current primaries rather than keeping one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClusterNode {
    id: String,
    port: u16,
}

impl ClusterNode {
    /// The 40-character cluster node id (kept across restarts).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The client port (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// One `redis-server` process of the cluster; `child` is `None` while the node is stopped.
struct NodeProcess {
    port: u16,
    bus_port: u16,
    id: String,
    child: Mutex<Option<Child>>,
}

impl NodeProcess {
    fn node(&self) -> ClusterNode {
        ClusterNode {
            id: self.id.clone(),
            port: self.port,
        }
    }

    fn is_running(&self) -> bool {
        self.child.lock().expect("node lock").is_some()
    }
}

/// A running Redis Cluster owned by one test; every node is killed on drop.
///
/// All methods take `&self`, so a test can share the cluster (`Arc`) with a blocking task that
/// reshapes it while the test keeps publishing.
pub struct RedisCluster {
    nodes: Vec<NodeProcess>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts 3 primaries and 1 replica each on free loopback ports, forms the cluster
    /// (16384 slots split evenly) and waits until every node reports `cluster_state:ok`, agrees on
    /// the topology, and every replica has finished its initial sync.
    pub fn start() -> Self {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            // A port picked by `free_port` can be taken by another test before redis binds it;
            // that shows up as a node exiting at start, and a fresh set of ports fixes it.
            match Self::spawn_nodes() {
                Ok(cluster) => {
                    cluster.form();
                    return cluster;
                }
                Err(error) => last_error = error,
            }
        }
        panic!("could not start a Redis Cluster in {START_ATTEMPTS} attempts: {last_error}")
    }

    /// The URLs of the running nodes, to seed a cluster client with.
    pub fn seed_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.node().url())
            .collect()
    }

    /// Every node, running or stopped, in start order (the first three started as primaries).
    pub fn nodes(&self) -> Vec<ClusterNode> {
        self.nodes.iter().map(NodeProcess::node).collect()
    }

    /// The primaries currently serving slots, by port.
    pub fn primaries(&self) -> Vec<ClusterNode> {
        let topology = self.current_topology();
        let mut primaries: Vec<ClusterNode> = topology
            .nodes
            .iter()
            .filter(|n| n.is_primary() && n.owns_slots())
            .map(|n| self.node_by_id(&n.id))
            .collect();
        primaries.sort_by_key(ClusterNode::port);
        primaries
    }

    /// The nodes currently replicating `primary`.
    pub fn replicas_of(&self, primary: &ClusterNode) -> Vec<ClusterNode> {
        self.current_topology()
            .nodes
            .iter()
            .filter(|n| n.primary_id.as_deref() == Some(primary.id()))
            .map(|n| self.node_by_id(&n.id))
            .collect()
    }

    /// The primary serving `slot`, as the cluster currently sees it.
    pub fn node_for_slot(&self, slot: u16) -> ClusterNode {
        assert!(slot < SLOT_COUNT, "slot {slot} is out of range");
        let topology = self.current_topology();
        let owner = topology.slot_owners()[usize::from(slot)]
            .unwrap_or_else(|| panic!("slot {slot} is not served by any node"))
            .to_owned();
        self.node_by_id(&owner)
    }

    /// The hash slot of `key` (CRC16 of the key or its hash tag, per the cluster spec).
    pub fn key_slot(&self, key: impl AsRef<[u8]>) -> u16 {
        hash_slot::key_slot(key.as_ref())
    }

    /// Sends one command to one node (for assertions on server state, or `CLUSTER KEYSLOT`).
    pub fn query<T: FromRedisValue>(&self, node: &ClusterNode, cmd: &redis::Cmd) -> RedisResult<T> {
        query(node.port, cmd)
    }

    /// Moves `slot` and its keys to the primary `to`, the way `redis-cli --cluster reshard`
    /// does: `SETSLOT IMPORTING` on the target, `SETSLOT MIGRATING` on the source, the keys one
    /// `MIGRATE` at a time, then `SETSLOT NODE` on the target, the source and the other primaries.
    /// Returns once every node agrees that `to` serves the slot.
    pub fn migrate_slot(&self, slot: u16, to: &ClusterNode) {
        let from = self.node_for_slot(slot);
        assert_ne!(
            &from, to,
            "slot {slot} is already served by the node on port {}",
            to.port
        );
        let set_slot = |node: &ClusterNode, state: &str, other: &ClusterNode| {
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("SETSLOT").arg(slot).arg(state).arg(other.id());
            self.expect_ok(node, &cmd, &format!("CLUSTER SETSLOT {slot} {state}"));
        };
        set_slot(to, "IMPORTING", &from);
        set_slot(&from, "MIGRATING", to);

        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            let keys: Vec<Vec<u8>> = query(
                from.port,
                redis::cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(slot)
                    .arg(KEYS_PER_MIGRATE),
            )
            .unwrap_or_else(|e| panic!("CLUSTER GETKEYSINSLOT {slot}: {e}"));
            if keys.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "slot {slot} still had keys to migrate after {CONVERGE_TIMEOUT:?}"
            );
            let mut migrate = redis::cmd("MIGRATE");
            migrate
                .arg("127.0.0.1")
                .arg(to.port)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys);
            // `NOKEY` means the keys expired or were deleted meanwhile: nothing left to move.
            match query::<String>(from.port, &migrate) {
                Ok(reply) if reply == "OK" || reply == "NOKEY" => {}
                Ok(reply) => panic!("MIGRATE of slot {slot} answered {reply}"),
                Err(e) => panic!("MIGRATE of slot {slot} failed: {e}"),
            }
        }

        // Target first, so the source's MOVED answers already point at a node that accepts the
        // slot; then the source; then everyone else, to speed up what gossip would spread anyway.
        let mut assign_order = vec![to.clone(), from.clone()];
        assign_order.extend(
            self.primaries()
                .into_iter()
                .filter(|p| p != to && p != &from),
        );
        for node in &assign_order {
            set_slot(node, "NODE", to);
        }
        self.wait_until(&format!("slot {slot} served by port {}", to.port), |t| {
            t.slot_owners()[usize::from(slot)] == Some(to.id())
        });
    }

    /// Kills `primary` (as a crash would) and waits until the cluster has promoted one of its
    /// replicas and is healthy again; returns the promoted replica. The killed node stays down
    /// until [`RedisCluster::restart_node`] (it then rejoins as a replica of the promoted node).
    pub fn failover(&self, primary: &ClusterNode) -> ClusterNode {
        let replicas = self.replicas_of(primary);
        assert!(
            !replicas.is_empty(),
            "the node on port {} has no replica to fail over to",
            primary.port
        );
        self.stop_node(primary);
        self.wait_for_promotion(primary, &replicas)
    }

    /// Asks a replica of `primary` to take over (`CLUSTER FAILOVER`, the coordinated manual
    /// failover: no write is lost) and waits until the roles are swapped everywhere; returns the
    /// new primary. The old primary keeps running, as a replica.
    pub fn graceful_failover(&self, primary: &ClusterNode) -> ClusterNode {
        let replica = self
            .replicas_of(primary)
            .into_iter()
            .next()
            .unwrap_or_else(|| {
                panic!(
                    "the node on port {} has no replica to fail over to",
                    primary.port
                )
            });
        self.expect_ok(
            &replica,
            redis::cmd("CLUSTER").arg("FAILOVER"),
            "CLUSTER FAILOVER",
        );
        self.wait_for_promotion(primary, std::slice::from_ref(&replica))
    }

    /// Waits until every running replica of `primary` has received everything `primary` had
    /// written when this was called (replication offsets), so that a following
    /// [`RedisCluster::failover`] cannot lose those writes. Replication is asynchronous: without
    /// this, a write acknowledged just before the kill may be missing on the promoted replica.
    pub fn wait_until_replicas_caught_up(&self, primary: &ClusterNode) {
        let offset_field = |port: u16, field: &str| -> RedisResult<u64> {
            let info: String = query(port, redis::cmd("INFO").arg("replication"))?;
            Ok(info
                .lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0))
        };
        let target = offset_field(primary.port, "master_repl_offset")
            .unwrap_or_else(|e| panic!("INFO replication on port {}: {e}", primary.port));
        let replicas = self.replicas_of(primary);
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        for replica in replicas.iter().filter(|r| self.process(r).is_running()) {
            while offset_field(replica.port, "slave_repl_offset").unwrap_or(0) < target {
                assert!(
                    Instant::now() < deadline,
                    "replica on port {} did not reach replication offset {target}",
                    replica.port
                );
                std::thread::sleep(POLL_INTERVAL);
            }
        }
    }

    /// Kills one node and waits until its port is closed. The rest of the cluster is left to
    /// react on its own (a stopped primary is failed over after the node timeout).
    pub fn stop_node(&self, node: &ClusterNode) {
        let process = self.process(node);
        if let Some(mut child) = process.child.lock().expect("node lock").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", process.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "port {} still answers after the node was killed",
                process.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts a stopped node again on the same ports with its cluster state (`nodes.conf`) but no
    /// data, and waits until it has rejoined and the cluster agrees on the topology again.
    pub fn restart_node(&self, node: &ClusterNode) {
        let process = self.process(node);
        {
            let mut child = process.child.lock().expect("node lock");
            assert!(child.is_none(), "the node on port {} is running", node.port);
            let mut started = spawn_node(&self.dir, process.port, process.bus_port);
            wait_until_answering(process.port, &mut started, &self.dir)
                .unwrap_or_else(|e| panic!("restarting the node on port {}: {e}", node.port));
            *child = Some(started);
        }
        self.wait_until_converged();
    }

    /// Waits until every running node reports `cluster_state:ok`, all of them hold the same view
    /// (slot owners, roles, nobody suspected of failure, no slot mid-migration), every slot is
    /// served by a running primary, and every replica of a running primary has completed its
    /// sync. Panics with what is still missing after 30 s.
    pub fn wait_until_converged(&self) {
        self.wait_until("cluster converged", |_| true);
    }

    /// Waits until the cluster has converged and `condition` holds on the agreed topology.
    fn wait_until(&self, what: &str, condition: impl Fn(&Topology) -> bool) {
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            let problem = match self.converged_topology() {
                Ok(topology) if condition(&topology) => return,
                Ok(_) => format!("converged, but not yet: {what}"),
                Err(problem) => problem,
            };
            assert!(
                Instant::now() < deadline,
                "Redis Cluster not settled after {CONVERGE_TIMEOUT:?} ({what}): {problem}; node logs in {}",
                self.dir.display()
            );
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn wait_for_promotion(&self, primary: &ClusterNode, candidates: &[ClusterNode]) -> ClusterNode {
        let what = format!("a replica of port {} promoted", primary.port);
        self.wait_until(&what, |t| {
            candidates.iter().any(|c| {
                t.by_id(c.id())
                    .is_some_and(|n| n.is_primary() && n.owns_slots())
            })
        });
        let topology = self.current_topology();
        candidates
            .iter()
            .find(|c| topology.by_id(c.id()).is_some_and(|n| n.is_primary()))
            .cloned()
            .expect("promoted replica")
    }

    /// The agreed topology if the cluster has converged, or a description of what is not settled.
    fn converged_topology(&self) -> Result<Topology, String> {
        let running: Vec<&NodeProcess> = self.nodes.iter().filter(|n| n.is_running()).collect();
        let running_ids: HashSet<&str> = running.iter().map(|n| n.id.as_str()).collect();
        let mut views = Vec::with_capacity(running.len());
        for node in &running {
            let info: String = query(node.port, redis::cmd("CLUSTER").arg("INFO"))
                .map_err(|e| format!("port {}: CLUSTER INFO: {e}", node.port))?;
            if !info.contains("cluster_state:ok") {
                return Err(format!(
                    "port {} does not report cluster_state:ok",
                    node.port
                ));
            }
            views.push((node.port, self.topology_of(node.port)?));
        }
        let (_, reference) = views.first().ok_or("no node is running")?;
        let reference_owners = reference.slot_owners();
        if let Some(slot) = reference_owners
            .iter()
            .position(|owner| !owner.is_some_and(|id| running_ids.contains(id)))
        {
            return Err(format!("slot {slot} is not served by a running node"));
        }
        fn live_roles<'a>(
            topology: &'a Topology,
            running_ids: &HashSet<&str>,
        ) -> BTreeMap<&'a str, Option<&'a str>> {
            let mut roles = topology.roles();
            roles.retain(|id, _| running_ids.contains(id));
            roles
        }
        let reference_roles = live_roles(reference, &running_ids);
        for (port, view) in &views {
            if view.has_slot_in_migration() {
                return Err(format!("port {port} has a slot in migration"));
            }
            if view.slot_owners() != reference_owners {
                return Err(format!("port {port} disagrees about slot owners"));
            }
            if live_roles(view, &running_ids) != reference_roles
                || reference_roles.len() != running_ids.len()
            {
                return Err(format!("port {port} disagrees about roles"));
            }
            if let Some(n) = view
                .nodes
                .iter()
                .find(|n| running_ids.contains(n.id.as_str()) && n.is_failing_or_joining())
            {
                return Err(format!(
                    "port {port} sees port {} as failing or joining",
                    n.port
                ));
            }
        }
        for (port, view) in &views {
            let me = view
                .myself()
                .ok_or(format!("port {port}: no myself line"))?;
            let Some(primary) = &me.primary_id else {
                continue;
            };
            if !running_ids.contains(primary.as_str()) {
                continue;
            }
            let replication: String = query(*port, redis::cmd("INFO").arg("replication"))
                .map_err(|e| format!("port {port}: INFO replication: {e}"))?;
            if !replication.contains("master_link_status:up")
                || replication.contains("master_sync_in_progress:1")
            {
                return Err(format!("replica on port {port} has not finished syncing"));
            }
        }
        Ok(views.swap_remove(0).1)
    }

    fn topology_of(&self, port: u16) -> Result<Topology, String> {
        let text: String = query(port, redis::cmd("CLUSTER").arg("NODES"))
            .map_err(|e| format!("port {port}: CLUSTER NODES: {e}"))?;
        Topology::parse(&text)
    }

    /// The topology as the first running node sees it (all agree after any method returns).
    fn current_topology(&self) -> Topology {
        let node = self
            .nodes
            .iter()
            .find(|n| n.is_running())
            .expect("no node of the cluster is running");
        self.topology_of(node.port)
            .unwrap_or_else(|e| panic!("reading the cluster topology: {e}"))
    }

    fn process(&self, node: &ClusterNode) -> &NodeProcess {
        self.nodes
            .iter()
            .find(|n| n.port == node.port)
            .unwrap_or_else(|| panic!("no node of this cluster on port {}", node.port))
    }

    fn node_by_id(&self, id: &str) -> ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .map(NodeProcess::node)
            .unwrap_or_else(|| panic!("node id {id} is not one of this cluster's nodes"))
    }

    fn expect_ok(&self, node: &ClusterNode, cmd: &redis::Cmd, what: &str) {
        let reply: String =
            query(node.port, cmd).unwrap_or_else(|e| panic!("{what} on port {}: {e}", node.port));
        assert_eq!(reply, "OK", "{what} on port {}", node.port);
    }

    /// Starts the six processes and reads their node ids; `Err` if one did not come up.
    fn spawn_nodes() -> Result<Self, String> {
        static CLUSTERS: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "redis-cluster-test-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create redis cluster working directory");
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
        };
        // `free_port` may hand back a port it returned a moment ago; never give one out twice.
        let mut taken = HashSet::new();
        let mut distinct_free_port = || loop {
            let port = free_port();
            if taken.insert(port) {
                return port;
            }
        };
        for _ in 0..PRIMARY_COUNT * (1 + REPLICAS_PER_PRIMARY) {
            let (port, bus_port) = (distinct_free_port(), distinct_free_port());
            let mut child = spawn_node(&cluster.dir, port, bus_port);
            let answering = wait_until_answering(port, &mut child, &cluster.dir);
            // Owned by the cluster from here on, so an early return still kills it (drop).
            cluster.nodes.push(NodeProcess {
                port,
                bus_port,
                id: String::new(),
                child: Mutex::new(Some(child)),
            });
            answering?;
        }
        for node in &mut cluster.nodes {
            node.id = query(node.port, redis::cmd("CLUSTER").arg("MYID"))
                .map_err(|e| format!("CLUSTER MYID on port {}: {e}", node.port))?;
        }
        Ok(cluster)
    }

    /// Joins the nodes into one cluster: distinct config epochs, `MEET`, the slot ranges on the
    /// primaries, then `REPLICATE` on the replicas once they know their primary.
    fn form(&self) {
        let (primaries, replicas) = self.nodes.split_at(PRIMARY_COUNT);
        for (epoch, node) in self.nodes.iter().enumerate() {
            // Distinct epochs up front spare the cluster its epoch-collision resolution, as
            // redis-cli does.
            self.expect_ok(
                &node.node(),
                redis::cmd("CLUSTER").arg("SET-CONFIG-EPOCH").arg(epoch + 1),
                "CLUSTER SET-CONFIG-EPOCH",
            );
        }
        let first = self.nodes[0].node();
        for node in &self.nodes[1..] {
            self.expect_ok(
                &first,
                redis::cmd("CLUSTER")
                    .arg("MEET")
                    .arg("127.0.0.1")
                    .arg(node.port)
                    .arg(node.bus_port),
                "CLUSTER MEET",
            );
        }
        let per_primary = SLOT_COUNT / PRIMARY_COUNT as u16;
        for (index, primary) in primaries.iter().enumerate() {
            let first_slot = index as u16 * per_primary;
            let last_slot = if index + 1 == PRIMARY_COUNT {
                SLOT_COUNT - 1
            } else {
                first_slot + per_primary - 1
            };
            self.expect_ok(
                &primary.node(),
                redis::cmd("CLUSTER")
                    .arg("ADDSLOTSRANGE")
                    .arg(first_slot)
                    .arg(last_slot),
                "CLUSTER ADDSLOTSRANGE",
            );
        }
        // A replica can only follow a primary it already knows through gossip.
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        for (index, replica) in replicas.iter().enumerate() {
            let primary = &primaries[index / REPLICAS_PER_PRIMARY];
            loop {
                let knows_primary = self
                    .topology_of(replica.port)
                    .ok()
                    .and_then(|t| t.by_id(&primary.id).map(|n| !n.is_failing_or_joining()))
                    .unwrap_or(false);
                if knows_primary {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node on port {} did not learn of its primary on port {}",
                    replica.port,
                    primary.port
                );
                std::thread::sleep(POLL_INTERVAL);
            }
            self.expect_ok(
                &replica.node(),
                redis::cmd("CLUSTER").arg("REPLICATE").arg(&primary.id),
                "CLUSTER REPLICATE",
            );
        }
        self.wait_until("every replica follows its primary", |t| {
            replicas.iter().enumerate().all(|(index, replica)| {
                t.by_id(&replica.id).and_then(|n| n.primary_id.as_deref())
                    == Some(primaries[index / REPLICAS_PER_PRIMARY].id.as_str())
            })
        });
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            // A test that panicked mid-restart may have poisoned the lock; the process must die
            // all the same.
            let child = node
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(mut child) = child {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "Redis Cluster node logs kept in {} (the test failed)",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn spawn_node(dir: &std::path::Path, port: u16, bus_port: u16) -> Child {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            &bus_port.to_string(),
            "--cluster-config-file",
            &format!("nodes-{port}.conf"),
            "--cluster-node-timeout",
            &NODE_TIMEOUT_MS.to_string(),
            // Any replica may take over, however long it was disconnected: tests kill nodes.
            "--cluster-replica-validity-factor",
            "0",
            // Keep the one-replica-per-primary layout fixed; tests reason about who replicates whom.
            "--cluster-allow-replica-migration",
            "no",
            // The default waits 5 s for more replicas before a full sync starts.
            "--repl-diskless-sync-delay",
            "0",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.to_str().expect("utf-8 temp dir"),
            "--logfile",
            &format!("node-{port}.log"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}); install it (apt-get install -y redis-server), .ci/run does")
        })
}

/// Waits until the node answers `PING`; `Err` if the process exited (typically: port taken).
fn wait_until_answering(port: u16, child: &mut Child, dir: &std::path::Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "redis-server on port {port} exited at start ({status}); see {}",
                dir.join(format!("node-{port}.log")).display()
            ));
        }
        if query::<String>(port, &redis::cmd("PING")).is_ok_and(|pong| pong == "PONG") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "redis-server did not answer on port {port} within 10 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn connect(port: u16) -> RedisResult<Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
    // MIGRATE of a large key and CLUSTER FAILOVER can take a moment; anything longer is a hang.
    connection.set_read_timeout(Some(Duration::from_secs(10)))?;
    connection.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(connection)
}

fn query<T: FromRedisValue>(port: u16, cmd: &redis::Cmd) -> RedisResult<T> {
    cmd.query(&mut connect(port)?)
}
