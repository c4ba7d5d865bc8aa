//! The client side of the cluster spike, shared by its test files: how the bus would build its
//! cluster clients, publish a conversation event atomically, and follow a conversation's sharded
//! channel through topology changes without losing an event.
//!
//! [`ConversationFollower`] is the design the spike recommends for the bus's cluster listener,
//! reduced to one conversation: subscribe with `SSUBSCRIBE`; when the server drops the
//! subscription (`sunsubscribe` push after a slot moved) or a node connection breaks
//! (`Disconnection` push after a crash), subscribe again, one command at a time, and fill the
//! gap from the conversation's history; deduplicate by offset.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, ProtocolVersion, PushInfo, PushKind, Value};
use redis_test_server::{ClusterNode, RedisCluster};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::sync::watch;

/// The bus's publish script reduced to its cluster-relevant shape: bump the conversation's
/// counter, append to its history, publish on its sharded channel, all in one slot.
/// KEYS: seq, history. ARGV: channel. Returns the event's offset.
pub const PUBLISH_SCRIPT: &str = r"
local offset = redis.call('HINCRBY', KEYS[1], 'last', 1)
redis.call('RPUSH', KEYS[2], offset)
redis.call('SPUBLISH', ARGV[1], offset)
return offset
";

/// How long any single wait in these tests may take before the test fails.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// The keys of one conversation. The hash tag puts all of them, and the channel, in one slot, so
/// the publish script may touch them together and `SPUBLISH` from the script is slot-local.
#[derive(Clone, Debug)]
pub struct ConversationKeys {
    pub seq: String,
    pub history: String,
    pub channel: String,
}

impl ConversationKeys {
    pub fn new(conversation: &str) -> Self {
        Self {
            seq: format!("agent-assist:{{{conversation}}}:seq"),
            history: format!("agent-assist:{{{conversation}}}:history"),
            channel: format!("agent-assist:{{{conversation}}}:events"),
        }
    }
}

/// A conversation id whose slot is served by `primary`.
pub fn conversation_on(cluster: &RedisCluster, primary: &ClusterNode, prefix: &str) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}-{i}"))
        .find(|c| cluster.node_for_slot(cluster.key_slot(format!("{{{c}}}"))) == *primary)
        .expect("some conversation id hashes to every primary")
}

/// Retry pacing for the cluster clients: the crate's default waits at least 1.28 s before a retry
/// (after `TRYAGAIN`, `CLUSTERDOWN`, a refused connection), far longer than a loopback failover
/// step needs.
fn client_builder(cluster: &RedisCluster) -> ClusterClientBuilder {
    ClusterClientBuilder::new(cluster.seed_urls())
        .retries(8)
        .min_retry_wait(5)
        .max_retry_wait(200)
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(5))
}

/// The connection the bus publishes and reads history with (no subscriptions on it).
pub async fn command_connection(cluster: &RedisCluster) -> ClusterConnection {
    client_builder(cluster)
        .build()
        .expect("cluster client")
        .get_async_connection()
        .await
        .expect("connect to the cluster")
}

/// The connection the bus subscribes with: RESP3, with every push (messages, subscription
/// confirmations, server-initiated `sunsubscribe`, `Disconnection`) sent to the returned receiver.
pub async fn subscriber_connection(
    cluster: &RedisCluster,
) -> (ClusterConnection, UnboundedReceiver<PushInfo>) {
    let (pushes_tx, pushes) = unbounded_channel();
    let connection = client_builder(cluster)
        .use_protocol(ProtocolVersion::RESP3)
        .push_sender(pushes_tx)
        .build()
        .expect("cluster client")
        .get_async_connection()
        .await
        .expect("connect to the cluster");
    (connection, pushes)
}

/// Runs the publish script once; returns the event's offset.
pub async fn publish(
    connection: &mut ClusterConnection,
    keys: &ConversationKeys,
) -> redis::RedisResult<u64> {
    redis::Script::new(PUBLISH_SCRIPT)
        .key(&keys.seq)
        .key(&keys.history)
        .arg(&keys.channel)
        .invoke_async(connection)
        .await
}

