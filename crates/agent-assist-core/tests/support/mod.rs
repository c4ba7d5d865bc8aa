//! What the bus's integration tests share: the events they publish.

use agent_assist_core::event::{ConversationEvent, PendingEvent};
use agent_assist_core::{ConversationName, EventType};

/// Event `n` of `data_type` for `conversation`: its data names both, so a test can tell
/// events apart on arrival.
pub fn event_of(
    data_type: EventType,
    conversation: &str,
    n: u32,
    message_id: Option<&str>,
) -> PendingEvent {
    let data = format!(r#"{{"conversation":"{conversation}","n":{n}}}"#);
    let event = ConversationEvent {
        conversation_name: conversation,
        data: &data,
        data_type,
        ack_time: "2026-11-23T13:00:00Z".into(),
        publish_time: Some("2026-11-23T12:59:59.000Z"),
        message_id,
        recognition: None,
    };
    PendingEvent::new(ConversationName::parse(conversation).unwrap(), &event).unwrap()
}
