//! Every way a webhook call can fail, and the status CX gets for it.
//!
//! CX understands 400, 401, 403, 404, 500 and 503 (it raises `webhook.error` and the flow goes
//! on); nothing else is answered. 500 is kept for what should never happen: a bug, caught
//! rather than dropping the connection.

use std::time::Duration;

use agent_assist_core::bus::BusError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::Refusal;
use super::metrics::Outcome;
use super::request::MalformedRequest;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Not JSON, or not what CX sends: 400.
    #[error("{0}")]
    Malformed(#[from] MalformedRequest),
    /// No or bad credentials: 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// A genuine identity that is not this webhook's agent: 403.
    #[error("{0}")]
    Forbidden(String),
    /// A method the path does not serve: 404 (CX's error set has no 405).
    #[error("{0}")]
    NotFound(String),
    /// Redis failed or timed out: 503.
    #[error("conversation bus unavailable: {0}")]
    Unavailable(#[from] BusError),
    /// Google's keys could not be fetched to check an ID token: 503.
    #[error("{0}")]
    KeysUnavailable(String),
    /// No answer within the deadline (Redis slow, keys slow): 503, before CX gives up.
    #[error("no answer within {0:?}")]
    DeadlineExceeded(Duration),
    /// A bug: 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Refusal> for WebhookError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unauthenticated(reason) => WebhookError::Unauthenticated(reason),
            Refusal::Forbidden(reason) => WebhookError::Forbidden(reason),
            Refusal::Unavailable(reason) => WebhookError::KeysUnavailable(reason),
        }
    }
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
            WebhookError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            WebhookError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebhookError::NotFound(_) => StatusCode::NOT_FOUND,
            WebhookError::Unavailable(_)
            | WebhookError::KeysUnavailable(_)
            | WebhookError::DeadlineExceeded(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebhookError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            WebhookError::Malformed(_) => Outcome::Malformed,
            WebhookError::Unauthenticated(_) => Outcome::Unauthenticated,
            WebhookError::Forbidden(_) => Outcome::Forbidden,
            WebhookError::NotFound(_) => Outcome::NotFound,
            WebhookError::Unavailable(_)
            | WebhookError::KeysUnavailable(_)
            | WebhookError::DeadlineExceeded(_) => Outcome::Unavailable,
            WebhookError::Internal(_) => Outcome::Internal,
        }
    }

    /// What the caller is told. Refusals and malformed requests say why (the caller needs it
    /// to fix its configuration); infrastructure failures stay vague (details go to the log).
    fn public_message(&self) -> String {
        match self {
            WebhookError::Unavailable(_) | WebhookError::DeadlineExceeded(_) => {
                "conversation bus unavailable, retry later".to_owned()
            }
            WebhookError::KeysUnavailable(_) => {
                "cannot check the ID token now, retry later".to_owned()
            }
            WebhookError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.public_message() });
        (self.status(), Json(body)).into_response()
    }
}
