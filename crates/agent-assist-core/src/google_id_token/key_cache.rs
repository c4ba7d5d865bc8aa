//! The shared cache of Google's signing keys: fetched once, used by every request, refreshed as
//! the response's `Cache-Control: max-age` says, and re-fetched for an unknown `kid` at most
//! once per interval, with every concurrent caller sharing one fetch.
//!
//! How a lookup goes (see the module docs of [`super`] for the why):
//! - The current key set is an `Arc` behind a mutex held only to clone the `Arc`, never across
//!   an await: a request whose `kid` is in a usable set never waits, whatever is in flight.
//! - A set past its max-age is still used (for up to [`KeyCacheOptions::max_stale`]) while a
//!   refresh runs in the background.
//! - An unknown `kid`, or no usable set, needs a fetch: callers join the fetch in flight, or
//!   start one if none ran within [`KeyCacheOptions::min_refetch_interval`]. Otherwise they get
//!   the answer of the last fetch at once: 401 if it succeeded and the `kid` is not in it, 503
//!   if it failed and no cached key matches.
//! - Fetches run in their own task, so a caller that goes away (client disconnect) does not
//!   cancel the fetch everybody else is waiting for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::{BoxFuture, FutureExt, Shared};
use jsonwebtoken::DecodingKey;

use super::error::{IdTokenError, UnauthenticatedReason};
use super::jwks_fetch::{fetch_jwks, FetchedKeys};

/// Where Google publishes the keys that sign its ID tokens (RS256, JWK Set).
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// How the key cache behaves; [`Default`] is what production uses.
#[derive(Debug, Clone)]
pub struct KeyCacheOptions {
    /// Least time between two fetches started for an unknown `kid`, a stale set or a failed
    /// fetch. Bounds what a flood of forged `kid`s (or an outage) costs Google: one fetch per
    /// interval per process. Default 10 s.
    pub min_refetch_interval: Duration,
    /// Freshness when the response has no `max-age`. Default 1 hour.
    pub default_max_age: Duration,
    /// Longest freshness believed, whatever `max-age` says. Default 24 hours.
    pub max_age_cap: Duration,
    /// How long after it went stale a set is still used while refreshes fail (Google keeps a
    /// key published for days after it stops signing with it). Default 24 hours; past it,
    /// requests wait for a fetch and get 503 if it fails.
    pub max_stale: Duration,
    /// Longest wait for one fetch. Default 5 s, well inside Pub/Sub's push deadline.
    pub fetch_timeout: Duration,
}

