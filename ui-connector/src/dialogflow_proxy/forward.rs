//! Sending a checked call to Dialogflow and relaying the answer as it streams in.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, Method};
use axum::response::Response;
use futures::TryStreamExt;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use reqwest::Url;
use tokio::time::Instant;

use super::call::ProxiedCall;
use super::config::ProxyConfig;
use super::credentials::GoogleCredentials;
use super::error::ProxyError;
use super::target::Endpoint;

/// Request headers passed on to Dialogflow; everything else (the desktop's `Authorization`,
/// `Cookie`, `Origin`, `x-goog-*` such as `x-goog-user-project`, which would bill another
/// project) stays behind. `Authorization` (and `x-goog-user-project` when a quota project is
/// configured) come from the connector's credentials instead.
const FORWARDED_REQUEST_HEADERS: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::ACCEPT,
    header::ACCEPT_ENCODING,
    header::ACCEPT_LANGUAGE,
];

/// Headers that describe one connection, never passed on in either direction (RFC 9110 7.6.1),
/// together with any header a `Connection` header names.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Response headers about Google's own connection that would mislead a browser talking to the
/// connector (`alt-svc` advertises HTTP/3 on Google's front end, not ours).
const DROPPED_RESPONSE_HEADERS: [&str; 1] = ["alt-svc"];

/// The proxy: how to reach Dialogflow, and as whom.
pub struct DialogflowProxy {
    endpoint: Endpoint,
    config: ProxyConfig,
    client: reqwest::Client,
    credentials: GoogleCredentials,
}

