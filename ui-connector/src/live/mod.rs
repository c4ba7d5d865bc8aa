//! Live events over Socket.IO: what agent desktops connect to.
//!
//! The protocol is the Python service's, spoken by `socketioxide` (Socket.IO v5 over Engine.IO
//! v4, WebSocket with long-polling fallback) at `/socket.io/`:
//! - connect with `auth: {token: <jwt>}`; a bad token refuses the connection and the client's
//!   `connect_error` says why ([`session`]);
//! - `join-conversation` / `leave-conversation` with a conversation name, acknowledged with
//!   `(true, <name without location>)`; events arrive under their `data_type` ([`membership`]);
//! - the recovery extension: `join-conversation` with `{conversation_name, since}` replays what
//!   the bus kept after `since` and acknowledges with a third argument `{recovered, offset}`;
//! - the token is checked at connect only, as the Python service did: a socket stays up after
//!   its token expires, unless `DISCONNECT_ON_TOKEN_EXPIRY` asks for the strict behaviour
//!   ([`expiry`]).
//!
//! Each joined conversation is one bus [`Subscription`](agent_assist_core::Subscription); the bus
//! subscribes this instance to a conversation once, whatever the number of sockets in it, and
//! events are passed to sockets as the JSON text the interceptor published.

mod expiry;
pub mod handshake_checks;
mod join_request;
mod membership;
mod session;
mod slow_socket;

use std::sync::Arc;
use std::time::Duration;

use agent_assist_core::ConversationBus;
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::SocketIo;
use tokio_util::sync::CancellationToken;

use crate::closable_connection::UpgradedConnections;
use crate::jwt::JwtKeys;
use crate::memory_release::MemoryRelease;
use crate::metrics::ConnectorMetrics;

pub use join_request::JoinRequest;

/// Packets queued per socket before an emit waits for room. Large enough for a replay of the
/// default history (100 events) at once; a longer replay waits for room as live events do. It
/// bounds what a desktop that stopped reading holds in memory (see [`slow_socket`]).
const SOCKET_BUFFER: usize = 128;

/// How long an event waits for room in a socket's buffer before the socket is declared too
/// slow and its connection closed (the desktop reconnects and recovers with `since`).
pub const DEFAULT_SLOW_SOCKET_GRACE: Duration = Duration::from_secs(5);

/// Largest Engine.IO packet a client may send, announced in the handshake as `maxPayload`:
/// python-engineio's default `max_http_buffer_size` (1,000,000 bytes), which the Python
/// service ran with.
pub const MAX_PAYLOAD: u64 = 1_000_000;

/// What the socket handlers need. Shared through one `Arc` (socketioxide's state is an
/// `Arc<LiveState>`): each joined socket's forwarding task holds it, and a pointer leaves that
/// task more room below tokio's next 128-byte step than a copy of these fields (see
/// `membership::tests`).
pub struct LiveState {
    pub jwt: Arc<JwtKeys>,
    pub bus: ConversationBus,
    pub metrics: Arc<ConnectorMetrics>,
    /// The connection of each socket that upgraded from long-polling (see [`slow_socket`]).
    pub upgraded: Arc<UpgradedConnections>,
    pub slow_socket_grace: Duration,
    /// Counts sockets in and out, to return memory after a crowd leaves.
    pub memory: Arc<MemoryRelease>,
}

/// The Socket.IO layer and its handle (to close every socket on shutdown). With
/// `disconnect_on_token_expiry`, the token-expiry watcher runs until `shutdown` fires.
pub fn layer(
    state: LiveState,
    disconnect_on_token_expiry: bool,
    shutdown: &CancellationToken,
) -> (SocketIoLayer, SocketIo) {
    let (expiry, registrations) = match disconnect_on_token_expiry {
        true => {
            let (watch, registrations) = expiry::ExpiryWatch::new();
            (Some(watch), Some(registrations))
        }
        false => (None, None),
    };
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(SOCKET_BUFFER)
        .max_payload(MAX_PAYLOAD)
        // Desktops send short messages (joins, leaves): a small read buffer per socket.
        .ws_read_buffer_size(1024)
        .with_state(Arc::new(state))
        .with_state(expiry)
        .build_layer();
    if let Some(registrations) = registrations {
        tokio::spawn(expiry::ExpiryWatch::run(
            registrations,
            io.clone(),
            shutdown.clone(),
        ));
    }
    io.ns("/", session::on_connect.with(session::authenticate));
    (layer, io)
}
