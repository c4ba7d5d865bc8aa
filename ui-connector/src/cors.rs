//! CORS for every route, Socket.IO included: desktops are web pages on the platform's origin
//! (Salesforce, Genesys, Twilio...), calling the connector cross-origin.
//!
//! The answers are the Python service's (`ui-connector/main.py:35-36` at 9425334: Flask-Cors
//! for HTTP routes, python-engineio for `/socket.io/`, both with `CORS_ALLOWED_ORIGINS`):
//!
//! - an allowed origin (any origin with `*`) is echoed in `Access-Control-Allow-Origin`, never
//!   `*`, with `Vary: Origin`;
//! - on `/socket.io/` the answer also carries `Access-Control-Allow-Credentials: true`
//!   (python-engineio's `cors_credentials=True` default), so clients created with
//!   `withCredentials: true` connect; the HTTP routes never allow credentials (Flask-Cors's
//!   `supports_credentials=False` default), so a cookie-based proxy in front of the connector
//!   could not be used cross-origin through them;
//! - preflights allow the requested headers by name (`Authorization` cannot be covered by a
//!   `*`) and every method the connector serves.

use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};
use tower_http::cors::{AllowCredentials, AllowHeaders, AllowOrigin, CorsLayer};

use crate::config::CorsOrigins;

/// Where Socket.IO is served.
const SOCKET_IO_PATH: &str = "/socket.io";

/// `CORS_ALLOWED_ORIGINS`: any origin (`*`) or the listed ones.
pub fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let for_origin = origins.clone();
    let for_credentials = origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            for_origin.allows(origin)
        }))
        .allow_credentials(AllowCredentials::predicate(move |origin, parts: &Parts| {
            parts.uri.path().starts_with(SOCKET_IO_PATH) && for_credentials.allows(origin)
        }))
        // Flask-Cors's default list (its preflight answer), which covers every route here.
        .allow_methods([
            Method::DELETE,
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::PATCH,
            Method::POST,
            Method::PUT,
        ])
        .allow_headers(AllowHeaders::mirror_request())
}

impl CorsOrigins {
    /// Whether a request's `Origin` is allowed.
    fn allows(&self, origin: &HeaderValue) -> bool {
        match self {
            CorsOrigins::Any => true,
            CorsOrigins::List(list) => list.iter().any(|o| o.as_bytes() == origin.as_bytes()),
        }
    }
}
