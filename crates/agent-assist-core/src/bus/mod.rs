//! The conversation bus: how an event pushed to the interceptor reaches every desktop watching
//! its conversation, on whichever connector instance.
//!
//! # Semantics (the same for both stores, proven by one test suite run against both)
//! - **Offsets.** Each published event gets an `offset`, one more than the conversation's
//!   previous event. A conversation's first offset (and the first after its history expired) is
//!   the current time in microseconds, so offsets never go backwards, even after history expiry
//!   or an emptied Redis, and stay below 2^53 (exact in JavaScript).
//! - **History.** The last `history_len` events of a conversation are kept until `history_ttl`
//!   after its last event, including events nobody listened to yet.
//! - **Atomic publish.** Redelivery check, offset, history append and live publish happen in one
//!   step (a Lua script on Redis, one lock in memory). The redelivery mark is written last, so a
//!   failure half-way leads to a retry, never to a redelivery being dropped as a duplicate.
//! - **Redelivery.** An event whose Pub/Sub `message_id` was accepted for the same conversation on
//!   the same endpoint within `dedup_window` is a [`PublishOutcome::Duplicate`] and publishes
//!   nothing.
//! - **Batches.** Publishes that arrive together go to Redis in one script call (group commit;
//!   a lone publish is never delayed), and [`ConversationBus::publish_batch`] publishes a batch
//!   already gathered (pulled messages) in one round trip.
//! - **Subscriptions.** [`ConversationBus::subscribe`] with `since` yields every kept event after
//!   that offset, then the live ones, in order, with no gap and no duplicate; [`Recovery`] says
//!   whether the kept history reached back to `since`.
//! - **Fan-out.** A process subscribes to a conversation once, whatever its number of
//!   subscribers, and parses each event once; subscribers share it through the fan-out.

mod fanout;
mod key_value;
mod memory;
mod redis_store;
mod subscription;

use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use key_value::KeyValueStore;
pub use subscription::Subscription;

use crate::config::BusConfig;
use crate::conversation::ConversationName;
use crate::event::{BusEvent, MalformedBusEvent, PendingEvent};
use fanout::Fanout;
use key_value::MemoryValues;
use memory::MemoryStore;
use redis_store::RedisStore;

/// Most events one Redis script call stores: a pulled batch of up to this many is stored in one
/// round trip, and group commit gathers up to this many pushes (it rarely gets near: a call
/// waits for nobody). 256 rather than 64 since 2026-12-01: on the 2-vCPU bench machine, pull
/// mode stored 6 % more messages/s with it (19,800 to 20,100 against 18,000 to 19,700, three
/// alternated runs each; BENCHMARKS.md finding 4). Why is not traced: Redis's time per message
/// hardly moved in those runs, while the script alone spent about 10 % less CPU per event in
/// calls of 256 (`crates/bench/investigations`). The price is how long one call
/// holds Redis: a full call of 1.4 KB events took 9.9 to 10.7 ms there (2.4 to 2.7 ms at 64),
/// and only a backlog fills one. Besides the count, a call carries about 1 MiB at most.
pub const MAX_EVENTS_PER_CALL: usize = 256;

/// What happened to a published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Stored in history and sent to live subscribers under this offset.
    Published { offset: u64 },
    /// A redelivery of an already accepted message: nothing was stored or sent.
    Duplicate,
}

/// Whether a subscription starting at `since` received everything after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// `true` when every event after `since` is delivered (or no `since` was given).
    pub recovered: bool,
    /// The conversation's latest offset when the subscription started (0: no event yet).
    pub offset: u64,
}

