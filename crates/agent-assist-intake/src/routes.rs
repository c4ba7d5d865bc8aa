//! The four push endpoints: one handler, parameterised by event type from
//! [`EventType::PUBSUB`] (the virtual agent's events come through the CX webhook instead).
//!
//! | answer | when |
//! |---|---|
//! | 204 | stored in the bus (or a redelivery of a stored message) |
//! | 400 `Bad Request: <reason>` | malformed: Pub/Sub retries, then dead-letters it |
//! | 413 | body over the configured limit |
//! | 503 | the bus is unavailable: Pub/Sub redelivers |
//!
//! With push authentication ([`PushAuth`]), a request without a valid token of the push account
//! is answered 401, 403 or 503 before it reaches the handler (see [`crate::push_auth`]).

use agent_assist_core::EventType;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::envelope;
use crate::intake::{Intake, IntakeError};
use crate::push_auth::{require_push_token, PushAuth};

impl IntoResponse for IntakeError {
    fn into_response(self) -> Response {
        match self {
            IntakeError::Malformed(reason) => {
                (StatusCode::BAD_REQUEST, format!("Bad Request: {reason}")).into_response()
            }
            IntakeError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable: conversation bus unreachable, retry later",
            )
                .into_response(),
        }
    }
}

/// `POST /<event type>` for each of the four types, bodies up to `max_body_bytes`; with
/// `auth`, only for requests carrying a valid push token (`None`: every request is trusted to
/// have passed the ingress).
pub fn push_routes(intake: Intake, max_body_bytes: usize, auth: Option<PushAuth>) -> Router {
    let mut router = Router::new();
    for event_type in EventType::PUBSUB {
        let mut endpoint = post(move |State(intake): State<Intake>, body: Bytes| {
            receive_push(intake, event_type, body)
        });
        if let Some(auth) = &auth {
            // A route layer: a request with another method still gets 405, unauthenticated.
            endpoint = endpoint.route_layer(from_fn_with_state(
                auth.for_endpoint(event_type),
                require_push_token,
            ));
        }
        router = router.route(&event_type.route(), endpoint);
    }
    router
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(intake)
}

async fn receive_push(
    intake: Intake,
    event_type: EventType,
    body: Bytes,
) -> Result<StatusCode, IntakeError> {
    let message = envelope::parse(&body).map_err(|e| intake.refuse(event_type, e))?;
    intake.accept(event_type, &message).await?;
    Ok(StatusCode::NO_CONTENT)
}
