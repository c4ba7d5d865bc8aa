//! Token expiry of connected sockets, watched by one task for the whole instance: the strict
//! mode, only with `DISCONNECT_ON_TOKEN_EXPIRY=true`.
//!
//! By default a socket stays up after its token expires, as with the Python service, which
//! checked the token at connect only: desktops treat `unauthenticated` as fatal and
//! socket.io-client does not reconnect after a server-side disconnect, so ending the socket
//! would cut a voice agent off mid-shift. With the setting, when a socket's token expires, that
//! socket alone is told `unauthenticated` and disconnected.
//! A timer task per socket would cost memory on every one of tens of thousands of sockets, so
//! sockets are registered here by id with their expiry, in a heap ordered by time; a socket
//! that left before its token expired is simply not found any more.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use socketioxide::socket::Sid;
use socketioxide::SocketIo;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::jwt::now_secs;

/// Registers sockets with the watcher task. Cheap to clone.
#[derive(Clone)]
pub(super) struct ExpiryWatch {
    sender: mpsc::UnboundedSender<(u64, Sid)>,
}

impl ExpiryWatch {
    /// A watch whose task starts with [`ExpiryWatch::run`] once the `SocketIo` handle exists.
    pub(super) fn new() -> (Self, mpsc::UnboundedReceiver<(u64, Sid)>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self { sender }, receiver)
    }

    /// Disconnects socket `sid` when `exp` (seconds since the epoch) has passed.
    pub(super) fn watch(&self, sid: Sid, exp: u64) {
        let _ = self.sender.send((exp, sid));
    }

    /// The watcher: sleeps until the earliest expiry, then tells and disconnects every socket
    /// whose token has expired. Ends when `shutdown` fires or every [`ExpiryWatch`] is dropped.
    pub(super) async fn run(
        mut registrations: mpsc::UnboundedReceiver<(u64, Sid)>,
        io: SocketIo,
        shutdown: CancellationToken,
    ) {
        let mut due: BinaryHeap<Reverse<(u64, Sid)>> = BinaryHeap::new();
        loop {
            let wait = due
                .peek()
                .map(|Reverse((exp, _))| Duration::from_secs(exp.saturating_sub(now_secs())));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                registration = registrations.recv() => match registration {
                    Some(entry) => due.push(Reverse(entry)),
                    None => return,
                },
                _ = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {
                    let now = now_secs();
                    while let Some(Reverse((exp, sid))) = due.peek().copied() {
                        if exp > now {
                            break;
                        }
                        due.pop();
                        if let Some(socket) = io.get_socket(sid) {
                            let _ = socket.emit("unauthenticated", "token expired");
                            let _ = socket.disconnect();
                        }
                    }
                }
            }
        }
    }
}
