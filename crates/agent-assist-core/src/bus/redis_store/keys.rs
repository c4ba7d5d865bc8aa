//! The Redis key layout, in one place. Everything the backend writes starts with `agent-assist:`.
//!
//! Per conversation, all under the conversation's hash tag, so that every key of one
//! conversation lives in one Redis Cluster hash slot and the publish script stays one atomic
//! step on one shard:
//! - `agent-assist:{<conversation>}:seq`: a hash of the generation's first and last offsets.
//! - `agent-assist:{<conversation>}:history`: a list of the last events, as published.
//! - `agent-assist:{<conversation>}:dedup:<data_type>:<message_id>`: a redelivery mark.
//! - channel `agent-assist:{<conversation>}:events`: live events.
//!
//! And `agent-assist:<namespace>:<key>` for [`KeyValueStore`](crate::bus::KeyValueStore)
//! entries, whose namespaces are fixed names that never start with `{`.
//!
//! With the Python bridge on, the publish script also reads the bare conversation name (the
//! key Python connectors write) and publishes on `<server id>:<conversation>`.
//!
//! No input can name a key of another kind: a conversation name never contains `{`, `}` or `:`
//! in its id (see [`ConversationName`]), so what follows the closing brace is always one of the
//! suffixes above, and the message id (bounded, see the intake) comes only after
//! `}:dedup:<type>:`. Keys of the layout before this one (`agent-assist:<conversation>:seq`,
//! `agent-assist:dedup:...`) are ignored; they expire on their own.

use crate::conversation::ConversationName;
use crate::event::EventType;

const PREFIX: &str = "agent-assist:";

pub(crate) fn seq(conversation: &ConversationName) -> String {
    format!("{PREFIX}{{{conversation}}}:seq")
}

pub(crate) fn history(conversation: &ConversationName) -> String {
    format!("{PREFIX}{{{conversation}}}:history")
}

pub(crate) fn dedup(
    conversation: &ConversationName,
    data_type: EventType,
    message_id: &str,
) -> String {
    format!("{PREFIX}{{{conversation}}}:dedup:{data_type}:{message_id}")
}

/// The key Python connectors route a conversation by: its location-free name, bare, holding
/// the server id of the connector process that joined it last (the bridge reads it).
pub(crate) fn python_route(conversation: &ConversationName) -> String {
    conversation.as_str().to_owned()
}

pub(crate) fn value(namespace: &str, key: &str) -> String {
    debug_assert!(!namespace.starts_with('{'));
    format!("{PREFIX}{namespace}:{key}")
}

pub(crate) fn channel(conversation: &ConversationName) -> String {
    format!("{PREFIX}{{{conversation}}}:events")
}

/// The Redis Cluster hash slot of every key of the conversation (they share its hash tag): the
/// CRC16 (XMODEM) of the tag, modulo 16384, as the cluster specification defines it. The batcher
/// groups a script call's events by it, since a script's keys must all live in one slot.
pub(crate) fn slot(conversation: &ConversationName) -> u16 {
    let key = seq(conversation);
    let open = key
        .find('{')
        .expect("every conversation key has a hash tag");
    let close = open + 1 + key[open + 1..].find('}').expect("the tag is closed");
    crc16::State::<crc16::XMODEM>::calculate(&key.as_bytes()[open + 1..close]) % 16384
}

/// The conversation a live-event channel belongs to.
pub(crate) fn conversation_of(channel: &str) -> Option<ConversationName> {
    let name = channel
        .strip_prefix("agent-assist:{")?
        .strip_suffix("}:events")?;
    ConversationName::parse(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_conversation_shares_its_hash_tag() {
        let conversation = ConversationName::parse("projects/p/conversations/c1").unwrap();
        let tag = "{projects/p/conversations/c1}";
        for key in [
            seq(&conversation),
            history(&conversation),
            dedup(&conversation, EventType::NewMessageEvent, "m}{:seq"),
            channel(&conversation),
        ] {
            let start = key.find('{').unwrap();
            let end = start + key[start..].find('}').unwrap();
            assert_eq!(&key[start..=end], tag, "{key}");
        }
        assert_eq!(conversation_of(&channel(&conversation)), Some(conversation));
        assert_eq!(conversation_of("agent-assist:{c}:seq"), None);
    }

    #[test]
    /// Against the test harness's slot function, itself checked against `CLUSTER KEYSLOT`.
    fn the_slot_is_the_clusters() {
        for name in [
            "projects/p/conversations/c1",
            "projects/p/locations/l/conversations/x",
        ] {
            let conversation = ConversationName::parse(name).unwrap();
            assert_eq!(
                slot(&conversation),
                redis_test_server::key_slot(seq(&conversation).as_bytes()),
                "{name}"
            );
        }
    }
}
