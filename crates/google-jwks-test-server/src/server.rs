//! The JWKS endpoint: an axum server on 127.0.0.1 that tests steer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::keys::TestKey;

/// Upper bound of [`JwksStandIn::wait_for_fetches`]; tests see their fetches far sooner.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Google's `max-age` is a few hours; the stand-in says one hour unless told otherwise.
const DEFAULT_MAX_AGE_SECS: u64 = 3600;

struct StandInState {
    keys: Mutex<Vec<Value>>,
    up: AtomicBool,
    max_age: Mutex<Option<u64>>,
    /// Answers wait while this is false.
    open: watch::Sender<bool>,
    /// Requests received so far (counted on arrival, before any hold).
    fetches: watch::Sender<usize>,
}

/// A running JWKS endpoint; stops when dropped.
pub struct JwksStandIn {
    state: Arc<StandInState>,
    url: String,
    server: tokio::task::JoinHandle<()>,
}

impl JwksStandIn {
    /// Serves `keys` at `http://127.0.0.1:<port>/oauth2/v3/certs`, `max-age` one hour. Must be
    /// called inside a Tokio runtime (the server is a task of it).
    pub async fn start(keys: &[&TestKey]) -> Self {
        let state = Arc::new(StandInState {
            keys: Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect()),
            up: AtomicBool::new(true),
            max_age: Mutex::new(Some(DEFAULT_MAX_AGE_SECS)),
            open: watch::Sender::new(true),
            fetches: watch::Sender::new(0),
        });
        let app = axum::Router::new()
            .route("/oauth2/v3/certs", axum::routing::get(serve_certs))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!(
            "http://{}/oauth2/v3/certs",
            listener.local_addr().expect("local address")
        );
        let server = tokio::spawn(async move {
            // Ends when the task is aborted (drop).
            let _ = axum::serve(listener, app).await;
        });
        Self { state, url, server }
    }

    /// The JWK Set's URL, for `GOOGLE_JWKS_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// From now on, publishes exactly `keys` (rotation).
    pub fn publish(&self, keys: &[&TestKey]) {
        *lock(&self.state.keys) = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    /// Down: every fetch is answered 503 (after any hold).
    pub fn set_up(&self, up: bool) {
        self.state.up.store(up, Ordering::SeqCst);
    }

    /// The `max-age` of the next answers; `None` sends no `Cache-Control`.
    pub fn set_max_age(&self, seconds: Option<u64>) {
        *lock(&self.state.max_age) = seconds;
    }

    /// Holds every answer (fetches already received included) until [`release`](Self::release).
    pub fn hold(&self) {
        self.state.open.send_replace(false);
    }

    pub fn release(&self) {
        self.state.open.send_replace(true);
    }

    /// Requests received so far.
    pub fn fetches(&self) -> usize {
        *self.state.fetches.borrow()
    }

    /// Waits until the stand-in has received `count` requests; panics after 20 s.
    pub async fn wait_for_fetches(&self, count: usize) {
        let mut fetches = self.state.fetches.subscribe();
        tokio::time::timeout(EVENT_TIMEOUT, fetches.wait_for(|n| *n >= count))
            .await
            .unwrap_or_else(|_| panic!("the JWKS stand-in never got {count} fetches"))
            .expect("the stand-in's state lives as long as it does");
    }
}

impl Drop for JwksStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve_certs(State(state): State<Arc<StandInState>>) -> Response {
    state.fetches.send_modify(|n| *n += 1);
    let mut open = state.open.subscribe();
    let _ = open.wait_for(|open| *open).await;
    if !state.up.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down for the test").into_response();
    }
    let body = json!({ "keys": *lock(&state.keys) });
    let mut response = axum::Json(body).into_response();
    if let Some(max_age) = *lock(&state.max_age) {
        // What Google sends.
        let value = format!("public, max-age={max_age}, must-revalidate, no-transform");
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(&value).expect("an ASCII header value"),
        );
    }
    response
}
