//! The two webhook endpoints:
//!
//! | path | methods | answer |
//! |---|---|---|
//! | `/dialogflow-cx-webhook` | POST | a `WebhookResponse` |
//! | `/dialogflow-cx-webhook/flexible` | GET, POST, PUT, PATCH | a JSON object |
//!
//! Each call is checked (credentials first, before the body is read), read, delivered, and
//! answered within the deadline, or answered 503 when the deadline passes. Another method on
//! these paths is 404, as an unknown path: CX's error set has no 405.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, post, MethodFilter};
use axum::Router;
use chrono::Utc;
use futures::FutureExt;

use super::context;
use super::delivery::Call;
use super::error::WebhookError;
use super::idempotency::CallId;
use super::metrics::{Outcome, WebhookKind};
use super::request::{FlexibleRequest, MalformedRequest, StandardRequest};
use super::resolution::Routing;
use super::response::Answer;
use super::CxWebhook;

/// The standard webhook.
pub const STANDARD_PATH: &str = "/dialogflow-cx-webhook";
/// The flexible webhook.
pub const FLEXIBLE_PATH: &str = "/dialogflow-cx-webhook/flexible";

/// Largest request body read. CX's requests are a few KiB; session parameters are bounded by
/// CX well below this.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// `/dialogflow-cx-webhook` and `/dialogflow-cx-webhook/flexible`.
pub fn cx_webhook_routes(webhook: CxWebhook) -> Router {
    let flexible_methods = MethodFilter::GET
        .or(MethodFilter::POST)
        .or(MethodFilter::PUT)
        .or(MethodFilter::PATCH);
    Router::new()
        .route(
            STANDARD_PATH,
            post(
                |State(webhook): State<CxWebhook>, request: Request| async move {
                    webhook.answer(WebhookKind::Standard, request).await
                },
            )
            .fallback(|State(webhook): State<CxWebhook>| async move {
                webhook.wrong_method(WebhookKind::Standard, "POST")
            }),
        )
        .route(
            FLEXIBLE_PATH,
            on(
                flexible_methods,
                |State(webhook): State<CxWebhook>, request: Request| async move {
                    webhook.answer(WebhookKind::Flexible, request).await
                },
            )
            .fallback(|State(webhook): State<CxWebhook>| async move {
                webhook.wrong_method(WebhookKind::Flexible, "GET, POST, PUT or PATCH")
            }),
        )
        .with_state(webhook)
}

impl CxWebhook {
    /// Handles one call within the deadline; a panic is answered 500, not a dropped connection.
    async fn answer(&self, kind: WebhookKind, request: Request) -> Response {
        let started = Instant::now();
        let deadline = self.inner.deadline;
        let handled = AssertUnwindSafe(self.handle(kind, request)).catch_unwind();
        let result = match tokio::time::timeout(deadline, handled).await {
            Err(_) => Err(WebhookError::DeadlineExceeded(deadline)),
            Ok(Err(_panic)) => Err(WebhookError::Internal("the handler panicked".into())),
            Ok(Ok(result)) => result,
        };
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok((answer, outcome)) => {
                self.inner.metrics.call(kind, outcome, seconds);
                tracing::info!(
                    webhook = kind.as_str(),
                    outcome = outcome.as_str(),
                    conversation = answer.conversation.as_deref().unwrap_or(""),
                    "CX webhook call"
                );
                let body = match kind {
                    WebhookKind::Standard => answer.standard_body(),
                    WebhookKind::Flexible => answer.flexible_body(),
                };
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    Body::from(body),
                )
                    .into_response()
            }
            Err(error) => {
                self.inner.metrics.call(kind, error.outcome(), seconds);
                if error.status() == StatusCode::INTERNAL_SERVER_ERROR {
                    tracing::error!(webhook = kind.as_str(), %error, "CX webhook call failed");
                } else {
                    tracing::warn!(
                        webhook = kind.as_str(),
                        status = error.status().as_u16(),
                        reason = %error,
                        "CX webhook call refused"
                    );
                }
                error.into_response()
            }
        }
    }

    async fn handle(
        &self,
        kind: WebhookKind,
        request: Request,
    ) -> Result<(Answer, Outcome), WebhookError> {
        let (parts, body) = request.into_parts();
        self.inner
            .auth
            .check(parts.headers.get(header::AUTHORIZATION))
            .await?;
        let body = axum::body::to_bytes(body, MAX_REQUEST_BYTES)
            .await
            .map_err(|_| {
                MalformedRequest(format!(
                    "the body could not be read or is larger than {MAX_REQUEST_BYTES} bytes"
                ))
            })?;
        let called_at = Utc::now();
        let internal = |e: serde_json::Error| WebhookError::Internal(format!("context: {e}"));
        let call = match kind {
            WebhookKind::Standard => {
                let request = StandardRequest::parse(&body)?;
                Call {
                    id: CallId::standard(&request),
                    routing: Routing::of_standard(&request)?,
                    context: context::of_standard(&request).map_err(internal)?,
                    called_at,
                }
            }
            WebhookKind::Flexible => {
                let request = FlexibleRequest::parse(parts.method.clone(), &parts.uri, &body)?;
                Call {
                    id: CallId::flexible(&request),
                    routing: Routing::of_flexible(&request)?,
                    context: context::of_flexible(&request).map_err(internal)?,
                    called_at,
                }
            }
        };
        self.inner.delivery.deliver(call).await
    }

    fn wrong_method(&self, kind: WebhookKind, allowed: &str) -> Response {
        self.inner.metrics.count(kind, Outcome::NotFound);
        WebhookError::NotFound(format!("this webhook takes {allowed}")).into_response()
    }
}
