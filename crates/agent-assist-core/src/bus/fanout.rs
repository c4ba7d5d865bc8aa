//! Local fan-out: one stream per conversation per process, shared by all its subscribers.
//!
//! The store delivers each event of a conversation to this process once (one Redis
//! subscription per conversation, however many sockets joined it); it is parsed once into an
//! `Arc<BusEvent>` and handed to every subscriber through a `broadcast` channel.
//!
//! The fan-out is also the one place that decides when a conversation is no longer needed
//! here: a [`Member`] is one subscriber's place in a conversation, and when the last member of a
//! conversation goes, the conversation is forgotten and, with a Redis store, its listener is
//! told ([`Fanout::new`]'s `idle` channel) so it can unsubscribe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc};

use crate::conversation::ConversationName;
use crate::event::BusEvent;

/// Events buffered per conversation for subscribers that are momentarily behind. A subscriber
/// that falls further behind catches up from history instead (see
/// [`Subscription::next`](super::Subscription::next)), so this only trades memory for the rare
/// catch-up: `broadcast` allocates every slot up front, and an instance may hold tens of
/// thousands of conversations.
const CHANNEL_CAPACITY: usize = 8;

pub(crate) struct Fanout {
    conversations: Mutex<HashMap<ConversationName, Channel>>,
    /// Told the name of each conversation forgotten because its last member left.
    idle: Option<mpsc::UnboundedSender<ConversationName>>,
}

struct Channel {
    sender: broadcast::Sender<Arc<BusEvent>>,
    /// Highest offset dispatched; older events arriving again (reconnect gap-fill) are dropped.
    last_dispatched: u64,
}

impl Fanout {
    /// `idle` hears of every conversation the fan-out forgets (the Redis listener unsubscribes).
    pub(crate) fn new(idle: Option<mpsc::UnboundedSender<ConversationName>>) -> Self {
        Self {
            conversations: Mutex::default(),
            idle,
        }
    }

    /// Joins a conversation's stream, creating it for the first member.
    pub(crate) fn attach(self: &Arc<Self>, conversation: &ConversationName) -> Member {
        let mut conversations = self.conversations.lock().expect("fanout lock");
        let receiver = match conversations.get(conversation) {
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
        };
        Member {
            fanout: self.clone(),
            conversation: conversation.clone(),
            receiver: Some(receiver),
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

    /// Whether any member here still wants the conversation.
    pub(crate) fn wants(&self, conversation: &ConversationName) -> bool {
        self.conversations
            .lock()
            .expect("fanout lock")
            .contains_key(conversation)
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

    /// Forgets a conversation whose last member left, and says so.
    fn release(&self, conversation: &ConversationName) {
        let mut conversations = self.conversations.lock().expect("fanout lock");
        let unused = conversations
            .get(conversation)
            .is_some_and(|channel| channel.sender.receiver_count() == 0);
        if unused {
            conversations.remove(conversation);
            if let Some(idle) = &self.idle {
                // The listener is gone only when the bus is shutting down.
                let _ = idle.send(conversation.clone());
            }
        }
    }
}

/// One subscriber's place in a conversation's stream. Dropping it releases the conversation
/// when it was the last.
pub(crate) struct Member {
    fanout: Arc<Fanout>,
    conversation: ConversationName,
    /// Always `Some` until drop, which lets it go before the release counts receivers.
    receiver: Option<broadcast::Receiver<Arc<BusEvent>>>,
}

impl Member {
    pub(crate) async fn recv(&mut self) -> Result<Arc<BusEvent>, broadcast::error::RecvError> {
        match self.receiver.as_mut() {
            Some(receiver) => receiver.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.receiver = None;
        self.fanout.release(&self.conversation);
    }
}
