//! `/conversation-name`: lets a desktop that only knows its own call id (the integration key)
//! find the Dialogflow conversation that another component created for it.
//!
//! Routes, status codes and bodies are the Python service's (`ui-connector/main.py:186-238` at
//! 9425334), with the JWT in `Authorization`:
//!
//! | request | answer |
//! |---|---|
//! | `POST {"conversationIntegrationKey", "conversationName"}` | 200 `{"<key>": "<name>"}`, both as posted |
//! | `GET ?conversationIntegrationKey=` | 200 `{"conversationName": "<name>"}`, `""` for an unknown key (desktops poll until a name appears) |
//! | `DELETE ?conversationIntegrationKey=` | 200 `Success`; 404 `Not found` for an unknown key |
//! | a key or name missing or empty (the parameter too) | 400 `Bad request` |
//! | a key or name Python would have stored but is not one | 400 `Bad request: <reason>` |
//!
//! Differences, on purpose: a missing `GET` parameter is 400 (Python looked up the key `"None"`
//! and answered `""`), an empty `DELETE` parameter is 400 (Python: 404); a key is at most
//! [`MAX_KEY_BYTES`](integration_key::MAX_KEY_BYTES) without control characters and a name must be a conversation name
//! ([`ConversationName::parse`]) where Python stored anything; nothing is written for a refused
//! request (Python wrote before checking); entries expire after `INTEGRATION_KEY_TTL_SECONDS`
//! (Python kept them forever).
//!
//! Storage is shared with the Python connector (one copy, the bare SHA-256 digest as the Redis
//! key; see [`agent_assist_core::integration_key`], where the CX webhook reads it too). Mapping
//! a key publishes the Dialogflow CX virtual agent's context waiting for it, if any.

use std::sync::Arc;
use std::time::Duration;

use agent_assist_core::integration_key::{self, IntegrationKeys, InvalidIntegrationKey};
use agent_assist_core::{ConversationBus, ConversationName};
use agent_assist_intake::cx_webhook::PendingContexts;
use axum::extract::{FromRef, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::jwt::{Authorized, JwtKeys};

/// What `/conversation-name` needs.
#[derive(Clone, FromRef)]
pub struct IntegrationKeysState {
    #[from_ref(skip)]
    pub keys: IntegrationKeys,
    /// `INTEGRATION_KEY_TTL_SECONDS`.
    #[from_ref(skip)]
    pub ttl: Duration,
    pub jwt: Arc<JwtKeys>,
    /// CX virtual agents' contexts waiting for their key to be mapped.
    #[from_ref(skip)]
    pub pending_contexts: PendingContexts,
}

impl IntegrationKeysState {
    pub fn new(
        bus: &ConversationBus,
        ttl: Duration,
        jwt: Arc<JwtKeys>,
        pending_contexts: PendingContexts,
    ) -> Self {
        Self {
            keys: IntegrationKeys::new(bus),
            ttl,
            jwt,
            pending_contexts,
        }
    }
}

pub fn routes(state: IntegrationKeysState) -> Router {
    Router::new()
        .route("/conversation-name", get(lookup).post(store).delete(remove))
        .with_state(state)
}

#[derive(Deserialize)]
struct KeyQuery {
    #[serde(rename = "conversationIntegrationKey")]
    key: Option<String>,
}

/// What can go wrong, with the Python service's bodies.
#[derive(Debug)]
enum KeyError {
    /// `Bad request`, as Python answers a missing or empty key or name.
    BadRequest,
    /// `Bad request: <reason>`, for what Python would have stored anyway.
    Invalid(String),
    NotFound,
    Unavailable,
}

impl IntoResponse for KeyError {
    fn into_response(self) -> Response {
        match self {
            KeyError::BadRequest => (StatusCode::BAD_REQUEST, "Bad request").into_response(),
            KeyError::Invalid(reason) => {
                (StatusCode::BAD_REQUEST, format!("Bad request: {reason}")).into_response()
            }
            KeyError::NotFound => (StatusCode::NOT_FOUND, "Not found").into_response(),
            KeyError::Unavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable").into_response()
            }
        }
    }
}

/// A non-empty integration key of at most [`MAX_KEY_BYTES`](integration_key::MAX_KEY_BYTES),
/// without control characters.
fn integration_key(value: Option<&Value>) -> Result<&str, KeyError> {
    let key = match value {
        None | Some(Value::Null) => return Err(KeyError::BadRequest),
        Some(Value::String(key)) if key.is_empty() => return Err(KeyError::BadRequest),
        Some(Value::String(key)) => key,
        Some(_) => {
            return Err(KeyError::Invalid(
                "conversationIntegrationKey must be a string".into(),
            ))
        }
    };
    checked_key(key)
}

