//! `/conversation-name`: lets a desktop that only knows its own call id (the integration key)
//! find the Dialogflow conversation that another component created for it.
//!
//! Same routes, status codes and bodies as the Python service: `POST` with
//! `{"conversationIntegrationKey", "conversationName"}`, `GET` and `DELETE` with
//! `?conversationIntegrationKey=`; 200 with `{"conversationName": ...}`, 400 `Bad request`,
//! 404 `Not found`, and 401 without a valid token. Keys are stored as their SHA-256 hex digest
//! ([`agent_assist_core::integration_key`], where the CX webhook reads them too).
//! Unlike the Python service, entries expire (`INTEGRATION_KEY_TTL_SECONDS`, default 24 h).
//! Mapping a key publishes the Dialogflow CX virtual agent's context waiting for it, if any.

use std::sync::Arc;
use std::time::Duration;

use agent_assist_core::integration_key::storage_key;
use agent_assist_core::KeyValueStore;
use agent_assist_intake::cx_webhook::PendingContexts;
use axum::extract::{FromRef, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::jwt::{Authorized, JwtKeys};

/// What `/conversation-name` needs.
#[derive(Clone, FromRef)]
pub struct IntegrationKeysState {
    pub keys: KeyValueStore,
    /// `INTEGRATION_KEY_TTL_SECONDS`.
    pub ttl: Duration,
    pub jwt: Arc<JwtKeys>,
    /// Virtual agent contexts waiting for their key to be mapped.
    pub pending_contexts: PendingContexts,
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

#[derive(Deserialize)]
struct StoreRequest {
    #[serde(rename = "conversationIntegrationKey")]
    key: Option<String>,
    #[serde(rename = "conversationName")]
    name: Option<String>,
}

/// What can go wrong, with the Python service's bodies.
enum KeyError {
    BadRequest,
    NotFound,
    Unavailable,
}

impl IntoResponse for KeyError {
    fn into_response(self) -> Response {
        match self {
            KeyError::BadRequest => (StatusCode::BAD_REQUEST, "Bad request").into_response(),
            KeyError::NotFound => (StatusCode::NOT_FOUND, "Not found").into_response(),
            KeyError::Unavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable").into_response()
            }
        }
    }
}

fn non_empty(value: Option<String>) -> Result<String, KeyError> {
    value.filter(|v| !v.is_empty()).ok_or(KeyError::BadRequest)
}

fn unavailable(e: agent_assist_core::BusError) -> KeyError {
    tracing::warn!(error = %e, "integration key store unavailable");
    KeyError::Unavailable
}

async fn store(
    _: Authorized,
    State(state): State<IntegrationKeysState>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, KeyError> {
    let request: StoreRequest = serde_json::from_slice(&body).map_err(|_| KeyError::BadRequest)?;
    let key = non_empty(request.key)?;
    let name = non_empty(request.name)?;
    state
        .keys
        .put(&storage_key(&key), &name, state.ttl)
        .await
        .map_err(unavailable)?;
    // After the mapping is stored, so a context kept meanwhile is seen here or by its webhook.
    state
        .pending_contexts
        .publish(&key, &name)
        .await
        .map_err(unavailable)?;
    Ok(Json(serde_json::json!({ "conversationName": name })))
}

async fn lookup(
    _: Authorized,
    State(state): State<IntegrationKeysState>,
    Query(query): Query<KeyQuery>,
) -> Result<Json<serde_json::Value>, KeyError> {
    let key = non_empty(query.key)?;
    let name = state
        .keys
        .get(&storage_key(&key))
        .await
        .map_err(unavailable)?
        .ok_or(KeyError::NotFound)?;
    Ok(Json(serde_json::json!({ "conversationName": name })))
}

async fn remove(
    _: Authorized,
    State(state): State<IntegrationKeysState>,
    Query(query): Query<KeyQuery>,
) -> Result<Json<serde_json::Value>, KeyError> {
    let key = non_empty(query.key)?;
    let storage_key = storage_key(&key);
    let name = state
        .keys
        .get(&storage_key)
        .await
        .map_err(unavailable)?
        .ok_or(KeyError::NotFound)?;
    state.keys.delete(&storage_key).await.map_err(unavailable)?;
    Ok(Json(serde_json::json!({ "conversationName": name })))
}
