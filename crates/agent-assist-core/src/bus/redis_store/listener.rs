//! The Pub/Sub listener: one connection per process that brings every conversation's live
//! events to the local fan-out.
//!
//! It subscribes to a conversation while this process has subscribers for it (a listen request
//! from [`RedisStore::listen`](super::RedisStore::listen)), unsubscribes when the fan-out says
//! the conversation went idle, and on a lost connection reconnects, re-subscribes everything and
//! fills the gap from history. It stops when the bus's shutdown token fires.
//!
//! # Coming back quickly
//! Every event published while this process is not subscribed must still be in history when it
//! comes back, and history keeps only the last `CONVERSATION_HISTORY_LENGTH` events. So the
//! listener retries often, whatever the outage length: every [`RETRY_INTERVAL`] give or take a
//! quarter (jitter, so a fleet of connectors does not reconnect in lock-step), never backing off
//! further. An attempt against a Redis that is down costs one refused TCP connect. Before
//! filling the gap it makes sure the command connection (which history reads go through) is a
//! live one: after a restart, the first command on the old connection fails, and a gap fill
//! that failed would cost another retry interval.
//!
//! # Cluster mode
//! On a Redis Cluster the connection survives topology changes but some subscriptions may not
//! (see [`pubsub`](super::pubsub)): when the server drops the subscription of a conversation
//! still wanted here (slot migrated, primary demoted), the listener subscribes to it again and
//! fills its gap from history; when a node's connection breaks, it does so for every
//! conversation (which of them lived on that node is not known; `SSUBSCRIBE` of a channel
//! already subscribed is harmless). One `SSUBSCRIBE` at a time, retried for up to twice the
//! command timeout (a slot has no primary for a moment during a failover); if that is not
//! enough, the connection is treated as lost: reconnect, re-subscribe everything, fill the gap.
//! Gap fill is the same code as after a reconnect, so a gap history no longer covers is
//! reported the same way.
//!
//! A re-subscription may land on a node that does not hear the slot's events yet: after a
//! coordinated failover the client may still route the slot to the demoted primary, now a
//! replica (replicas serve sharded subscriptions), which hears nothing until its replication
//! link to the new primary is up. The gap fill right after subscribing cannot see events
//! published in that window. A busy conversation's next event would reveal the jump, but a
//! quiet conversation's last event would wait for ever; so every re-subscribed conversation's
//! history is read again [`RECHECKS`] later (one history read per conversation each time).
//!
//! Gap fills are read in the background while live events keep flowing (see
//! [`gap_fill`](super::gap_fill)) and dispatch what history kept; a subscriber that sees the
//! offsets jump (history no longer covered the outage) ends its stream rather than skip (see
//! [`Subscription`](crate::bus::Subscription)).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::gap_fill::{Filled, GapFills};
use super::pubsub::{Delivery, PubSubSink, PubSubSource};
use super::{keys, Commands, Scripts};
use crate::bus::fanout::Fanout;
use crate::bus::BusError;
use crate::conversation::ConversationName;
use crate::event::BusEvent;

/// A request to receive a conversation's live events; answered once subscribed.
pub(crate) type ListenRequest = (ConversationName, oneshot::Sender<()>);

pub(crate) struct Listener {
    pub(crate) source: PubSubSource,
    pub(crate) commands: Commands,
    pub(crate) scripts: Scripts,
    pub(crate) history_len: usize,
    pub(crate) fanout: Arc<Fanout>,
    pub(crate) timeout: Duration,
    /// Listen requests waiting for a connection.
    pub(crate) waiting: Vec<oneshot::Sender<()>>,
}

/// Where the listener's work comes from.
pub(crate) struct Inbox {
    pub(crate) listen: mpsc::UnboundedReceiver<ListenRequest>,
    pub(crate) idle: mpsc::UnboundedReceiver<ConversationName>,
    pub(crate) shutdown: CancellationToken,
}

/// How long the listener waits between attempts to reach Redis again (±25 % jitter). The
/// promise is a re-subscription within 250 ms of Redis answering again. At 100 ms, one attempt
/// that fails as Redis comes back uses up the whole budget (likely what happened in the one run
/// of about thirty of `redis_restart.rs` that took 257 ms; not traced), so the interval leaves
/// room for one such attempt. While Redis is down this costs each connector 20 refused TCP
/// connects a second.
pub(crate) const RETRY_INTERVAL: Duration = Duration::from_millis(50);

