//! The conversations one socket has joined, each forwarded from its bus subscription.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_assist_core::{ConversationName, Subscription};
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::{SendError, SocketError};
use tokio::task::AbortHandle;

use super::{JoinRequest, LiveState};

/// The forwarding task of each joined conversation. A desktop joins one conversation, or a
/// few: a vector costs less memory per socket than a map.
#[derive(Default)]
pub(super) struct Memberships {
    forwarding: Mutex<Vec<(ConversationName, AbortHandle)>>,
}

impl Memberships {
    /// Subscribes the socket to a conversation and acknowledges: `(true, name)`, plus
    /// `{recovered, offset}` for the recovery form. Joining again restarts the stream from the
    /// new request (a desktop re-joining with `since` after a reconnect).
    pub(super) async fn join(
        &self,
        state: &Arc<LiveState>,
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
        let task = tokio::spawn(forward(socket.clone(), subscription, state.clone()));
        if let Some(previous) = self.replace(conversation.clone(), task.abort_handle()) {
            previous.abort();
        }
        // The socket may have gone while the bus answered; its disconnect handler ran already.
        if !socket.connected() {
            self.leave(&conversation);
        }
    }

    /// Records the task forwarding `conversation`, returning the one it replaces.
    fn replace(&self, conversation: ConversationName, task: AbortHandle) -> Option<AbortHandle> {
        let mut forwarding = self.forwarding.lock().expect("memberships lock");
        match forwarding.iter_mut().find(|(c, _)| *c == conversation) {
            Some(entry) => Some(std::mem::replace(&mut entry.1, task)),
            None => {
                forwarding.push((conversation, task));
                None
            }
        }
    }

    pub(super) fn leave(&self, conversation: &ConversationName) {
        let mut forwarding = self.forwarding.lock().expect("memberships lock");
        if let Some(index) = forwarding.iter().position(|(c, _)| c == conversation) {
            forwarding.swap_remove(index).1.abort();
        }
    }

    pub(super) fn release_all(&self) {
        let mut forwarding = self.forwarding.lock().expect("memberships lock");
        for (_, task) in forwarding.drain(..) {
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
///
/// Not an `async fn`: that would store the arguments twice in the task (see the test below).
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice, in a task per joined socket"
)]
fn forward(
    socket: SocketRef,
    mut subscription: Subscription,
    state: Arc<LiveState>,
) -> impl std::future::Future<Output = ()> {
    async move {
        forward_events(&socket, &mut subscription, &state).await;
        if socket.connected() {
            tracing::warn!(conversation = %subscription.conversation(), "event stream ended, disconnecting the socket so it recovers");
            let _ = socket.disconnect();
        }
    }
}

async fn forward_events(socket: &SocketRef, subscription: &mut Subscription, state: &LiveState) {
    while let Some(event) = subscription.next().await {
        let mut waited = Duration::ZERO;
        loop {
            match socket.emit(event.data_type.as_str(), &*event.payload) {
                Ok(()) => {
                    state.metrics.event_delivered();
                    break;
                }
                Err(SendError::Socket(SocketError::InternalChannelFull))
                    if waited < state.slow_socket_grace =>
                {
                    let pause = Duration::from_millis(10);
                    // Boxed: keeps the per-socket forwarding task small while it waits for events.
                    Box::pin(tokio::time::sleep(pause)).await;
                    waited += pause;
                }
                Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                    super::slow_socket::disconnect(socket, state);
                    return;
                }
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// One forwarding task per joined socket waits for events most of its life, so its size
    /// is memory per socket. As an `async fn` taking a copy of the state, `forward` took 560
    /// bytes: an `async fn` stores its arguments twice (as arguments, and as the locals they
    /// are moved into when it first runs). Without that, 376; with the state shared through
    /// one `Arc`, 328. tokio aligns a task to 128 bytes (its `Cell` is `repr(align(128))` on
    /// x86_64), so memory moves in steps: 560 made a 768-byte task, 376 and 328 a 512-byte one,
    /// 0.25 KiB of the 20 KiB per socket (BENCHMARKS.md, finding 2). 328 leaves room for about
    /// 80 bytes more before the next step (the task's own fields take about 100); this budget
    /// keeps most of it.
    #[test]
    fn the_forwarding_task_stays_small() {
        fn future_size<A, B, C, F>(_: fn(A, B, C) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        let size = future_size(super::forward as fn(_, _, _) -> _);
        assert!(size <= 336, "the forwarding future takes {size} bytes");
    }
}
