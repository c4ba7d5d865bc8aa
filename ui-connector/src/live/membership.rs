//! The conversations one socket has joined, each forwarded from its bus subscription.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_assist_core::{ConversationName, Subscription};
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::{SendError, SocketError};
use tokio::task::AbortHandle;

use super::JoinRequest;
use crate::app::AppState;

/// How long an event waits for room in a slow socket's buffer before the socket is disconnected.
/// Disconnecting is safe: the client reconnects and recovers with `since`.
const SLOW_SOCKET_GRACE: Duration = Duration::from_secs(5);

#[derive(Default)]
pub(super) struct Memberships {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    forwarding: HashMap<ConversationName, AbortHandle>,
}

impl Memberships {
    /// Subscribes the socket to a conversation and acknowledges: `(true, name)`, plus
    /// `{recovered, offset}` for the recovery form. Joining again restarts the stream from the
    /// new request (a desktop re-joining with `since` after a reconnect).
    pub(super) async fn join(
        &self,
        state: &Arc<AppState>,
        socket: SocketRef,
        request: JoinRequest,
        ack: AckSender,
    ) {
        let conversation = request.conversation.clone();
        let subscription = match state
            .bus
            .subscribe(conversation.clone(), request.since)
            .await
        {
            Ok(subscription) => subscription,
            Err(e) => {
                tracing::warn!(%conversation, error = %e, "join failed: bus unavailable");
                let _ = ack.send(&(false, "conversation bus unavailable, retry"));
                return;
            }
        };
        if !socket.connected() {
            return;
        }
        // The acknowledgement is queued before the first event, so the desktop sees it first.
        let _ = match request.since {
            Some(_) => ack.send(&(true, conversation.as_str(), subscription.recovery())),
            None => ack.send(&(true, conversation.as_str())),
        };
        let conversation_for_check = conversation.clone();
        let connected = socket.clone();
        let task = tokio::spawn(forward(socket, subscription, state.clone()));
        let previous = self
            .inner
            .lock()
            .expect("memberships lock")
            .forwarding
            .insert(conversation, task.abort_handle());
        let socket_still_connected = connected.connected();
        if let Some(previous) = previous {
            previous.abort();
        }
        // The socket may have gone while the bus answered; its disconnect handler ran already.
        if !socket_still_connected {
            self.leave(&conversation_for_check);
        }
    }

    pub(super) fn leave(&self, conversation: &ConversationName) {
        let removed = self
            .inner
            .lock()
            .expect("memberships lock")
            .forwarding
            .remove(conversation);
        if let Some(task) = removed {
            task.abort();
        }
    }

    pub(super) fn release_all(&self) {
        let mut inner = self.inner.lock().expect("memberships lock");
        for (_, task) in inner.forwarding.drain() {
            task.abort();
        }
    }
}

/// Emits each event under its `data_type`, as the JSON text it was published with. Aborting
/// this task drops the subscription, which releases the conversation on the bus.
///
/// When the subscription ends (the socket fell further behind than history reaches, or the bus
/// is gone), the socket is disconnected: it reconnects, re-joins with `since`, and is told
/// `recovered: false` rather than silently missing events.
async fn forward(socket: SocketRef, mut subscription: Subscription, state: Arc<AppState>) {
    forward_events(&socket, &mut subscription, &state).await;
    if socket.connected() {
        tracing::warn!(conversation = %subscription.conversation(), "event stream ended, disconnecting the socket so it recovers");
        let _ = socket.disconnect();
    }
}

async fn forward_events(socket: &SocketRef, subscription: &mut Subscription, state: &AppState) {
    while let Some(event) = subscription.next().await {
        let mut waited = Duration::ZERO;
        loop {
            match socket.emit(event.data_type.as_str(), &*event.payload) {
                Ok(()) => {
                    state.metrics.event_delivered();
                    break;
                }
                Err(SendError::Socket(SocketError::InternalChannelFull))
                    if waited < SLOW_SOCKET_GRACE =>
                {
                    let pause = Duration::from_millis(10);
                    tokio::time::sleep(pause).await;
                    waited += pause;
                }
                Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                    tracing::warn!(conversation = %subscription.conversation(), "socket too slow");
                    return;
                }
                Err(_) => return,
            }
        }
    }
}