/// The next push, or a test failure after [`STEP_TIMEOUT`].
pub async fn next_push(pushes: &mut UnboundedReceiver<PushInfo>) -> PushInfo {
    tokio::time::timeout(STEP_TIMEOUT, pushes.recv())
        .await
        .expect("a push within the step timeout")
        .expect("push channel open")
}

/// The channel name a subscription push or message refers to.
pub fn push_channel(push: &PushInfo) -> Option<String> {
    match push.data.first() {
        Some(Value::BulkString(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    }
}

/// The payload of an `smessage` push.
pub fn message_payload(push: &PushInfo) -> Option<String> {
    match push.data.get(1) {
        Some(Value::BulkString(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    }
}

/// How many clients `node` has subscribed to the sharded `channel` (`PUBSUB SHARDNUMSUB`).
pub fn shard_subscribers(cluster: &RedisCluster, node: &ClusterNode, channel: &str) -> usize {
    let (_, count): (String, usize) = cluster
        .query(node, redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel))
        .expect("PUBSUB SHARDNUMSUB");
    count
}

/// Publishes an event every 2 ms until `done` is set (the topology change finished), then
/// `after` more; returns the offsets acknowledged, in order. A publish that fails (the slot is
/// moving or its primary is down) is retried until it succeeds, within [`STEP_TIMEOUT`].
pub async fn publish_until(
    connection: &mut ClusterConnection,
    keys: &ConversationKeys,
    done: &AtomicBool,
    after: usize,
) -> Vec<u64> {
    let mut offsets = Vec::new();
    let mut remaining_after = after;
    let mut pace = tokio::time::interval(Duration::from_millis(2));
    let deadline = Instant::now() + 3 * STEP_TIMEOUT;
    while remaining_after > 0 {
        pace.tick().await;
        if done.load(Ordering::Acquire) {
            remaining_after -= 1;
        }
        let failing_since = Instant::now();
        loop {
            match publish(connection, keys).await {
                Ok(offset) => {
                    offsets.push(offset);
                    break;
                }
                Err(e) => assert!(
                    failing_since.elapsed() < STEP_TIMEOUT,
                    "publishing failed for {STEP_TIMEOUT:?}: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(Instant::now() < deadline, "publishing did not finish");
    }
    offsets
}

/// Why the follower subscribed again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resubscription {
    /// The server sent `sunsubscribe` on its own: the slot moved, or its primary became a replica.
    ServerUnsubscribed,
    /// A node connection broke (`Disconnection` push from the crate).
    Disconnected,
}

/// What a follower saw.
#[derive(Debug, Default)]
pub struct FollowReport {
    /// Offsets delivered to the "agent", in order, without duplicates.
    pub offsets: Vec<u64>,
    pub resubscriptions: Vec<Resubscription>,
    /// Events that arrived live (as `smessage`) after the last re-subscription.
    pub live_after_last_resubscription: usize,
    /// Events recovered from history instead of live.
    pub filled_from_history: usize,
    /// Time from the subscription loss to the subscription being back, per re-subscription.
    pub recovery_times: Vec<Duration>,
}

/// Follows one conversation's sharded channel through topology changes.
pub struct ConversationFollower {
    subscriber: ClusterConnection,
    pushes: UnboundedReceiver<PushInfo>,
    reader: ClusterConnection,
    keys: ConversationKeys,
    report: FollowReport,
}

impl ConversationFollower {
    /// Subscribes (and waits for the server's confirmation).
    pub async fn subscribe(cluster: &RedisCluster, keys: ConversationKeys) -> Self {
        let (mut subscriber, mut pushes) = subscriber_connection(cluster).await;
        subscriber
            .ssubscribe(&keys.channel)
            .await
            .expect("SSUBSCRIBE");
        let confirmation = next_push(&mut pushes).await;
        assert_eq!(confirmation.kind, PushKind::SSubscribe);
        Self {
            subscriber,
            pushes,
            reader: command_connection(cluster).await,
            keys,
            report: FollowReport::default(),
        }
    }

    /// Delivers events until the offset announced on `last_offset` has been delivered; fails the
    /// test if that takes longer than 3 x [`STEP_TIMEOUT`] (an event lost for good).
    pub async fn follow(mut self, mut last_offset: watch::Receiver<Option<u64>>) -> FollowReport {
        let deadline = tokio::time::Instant::now() + 3 * STEP_TIMEOUT;
        loop {
            if let Some(last) = *last_offset.borrow_and_update() {
                if self.delivered() >= last {
                    return self.report;
                }
            }
            let push = tokio::select! {
                push = self.pushes.recv() => push.expect("push channel open"),
                _ = last_offset.changed() => continue,
                _ = tokio::time::sleep_until(deadline) => panic!(
                    "events lost: delivered up to offset {} and nothing more arrived; {:?}",
                    self.delivered(), self.report.resubscriptions
                ),
            };
            let ours = push_channel(&push).as_deref() == Some(self.keys.channel.as_str());
            match push.kind {
                PushKind::SMessage if ours => {
                    let offset: u64 = message_payload(&push)
                        .and_then(|p| p.parse().ok())
                        .expect("offset payload");
                    if offset == self.delivered() + 1 {
                        self.report.offsets.push(offset);
                        if !self.report.resubscriptions.is_empty() {
                            self.report.live_after_last_resubscription += 1;
                        }
                    } else if offset > self.delivered() + 1 {
                        // Missed events while the subscription was gone: history has them.
                        self.fill_from_history().await;
                    }
                }
                // We never unsubscribe, so this is the server dropping our subscription.
                PushKind::SUnsubscribe if ours => {
                    self.resubscribe(Resubscription::ServerUnsubscribed).await;
                }
                PushKind::Disconnection => self.resubscribe(Resubscription::Disconnected).await,
                // Confirmations (ours, and the crate's own re-subscriptions) carry no events.
                _ => {}
            }
        }
    }

    fn delivered(&self) -> u64 {
        self.report.offsets.last().copied().unwrap_or(0)
    }

    /// Subscribes again until the cluster accepts (the slot may have no primary for a moment),
    /// then delivers from history whatever was published meanwhile.
    async fn resubscribe(&mut self, reason: Resubscription) {
        let lost_at = Instant::now();
        self.report.resubscriptions.push(reason);
        self.report.live_after_last_resubscription = 0;
        let mut backoff = Duration::from_millis(20);
        loop {
            // One subscription command at a time on this connection: concurrent re-subscriptions
            // after a failover can each open a connection to the promoted node, and the crate
            // keeps only the last one (see sharded_pubsub_failover.rs).
            match self.subscriber.ssubscribe(&self.keys.channel).await {
                Ok(()) => break,
                Err(e) => assert!(
                    lost_at.elapsed() < STEP_TIMEOUT,
                    "could not subscribe again within {STEP_TIMEOUT:?}: {e}"
                ),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
        self.report.recovery_times.push(lost_at.elapsed());
        self.fill_from_history().await;
    }

    /// Delivers every event after the last delivered offset from the history list (offset n is
    /// at index n - 1: the spike's history is never trimmed).
    async fn fill_from_history(&mut self) {
        let started = Instant::now();
        let events: Vec<u64> = loop {
            let start = isize::try_from(self.delivered()).expect("offset fits");
            match self.reader.lrange(&self.keys.history, start, -1).await {
                Ok(events) => break events,
                Err(e) => assert!(
                    started.elapsed() < STEP_TIMEOUT,
                    "could not read history within {STEP_TIMEOUT:?}: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        for offset in events {
            assert_eq!(offset, self.delivered() + 1, "history is contiguous");
            self.report.offsets.push(offset);
            self.report.filled_from_history += 1;
        }
    }
}

/// Runs `change` (a blocking harness call) on a blocking thread and sets the returned flag when it
/// has finished, so a publisher can keep going while the topology changes.
pub fn run_topology_change<T: Send + 'static>(
    cluster: &Arc<RedisCluster>,
    change: impl FnOnce(&RedisCluster) -> T + Send + 'static,
) -> (tokio::task::JoinHandle<(T, Duration)>, Arc<AtomicBool>) {
    let done = Arc::new(AtomicBool::new(false));
    let cluster = Arc::clone(cluster);
    let flag = Arc::clone(&done);
    let handle = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let result = change(&cluster);
        flag.store(true, Ordering::Release);
        (result, started.elapsed())
    });
    (handle, done)
}
