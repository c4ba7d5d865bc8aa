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
//! Gap fill dispatches what history kept; a subscriber that sees the offsets jump (history no
//! longer covered the outage) ends its stream rather than skip (see
//! [`Subscription`](crate::bus::Subscription)).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{keys, Commands, Scripts};
use crate::bus::fanout::Fanout;
use crate::bus::BusError;
use crate::conversation::ConversationName;
use crate::event::BusEvent;

/// A request to receive a conversation's live events; answered once subscribed.
pub(crate) type ListenRequest = (ConversationName, oneshot::Sender<()>);

pub(crate) struct Listener {
    pub(crate) client: redis::Client,
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

/// How long the listener waits between attempts to reach Redis again (±25 % jitter).
pub(crate) const RETRY_INTERVAL: Duration = Duration::from_millis(100);

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
        let pubsub = match tokio::time::timeout(self.timeout, self.client.get_async_pubsub()).await
        {
            Ok(result) => result?,
            Err(_) => return Err(BusError::Timeout(self.timeout)),
        };
        let (mut sink, mut stream) = pubsub.split();
        let mut subscribed: HashSet<ConversationName> = HashSet::new();
        let snapshot = self.fanout.snapshot();
        if !snapshot.is_empty() {
            let channels: Vec<String> = snapshot.iter().map(|(c, _)| keys::channel(c)).collect();
            sink.subscribe(channels).await?;
            subscribed.extend(snapshot.iter().map(|(c, _)| c.clone()));
        }
        *was_connected = true;
        tracing::info!(conversations = snapshot.len(), "redis pub/sub connected");
        if !snapshot.is_empty() {
            self.commands.ensure_live().await?;
        }
        // Events published while this process was not subscribed are in history.
        // Subscribers skip what they already have, so replaying from an offset of 0 (nothing
        // dispatched yet) is harmless.
        for (conversation, last) in &snapshot {
            let history = self
                .scripts
                .history(&self.commands, self.history_len, conversation, Some(*last))
                .await?;
            for event in history.events {
                self.fanout.dispatch(conversation, event);
            }
        }
        for done in self.waiting.drain(..) {
            let _ = done.send(());
        }
        loop {
            tokio::select! {
                biased;
                _ = inbox.shutdown.cancelled() => return Ok(Stop),
                message = stream.next() => {
                    let Some(message) = message else {
                        return Err(BusError::Redis(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "pub/sub connection closed",
                        ))));
                    };
                    self.dispatch(message);
                }
                request = inbox.listen.recv() => match request {
                    None => return Ok(Stop),
                    Some((conversation, done)) => {
                        if !subscribed.contains(&conversation) {
                            if let Err(e) = sink.subscribe(keys::channel(&conversation)).await {
                                self.waiting.push(done);
                                return Err(e.into());
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
                    }
                }
            }
        }
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

/// `interval`, give or take a quarter.
fn jittered(interval: Duration) -> Duration {
    let quarter = interval / 4;
    interval - quarter + quarter.mul_f64(2.0 * rand::random::<f64>())
}