impl std::fmt::Debug for DialogflowProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialogflowProxy")
            .field("endpoint", &self.endpoint)
            .field("config", &self.config)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl DialogflowProxy {
    /// Checks the settings and builds the HTTP client. Google credentials are built on the
    /// first proxied call (see [`super::credentials`]), so this never needs them.
    pub fn new(config: &ProxyConfig) -> anyhow::Result<Self> {
        let endpoint = Endpoint::parse(config.api_endpoint.as_deref())
            .map_err(|e| anyhow::anyhow!("invalid Dialogflow endpoint: {e}"))?;
        if config.timeout.is_zero() {
            anyhow::bail!("the Dialogflow timeout must not be zero");
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!(
                "agent-assist-ui-connector/",
                env!("CARGO_PKG_VERSION")
            ))
            // Relay redirects rather than follow them anywhere with the connector's token.
            .redirect(reqwest::redirect::Policy::none())
            // Compressed bodies pass through as they are, with their `content-encoding`.
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .no_zstd()
            .connect_timeout(config.timeout)
            .read_timeout(config.timeout)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the Dialogflow HTTP client: {e}"))?;
        Ok(Self {
            endpoint,
            config: config.clone(),
            client,
            credentials: GoogleCredentials::new(config.credentials_file.clone()),
        })
    }

    /// The checks that need the proxy's settings: the project allow-list (403), then the
    /// upstream URL it would go to (400). Returns that URL.
    pub(crate) fn check(&self, call: &ProxiedCall) -> Result<Url, ProxyError> {
        if !self.config.allows_project(&call.project) {
            return Err(ProxyError::ProjectNotAllowed(call.project.clone()));
        }
        Ok(self
            .endpoint
            .url(&call.raw_path, &call.location, call.query.as_deref())?)
    }

    /// The request body, at most `max_request_bytes` of it (413 beyond, 400 if the desktop
    /// stopped sending).
    pub(crate) async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Bytes, ProxyError> {
        let limit = self.config.max_request_bytes;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ProxyError::BodyTooLarge(limit));
        }
        match Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                Err(ProxyError::BodyTooLarge(limit))
            }
            Err(_) => Err(ProxyError::BodyUnreadable),
        }
    }

    /// Sends the call with the connector's credentials and relays Dialogflow's answer: status,
    /// end-to-end headers and the body, streamed as it arrives. `body` is `None` for calls sent
    /// without one (GET, `:complete`).
    pub(crate) async fn forward(
        &self,
        method: Method,
        url: Url,
        request_headers: &HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, ProxyError> {
        let deadline = Instant::now() + self.config.timeout;

        let auth = match tokio::time::timeout_at(deadline, self.credentials.headers()).await {
            Ok(Ok(headers)) => headers,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "no Google credentials for a Dialogflow call");
                return Err(ProxyError::NoCredentials(e));
            }
            Err(_) => {
                tracing::error!("timed out getting a Google access token for a Dialogflow call");
                return Err(ProxyError::CredentialsTimedOut);
            }
        };

        let mut upstream_headers = HeaderMap::new();
        let named = connection_named(request_headers);
        for name in &FORWARDED_REQUEST_HEADERS {
            if named.contains(name) {
                continue;
            }
            for value in request_headers.get_all(name) {
                upstream_headers.append(name.clone(), value.clone());
            }
        }
        let body = body.unwrap_or_default();
        if body.is_empty() {
            upstream_headers.remove(header::CONTENT_TYPE);
            // Google's front end answers 411 to a POST without a length.
            if method != Method::GET {
                upstream_headers.insert(
                    header::CONTENT_LENGTH,
                    header::HeaderValue::from_static("0"),
                );
            }
        } else if !upstream_headers.contains_key(header::CONTENT_TYPE) {
            upstream_headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
        }
        // Last, so nothing from the desktop can stand in for the connector's identity.
        for (name, value) in &auth {
            upstream_headers.insert(name.clone(), value.clone());
        }

        let request = self
            .client
            .request(method, url)
            .headers(upstream_headers)
            .body(body);

        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) if e.is_timeout() => {
                tracing::warn!(error = %e, "Dialogflow timed out");
                return Err(ProxyError::TimedOut(self.config.timeout));
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot reach Dialogflow");
                return Err(ProxyError::Unreachable);
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.config.timeout, "Dialogflow timed out");
                return Err(ProxyError::TimedOut(self.config.timeout));
            }
        };

        let status = response.status();
        let mut builder = Response::builder().status(status);
        if let Some(headers) = builder.headers_mut() {
            copy_response_headers(response.headers(), headers);
        }
        let stream = response.bytes_stream().inspect_err(|e| {
            tracing::warn!(error = %e, "Dialogflow response body interrupted");
        });
        builder
            .body(Body::from_stream(stream))
            .map_err(|_| ProxyError::InvalidResponse)
    }
}

/// Header names listed in `Connection` headers (lower-cased by parsing).
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

fn is_hop_by_hop(name: &HeaderName, named: &[HeaderName]) -> bool {
    HOP_BY_HOP.contains(&name.as_str()) || named.contains(name)
}

/// Every end-to-end header of Dialogflow's response, repeated values included.
fn copy_response_headers(from: &HeaderMap, to: &mut HeaderMap) {
    let named = connection_named(from);
    for (name, value) in from {
        if is_hop_by_hop(name, &named) || DROPPED_RESPONSE_HEADERS.contains(&name.as_str()) {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let mut from = HeaderMap::new();
        from.insert("connection", HeaderValue::from_static("keep-alive, X-Hop"));
        from.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        from.insert("x-hop", HeaderValue::from_static("1"));
        from.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        from.insert("alt-svc", HeaderValue::from_static("h3=\":443\""));
        from.insert("content-encoding", HeaderValue::from_static("gzip"));
        from.append("x-multi", HeaderValue::from_static("a"));
        from.append("x-multi", HeaderValue::from_static("b"));
        let mut to = HeaderMap::new();
        copy_response_headers(&from, &mut to);
        assert_eq!(to.len(), 3);
        assert_eq!(to["content-encoding"], "gzip");
        let multi: Vec<_> = to.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["a", "b"]);
    }
}
