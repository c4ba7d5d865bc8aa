//! One desktop connection: authentication at connect, its handlers, and (only with
//! `DISCONNECT_ON_TOKEN_EXPIRY`) its token's expiry.

use std::sync::Arc;

use serde_json::Value;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::socket::DisconnectReason;

use super::expiry::ExpiryWatch;
use super::membership::Memberships;
use super::{JoinRequest, LiveState};
use crate::jwt::JwtError;

/// Connect middleware: a missing or invalid token refuses the connection, and only this
/// client's `connect_error` carries the reason (the Python service told every socket).
///
/// The socket's handlers are registered here rather than in the connect handler: socketioxide
/// sends the connect packet before it spawns the connect handler, so a desktop that emits
/// `join-conversation` as soon as it is connected could otherwise beat the registration.
pub(super) async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
    State(state): State<Arc<LiveState>>,
    State(expiry): State<Option<ExpiryWatch>>,
) -> Result<(), JwtError> {
    let token = auth
        .ok()
        .as_ref()
        .and_then(|auth| auth.get("token"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(JwtError::Missing)?;
    match state.jwt.verify(&token) {
        Ok(claims) => {
            // The Python service checked the token at connect only (`ui-connector/main.py:241-251`
            // at 9425334); the strict mode also ends the socket when it expires.
            if let Some(expiry) = expiry {
                expiry.watch(socket.id, claims.exp);
            }
            register_handlers(socket, &state);
            Ok(())
        }
        Err(e) => {
            tracing::info!(reason = %e, "socket refused");
            Err(e)
        }
    }
}

/// Everything happens in [`authenticate`]; socketioxide requires a connect handler.
pub(super) async fn on_connect(_: SocketRef) {}

fn register_handlers(socket: SocketRef, state: &LiveState) {
    let memberships = Arc::new(Memberships::default());
    state.metrics.socket_connected();
    state.memory.socket_opened();
    socket.on("join-conversation", {
        let memberships = memberships.clone();
        async move |socket: SocketRef,
                    TryData(argument): TryData<Value>,
                    ack: AckSender,
                    State(state): State<Arc<LiveState>>| {
            let request = match JoinRequest::parse(argument.ok()) {
                Ok(request) => request,
                Err(reason) => {
                    let _ = ack.send(&(false, reason));
                    return;
                }
            };
            memberships.join(&state, socket, request, ack).await;
        }
    });
    socket.on("leave-conversation", {
        let memberships = memberships.clone();
        async move |TryData(argument): TryData<Value>, ack: AckSender| match JoinRequest::parse(
            argument.ok(),
        ) {
            Ok(request) => {
                memberships.leave(&request.conversation);
                let _ = ack.send(&(true, request.conversation.as_str()));
            }
            Err(reason) => {
                let _ = ack.send(&(false, reason));
            }
        }
    });
    socket.on_disconnect(
        async move |socket: SocketRef,
                    reason: DisconnectReason,
                    State(state): State<Arc<LiveState>>| {
            memberships.release_all();
            state.upgraded.forget(&socket.id.to_string());
            state.metrics.socket_disconnected();
            state.memory.socket_closed();
            tracing::debug!(?reason, "socket disconnected");
        },
    );
}
