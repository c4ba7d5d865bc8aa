//! Readiness, answered the same way by both services: `GET /ready` is 200 when the bus answers
//! and 503 with the reason when it does not, so Cloud Run and operators see a Redis outage
//! without it being mistaken for a dead process (`GET /status` stays 200).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::ConversationBus;

pub async fn readiness(bus: &ConversationBus) -> Response {
    match bus.ping().await {
        Ok(()) => Json(serde_json::json!({"ready": true, "bus": bus.kind()})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"ready": false, "bus": bus.kind(), "error": e.to_string()})),
        )
            .into_response(),
    }
}
