//! Every refusal on `/socket.io/` says why.
//!
//! socketioxide answers a malformed Engine.IO request with a bare 400 (an empty body), and
//! accepts a WebSocket handshake whatever its `Sec-WebSocket-Version`. This middleware, in front
//! of it, refuses what RFC 6455 section 4.2 says a server must refuse, with the reason:
//! a `transport=websocket` request that is not a WebSocket handshake (400), or one of another
//! protocol version (426 with `Sec-WebSocket-Version: 13`); and the Engine.IO version and
//! transport names it does not serve (400). Refusals socketioxide still makes itself (a
//! malformed polling payload, concurrent polling requests, a payload over the limit) get a short
//! reason added to their empty body. Its JSON refusals (`{"code":..,"message":..}`, for an
//! unknown session) are left as they are: Engine.IO clients read them.

use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// The WebSocket protocol version this server speaks (RFC 6455).
const WEBSOCKET_VERSION: &str = "13";

/// The middleware: checks `/socket.io/` requests, then explains empty refusals.
pub async fn refuse_with_reasons(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/socket.io") {
        return next.run(request).await;
    }
    if let Err(refusal) = check(&request) {
        return refusal.into_response();
    }
    let response = next.run(request).await;
    explain(response)
}

/// Why a request was refused before reaching Socket.IO.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    BadRequest(&'static str),
    /// RFC 6455 4.2.2: an unknown `Sec-WebSocket-Version` is answered 426 with the versions
    /// the server speaks.
    UnsupportedWebSocketVersion,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::BadRequest(reason) => {
                (StatusCode::BAD_REQUEST, format!("Bad Request: {reason}")).into_response()
            }
            Refusal::UnsupportedWebSocketVersion => (
                StatusCode::UPGRADE_REQUIRED,
                [(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static(WEBSOCKET_VERSION),
                )],
                "Upgrade Required: only WebSocket version 13 is supported",
            )
                .into_response(),
        }
    }
}

fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn check(request: &Request) -> Result<(), Refusal> {
    let query = request.uri().query().unwrap_or("");
    match query_value(query, "EIO") {
        Some("4") => {}
        Some(_) => {
            return Err(Refusal::BadRequest(
                "unsupported Engine.IO protocol version (EIO=4 is served)",
            ))
        }
        None => return Err(Refusal::BadRequest("the EIO query parameter is missing")),
    }
    match query_value(query, "transport") {
        Some("polling") => Ok(()),
        Some("websocket") => check_websocket_handshake(request.method(), request.headers()),
        Some(_) => Err(Refusal::BadRequest(
            "unknown transport (polling or websocket)",
        )),
        None => Err(Refusal::BadRequest(
            "the transport query parameter is missing",
        )),
    }
}

/// RFC 6455 section 4.2.1: what a WebSocket opening handshake must carry.
fn check_websocket_handshake(method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if method != Method::GET {
        return Err(Refusal::BadRequest("a WebSocket handshake must be a GET"));
    }
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err(Refusal::BadRequest(
            "transport=websocket needs a WebSocket handshake (Upgrade: websocket, Connection: Upgrade)",
        ));
    }
    let key_is_valid = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|key| {
            base64::engine::general_purpose::STANDARD
                .decode(key.as_bytes())
                .ok()
        })
        .is_some_and(|nonce| nonce.len() == 16);
    if !key_is_valid {
        return Err(Refusal::BadRequest(
            "Sec-WebSocket-Key must be a base64-encoded 16-byte nonce",
        ));
    }
    match headers.get(header::SEC_WEBSOCKET_VERSION) {
        Some(version) if version == WEBSOCKET_VERSION => Ok(()),
        _ => Err(Refusal::UnsupportedWebSocketVersion),
    }
}

/// Gives an empty 4xx from socketioxide a reason.
fn explain(response: Response) -> Response {
    let status = response.status();
    if !status.is_client_error() || response.body().size_hint().exact() != Some(0) {
        return response;
    }
    let reason = match status {
        StatusCode::BAD_REQUEST => {
            "Bad Request: malformed Engine.IO request (an unreadable packet or payload, or a second polling request while one is pending)"
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            "Payload Too Large: Engine.IO payloads are limited to 1,000,000 bytes"
        }
        _ => status.canonical_reason().unwrap_or("refused"),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::get(format!("/socket.io/?{query}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    const HANDSHAKE: [(&str, &str); 4] = [
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];

    #[test]
    fn engine_io_versions_and_transports() {
        assert_eq!(check(&request("EIO=4&transport=polling", &[])), Ok(()));
        assert!(check(&request("EIO=3&transport=polling", &[])).is_err());
        assert!(check(&request("transport=polling", &[])).is_err());
        assert!(check(&request("EIO=4&transport=carrier-pigeon", &[])).is_err());
        assert!(check(&request("EIO=4", &[])).is_err());
    }

    #[test]
    fn websocket_handshakes_per_rfc_6455() {
        assert_eq!(
            check(&request("EIO=4&transport=websocket", &HANDSHAKE)),
            Ok(())
        );
        assert!(matches!(
            check(&request("EIO=4&transport=websocket", &[])),
            Err(Refusal::BadRequest(_))
        ));
        let mut old = HANDSHAKE;
        old[3] = ("sec-websocket-version", "8");
        assert_eq!(
            check(&request("EIO=4&transport=websocket", &old)),
            Err(Refusal::UnsupportedWebSocketVersion)
        );
        let mut short_key = HANDSHAKE;
        short_key[2] = ("sec-websocket-key", "c2hvcnQ=");
        assert!(matches!(
            check(&request("EIO=4&transport=websocket", &short_key)),
            Err(Refusal::BadRequest(_))
        ));
    }
}