fn checked_key(key: &str) -> Result<&str, KeyError> {
    integration_key::check(key).map_err(|e| match e {
        InvalidIntegrationKey::Empty => KeyError::BadRequest,
        other => KeyError::Invalid(format!("conversationIntegrationKey: {other}")),
    })
}

/// A non-empty conversation name ([`ConversationName::parse`]'s shape), kept as posted.
fn conversation_name(value: Option<&Value>) -> Result<&str, KeyError> {
    let name = match value {
        None | Some(Value::Null) => return Err(KeyError::BadRequest),
        Some(Value::String(name)) if name.is_empty() => return Err(KeyError::BadRequest),
        Some(Value::String(name)) => name,
        Some(_) => {
            return Err(KeyError::Invalid(
                "conversationName must be a string".into(),
            ))
        }
    };
    ConversationName::parse(name)
        .map_err(|e| KeyError::Invalid(format!("conversationName: {e}")))?;
    Ok(name)
}

/// The query parameter: missing or empty is `Bad request`.
fn queried_key(query: &KeyQuery) -> Result<&str, KeyError> {
    match query.key.as_deref() {
        None | Some("") => Err(KeyError::BadRequest),
        Some(key) => checked_key(key),
    }
}

fn unavailable(e: agent_assist_core::BusError) -> KeyError {
    tracing::warn!(error = %e, "integration key store unavailable");
    KeyError::Unavailable
}

async fn store(
    _: Authorized,
    State(state): State<IntegrationKeysState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, KeyError> {
    let request: Map<String, Value> =
        serde_json::from_slice(&body).map_err(|_| KeyError::BadRequest)?;
    let key = integration_key(request.get("conversationIntegrationKey"))?;
    let name = conversation_name(request.get("conversationName"))?;
    state
        .keys
        .put(key, name, state.ttl)
        .await
        .map_err(unavailable)?;
    // After the mapping is stored, so a context kept meanwhile is seen here or by its webhook.
    state
        .pending_contexts
        .publish(key, name)
        .await
        .map_err(unavailable)?;
    let mut answer = Map::new();
    answer.insert(key.to_owned(), Value::from(name));
    Ok(Json(Value::Object(answer)))
}

async fn lookup(
    _: Authorized,
    State(state): State<IntegrationKeysState>,
    Query(query): Query<KeyQuery>,
) -> Result<Json<Value>, KeyError> {
    let name = state
        .keys
        .conversation_name(queried_key(&query)?)
        .await
        .map_err(unavailable)?;
    Ok(Json(
        json!({ "conversationName": name.unwrap_or_default() }),
    ))
}

async fn remove(
    _: Authorized,
    State(state): State<IntegrationKeysState>,
    Query(query): Query<KeyQuery>,
) -> Result<&'static str, KeyError> {
    let existed = state
        .keys
        .delete(queried_key(&query)?)
        .await
        .map_err(unavailable)?;
    match existed {
        true => Ok("Success"),
        false => Err(KeyError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest Python stores `+15551234` under (observed with `redis-cli` against the
    /// Python connector, `main.py:195,199` at 9425334).
    #[test]
    fn storage_key_is_pythons_digest() {
        assert_eq!(
            integration_key::storage_key("+15551234"),
            "905a43770135d0e3915dc6e53354c7f71b9619a37adef11e55e6876dd5f2501e"
        );
    }

    #[test]
    fn keys_and_names_are_bounded_and_validated() {
        let key = |v: Value| integration_key(Some(&v)).map(str::to_owned);
        assert_eq!(key(json!("call-42")).unwrap(), "call-42");
        assert_eq!(
            key(json!("x".repeat(integration_key::MAX_KEY_BYTES)))
                .unwrap()
                .len(),
            integration_key::MAX_KEY_BYTES
        );
        assert!(matches!(key(json!("")), Err(KeyError::BadRequest)));
        assert!(matches!(integration_key(None), Err(KeyError::BadRequest)));
        for bad in [
            json!("x".repeat(integration_key::MAX_KEY_BYTES + 1)),
            json!("a\nb"),
            json!("\u{7f}"),
            json!(5),
        ] {
            assert!(
                matches!(key(bad.clone()), Err(KeyError::Invalid(_))),
                "{bad}"
            );
        }
        let name = |v: Value| conversation_name(Some(&v)).map(str::to_owned);
        let with_location = "projects/p/locations/global/conversations/c1";
        assert_eq!(
            name(json!(with_location)).unwrap(),
            with_location,
            "kept as posted"
        );
        assert!(matches!(name(json!("")), Err(KeyError::BadRequest)));
        for bad in [json!("has space"), json!(5), json!("x".repeat(600))] {
            assert!(
                matches!(name(bad.clone()), Err(KeyError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
