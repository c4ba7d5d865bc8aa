//! The proxied call as an extractor: a request reaches the handler only if its raw path is safe,
//! names a route of the table, and uses a method that route takes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;

use super::error::ProxyError;
use super::routes::{match_route, RouteMatch};
use super::target;

/// A call whose path passed the checks (400 unsafe, 404 unknown, 405 wrong method).
#[derive(Debug)]
pub(crate) struct ProxiedCall {
    pub method: Method,
    /// The raw (still percent-encoded) path, forwarded unchanged.
    pub raw_path: String,
    pub query: Option<String>,
    /// The `projects/<p>` segment, for the allow-list.
    pub project: String,
    pub location: String,
    /// GET and `...:complete` calls are sent without a body.
    pub without_body: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for ProxiedCall {
    type Rejection = ProxyError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let path = target::parse(parts.uri.path())?;
        match match_route(&parts.method, path.collection, path.has_tail) {
            RouteMatch::Allowed => {}
            RouteMatch::Unknown => return Err(ProxyError::UnknownPath),
            RouteMatch::WrongMethod(allowed) => {
                return Err(ProxyError::MethodNotAllowed {
                    method: parts.method.clone(),
                    allowed,
                })
            }
        }
        Ok(Self {
            without_body: parts.method == Method::GET || path.is_complete_call(),
            method: parts.method.clone(),
            raw_path: path.raw.to_owned(),
            query: parts.uri.query().map(str::to_owned),
            project: path.project.to_owned(),
            location: path.location.to_owned(),
        })
    }
}
