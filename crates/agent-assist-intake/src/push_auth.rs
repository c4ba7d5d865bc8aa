//! Pub/Sub's authenticated push, checked in front of the push endpoints: only requests that
//! carry a Google ID token of the configured push account, minted for the configured audience,
//! reach the handler.
//!
//! The check is a route layer on each push endpoint (see [`crate::routes::push_routes`]), so the
//! handler stays "parse, call the domain, map the result", and `/status`, `/ready` and
//! `/metrics` are never behind it. It runs before the body is read: a refused request costs a
//! header check, not a 16 MiB buffer.
//!
//! | answer | when | Pub/Sub then |
//! |---|---|---|
//! | 401 `Unauthorized: <detail> (<reason>)`, `WWW-Authenticate: Bearer` | no token, or not a valid Google ID token (bad signature, `alg`, issuer, expired...) | retries, then dead-letters |
//! | 403 `Forbidden: <detail> (<reason>)` | a valid Google token for another audience or account (a misconfigured subscription) | retries, then dead-letters |
//! | 503 `Service Unavailable: <detail> (keys_unavailable)` | Google's keys cannot be fetched and no cached key matches | retries (never a 401: good events must not be dead-lettered for our outage) |
//!
//! Every refusal is logged (WARN, with the reason) and counted in
//! `interceptor_push_auth_refusals_total{type, reason}`; nothing is published. What a token must
//! be, the clock skew and the key cache are [`agent_assist_core::google_id_token`]'s.

use agent_assist_core::google_id_token::{IdTokenError, IdTokenVerifier, RejectionClass};
use agent_assist_core::EventType;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusalLabels {
    r#type: &'static str,
    reason: &'static str,
}

/// The push authentication of one service: a verifier for the push account and audience, and
/// the refusal counter. Cheap to clone (clones share the key cache and the counter).
#[derive(Clone)]
pub struct PushAuth {
    verifier: IdTokenVerifier,
    refusals: Family<RefusalLabels, Counter>,
}

impl PushAuth {
    /// Checks pushes with `verifier` (its expectation names the push account and audience) and
    /// registers `interceptor_push_auth_refusals` in `registry`.
    pub fn new(verifier: IdTokenVerifier, registry: &mut Registry) -> Self {
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "interceptor_push_auth_refusals",
            "Pushes refused by push authentication (401, 403, 503), by event type and reason",
            refusals.clone(),
        );
        Self { verifier, refusals }
    }

    pub fn verifier(&self) -> &IdTokenVerifier {
        &self.verifier
    }

    /// Refusals of pushes to `event_type`'s endpoint for `reason` (a reason label such as
    /// `expired`, see [`IdTokenError::reason_label`]), for tests.
    pub fn refusals(&self, event_type: EventType, reason: &'static str) -> u64 {
        self.refusals
            .get_or_create(&RefusalLabels {
                r#type: event_type.as_str(),
                reason,
            })
            .get()
    }

    /// The token check of one endpoint, as route-layer state.
    pub(crate) fn for_endpoint(&self, event_type: EventType) -> EndpointAuth {
        EndpointAuth {
            auth: self.clone(),
            event_type,
        }
    }

    fn refuse(&self, event_type: EventType, error: &IdTokenError) -> Response {
        self.refusals
            .get_or_create(&RefusalLabels {
                r#type: event_type.as_str(),
                reason: error.reason_label(),
            })
            .inc();
        tracing::warn!(
            %event_type,
            status = error.status().as_u16(),
            reason = error.reason_label(),
            detail = error.detail(),
            "push refused by push authentication"
        );
        refusal_response(error)
    }
}

#[derive(Clone)]
pub(crate) struct EndpointAuth {
    auth: PushAuth,
    event_type: EventType,
}

/// The route layer: the request goes on to the handler only with a verified token.
pub(crate) async fn require_push_token(
    State(endpoint): State<EndpointAuth>,
    request: Request,
    next: Next,
) -> Response {
    let verified = endpoint
        .auth
        .verifier
        .verify(request.headers().get(AUTHORIZATION))
        .await;
    match verified {
        Ok(_) => next.run(request).await,
        Err(error) => endpoint.auth.refuse(endpoint.event_type, &error),
    }
}

fn refusal_response(error: &IdTokenError) -> Response {
    let status = error.status();
    let body = format!(
        "{}: {} ({})",
        status.canonical_reason().unwrap_or("Refused"),
        error.detail(),
        error.reason_label()
    );
    let mut response = (status, body).into_response();
    if error.class() == RejectionClass::Unauthenticated {
        // RFC 6750: no credentials get the bare challenge; bad ones say the token is invalid.
        let challenge = if error.reason_label() == "missing_authorization" {
            "Bearer"
        } else {
            "Bearer error=\"invalid_token\""
        };
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    response
}
