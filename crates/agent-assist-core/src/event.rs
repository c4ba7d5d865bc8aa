//! The event model: one source of truth for the event types and for the fields a desktop gets.
//!
//! The interceptor builds a [`ConversationEvent`] from a Pub/Sub push and serialises it once;
//! the bus adds the `offset` field and stores and publishes that exact text; connectors pass the
//! text through to sockets as a [`BusEvent`] without re-serialising it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::conversation::ConversationName;

/// The kinds of event a desktop receives. The name is at once the event's `data_type` field
/// and the Socket.IO event name desktops listen to; for the four Pub/Sub kinds
/// ([`EventType::PUBSUB`]) it is also the interceptor's push endpoint (`/<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventType {
    HumanAgentAssistantEvent,
    ConversationLifecycleEvent,
    NewMessageEvent,
    NewRecognitionResultNotificationEvent,
    /// What a Dialogflow CX virtual agent knew when it handed the caller over: it arrives
    /// through the interceptor's CX webhook, not through Pub/Sub, so it has no push endpoint.
    VirtualAgentEvent,
}

impl EventType {
    /// The four Agent Assist notifications Dialogflow publishes on Pub/Sub, each with its push
    /// endpoint ([`EventType::route`]).
    pub const PUBSUB: [EventType; 4] = [
        EventType::HumanAgentAssistantEvent,
        EventType::ConversationLifecycleEvent,
        EventType::NewMessageEvent,
        EventType::NewRecognitionResultNotificationEvent,
    ];

    /// Every `data_type` a desktop may receive: the Pub/Sub kinds, then the virtual agent's.
    pub const ALL: [EventType; 5] = [
        EventType::HumanAgentAssistantEvent,
        EventType::ConversationLifecycleEvent,
        EventType::NewMessageEvent,
        EventType::NewRecognitionResultNotificationEvent,
        EventType::VirtualAgentEvent,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::HumanAgentAssistantEvent => "human-agent-assistant-event",
            EventType::ConversationLifecycleEvent => "conversation-lifecycle-event",
            EventType::NewMessageEvent => "new-message-event",
            EventType::NewRecognitionResultNotificationEvent => {
                "new-recognition-result-notification-event"
            }
            EventType::VirtualAgentEvent => "virtual-agent-event",
        }
    }

    /// Whether Dialogflow publishes this kind on Pub/Sub (one of [`EventType::PUBSUB`]).
    pub const fn is_pubsub(self) -> bool {
        !matches!(self, EventType::VirtualAgentEvent)
    }

    /// The interceptor's push endpoint for a Pub/Sub kind, `/<name>`. Only the
    /// [`EventType::PUBSUB`] kinds are served there; `virtual-agent-event` enters through the
    /// CX webhook (`/dialogflow-cx-webhook`).
    pub fn route(self) -> String {
        debug_assert!(self.is_pubsub(), "{self} has no push endpoint");
        format!("/{}", self.as_str())
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(String);

/// An event as the existing desktops expect it. Field names are the Python service's; the bus
/// appends `offset` (see [`crate::bus`]).
#[derive(Debug, Serialize)]
pub struct ConversationEvent<'a> {
    /// The conversation, location dropped.
    pub conversation_name: &'a str,
    /// The decoded Pub/Sub data, the Dialogflow event JSON as text, unchanged; for
    /// `virtual-agent-event`, the virtual agent's context as JSON text.
    pub data: &'a str,
    pub data_type: EventType,
    /// When the interceptor received the push (or the webhook call), UTC, `%Y-%m-%dT%H:%M:%SZ`.
    pub ack_time: String,
    pub publish_time: Option<&'a str>,
    pub message_id: Option<&'a str>,
    /// Present only on `new-recognition-result-notification-event`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub recognition: Option<RecognitionAttributes<'a>>,
}

