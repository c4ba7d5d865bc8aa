//! Calling a platform's API: the one shared HTTP client, and how its answers map to
//! [`AuthError`]s (a refusal, or the provider being unavailable).
//!
//! Errors are described without their URL: the `SalesforceLWC` check carries the token in the
//! query string.

use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;

use super::AuthError;

/// The one HTTP client all providers share, built on first need.
pub(crate) struct HttpClient {
    timeout: Duration,
    client: Option<reqwest::Client>,
}

impl HttpClient {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            client: None,
        }
    }

    /// A handle on the shared client (clones share one connection pool).
    pub(crate) fn get(&mut self) -> anyhow::Result<reqwest::Client> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(concat!(
                "agent-assist-ui-connector/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .context("cannot build the HTTP client for desktop platform authentication")?;
        self.client = Some(client.clone());
        Ok(client)
    }
}

/// Parses `{base}{path}` (the base is validated at start-up, so this fails only on a bad path).
pub(crate) fn endpoint(base: &str, path: &str) -> anyhow::Result<reqwest::Url> {
    let url = format!("{base}{path}");
    reqwest::Url::parse(&url).with_context(|| format!("invalid provider URL {url}"))
}

/// Sends a provider request: 200 is returned; 5xx and 429 mean the provider is unavailable;
/// any other status is a refusal; transport failures (connect, timeout) mean unavailable.
pub(crate) async fn send(
    provider: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, AuthError> {
    let response = request
        .send()
        .await
        .map_err(|e| request_failed(provider, e))?;
    let status = response.status();
    if status == StatusCode::OK {
        Ok(response)
    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Err(AuthError::Unavailable(format!(
            "{provider} answered {status}"
        )))
    } else {
        Err(AuthError::Refused(format!("{provider} answered {status}")))
    }
}

/// Reads a 200 answer's JSON body; an unreadable body means the provider is not working.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    response: reqwest::Response,
) -> Result<T, AuthError> {
    response.json().await.map_err(|e| {
        if e.is_timeout() {
            request_failed(provider, e)
        } else {
            AuthError::Unavailable(format!(
                "{provider} answered 200 with an unreadable body: {}",
                error_chain(&e.without_url())
            ))
        }
    })
}

/// A transport failure, described without the URL (it may carry a token).
fn request_failed(provider: &'static str, error: reqwest::Error) -> AuthError {
    let error = error.without_url();
    if error.is_builder() {
        // The token cannot be put in a request (e.g. not a valid header value).
        return AuthError::Refused(format!("token unusable in a {provider} request"));
    }
    let what = if error.is_timeout() {
        "did not answer in time"
    } else if error.is_connect() {
        "could not be reached"
    } else {
        "request failed"
    };
    AuthError::Unavailable(format!("{provider} {what}: {}", error_chain(&error)))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
