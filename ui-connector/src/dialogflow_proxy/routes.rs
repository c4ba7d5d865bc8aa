//! The Dialogflow methods desktops may call, in one table, and the one handler serving them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use axum::Router;

use super::error::error_response;
use super::target::{self, PathError};
use crate::app::AppState;
use crate::jwt::JwtError;

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

/// The proxy's routes; every path under `/<version>/projects/` reaches [`proxy`], which does its
/// own matching on the raw path.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/{version}/projects/{*rest}", any(proxy))
}

/// Checks a call in this order, answering the first failure with a JSON error and sending
/// nothing upstream: path segments (400), route table (404, 405), the desktop's JWT (401),
/// project allow-list (403), upstream URL (400), body size (413). Then forwards it.
async fn proxy(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let raw_path = parts.uri.path();
    let path = match target::parse(raw_path) {
        Ok(path) => path,
        Err(PathError::Invalid(reason)) => {
            return error_response(StatusCode::BAD_REQUEST, format!("invalid path: {reason}"))
        }
        Err(PathError::Unknown) => return not_found(),
    };

    match match_route(&parts.method, path.collection, path.has_tail) {
        RouteMatch::Allowed => {}
        RouteMatch::Unknown => return not_found(),
        RouteMatch::WrongMethod(allowed) => {
            let mut response = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed on this path", parts.method),
            );
            let list = allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(value) = HeaderValue::from_str(&list) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            return response;
        }
    }

    let verified = match parts.headers.get(header::AUTHORIZATION) {
        None => Err(JwtError::Missing),
        Some(value) => value
            .to_str()
            .map_err(|_| JwtError::Malformed)
            .and_then(|token| state.jwt.verify(token)),
    };
    let claims = match verified {
        Ok(claims) => claims,
        Err(e) => return error_response(StatusCode::UNAUTHORIZED, e.to_string()),
    };

    let proxy = &state.proxy;
    if !proxy.allows_project(path.project) {
        return error_response(
            StatusCode::FORBIDDEN,
            format!(
                "project {} is not one this connector proxies for",
                path.project
            ),
        );
    }

    let url = match proxy.upstream_url(&path, parts.uri.query()) {
        Ok(url) => url,
        Err(PathError::Invalid(reason)) => {
            return error_response(StatusCode::BAD_REQUEST, format!("invalid path: {reason}"))
        }
        Err(PathError::Unknown) => return not_found(),
    };

    let body = if parts.method == Method::GET || path.is_complete_call() {
        None
    } else {
        match proxy.read_body(&parts.headers, body).await {
            Ok(bytes) => Some(bytes),
            Err(response) => return response,
        }
    };

    let started = std::time::Instant::now();
    let response = proxy
        .forward(parts.method.clone(), url, &parts.headers, body)
        .await;
    state
        .metrics
        .proxy_request(response.status().as_u16(), started.elapsed().as_secs_f64());
    tracing::info!(
        method = %parts.method,
        path = raw_path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        user = %claims.gcp_agent_assist_user,
        "Dialogflow call proxied"
    );
    response
}

fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not a Dialogflow method this connector proxies",
    )
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
