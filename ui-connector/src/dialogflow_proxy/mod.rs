//! The Dialogflow REST proxy: desktops' UI modules call the connector as if it were the
//! Dialogflow API, and the connector forwards the call with its own Google identity.
//!
//! - `routes`: the table of proxied methods (the only place routes are listed) and the handler
//!   that checks a call in order: path safety (400), route table (404, 405), the desktop's JWT
//!   from `Authorization` (401), the project allow-list (403), body size (413).
//! - `call`: the path checks as an extractor ([`ProxiedCall`](call::ProxiedCall)).
//! - `target`: raw-path validation and the upstream URL: `https://dialogflow.googleapis.com`
//!   for location `global`, `https://<location>-dialogflow.googleapis.com` otherwise, or
//!   `DIALOGFLOW_API_ENDPOINT` for every location; same path and query string.
//! - `forward`: sending the call and streaming the answer back: status, end-to-end headers
//!   and body (compressed bodies untouched) are relayed, Dialogflow's errors unchanged;
//!   unreachable is a 502, too slow (`DIALOGFLOW_TIMEOUT_SECONDS`) a 504.
//! - `credentials`: Application Default Credentials (or an explicit file), built on the first
//!   proxied call; without them calls get a 503 while the rest of the connector works.
//! - `config`: the settings ([`ProxyConfig`]).
//!
//! Every error the proxy produces itself is one `ProxyError` variant, answered as JSON (see
//! `error`); nothing is sent upstream before all checks pass.

mod call;
mod config;
mod credentials;
mod error;
mod forward;
mod routes;
mod target;

pub use config::{ProxyConfig, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_TIMEOUT};
pub use forward::DialogflowProxy;
pub use routes::{routes, ProxyState};
