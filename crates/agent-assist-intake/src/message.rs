//! A Pub/Sub message in, the conversation event desktops receive out.
//!
//! The message's data is the Dialogflow event JSON, whose `conversation` field routes it; its
//! attributes carry, for recognition results, the participant role and the transcript message
//! id. Everything that can be wrong with a message is a [`MalformedMessage`] with a reason:
//! no redelivery can fix it, so it is answered 400 (push) and left to the subscription's
//! dead-letter policy.

use std::collections::HashMap;

use agent_assist_core::event::{
    ConversationEvent, EventType, PendingEvent, RecognitionAttributes, ACK_TIME_FORMAT,
};
use agent_assist_core::ConversationName;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Why a message can never be published; the text follows `Bad Request: ` in a push answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct MalformedMessage(pub String);

pub(crate) fn malformed(reason: impl Into<String>) -> MalformedMessage {
    MalformedMessage(reason.into())
}

/// Longest Pub/Sub message id accepted. Pub/Sub's are decimal numbers of about 16 digits; the
/// bound keeps hostile ids out of Redis keys and logs.
pub const MAX_MESSAGE_ID_BYTES: usize = 256;

/// The parts of a Pub/Sub message the backend uses, whichever way it arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PubsubMessage {
    /// The message data, decoded (push envelopes carry it base64-encoded).
    pub data: Vec<u8>,
    pub message_id: Option<String>,
    pub publish_time: Option<String>,
    pub attributes: HashMap<String, String>,
}

#[derive(Deserialize)]
struct DialogflowEvent<'a> {
    #[serde(borrow)]
    conversation: Option<std::borrow::Cow<'a, str>>,
}

