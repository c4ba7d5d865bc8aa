//! One subscriber's stream of a conversation: replayed history stitched to live events.
//!
//! Each subscription keeps its own last delivered offset, which is how replayed history and
//! live events are joined without a gap or a duplicate. A stream never skips: offsets are
//! consecutive within a conversation, so an event more than one past the last delivered (the
//! subscriber fell behind the fan-out's small buffer, or events were published while the
//! process was not subscribed, such as during a Redis outage) makes the subscription catch up
//! from history first; when history no longer covers the gap, the stream ends, and the
//! consumer re-subscribes with `since` and is told `recovered: false`.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::fanout::Member;
use super::{ConversationBus, History, Recovery};
use crate::conversation::ConversationName;
use crate::event::BusEvent;

/// How often, and how long, a subscriber that must catch up asks an unavailable store again.
const CATCH_UP_RETRY: std::time::Duration = std::time::Duration::from_millis(100);
const CATCH_UP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// One subscriber's stream of a conversation's events. Dropping it releases the conversation.
pub struct Subscription {
    bus: ConversationBus,
    conversation: ConversationName,
    member: Member,
    /// History to deliver before live events.
    replay: VecDeque<Arc<BusEvent>>,
    last_delivered: u64,
    recovery: Recovery,
}

impl Subscription {
    /// A subscription starting where `history` (read after `member` attached) ends, or at
    /// `since` when given.
    pub(super) fn new(
        bus: ConversationBus,
        conversation: ConversationName,
        member: Member,
        since: Option<u64>,
        history: History,
    ) -> Self {
        Self {
            bus,
            conversation,
            member,
            recovery: Recovery {
                recovered: since.is_none() || history.complete,
                offset: history.latest,
            },
            last_delivered: match since {
                Some(since) => since.min(history.latest),
                None => history.latest,
            },
            replay: history.events.into(),
        }
    }

    pub fn conversation(&self) -> &ConversationName {
        &self.conversation
    }

    /// Whether the history reached back to `since`, and the latest offset at the start.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// The next event, oldest first: replayed history, then live events. A subscriber that
    /// falls more than the fan-out's buffer behind is caught up from history. `None` when the
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
            match self.member.recv().await {
                Ok(event) if event.offset <= self.last_delivered => continue,
                Ok(event) if self.follows(event.offset) => {
                    self.last_delivered = event.offset;
                    return Some(event);
                }
                Ok(event) => {
                    tracing::warn!(conversation = %self.conversation, last = self.last_delivered, next = event.offset, "gap in the live stream, catching up from history");
                    // The event itself is in history too (it was stored before it was sent).
                    if !Box::pin(self.catch_up()).await {
                        return None;
                    }
                }
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

    /// Whether `offset` comes right after what was delivered (anything does before the first).
    fn follows(&self, offset: u64) -> bool {
        self.last_delivered == 0 || offset == self.last_delivered + 1
    }

    /// Refills the replay queue from history; `false` when events were lost for good. While
    /// the store is unavailable (Redis restarting), it asks again every [`CATCH_UP_RETRY`] for
    /// up to [`CATCH_UP_PATIENCE`]: with a persistent Redis, history comes back.
    async fn catch_up(&mut self) -> bool {
        let give_up = tokio::time::Instant::now() + CATCH_UP_PATIENCE;
        loop {
            match self
                .bus
                .history(&self.conversation, Some(self.last_delivered))
                .await
            {
                Ok(history) if history.complete => {
                    self.replay = history.events.into();
                    return true;
                }
                Ok(_) => {
                    tracing::warn!(conversation = %self.conversation, since = self.last_delivered, "subscriber fell behind further than history reaches, ending its stream");
                    return false;
                }
                Err(e) if tokio::time::Instant::now() < give_up => {
                    tracing::debug!(conversation = %self.conversation, error = %e, "history unavailable, asking again");
                    tokio::time::sleep(CATCH_UP_RETRY).await;
                }
                Err(e) => {
                    tracing::error!(conversation = %self.conversation, error = %e, "cannot catch up from history, ending the stream");
                    return false;
                }
            }
        }
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