/// Kept events of one conversation after some offset.
#[derive(Debug)]
pub struct History {
    /// Oldest first.
    pub events: Vec<Arc<BusEvent>>,
    /// The conversation's latest offset (0 when it has none).
    pub latest: u64,
    /// `false` when events after `since` were trimmed or expired, or `since` is ahead of `latest`.
    pub complete: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("the bus listener has stopped")]
    ListenerStopped,
    #[error(transparent)]
    Malformed(#[from] MalformedBusEvent),
    #[error("{0}")]
    Config(String),
    /// The script call that carried this event (with others) failed.
    #[error(transparent)]
    Batch(Arc<BusError>),
}

/// A handle on the bus; cheap to clone.
#[derive(Clone)]
pub struct ConversationBus {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    fanout: Arc<Fanout>,
}

enum Store {
    Memory {
        events: MemoryStore,
        values: Arc<MemoryValues>,
    },
    Redis(RedisStore),
}

impl ConversationBus {
    /// Redis when `config.redis_url` (or cluster nodes) are set, memory otherwise. Never waits for Redis: a service
    /// starts while Redis is down and answers 503 until it is back. The Redis listener (the
    /// bus's one background task) stops when `shutdown` fires.
    pub fn connect(config: BusConfig, shutdown: CancellationToken) -> Result<Self, BusError> {
        let inner = if config.redis_url.is_some() || config.is_cluster() {
            let (idle, idle_conversations) = tokio::sync::mpsc::unbounded_channel();
            let fanout = Arc::new(Fanout::new(Some(idle)));
            let store = RedisStore::open(config, fanout.clone(), idle_conversations, shutdown)?;
            Inner {
                store: Store::Redis(store),
                fanout,
            }
        } else {
            Inner {
                store: Store::Memory {
                    events: MemoryStore::new(config),
                    values: Arc::default(),
                },
                fanout: Arc::new(Fanout::new(None)),
            }
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// `"redis"` or `"memory"`, for logs and readiness.
    pub fn kind(&self) -> &'static str {
        match self.inner.store {
            Store::Memory { .. } => "memory",
            Store::Redis(_) => "redis",
        }
    }

    /// Stores and publishes an event; see the module docs for the guarantees.
    pub async fn publish(&self, event: &PendingEvent) -> Result<PublishOutcome, BusError> {
        match &self.inner.store {
            Store::Memory { events, .. } => Ok(events.publish(event, &self.inner.fanout)),
            Store::Redis(store) => store.publish(event).await,
        }
    }

    /// Stores and publishes several events in one step where the store allows it (a pulled
    /// batch: one Redis round trip); their outcomes, in order. If it fails, none of the events
    /// can be assumed published: the caller retries them all (redeliveries are recognised).
    pub async fn publish_batch(
        &self,
        events: Vec<PendingEvent>,
    ) -> Result<Vec<PublishOutcome>, BusError> {
        match &self.inner.store {
            Store::Memory { events: store, .. } => Ok(events
                .iter()
                .map(|event| store.publish(event, &self.inner.fanout))
                .collect()),
            Store::Redis(store) => store.publish_batch(events).await,
        }
    }

    /// Kept events after `since` (none when `since` is `None`) and the latest offset.
    pub async fn history(
        &self,
        conversation: &ConversationName,
        since: Option<u64>,
    ) -> Result<History, BusError> {
        match &self.inner.store {
            Store::Memory { events, .. } => Ok(events.history(conversation, since)),
            Store::Redis(store) => store.history(conversation, since).await,
        }
    }

    /// Starts receiving a conversation's events: those kept after `since` first, then live ones.
    pub async fn subscribe(
        &self,
        conversation: ConversationName,
        since: Option<u64>,
    ) -> Result<Subscription, BusError> {
        // Attach to the local fan-out before reading history: whatever is published after the
        // history read is then already on its way to this subscription.
        let member = self.inner.fanout.attach(&conversation);
        if let Store::Redis(store) = &self.inner.store {
            store.listen(&conversation).await?;
        }
        let history = self.history(&conversation, since).await?;
        Ok(Subscription::new(
            self.clone(),
            conversation,
            member,
            since,
            history,
        ))
    }

    /// Whether the store answers (readiness).
    pub async fn ping(&self) -> Result<(), BusError> {
        match &self.inner.store {
            Store::Memory { .. } => Ok(()),
            Store::Redis(store) => store.ping().await,
        }
    }

    /// Conversations this process is subscribed to (for metrics).
    pub fn subscribed_conversations(&self) -> usize {
        self.inner.fanout.len()
    }

    /// Expiring entries under `namespace`, in the same store (integration keys).
    pub fn key_value_store(&self, namespace: &'static str) -> KeyValueStore {
        let backend = match &self.inner.store {
            Store::Memory { values, .. } => key_value::Backend::Memory(values.clone()),
            Store::Redis(store) => key_value::Backend::Redis(store.commands().clone()),
        };
        KeyValueStore::new(namespace, backend)
    }
}

/// Microseconds since the Unix epoch: the first offset of a conversation.
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ConversationEvent, EventType};

    fn event(n: u32) -> PendingEvent {
        let conversation = "projects/p/conversations/gap";
        let data = format!(r#"{{"n":{n}}}"#);
        PendingEvent::new(
            ConversationName::parse(conversation).unwrap(),
            &ConversationEvent {
                conversation_name: conversation,
                data: &data,
                data_type: EventType::NewMessageEvent,
                ack_time: "2026-11-23T13:00:00Z".into(),
                publish_time: None,
                message_id: None,
                recognition: None,
            },
        )
        .unwrap()
    }

    /// A memory bus keeping `history_len` events, and a way to store events without this
    /// process's fan-out hearing of them (as when the Redis listener is disconnected).
    fn bus(history_len: usize) -> (ConversationBus, Arc<Fanout>) {
        let mut config = BusConfig::with_redis(None);
        config.history_len = history_len;
        let bus = ConversationBus::connect(config, CancellationToken::new()).unwrap();
        (bus, Arc::new(Fanout::new(None)))
    }

    fn store(bus: &ConversationBus) -> &MemoryStore {
        match &bus.inner.store {
            Store::Memory { events, .. } => events,
            Store::Redis(_) => unreachable!(),
        }
    }

    async fn next(subscription: &mut Subscription) -> Option<u64> {
        tokio::time::timeout(std::time::Duration::from_secs(5), subscription.next())
            .await
            .expect("an answer within 5 s")
            .map(|e| e.offset)
    }

    /// Issue 10: the gap fill after a reconnect dispatched what history kept without checking
    /// it covered the gap, and subscribers skipped ahead silently. A subscriber that sees the
    /// offsets jump now catches up from history, or ends its stream when history lost events.
    #[tokio::test]
    async fn a_jump_in_the_live_stream_is_filled_from_history_or_ends_the_stream() {
        let (bus, elsewhere) = bus(3);
        let mut subscription = bus.subscribe(event(0).conversation, None).await.unwrap();
        let PublishOutcome::Published { offset: first } = bus.publish(&event(1)).await.unwrap()
        else {
            panic!("published")
        };
        assert_eq!(next(&mut subscription).await, Some(first));
        // Two events this process did not hear of (history keeps three), then one it did.
        store(&bus).publish(&event(2), &elsewhere);
        store(&bus).publish(&event(3), &elsewhere);
        bus.publish(&event(4)).await.unwrap();
        for expected in [first + 1, first + 2, first + 3] {
            assert_eq!(next(&mut subscription).await, Some(expected), "no skip");
        }
        // Four unheard events: history (three) no longer covers the gap.
        for n in 5..9 {
            store(&bus).publish(&event(n), &elsewhere);
        }
        bus.publish(&event(9)).await.unwrap();
        assert_eq!(next(&mut subscription).await, None, "the stream ends");
        let rejoined = bus
            .subscribe(event(0).conversation, Some(first + 3))
            .await
            .unwrap();
        assert!(!rejoined.recovery().recovered);
    }
}