impl Default for KeyCacheOptions {
    fn default() -> Self {
        Self {
            min_refetch_interval: Duration::from_secs(10),
            default_max_age: Duration::from_secs(3600),
            max_age_cap: Duration::from_secs(24 * 3600),
            max_stale: Duration::from_secs(24 * 3600),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCacheStats {
    /// Fetches started since creation.
    pub fetches: u64,
    /// Fetches that failed (network, status, unparsable or empty set).
    pub failed_fetches: u64,
    /// Keys in the current set (0 before the first successful fetch).
    pub cached_keys: usize,
    /// Callers waiting right now for a fetch to finish.
    pub waiting_for_fetch: usize,
}

/// Google's signing keys, cached and shared. Cloning is cheap and clones share one cache, so
/// build one per process (per JWKS URL) and hand clones to every verifier. Fetches run as Tokio
/// tasks: verify from within a Tokio runtime (as every axum handler does).
#[derive(Clone)]
pub struct GoogleKeys {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GoogleKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleKeys")
            .field("jwks_url", &self.inner.jwks_url)
            .field("stats", &self.stats())
            .finish()
    }
}

type InFlight = Shared<BoxFuture<'static, ()>>;

struct Inner {
    jwks_url: String,
    http: reqwest::Client,
    options: KeyCacheOptions,
    state: Mutex<CacheState>,
    waiting: AtomicUsize,
}

#[derive(Default)]
struct CacheState {
    keys: Option<Arc<KeySet>>,
    in_flight: Option<InFlight>,
    /// Fetches finished (either way); a caller that saw `n` and finds more knows a fetch
    /// completed after it looked, so it uses that answer instead of fetching again.
    completed: u64,
    last_started: Option<Instant>,
    /// Why the last finished fetch failed; `None` when it succeeded (or none finished yet).
    last_failure: Option<String>,
    fetches: u64,
    failed_fetches: u64,
}

struct KeySet {
    keys: HashMap<String, Arc<DecodingKey>>,
    fresh_until: Instant,
    usable_until: Instant,
}

impl GoogleKeys {
    /// A cache of the key set at `jwks_url` ([`GOOGLE_JWKS_URL`] in production), fetched with
    /// `http` on first use.
    pub fn new(jwks_url: impl Into<String>, http: reqwest::Client) -> Self {
        Self::with_options(jwks_url, http, KeyCacheOptions::default())
    }

    pub fn with_options(
        jwks_url: impl Into<String>,
        http: reqwest::Client,
        options: KeyCacheOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                jwks_url: jwks_url.into(),
                http,
                options,
                state: Mutex::new(CacheState::default()),
                waiting: AtomicUsize::new(0),
            }),
        }
    }

    pub fn jwks_url(&self) -> &str {
        &self.inner.jwks_url
    }

    /// Fetches the key set now unless a fetch is in flight (joins it) or one started within the
    /// minimum interval; answers how many keys are cached, or why none are usable. For warming
    /// the cache at start-up; verification does not need it.
    pub async fn load(&self) -> Result<usize, IdTokenError> {
        let seen = self.inner.lock().completed;
        self.inner.fetch_round(seen).await;
        let state = self.inner.lock();
        match (&state.keys, &state.last_failure) {
            (Some(set), None) => Ok(set.keys.len()),
            (_, Some(failure)) => Err(IdTokenError::keys_unavailable(failure.clone())),
            (None, None) => Err(IdTokenError::keys_unavailable("no key set fetched yet")),
        }
    }

    pub fn stats(&self) -> KeyCacheStats {
        let state = self.inner.lock();
        KeyCacheStats {
            fetches: state.fetches,
            failed_fetches: state.failed_fetches,
            cached_keys: state.keys.as_ref().map_or(0, |set| set.keys.len()),
            waiting_for_fetch: self.inner.waiting.load(Ordering::Relaxed),
        }
    }

    /// The key named `kid`, fetching the key set if it is unknown (subject to the interval).
    pub(crate) async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, IdTokenError> {
        let now = Instant::now();
        let (set, seen) = {
            let state = self.inner.lock();
            (state.keys.clone(), state.completed)
        };
        if let Some(set) = set.filter(|set| now < set.usable_until) {
            if now >= set.fresh_until {
                self.inner.refresh_in_background(now);
            }
            if let Some(key) = set.keys.get(kid) {
                return Ok(Arc::clone(key));
            }
        }

        self.inner.fetch_round(seen).await;

        let now = Instant::now();
        let state = self.inner.lock();
        let usable = state.keys.as_ref().filter(|set| now < set.usable_until);
        if let Some(key) = usable.and_then(|set| set.keys.get(kid)) {
            return Ok(Arc::clone(key));
        }
        match (usable, &state.last_failure) {
            (Some(set), None) => Err(IdTokenError::unauthenticated(
                UnauthenticatedReason::UnknownKey,
                format!(
                    "key id {} is not among Google's {} current signing keys",
                    super::error::quoted(kid),
                    set.keys.len()
                ),
            )),
            (_, Some(failure)) => Err(IdTokenError::keys_unavailable(format!(
                "no cached key matches and the last fetch failed: {failure}"
            ))),
            (None, None) => Err(IdTokenError::keys_unavailable(
                "no usable key set is cached and the next fetch is not due yet",
            )),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, CacheState> {
        // Nothing panics while holding the lock; if something ever did, the state is still a
        // consistent value, so keep serving rather than poisoning every later request.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a fetch that finishes after the caller saw `seen` completed fetches: joins the
    /// one in flight, or starts one if the interval allows. Returns at once otherwise.
    async fn fetch_round(self: &Arc<Self>, seen: u64) {
        let (in_flight, started) = {
            let mut state = self.lock();
            if state.completed > seen {
                return;
            }
            match &state.in_flight {
                Some(in_flight) => (in_flight.clone(), None),
                None if self.may_start(&state, Instant::now()) => {
                    let (in_flight, task) = self.start_fetch(&mut state);
                    (in_flight, Some(task))
                }
                None => return,
            }
        };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = WaitingGuard(&self.waiting);
        if let Some(task) = started {
            // In its own task, so this caller going away does not cancel it for the others.
            drop(tokio::spawn(task.run()));
        }
        in_flight.await;
    }

    fn refresh_in_background(self: &Arc<Self>, now: Instant) {
        let task = {
            let mut state = self.lock();
            if state.in_flight.is_some() || !self.may_start(&state, now) {
                return;
            }
            self.start_fetch(&mut state).1
        };
        drop(tokio::spawn(task.run()));
    }

    fn may_start(&self, state: &CacheState, now: Instant) -> bool {
        state
            .last_started
            .is_none_or(|started| now.duration_since(started) >= self.options.min_refetch_interval)
    }

    /// Records a fetch as started and in flight (under the state lock, so there is only ever
    /// one); the caller runs the returned task after releasing the lock.
    fn start_fetch(self: &Arc<Self>, state: &mut CacheState) -> (InFlight, FetchTask) {
        state.last_started = Some(Instant::now());
        state.fetches += 1;
        let (done, finished) = oneshot::channel::<()>();
        let in_flight: InFlight = finished.map(|_| ()).boxed().shared();
        state.in_flight = Some(in_flight.clone());
        let task = FetchTask {
            inner: Arc::clone(self),
            outcome: None,
            done: Some(done),
        };
        (in_flight, task)
    }

    fn store(&self, outcome: Result<FetchedKeys, String>) {
        let now = Instant::now();
        let mut state = self.lock();
        state.in_flight = None;
        state.completed += 1;
        match outcome {
            Ok(fetched) => {
                let fresh_for = fetched
                    .max_age
                    .unwrap_or(self.options.default_max_age)
                    .min(self.options.max_age_cap);
                let fresh_until = now + fresh_for;
                tracing::debug!(
                    keys = fetched.keys.len(),
                    fresh_for_secs = fresh_for.as_secs(),
                    url = %self.jwks_url,
                    "fetched Google's signing keys"
                );
                state.keys = Some(Arc::new(KeySet {
                    keys: fetched.keys,
                    fresh_until,
                    usable_until: fresh_until + self.options.max_stale,
                }));
                state.last_failure = None;
            }
            Err(failure) => {
                tracing::warn!(error = %failure, "fetching Google's signing keys failed");
                state.failed_fetches += 1;
                state.last_failure = Some(failure);
            }
        }
    }
}

/// One fetch. Its outcome is stored when it is dropped, finished or not (runtime shutting
/// down, or a panic), and only then are the waiters released:
/// nobody waits forever, and they wake to the new state.
struct FetchTask {
    inner: Arc<Inner>,
    outcome: Option<Result<FetchedKeys, String>>,
    done: Option<oneshot::Sender<()>>,
}

impl FetchTask {
    async fn run(mut self) {
        let inner = Arc::clone(&self.inner);
        let outcome = fetch_jwks(&inner.http, &inner.jwks_url, inner.options.fetch_timeout).await;
        self.outcome = Some(outcome);
    }
}

impl Drop for FetchTask {
    fn drop(&mut self) {
        let outcome = self
            .outcome
            .take()
            .unwrap_or_else(|| Err("the key set fetch was interrupted".to_owned()));
        self.inner.store(outcome);
        drop(self.done.take());
    }
}

struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