/// Message attributes that recognition-result events carry to the desktop.
#[derive(Debug, Serialize)]
pub struct RecognitionAttributes<'a> {
    /// The `participant_role` attribute (`END_USER`, `HUMAN_AGENT`...).
    pub participant_role: Option<&'a str>,
    /// The `message_id` attribute: the id of the transcript message being recognised.
    pub new_recognition_result_message_id: Option<&'a str>,
}

/// Format of `ack_time`, as the Python service writes it.
pub const ACK_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// An event as it travels on the bus: the JSON text a desktop receives (with its `offset`), plus
/// the two fields routing needs, read once when the event enters a process.
#[derive(Debug)]
pub struct BusEvent {
    pub offset: u64,
    pub data_type: EventType,
    pub payload: Box<RawValue>,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed bus event: {0}")]
pub struct MalformedBusEvent(#[from] serde_json::Error);

impl BusEvent {
    /// Reads the routing fields of a stored or published event text.
    pub fn from_payload(payload: String) -> Result<Arc<Self>, MalformedBusEvent> {
        #[derive(Deserialize)]
        struct Routing {
            offset: u64,
            data_type: EventType,
        }
        let routing: Routing = serde_json::from_str(&payload)?;
        Ok(Arc::new(Self {
            offset: routing.offset,
            data_type: routing.data_type,
            payload: RawValue::from_string(payload)?,
        }))
    }

    pub fn json(&self) -> &str {
        self.payload.get()
    }
}

/// An event on its way into the bus: serialised once, the offset not yet assigned.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub conversation: ConversationName,
    pub data_type: EventType,
    /// The serialised [`ConversationEvent`], a JSON object without `offset`.
    pub json: String,
    /// The Pub/Sub message id, for redelivery detection (per event type).
    pub message_id: Option<String>,
}

impl PendingEvent {
    pub fn new(
        conversation: ConversationName,
        event: &ConversationEvent<'_>,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            conversation,
            data_type: event.data_type,
            json: serde_json::to_string(event)?,
            message_id: event
                .message_id
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
        })
    }
}

/// Appends `"offset": N` to a serialised event object, appending to the text rather than
/// re-serialising. The Redis publish script does the same in Lua (see `bus/redis_store.rs`).
pub fn with_offset(json: &str, offset: u64) -> String {
    debug_assert!(json.ends_with('}'));
    let body = &json[..json.len() - 1];
    let separator = if body.trim_end().ends_with('{') {
        ""
    } else {
        ","
    };
    format!("{body}{separator}\"offset\":{offset}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for t in EventType::PUBSUB {
            assert!(t.is_pubsub());
            assert_eq!(t.route(), format!("/{}", t.as_str()));
        }
        assert!(!EventType::VirtualAgentEvent.is_pubsub());
        assert_eq!(
            "virtual-agent-event".parse::<EventType>().unwrap(),
            EventType::VirtualAgentEvent
        );
        assert!("nope".parse::<EventType>().is_err());
    }

    #[test]
    fn recognition_fields_only_on_recognition_events() {
        let mut event = ConversationEvent {
            conversation_name: "projects/p/conversations/c",
            data: "{}",
            data_type: EventType::NewMessageEvent,
            ack_time: "2026-01-01T00:00:00Z".into(),
            publish_time: Some("t"),
            message_id: Some("m"),
            recognition: None,
        };
        let json: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert!(json.get("participant_role").is_none());
        event.recognition = Some(RecognitionAttributes {
            participant_role: Some("END_USER"),
            new_recognition_result_message_id: None,
        });
        let json: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(json["participant_role"], "END_USER");
        assert!(json["new_recognition_result_message_id"].is_null());
    }

    #[test]
    fn offset_is_appended_and_read_back() {
        let text = with_offset(
            r#"{"data_type":"new-message-event","data":"{}"}"#,
            1_763_000_000_000_001,
        );
        let event = BusEvent::from_payload(text.clone()).unwrap();
        assert_eq!(event.offset, 1_763_000_000_000_001);
        assert_eq!(event.data_type, EventType::NewMessageEvent);
        assert_eq!(event.json(), text);
        assert_eq!(with_offset("{}", 3), r#"{"offset":3}"#);
    }
}
