//! The proxy's own error responses.
//!
//! Shaped like Google API errors (`{"error": {"code", "message", "status"}}`), which the UI
//! modules already handle for Dialogflow's own errors, plus a top-level `message` as the Python
//! service's 401s had. Errors relayed from Dialogflow are never rewritten.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A JSON error response.
pub(crate) fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    let body = json!({
        "error": {
            "code": status.as_u16(),
            "message": message,
            "status": google_status(status),
        },
        "message": message,
    });
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The canonical Google error status closest to `status`.
fn google_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => "INVALID_ARGUMENT",
        StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
        StatusCode::FORBIDDEN => "PERMISSION_DENIED",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "UNIMPLEMENTED",
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => "UNAVAILABLE",
        StatusCode::GATEWAY_TIMEOUT => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}
