//! The Redis key layout, in one place. Everything the backend writes starts with `agent-assist:`.
//!
//! - `agent-assist:{conversation}:seq`: a hash of the generation's first and last offsets.
//! - `agent-assist:{conversation}:history`: a list of the last events, as published.
//! - `agent-assist:dedup:{data_type}:{message_id}`: a redelivery mark.
//! - `agent-assist:{namespace}:{key}`: a [`KeyValueStore`](crate::bus::KeyValueStore) entry.
//! - channel `agent-assist:{conversation}:events`: live events.

use crate::conversation::ConversationName;
use crate::event::EventType;

const PREFIX: &str = "agent-assist:";
const CHANNEL_SUFFIX: &str = ":events";

pub(crate) fn seq(conversation: &ConversationName) -> String {
    format!("{PREFIX}{conversation}:seq")
}

pub(crate) fn history(conversation: &ConversationName) -> String {
    format!("{PREFIX}{conversation}:history")
}

pub(crate) fn dedup(data_type: EventType, message_id: &str) -> String {
    format!("{PREFIX}dedup:{data_type}:{message_id}")
}

pub(crate) fn value(namespace: &str, key: &str) -> String {
    format!("{PREFIX}{namespace}:{key}")
}

pub(crate) fn channel(conversation: &ConversationName) -> String {
    format!("{PREFIX}{conversation}{CHANNEL_SUFFIX}")
}

/// The conversation a live-event channel belongs to.
pub(crate) fn conversation_of(channel: &str) -> Option<ConversationName> {
    let name = channel.strip_prefix(PREFIX)?.strip_suffix(CHANNEL_SUFFIX)?;
    ConversationName::parse(name).ok()
}
