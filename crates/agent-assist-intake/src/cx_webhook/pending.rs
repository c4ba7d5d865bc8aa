//! Contexts waiting for their integration key to be mapped.
//!
//! The virtual agent usually calls the webhook before the call reaches a human, so before the
//! desktop (or the telephony integration) posts `/conversation-name` for the call's key. The
//! context is then kept under the key, in the bus's key-value store (namespace
//! [`NAMESPACE`], under the same digest `/conversation-name` uses), for
//! `INTEGRATION_KEY_TTL_SECONDS`, and published when the key gets mapped.
//!
//! **One context per key: the latest.** Session parameters accumulate over a CX session, so
//! the latest call's context holds everything the earlier ones collected, with the intent and
//! page the caller was handed over from, which is what the agent needs. Keeping only the
//! latest also means a caller id reused by an abandoned earlier call is not delivered to the
//! next call's conversation alongside it, and a write is one atomic `SET`. (Calls made once the
//! key is mapped are all published, in order.)
//!
//! **Neither side misses the other.** The webhook stores the context, then looks the key up
//! again; `/conversation-name` stores the mapping, then looks for a context ([`publish`]). Each
//! writes before it reads, so at least one of them sees both and publishes. Both may: the
//! event's `message_id` is the call's identity, and the bus publishes it once (so also when a
//! POST is retried or two connectors race). A published context is deleted, so it never goes
//! to a conversation the key is mapped to later.
//!
//! [`publish`]: PendingContexts::publish

use std::time::Duration;

use agent_assist_core::bus::{BusError, KeyValueStore, PublishOutcome};
use agent_assist_core::integration_key::storage_key;
use agent_assist_core::{ConversationBus, ConversationName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::context;
use super::idempotency::CallId;

/// The namespace of pending contexts in the bus's key-value store.
pub const NAMESPACE: &str = "cx-pending-context";

/// A context as kept: the call's identity and time, and the context JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    message_id: String,
    /// When CX called, milliseconds since the Unix epoch.
    called_at_ms: i64,
    context: String,
}

/// What became of a key's pending context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingOutcome {
    /// None was waiting.
    Nothing,
    /// Published now.
    Published { offset: u64 },
    /// Already published (by a racing publisher, or a retry).
    AlreadyPublished,
}

/// Pending contexts; cheap to clone.
#[derive(Clone)]
pub struct PendingContexts {
    bus: ConversationBus,
    store: KeyValueStore,
    ttl: Duration,
}

impl PendingContexts {
    /// Contexts in `bus`'s store, kept for `ttl` (`INTEGRATION_KEY_TTL_SECONDS`).
    pub fn new(bus: &ConversationBus, ttl: Duration) -> Self {
        Self {
            bus: bus.clone(),
            store: bus.key_value_store(NAMESPACE),
            ttl,
        }
    }

    /// Keeps `context` of call `id` under `integration_key`, replacing what was there.
    pub async fn keep(
        &self,
        integration_key: &str,
        id: &CallId,
        called_at: DateTime<Utc>,
        context: &str,
    ) -> Result<(), BusError> {
        let stored = Stored {
            message_id: id.as_str().to_owned(),
            called_at_ms: called_at.timestamp_millis(),
            context: context.to_owned(),
        };
        let text = serde_json::to_string(&stored).expect("a pending context serialises");
        self.store
            .put(&storage_key(integration_key), &text, self.ttl)
            .await
    }

    /// Forgets the context waiting under `integration_key` (its call published it itself).
    pub async fn forget(&self, integration_key: &str) -> Result<(), BusError> {
        self.store
            .delete(&storage_key(integration_key))
            .await
            .map(|_| ())
    }

    /// Publishes the context waiting under `integration_key`, if any, to `conversation` (the
    /// name `/conversation-name` just mapped the key to), then forgets it. A name that is not
    /// a conversation name publishes nothing and leaves the context waiting.
    pub async fn publish(
        &self,
        integration_key: &str,
        conversation: &str,
    ) -> Result<PendingOutcome, BusError> {
        let Ok(conversation) = ConversationName::parse(conversation) else {
            return Ok(PendingOutcome::Nothing);
        };
        self.publish_to(integration_key, &conversation).await
    }

    pub(crate) async fn publish_to(
        &self,
        integration_key: &str,
        conversation: &ConversationName,
    ) -> Result<PendingOutcome, BusError> {
        let digest = storage_key(integration_key);
        let Some(text) = self.store.get(&digest).await? else {
            return Ok(PendingOutcome::Nothing);
        };
        let Ok(stored) = serde_json::from_str::<Stored>(&text) else {
            tracing::warn!("a pending CX context does not read back; dropped");
            self.store.delete(&digest).await?;
            return Ok(PendingOutcome::Nothing);
        };
        let id = CallId::from_stored(stored.message_id);
        let event = context::event(
            conversation,
            &stored.context,
            id.as_str(),
            DateTime::from_timestamp_millis(stored.called_at_ms).unwrap_or_else(Utc::now),
            Utc::now(),
        )
        .expect("a virtual agent event serialises");
        let outcome = match self.bus.publish(&event).await? {
            PublishOutcome::Published { offset } => PendingOutcome::Published { offset },
            PublishOutcome::Duplicate => PendingOutcome::AlreadyPublished,
        };
        self.store.delete(&digest).await?;
        tracing::info!(
            %conversation,
            outcome = ?outcome,
            "pending virtual agent context delivered to its conversation"
        );
        Ok(outcome)
    }
}
