//! Everything the proxy answers itself, as one error type.
//!
//! Shaped like Google API errors (`{"error": {"code", "message", "status"}}`), which the UI
//! modules already handle for Dialogflow's own errors, plus a top-level `message` as the Python
//! service's 401s had. Errors relayed from Dialogflow are never rewritten.

use std::time::Duration;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::credentials::CredentialsError;
use super::target::PathError;
use crate::jwt::JwtError;

/// Why a call was not forwarded, or what went wrong forwarding it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("invalid path: {0}")]
    InvalidPath(&'static str),
    #[error("not a Dialogflow method this connector proxies")]
    UnknownPath,
    #[error("{method} is not allowed on this path")]
    MethodNotAllowed {
        method: Method,
        allowed: &'static [Method],
    },
    #[error("{0}")]
    Unauthorized(#[from] JwtError),
    #[error("project {0} is not one this connector proxies for")]
    ProjectNotAllowed(String),
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("the request body could not be read")]
    BodyUnreadable,
    #[error("{}", match .0 {
        CredentialsError::Build(_) => "the connector has no usable Google credentials (see its logs)",
        CredentialsError::Token(_) => "the connector could not get a Google access token (see its logs)",
    })]
    NoCredentials(CredentialsError),
    #[error("the connector could not get a Google access token in time")]
    CredentialsTimedOut,
    #[error("cannot reach Dialogflow")]
    Unreachable,
    #[error("Dialogflow did not answer within {} s", .0.as_secs_f64())]
    TimedOut(Duration),
    #[error("invalid Dialogflow response")]
    InvalidResponse,
}

impl From<PathError> for ProxyError {
    fn from(error: PathError) -> Self {
        match error {
            PathError::Invalid(reason) => ProxyError::InvalidPath(reason),
            PathError::Unknown => ProxyError::UnknownPath,
        }
    }
}

impl ProxyError {
    fn status(&self) -> StatusCode {
        match self {
            ProxyError::InvalidPath(_) | ProxyError::BodyUnreadable => StatusCode::BAD_REQUEST,
            ProxyError::UnknownPath => StatusCode::NOT_FOUND,
            ProxyError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ProxyError::ProjectNotAllowed(_) => StatusCode::FORBIDDEN,
            ProxyError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::NoCredentials(_) | ProxyError::CredentialsTimedOut => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Unreachable | ProxyError::InvalidResponse => StatusCode::BAD_GATEWAY,
            ProxyError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.to_string();
        let body = json!({
            "error": {
                "code": status.as_u16(),
                "message": message,
                "status": google_status(status),
            },
            "message": message,
        });
        let mut response = (status, Json(body)).into_response();
        match &self {
            ProxyError::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ProxyError::MethodNotAllowed { allowed, .. } => {
                let list = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(value) = HeaderValue::from_str(&list) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
            }
            _ => {}
        }
        response
    }
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