impl PubsubMessage {
    /// The event to publish for a message received on `data_type`'s subscription at
    /// `received_at`.
    pub fn to_event(
        &self,
        data_type: EventType,
        received_at: DateTime<Utc>,
    ) -> Result<PendingEvent, MalformedMessage> {
        if let Some(id) = &self.message_id {
            if id.len() > MAX_MESSAGE_ID_BYTES {
                return Err(malformed(format!(
                    "message id is longer than {MAX_MESSAGE_ID_BYTES} bytes"
                )));
            }
        }
        let data = std::str::from_utf8(&self.data)
            .map_err(|_| malformed("message data is not UTF-8 text"))?;
        let event: DialogflowEvent<'_> = serde_json::from_str(data)
            .map_err(|e| malformed(format!("message data is not a JSON object: {e}")))?;
        // serde also reads a struct from an array of its fields (`["projects/p/..."]`); valid
        // JSON that does not start with `{` is not an object.
        if !data
            .trim_start_matches([' ', '\t', '\n', '\r'])
            .starts_with('{')
        {
            return Err(malformed("message data is not a JSON object"));
        }
        let raw_conversation = event
            .conversation
            .ok_or_else(|| malformed("message data has no conversation"))?;
        let conversation = ConversationName::parse(&raw_conversation)
            .map_err(|e| malformed(format!("invalid conversation: {e}")))?;
        // A missing attribute is `""`, never `null`: the Python interceptor starts both from
        // `""` and only overwrites them with attributes that are present.
        let attribute = |name: &str| Some(self.attributes.get(name).map_or("", String::as_str));
        let recognition =
            (data_type == EventType::NewRecognitionResultNotificationEvent).then(|| {
                RecognitionAttributes {
                    participant_role: attribute("participant_role"),
                    new_recognition_result_message_id: attribute("message_id"),
                }
            });
        let published = ConversationEvent {
            conversation_name: conversation.as_str(),
            data,
            data_type,
            ack_time: received_at.format(ACK_TIME_FORMAT).to_string(),
            publish_time: self.publish_time.as_deref(),
            message_id: self.message_id.as_deref(),
            recognition,
        };
        PendingEvent::new(conversation.clone(), &published)
            .map_err(|e| malformed(format!("cannot serialise the event: {e}")))
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{self, PushEnvelope};
    use base64::Engine;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 13, 4, 5).unwrap()
    }

    /// A push body all the way to the event, as the push endpoints do it.
    fn event_of(body: &[u8], data_type: EventType) -> Result<PendingEvent, MalformedMessage> {
        envelope::parse(body)?.to_event(data_type, at())
    }

    #[test]
    fn builds_the_event_desktops_expect() {
        let data = r#"{"conversation":"projects/p/locations/global/conversations/c1","x":1}"#;
        let body = PushEnvelope::new(data)
            .message_id("m1")
            .publish_time("2026-11-23T13:04:04.123Z")
            .attribute("participant_role", "END_USER")
            .attribute("message_id", "mm")
            .to_body();
        let event = event_of(
            body.as_bytes(),
            EventType::NewRecognitionResultNotificationEvent,
        )
        .unwrap();
        assert_eq!(event.conversation.as_str(), "projects/p/conversations/c1");
        assert_eq!(event.message_id.as_deref(), Some("m1"));
        let json: serde_json::Value = serde_json::from_str(&event.json).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "conversation_name": "projects/p/conversations/c1",
                "data": data,
                "data_type": "new-recognition-result-notification-event",
                "ack_time": "2026-11-23T13:04:05Z",
                "publish_time": "2026-11-23T13:04:04.123Z",
                "message_id": "m1",
                "participant_role": "END_USER",
                "new_recognition_result_message_id": "mm",
            })
        );
    }

    /// The Python interceptor sets both fields to `""` and overwrites them only with attributes
    /// that are present (`cloud-pubsub-interceptor/main.py:66-67,74-80,106-108` at 9425334).
    #[test]
    fn missing_recognition_attributes_are_empty_strings() {
        let data = r#"{"conversation":"projects/p/conversations/c1"}"#;
        let fields = |envelope: PushEnvelope| {
            let event = event_of(
                envelope.to_body().as_bytes(),
                EventType::NewRecognitionResultNotificationEvent,
            )
            .unwrap();
            let json: serde_json::Value = serde_json::from_str(&event.json).unwrap();
            (
                json["participant_role"].clone(),
                json["new_recognition_result_message_id"].clone(),
            )
        };
        assert_eq!(
            fields(PushEnvelope::new(data).message_id("m3")),
            (serde_json::json!(""), serde_json::json!(""))
        );
        assert_eq!(
            fields(
                PushEnvelope::new(data)
                    .message_id("m4")
                    .attribute("participant_role", "HUMAN_AGENT")
            ),
            (serde_json::json!("HUMAN_AGENT"), serde_json::json!(""))
        );
        assert_eq!(
            fields(
                PushEnvelope::new(data)
                    .message_id("m5")
                    .attribute("message_id", "mm")
            ),
            (serde_json::json!(""), serde_json::json!("mm"))
        );
    }

    #[test]
    fn recognition_fields_only_on_recognition_events() {
        let body = PushEnvelope::new(r#"{"conversation":"projects/p/conversations/c1"}"#)
            .message_id("m2")
            .to_body();
        let event = event_of(body.as_bytes(), EventType::NewMessageEvent).unwrap();
        let json: serde_json::Value = serde_json::from_str(&event.json).unwrap();
        assert_eq!(json["message_id"], "m2");
        assert!(json.get("participant_role").is_none());
    }

    #[test]
    fn every_malformed_case_has_a_reason() {
        let wrap = |data: &str| PushEnvelope::new(data).to_body().into_bytes();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "empty body"),
            (b"not json".to_vec(), "not a JSON push envelope"),
            (b"{}".to_vec(), "no message"),
            (br#"{"message":{}}"#.to_vec(), "no data"),
            (br#"{"message":{"data":"***"}}"#.to_vec(), "not base64"),
            (wrap("not json"), "not a JSON object"),
            (wrap("[1,2]"), "not a JSON object"),
            // Found by the property tests: serde reads a struct from an array of its fields.
            (
                wrap(r#"["projects/A/conversations/A"]"#),
                "not a JSON object",
            ),
            (wrap(r#"{"x":1}"#), "no conversation"),
            (wrap(r#"{"conversation":""}"#), "invalid conversation"),
        ];
        for (body, reason) in cases {
            let err = event_of(&body, EventType::NewMessageEvent).unwrap_err();
            assert!(
                err.0.contains(reason),
                "{:?} should mention {reason:?}",
                err.0
            );
        }
        let non_utf8 = format!(
            r#"{{"message":{{"data":"{}"}}}}"#,
            base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe])
        );
        assert!(event_of(non_utf8.as_bytes(), EventType::NewMessageEvent)
            .unwrap_err()
            .0
            .contains("UTF-8"));
    }
}
