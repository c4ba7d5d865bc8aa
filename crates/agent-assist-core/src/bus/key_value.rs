//! Small values with an expiry, kept in the bus's store beside the conversations: the
//! connector's integration keys (`/conversation-name`), and whatever else needs a shared,
//! expiring entry across instances.
//!
//! A [`KeyValueStore`] is a handle on one namespace; it shares the bus's Redis connection (or,
//! with the in-memory bus, one map per process). [`KeyValueStore::unprefixed`] gives the same
//! store without a namespace, for keys whose layout another program fixed (the Python
//! connector's integration keys, which it reads as bare SHA-256 digests).

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
    /// `None`: keys are used exactly as given ([`KeyValueStore::unprefixed`]).
    namespace: Option<&'static str>,
    backend: Backend,
}

#[derive(Clone)]
pub(crate) enum Backend {
    Memory(Arc<MemoryValues>),
    Redis(Commands),
}

impl KeyValueStore {
    pub(crate) fn new(namespace: &'static str, backend: Backend) -> Self {
        Self {
            namespace: Some(namespace),
            backend,
        }
    }

    /// The same store (same connection, or the same in-memory map), addressing keys exactly as
    /// given: no namespace and no `agent-assist:` prefix. Only for keys another program shares
    /// under a layout it fixed; everything of this backend's own belongs in a namespace.
    pub fn unprefixed(&self) -> KeyValueStore {
        KeyValueStore {
            namespace: None,
            backend: self.backend.clone(),
        }
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
                        self.scoped(key),
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
                commands.timed(connection.get(self.scoped(key))).await
            }
        }
    }

    /// Removes an entry; `true` when it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, BusError> {
        match &self.backend {
            Backend::Memory(values) => Ok(values.delete(&self.scoped(key))),
            Backend::Redis(commands) => {
                let mut connection = commands.connection();
                let removed: u64 = commands.timed(connection.del(self.scoped(key))).await?;
                Ok(removed > 0)
            }
        }
    }

    /// The key in Redis, and in the in-memory map (shared by every namespace of the process,
    /// so it is laid out the same way).
    fn scoped(&self, key: &str) -> String {
        match self.namespace {
            Some(namespace) => keys::value(namespace, key),
            None => key.to_owned(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unprefixed_keys_are_apart_from_every_namespace() {
        let backend = Backend::Memory(Arc::new(MemoryValues::default()));
        let namespaced = KeyValueStore::new("ns", backend);
        let bare = namespaced.unprefixed();
        let ttl = Duration::from_secs(60);
        namespaced.put("k", "in the namespace", ttl).await.unwrap();
        bare.put("k", "bare", ttl).await.unwrap();
        assert_eq!(
            namespaced.get("k").await.unwrap().as_deref(),
            Some("in the namespace")
        );
        assert_eq!(bare.get("k").await.unwrap().as_deref(), Some("bare"));
        // Laid out as in Redis: the namespaced entry is `agent-assist:ns:k`, the bare one `k`.
        assert_eq!(
            bare.get("agent-assist:ns:k").await.unwrap().as_deref(),
            Some("in the namespace")
        );
        assert!(bare.delete("k").await.unwrap());
        assert_eq!(bare.get("k").await.unwrap(), None);
        assert_eq!(
            namespaced.get("k").await.unwrap().as_deref(),
            Some("in the namespace")
        );
    }
}
