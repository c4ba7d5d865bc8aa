//! Small values with an expiry, kept in the bus's store beside the conversations: the
//! connector's integration keys (`/conversation-name`), and whatever else needs a shared,
//! expiring entry across instances.
//!
//! A [`KeyValueStore`] is a handle on one namespace; it shares the bus's Redis connection (or,
//! with the in-memory bus, one map per process).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use super::redis_store::{keys, Commands};
use super::BusError;

/// Expired entries are swept once every this many writes, so memory stays bounded without a
/// background task.
const SWEEP_EVERY: u64 = 1024;

/// Expiring entries under one namespace; cheap to clone.
#[derive(Clone)]
pub struct KeyValueStore {
    namespace: &'static str,
    backend: Backend,
}

#[derive(Clone)]
pub(crate) enum Backend {
    Memory(Arc<MemoryValues>),
    Redis(Commands),
}

impl KeyValueStore {
    pub(crate) fn new(namespace: &'static str, backend: Backend) -> Self {
        Self { namespace, backend }
    }

    /// Sets `key` to `value` for `ttl` (at least one second).
    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), BusError> {
        match &self.backend {
            Backend::Memory(values) => {
                values.put(self.scoped(key), value, ttl);
                Ok(())
            }
            Backend::Redis(commands) => {
                let mut connection = commands.connection();
                commands
                    .timed(connection.set_ex::<_, _, ()>(
                        keys::value(self.namespace, key),
                        value,
                        ttl.as_secs().max(1),
                    ))
                    .await
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, BusError> {
        match &self.backend {
            Backend::Memory(values) => Ok(values.get(&self.scoped(key))),
            Backend::Redis(commands) => {
                let mut connection = commands.connection();
                commands
                    .timed(connection.get(keys::value(self.namespace, key)))
                    .await
            }
        }
    }

    /// Removes an entry; `true` when it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, BusError> {
        match &self.backend {
            Backend::Memory(values) => Ok(values.delete(&self.scoped(key))),
            Backend::Redis(commands) => {
                let mut connection = commands.connection();
                let removed: u64 = commands
                    .timed(connection.del(keys::value(self.namespace, key)))
                    .await?;
                Ok(removed > 0)
            }
        }
    }

    fn scoped(&self, key: &str) -> String {
        format!("{}:{key}", self.namespace)
    }
}

/// The in-memory bus's entries, shared by every namespace of the process.
#[derive(Default)]
pub(crate) struct MemoryValues {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    values: HashMap<String, (String, Instant)>,
    writes: u64,
}

impl MemoryValues {
    fn put(&self, key: String, value: &str, ttl: Duration) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("key-value lock");
        state.writes += 1;
        if state.writes.is_multiple_of(SWEEP_EVERY) {
            state.values.retain(|_, (_, until)| *until > now);
        }
        state.values.insert(key, (value.to_owned(), now + ttl));
    }

    fn get(&self, key: &str) -> Option<String> {
        let state = self.state.lock().expect("key-value lock");
        state
            .values
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(value, _)| value.clone())
    }

    fn delete(&self, key: &str) -> bool {
        let mut state = self.state.lock().expect("key-value lock");
        state
            .values
            .remove(key)
            .is_some_and(|(_, expires)| expires > Instant::now())
    }
}