/// When, after re-subscribing to a conversation on a cluster, its history is read again (see
/// the module docs): a demoted primary's replication link is up within half a second on
/// loopback; the later checks cover a slower link (a full resynchronisation on a large shard).
pub(crate) const RECHECKS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(10),
];

/// Why a connection's life ended without an error.
struct Stop;

impl Listener {
    pub(crate) async fn run(mut self, mut inbox: Inbox) {
        let mut was_connected = false;
        loop {
            match self.serve_connection(&mut inbox, &mut was_connected).await {
                Ok(Stop) => return,
                Err(e) => {
                    if was_connected {
                        tracing::warn!(error = %e, "redis pub/sub connection lost, reconnecting");
                    } else {
                        tracing::debug!(error = %e, "redis pub/sub unavailable");
                    }
                    was_connected = false;
                }
            }
            // Keep answering requests while waiting to reconnect.
            let pause = tokio::time::sleep(jittered(RETRY_INTERVAL));
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    biased;
                    _ = inbox.shutdown.cancelled() => return,
                    _ = &mut pause => break,
                    request = inbox.listen.recv() => match request {
                        None => return,
                        Some((_, done)) => self.waiting.push(done),
                    },
                    // Nothing is subscribed while disconnected; the fan-out already forgot it.
                    Some(_) = inbox.idle.recv() => {}
                }
            }
        }
    }

    /// One connection's life: subscribe to everything the fan-out holds, fill the gap, then
    /// serve requests and messages until the connection fails.
    async fn serve_connection(
        &mut self,
        inbox: &mut Inbox,
        was_connected: &mut bool,
    ) -> Result<Stop, BusError> {
        let (mut sink, mut stream) = self.source.connect(self.timeout).await?;
        let mut subscribed: HashSet<ConversationName> = HashSet::new();
        // Unsubscribes we sent whose confirmation (a cluster push) has not been seen yet, so
        // that it is not taken for the server dropping a subscription.
        let mut unsubscribing: HashMap<ConversationName, usize> = HashMap::new();
        // Conversations re-subscribed on a cluster, by when their history is read again.
        let mut rechecks: BTreeMap<Instant, Vec<ConversationName>> = BTreeMap::new();
        let mut fills = GapFills::new(
            self.scripts.clone(),
            self.commands.clone(),
            self.history_len,
            self.timeout,
        );
        let snapshot = self.fanout.snapshot();
        if !snapshot.is_empty() {
            let channels: Vec<String> = snapshot.iter().map(|(c, _)| keys::channel(c)).collect();
            sink.subscribe(channels).await?;
            subscribed.extend(snapshot.iter().map(|(c, _)| c.clone()));
        }
        *was_connected = true;
        tracing::info!(conversations = snapshot.len(), "redis pub/sub connected");
        fills.start(snapshot);
        for done in self.waiting.drain(..) {
            let _ = done.send(());
        }
        loop {
            let next_recheck = rechecks.keys().next().copied();
            tokio::select! {
                biased;
                _ = inbox.shutdown.cancelled() => return Ok(Stop),
                // Live events before gap fills: see `gap_fill`.
                delivery = stream.next() => match delivery {
                    None => {
                        return Err(BusError::Redis(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "pub/sub connection closed",
                        ))));
                    }
                    Some(Delivery::Message(message)) => self.dispatch(message),
                    Some(Delivery::Dropped(channel)) => {
                        let Some(conversation) = keys::conversation_of(&channel) else {
                            continue;
                        };
                        if let Some(count) = unsubscribing.get_mut(&conversation) {
                            *count -= 1;
                            if *count == 0 {
                                unsubscribing.remove(&conversation);
                            }
                            continue;
                        }
                        if subscribed.contains(&conversation) {
                            tracing::info!(%conversation, "subscription dropped by the cluster, subscribing again");
                            let conversations = vec![conversation];
                            self.resubscribe(&mut sink, &mut fills, &conversations).await?;
                            schedule_rechecks(&mut rechecks, conversations);
                        }
                    }
                    Some(Delivery::NodeLost) => {
                        tracing::info!(
                            conversations = subscribed.len(),
                            "a cluster node connection broke, subscribing again"
                        );
                        let conversations: Vec<ConversationName> =
                            subscribed.iter().cloned().collect();
                        self.resubscribe(&mut sink, &mut fills, &conversations).await?;
                        schedule_rechecks(&mut rechecks, conversations);
                    }
                    Some(Delivery::Nothing) => {}
                },
                filled = fills.next() => self.dispatch_filled(filled)?,
                _ = tokio::time::sleep_until(next_recheck.unwrap_or_else(Instant::now).into()),
                    if next_recheck.is_some() =>
                {
                    if let Some((_, conversations)) = rechecks.pop_first() {
                        fills.start(self.gaps_of(&conversations));
                    }
                }
                request = inbox.listen.recv() => match request {
                    None => return Ok(Stop),
                    Some((conversation, done)) => {
                        if !subscribed.contains(&conversation) {
                            if let Err(e) = sink.subscribe(vec![keys::channel(&conversation)]).await {
                                self.waiting.push(done);
                                return Err(e);
                            }
                            subscribed.insert(conversation);
                        }
                        let _ = done.send(());
                    }
                },
                Some(conversation) = inbox.idle.recv() => {
                    // A new subscriber may have come back since the fan-out went idle.
                    if !self.fanout.wants(&conversation) && subscribed.remove(&conversation) {
                        sink.unsubscribe(keys::channel(&conversation)).await?;
                        if matches!(self.source, PubSubSource::Cluster(_)) {
                            *unsubscribing.entry(conversation).or_default() += 1;
                        }
                    }
                }
            }
        }
    }

    /// Subscribes again to `conversations` (those still wanted), one at a time, each retried
    /// every [`RETRY_INTERVAL`] (jittered, not backing off: each pause is events not heard) for
    /// up to twice the command timeout, then fills their gaps.
    async fn resubscribe(
        &self,
        sink: &mut PubSubSink,
        fills: &mut GapFills,
        conversations: &[ConversationName],
    ) -> Result<(), BusError> {
        for conversation in conversations {
            let started = Instant::now();
            loop {
                match sink.subscribe(vec![keys::channel(conversation)]).await {
                    Ok(()) => break,
                    Err(e) if started.elapsed() >= self.timeout * 2 => return Err(e),
                    Err(e) => {
                        tracing::debug!(%conversation, error = %e, "subscribing again failed, retrying");
                        tokio::time::sleep(jittered(RETRY_INTERVAL)).await;
                    }
                }
            }
        }
        fills.start(self.gaps_of(conversations));
        Ok(())
    }

    /// Those of `conversations` still wanted here, each with the last offset dispatched: where
    /// their gap fills start. Subscribers skip what they already have, so a fill from 0 (nothing
    /// dispatched yet) is harmless.
    fn gaps_of(&self, conversations: &[ConversationName]) -> Vec<(ConversationName, u64)> {
        let wanted: HashSet<&ConversationName> = conversations.iter().collect();
        self.fanout
            .snapshot()
            .into_iter()
            .filter(|(conversation, _)| wanted.contains(conversation))
            .collect()
    }

    /// Dispatches what a gap fill read: the events published while this process was not
    /// subscribed. Its copies of events already dispatched live are dropped by the fan-out.
    fn dispatch_filled(&self, filled: Filled) -> Result<(), BusError> {
        for event in filled.read?.events {
            self.fanout.dispatch(&filled.conversation, event);
        }
        Ok(())
    }

    fn dispatch(&self, message: redis::Msg) {
        let Some(conversation) = keys::conversation_of(message.get_channel_name()) else {
            tracing::warn!(
                channel = message.get_channel_name(),
                "message on an unexpected channel"
            );
            return;
        };
        let payload: String = match message.get_payload() {
            Ok(payload) => payload,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable pub/sub message");
                return;
            }
        };
        match BusEvent::from_payload(payload) {
            Ok(event) => self.fanout.dispatch(&conversation, event),
            Err(e) => tracing::warn!(%conversation, error = %e, "malformed event on the bus"),
        }
    }
}

/// Reads the history of `conversations` again at each of [`RECHECKS`] from now.
fn schedule_rechecks(
    rechecks: &mut BTreeMap<Instant, Vec<ConversationName>>,
    conversations: Vec<ConversationName>,
) {
    let now = Instant::now();
    for delay in RECHECKS {
        rechecks
            .entry(now + delay)
            .or_default()
            .extend(conversations.iter().cloned());
    }
}

/// `interval`, give or take a quarter.
pub(crate) fn jittered(interval: Duration) -> Duration {
    let quarter = interval / 4;
    interval - quarter + quarter.mul_f64(2.0 * rand::random::<f64>())
}
