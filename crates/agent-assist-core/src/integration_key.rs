//! Integration keys: where `/conversation-name` keeps the conversation an integration key (a
//! call id, a phone number) maps to, for every component that reads the mapping.
//!
//! The connector's `/conversation-name` writes the mapping; the interceptor's Dialogflow CX
//! webhook reads it to find the conversation of a call the virtual agent handed over. Both must
//! address the same entry, so the layout lives here, once.
//!
//! **Shared with the Python connector.** An entry is stored the Python way: the Redis key is
//! the bare lowercase SHA-256 hex digest of the integration key (no prefix; Python computes
//! `hashlib.sha256(key.encode('utf-8')).hexdigest()`), the value the name as posted. One copy,
//! read and written by both services, so while Python connectors and ours share a Redis (a
//! switch-over, in either direction), a key posted to one is found, overwritten and deleted
//! through the other, and the two never disagree. Entries written by earlier versions of this
//! backend, under `agent-assist:integration-key:<digest>`, are still read when the shared one
//! is missing, and deleted with it, until they expire.

use crate::bus::{BusError, ConversationBus, KeyValueStore};

/// The namespace earlier versions stored entries under (`agent-assist:integration-key:`).
pub const LEGACY_NAMESPACE: &str = "integration-key";

/// Longest integration key accepted, in bytes. Phone numbers and call ids are far shorter; the
/// bound keeps hostile input out of logs and memory.
pub const MAX_KEY_BYTES: usize = 1024;

/// The key an integration key is stored under: its SHA-256 digest as lowercase hex.
pub fn storage_key(integration_key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(integration_key.as_bytes()))
}

/// Why a value cannot be an integration key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidIntegrationKey {
    #[error("the integration key is empty")]
    Empty,
    #[error("the integration key is longer than {MAX_KEY_BYTES} bytes")]
    TooLong,
    #[error("the integration key contains control characters")]
    ControlCharacter,
}

/// `key` if it can be an integration key: not empty, at most [`MAX_KEY_BYTES`], no control
/// characters.
pub fn check(key: &str) -> Result<&str, InvalidIntegrationKey> {
    if key.is_empty() {
        return Err(InvalidIntegrationKey::Empty);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(InvalidIntegrationKey::TooLong);
    }
    if key.chars().any(char::is_control) {
        return Err(InvalidIntegrationKey::ControlCharacter);
    }
    Ok(key)
}

/// The mappings `/conversation-name` writes; cheap to clone.
#[derive(Clone)]
pub struct IntegrationKeys {
    /// Entries the Python way: bare digests.
    shared: KeyValueStore,
    /// Entries of earlier versions, read and deleted only.
    legacy: KeyValueStore,
}

impl IntegrationKeys {
    /// The mappings in `bus`'s store.
    pub fn new(bus: &ConversationBus) -> Self {
        let legacy = bus.key_value_store(LEGACY_NAMESPACE);
        Self {
            shared: legacy.unprefixed(),
            legacy,
        }
    }

    /// The conversation name `integration_key` maps to, as it was posted; `None` when it is
    /// not mapped (or the mapping expired).
    pub async fn conversation_name(
        &self,
        integration_key: &str,
    ) -> Result<Option<String>, BusError> {
        let digest = storage_key(integration_key);
        match self.shared.get(&digest).await? {
            Some(name) => Ok(Some(name)),
            None => self.legacy.get(&digest).await,
        }
    }

    /// Maps `integration_key` to `name` for `ttl`.
    pub async fn put(
        &self,
        integration_key: &str,
        name: &str,
        ttl: std::time::Duration,
    ) -> Result<(), BusError> {
        self.shared
            .put(&storage_key(integration_key), name, ttl)
            .await
    }

    /// Removes the mapping (both spellings); `true` when there was one.
    pub async fn delete(&self, integration_key: &str) -> Result<bool, BusError> {
        let digest = storage_key(integration_key);
        let shared = self.shared.delete(&digest).await?;
        let legacy = self.legacy.delete(&digest).await?;
        Ok(shared || legacy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest the Python service stores `+15551234` under.
    #[test]
    fn storage_key_is_the_sha256_hex_digest() {
        assert_eq!(
            storage_key("+15551234"),
            "905a43770135d0e3915dc6e53354c7f71b9619a37adef11e55e6876dd5f2501e"
        );
        assert_eq!(storage_key("k").len(), 64);
    }

    #[test]
    fn keys_are_bounded_and_printable() {
        assert_eq!(check("+15551234"), Ok("+15551234"));
        assert_eq!(check(""), Err(InvalidIntegrationKey::Empty));
        assert_eq!(
            check(&"1".repeat(MAX_KEY_BYTES + 1)),
            Err(InvalidIntegrationKey::TooLong)
        );
        assert_eq!(check("a\nb"), Err(InvalidIntegrationKey::ControlCharacter));
        assert!(check(&"1".repeat(MAX_KEY_BYTES)).is_ok());
    }
}
