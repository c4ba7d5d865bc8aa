//! CORS for every route, Socket.IO included: desktops are web pages on the platform's origin
//! (Salesforce, Genesys, Twilio...), calling the connector cross-origin.

use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::CorsOrigins;

/// `CORS_ALLOWED_ORIGINS`: any origin (`*`) or the listed ones.
pub fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods(tower_http::cors::Any)
        .allow_headers(tower_http::cors::Any);
    match origins {
        CorsOrigins::Any => layer.allow_origin(AllowOrigin::any()),
        CorsOrigins::List(list) => layer.allow_origin(AllowOrigin::list(
            list.iter().filter_map(|o| o.parse().ok()),
        )),
    }
}
