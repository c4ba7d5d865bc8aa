//! What happens to a desktop that stops reading.
//!
//! Its events queue up in the socket's buffer ([`SOCKET_BUFFER`](super::SOCKET_BUFFER) packets;
//! with the TCP windows, that is what a stalled socket can hold, a few hundred KiB to a few MiB
//! depending on event size). An event that finds the buffer full waits up to the slow-socket
//! grace period; after that the socket is declared too slow and its connection is closed for
//! real: not by queueing a disconnect packet (the buffer is full), but by closing the TCP
//! connection under the WebSocket ([`crate::closable_connection`]). The desktop sees the
//! connection drop, reconnects, and re-joins with `since`, recovering what history still holds
//! or being told `recovered: false`.
//!
//! A long-polling socket has no connection of its own to close: it is disconnected as soon as
//! its buffer has room for the disconnect packet, and Engine.IO's heartbeat closes it earlier
//! if its buffer stays full (the ping cannot be queued either).

use std::time::Duration;

use axum::extract::ConnectInfo;
use socketioxide::extract::SocketRef;
use socketioxide::TransportType;

use super::LiveState;
use crate::closable_connection::CloseHandle;

/// How often a long-polling socket is asked again to take its disconnect packet, and for how
/// long at most (the heartbeat closes it by then).
const POLLING_RETRY: Duration = Duration::from_millis(100);
const POLLING_RETRY_FOR: Duration = Duration::from_secs(60);

/// Closes a socket that stopped reading, and counts it.
pub(super) fn disconnect(socket: &SocketRef, state: &LiveState) {
    state.metrics.slow_socket();
    match connection_of(socket, state) {
        Some(handle) => {
            tracing::warn!(sid = %socket.id, "socket too slow: closing its connection");
            handle.close();
        }
        None => {
            tracing::warn!(sid = %socket.id, "socket too slow (long-polling): disconnecting it as soon as it takes the packet");
            let socket = socket.clone();
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + POLLING_RETRY_FOR;
                while socket.connected() && tokio::time::Instant::now() < deadline {
                    if socket.clone().disconnect().is_ok() {
                        return;
                    }
                    tokio::time::sleep(POLLING_RETRY).await;
                }
            });
        }
    }
}

/// The TCP connection a WebSocket socket's packets go through: the one its upgrade request
/// came on, or, for a socket that connected by WebSocket directly, its handshake's.
fn connection_of(socket: &SocketRef, state: &LiveState) -> Option<CloseHandle> {
    if socket.transport_type() != TransportType::Websocket {
        return None;
    }
    if let Some(handle) = state.upgraded.take(&socket.id.to_string()) {
        return Some(handle);
    }
    let handshake = socket.req_parts();
    let direct = handshake
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|pair| pair == "transport=websocket"));
    direct
        .then(|| handshake.extensions.get::<ConnectInfo<CloseHandle>>())
        .flatten()
        .map(|info| info.0.clone())
}
