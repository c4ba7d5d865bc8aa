//! Local fan-out: one stream per conversation per process, shared by all its subscribers.
//!
//! The store delivers each event of a conversation to this process once (one Redis
//! subscription per conversation, however many sockets joined it); it is parsed once into an
//! `Arc<BusEvent>` and handed to every [`Subscription`] through a `broadcast` channel.
//! Each subscription keeps its own last delivered offset, which is how replayed history and live
//! events are stitched together without a gap or a duplicate.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::{ConversationBus, History, Recovery};
use crate::conversation::ConversationName;
use crate::event::BusEvent;

/// Events buffered per conversation for subscribers that are momentarily behind. A subscriber
/// that falls further behind catches up from history instead (see [`Subscription::next`]), so
/// this only trades memory for the rare catch-up: `broadcast` allocates every slot up front,
/// and an instance may hold tens of thousands of conversations.
const CHANNEL_CAPACITY: usize = 8;

#[derive(Default)]
pub(crate) struct Fanout {
    conversations: Mutex<HashMap<ConversationName, Channel>>,
}

struct Channel {
    sender: broadcast::Sender<Arc<BusEvent>>,
    /// Highest offset dispatched; older events arriving again (reconnect gap-fill) are dropped.
    last_dispatched: u64,
}

impl Fanout {
    pub(crate) fn attach(
        &self,
        conversation: &ConversationName,
    ) -> broadcast::Receiver<Arc<BusEvent>> {
        let mut conversations = self.conversations.lock().expect("fanout lock");
        match conversations.get(conversation) {
            Some(channel) => channel.sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(CHANNEL_CAPACITY);
                conversations.insert(
                    conversation.clone(),
                    Channel {
                        sender,
                        last_dispatched: 0,
                    },
                );
                receiver
            }
        }
    }

    pub(crate) fn dispatch(&self, conversation: &ConversationName, event: Arc<BusEvent>) {
        let mut conversations = self.conversations.lock().expect("fanout lock");
        if let Some(channel) = conversations.get_mut(conversation) {
            if event.offset > channel.last_dispatched {
                channel.last_dispatched = event.offset;
                // No receiver left is fine: the conversation is about to be released.
                let _ = channel.sender.send(event);
            }
        }
    }

    /// Forgets a conversation nobody here subscribes to any more; `true` when it did.
    pub(crate) fn remove_if_unused(&self, conversation: &ConversationName) -> bool {
        let mut conversations = self.conversations.lock().expect("fanout lock");
        match conversations.get(conversation) {
            Some(channel) if channel.sender.receiver_count() == 0 => {
                conversations.remove(conversation);
                true
            }
            _ => false,
        }
    }

    /// Each conversation with the last offset dispatched, for re-subscribing after a reconnect.
    pub(crate) fn snapshot(&self) -> Vec<(ConversationName, u64)> {
        let conversations = self.conversations.lock().expect("fanout lock");
        conversations
            .iter()
            .map(|(name, channel)| (name.clone(), channel.last_dispatched))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.conversations.lock().expect("fanout lock").len()
    }
}

/// One subscriber's stream of a conversation's events. Dropping it releases the conversation.
pub struct Subscription {
    bus: ConversationBus,
    conversation: ConversationName,
    /// Always `Some` until drop, which lets it go before releasing the conversation.
    receiver: Option<broadcast::Receiver<Arc<BusEvent>>>,
    /// History to deliver before live events.
    replay: VecDeque<Arc<BusEvent>>,
    last_delivered: u64,
    recovery: Recovery,
}

impl Subscription {
    pub(super) fn new(
        bus: ConversationBus,
        conversation: ConversationName,
        receiver: broadcast::Receiver<Arc<BusEvent>>,
    ) -> Self {
        Self {
            bus,
            conversation,
            receiver: Some(receiver),
            replay: VecDeque::new(),
            last_delivered: 0,
            recovery: Recovery {
                recovered: true,
                offset: 0,
            },
        }
    }

    /// Sets the starting point once history has been read (after attaching, see `subscribe`).
    pub(super) fn start(mut self, since: Option<u64>, history: History) -> Self {
        self.recovery = Recovery {
            recovered: since.is_none() || history.complete,
            offset: history.latest,
        };
        self.last_delivered = match since {
            Some(since) => since.min(history.latest),
            None => history.latest,
        };
        self.replay = history.events.into();
        self
    }

    pub fn conversation(&self) -> &ConversationName {
        &self.conversation
    }

    /// Whether the history reached back to `since`, and the latest offset at the start.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// The next event, oldest first: replayed history, then live events. A subscriber that
    /// falls more than the channel's capacity behind is caught up from history. `None` when the
    /// bus is gone, or when the subscriber fell so far behind that history no longer covers the
    /// gap: the stream ends rather than silently skipping events, and the consumer (a socket)
    /// is expected to re-subscribe with `since`, which reports `recovered: false`.
    pub async fn next(&mut self) -> Option<Arc<BusEvent>> {
        loop {
            if let Some(event) = self.replay.pop_front() {
                if event.offset > self.last_delivered {
                    self.last_delivered = event.offset;
                    return Some(event);
                }
                continue;
            }
            let receiver = self.receiver.as_mut()?;
            match receiver.recv().await {
                Ok(event) if event.offset > self.last_delivered => {
                    self.last_delivered = event.offset;
                    return Some(event);
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::warn!(conversation = %self.conversation, skipped, "subscriber fell behind, catching up from history");
                    // Boxed: this rare path's Redis call would otherwise grow every waiting
                    // `next()` future (one per joined socket) by about a kilobyte.
                    if !Box::pin(self.catch_up()).await {
                        return None;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Refills the replay queue from history; `false` when events were lost for good.
    async fn catch_up(&mut self) -> bool {
        match self
            .bus
            .history(&self.conversation, Some(self.last_delivered))
            .await
        {
            Ok(history) if history.complete => {
                self.replay = history.events.into();
                true
            }
            Ok(_) => {
                tracing::warn!(conversation = %self.conversation, since = self.last_delivered, "subscriber fell behind further than history reaches, ending its stream");
                false
            }
            Err(e) => {
                tracing::error!(conversation = %self.conversation, error = %e, "cannot catch up from history, ending the stream");
                false
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.receiver = None;
        self.bus.release(&self.conversation);
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("conversation", &self.conversation)
            .field("last_delivered", &self.last_delivered)
            .finish()
    }
}
