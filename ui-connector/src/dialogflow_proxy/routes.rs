//! The Dialogflow methods desktops may call, in one table, and the one handler serving them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;

use super::call::ProxiedCall;
use super::error::ProxyError;
use super::DialogflowProxy;
use crate::jwt::{Authorized, JwtKeys, Unauthorized};
use crate::metrics::ConnectorMetrics;

/// One row of the route table: `/<version>/projects/<p>/locations/<l>/<collection>[/<tail>]`.
#[derive(Debug)]
pub(crate) struct Route {
    /// The segment after the location.
    pub collection: &'static str,
    /// Whether one or more segments follow it (`<tail>`), or none.
    pub tail: bool,
    pub methods: &'static [Method],
}

/// Every proxied Dialogflow method (as the Python service served them). Anything else under
/// `/<version>/projects/` is a 404; a known path with another method is a 405.
pub(crate) const ROUTES: &[Route] = &[
    // projects.locations.conversations.create
    Route {
        collection: "conversations",
        tail: false,
        methods: &[Method::POST],
    },
    // projects.locations.suggestions.searchKnowledge
    Route {
        collection: "suggestions:searchKnowledge",
        tail: false,
        methods: &[Method::POST],
    },
    // projects.locations.statelessSuggestion.generate
    Route {
        collection: "statelessSuggestion:generate",
        tail: false,
        methods: &[Method::POST],
    },
    // GET: conversations.get, messages.list, participants.get/list;
    // POST: conversations.complete (sent with an empty body), messages.batchCreate,
    //   participants.create/analyzeContent, participants.suggestions.*...;
    // PATCH: participants.patch.
    Route {
        collection: "conversations",
        tail: true,
        methods: &[Method::GET, Method::POST, Method::PATCH],
    },
    // projects.locations.answerRecords.patch
    Route {
        collection: "answerRecords",
        tail: true,
        methods: &[Method::PATCH],
    },
    // projects.locations.conversationProfiles.get
    Route {
        collection: "conversationProfiles",
        tail: true,
        methods: &[Method::GET],
    },
    // projects.locations.conversationModels.get
    Route {
        collection: "conversationModels",
        tail: true,
        methods: &[Method::GET],
    },
    // projects.locations.generators.get
    Route {
        collection: "generators",
        tail: true,
        methods: &[Method::GET],
    },
];

/// What the table says about a call.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RouteMatch {
    Allowed,
    /// A known path, with the methods it does take.
    WrongMethod(&'static [Method]),
    Unknown,
}

pub(crate) fn match_route(method: &Method, collection: &str, tail: bool) -> RouteMatch {
    match ROUTES
        .iter()
        .find(|r| r.collection == collection && r.tail == tail)
    {
        None => RouteMatch::Unknown,
        Some(route) if route.methods.contains(method) => RouteMatch::Allowed,
        Some(route) => RouteMatch::WrongMethod(route.methods),
    }
}

/// What the proxy needs.
#[derive(Clone, FromRef)]
pub struct ProxyState {
    pub proxy: Arc<DialogflowProxy>,
    pub jwt: Arc<JwtKeys>,
    pub metrics: Arc<ConnectorMetrics>,
}

/// The proxy's routes; every path under `/<version>/projects/` reaches [`proxy`], which does its
/// own matching on the raw path ([`ProxiedCall`]).
pub fn routes(state: ProxyState) -> Router {
    Router::new()
        .route("/{version}/projects/{*rest}", any(proxy))
        .with_state(state)
}

/// Checks a call in this order, answering the first failure with a JSON error and sending
/// nothing upstream: path segments (400), route table (404, 405), the desktop's JWT (401),
/// project allow-list (403), upstream URL (400), body size (413). Then forwards it.
async fn proxy(
    call: ProxiedCall,
    authorized: Result<Authorized, Unauthorized>,
    State(state): State<ProxyState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ProxyError> {
    let Authorized(claims) = authorized.map_err(|Unauthorized(e)| ProxyError::from(e))?;
    let url = state.proxy.check(&call)?;
    let body = match call.without_body {
        true => None,
        false => Some(state.proxy.read_body(&headers, body).await?),
    };
    let started = std::time::Instant::now();
    let response = state
        .proxy
        .forward(call.method.clone(), url, &headers, body)
        .await
        .into_response();
    state
        .metrics
        .proxy_request(response.status().as_u16(), started.elapsed().as_secs_f64());
    tracing::info!(
        method = %call.method,
        path = call.raw_path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        user = %claims.gcp_agent_assist_user,
        "Dialogflow call proxied"
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_decides() {
        use RouteMatch::*;
        assert_eq!(match_route(&Method::POST, "conversations", false), Allowed);
        assert_eq!(
            match_route(&Method::GET, "conversations", false),
            WrongMethod(&[Method::POST])
        );
        assert_eq!(match_route(&Method::PATCH, "conversations", true), Allowed);
        assert_eq!(
            match_route(&Method::DELETE, "conversations", true),
            WrongMethod(&[Method::GET, Method::POST, Method::PATCH])
        );
        assert_eq!(match_route(&Method::GET, "answerRecords", false), Unknown);
        assert_eq!(match_route(&Method::GET, "generators", true), Allowed);
        assert_eq!(match_route(&Method::GET, "agents", true), Unknown);
        assert_eq!(
            match_route(&Method::POST, "suggestions:searchKnowledge", true),
            Unknown
        );
    }
}
