//! Pub/Sub push envelopes in, conversation events out.
//!
//! A push body is `{"message": {"data": <base64>, "messageId", "publishTime", "attributes"},
//! "subscription"}`; Pub/Sub also sends `message_id` and `publish_time`, and either spelling is
//! accepted. The decoded data is the Dialogflow event, whose `conversation` field routes it.
//! Everything that can be wrong with a push is a [`MalformedPush`] with a reason for the 400.

use std::borrow::Cow;
use std::collections::HashMap;

use agent_assist_core::event::{
    ConversationEvent, EventType, PendingEvent, RecognitionAttributes, ACK_TIME_FORMAT,
};
use agent_assist_core::ConversationName;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Why a push was refused; the text follows `Bad Request: ` in the response.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct MalformedPush(pub String);

fn malformed(reason: impl Into<String>) -> MalformedPush {
    MalformedPush(reason.into())
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
    #[serde(rename = "messageId", borrow)]
    message_id_camel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message_id: Option<Cow<'a, str>>,
    #[serde(rename = "publishTime", borrow)]
    publish_time_camel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    publish_time: Option<Cow<'a, str>>,
    #[serde(default)]
    attributes: HashMap<String, String>,
}

#[derive(Deserialize)]
struct DialogflowEvent<'a> {
    #[serde(borrow)]
    conversation: Option<Cow<'a, str>>,
}

/// Parses a push body for the endpoint of `data_type`, received at `received_at`.
pub fn parse(
    body: &[u8],
    data_type: EventType,
    received_at: DateTime<Utc>,
) -> Result<PendingEvent, MalformedPush> {
    if body.is_empty() {
        return Err(malformed("empty body"));
    }
    let envelope: Envelope<'_> = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("body is not a JSON push envelope: {e}")))?;
    let message = envelope
        .message
        .ok_or_else(|| malformed("no message in the push envelope"))?;
    let encoded = message
        .data
        .ok_or_else(|| malformed("no data in the message"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| malformed(format!("message data is not base64: {e}")))?;
    let data =
        String::from_utf8(decoded).map_err(|_| malformed("message data is not UTF-8 text"))?;
    let event: DialogflowEvent<'_> = serde_json::from_str(&data)
        .map_err(|e| malformed(format!("message data is not a JSON object: {e}")))?;
    let raw_conversation = event
        .conversation
        .ok_or_else(|| malformed("message data has no conversation"))?;
    let conversation = ConversationName::parse(&raw_conversation)
        .map_err(|e| malformed(format!("invalid conversation: {e}")))?;

    let message_id = message.message_id_camel.or(message.message_id);
    let publish_time = message.publish_time_camel.or(message.publish_time);
    let recognition = (data_type == EventType::NewRecognitionResultNotificationEvent).then(|| {
        RecognitionAttributes {
            participant_role: message
                .attributes
                .get("participant_role")
                .map(String::as_str),
            new_recognition_result_message_id: message
                .attributes
                .get("message_id")
                .map(String::as_str),
        }
    });
    let published = ConversationEvent {
        conversation_name: conversation.as_str(),
        data: &data,
        data_type,
        ack_time: received_at.format(ACK_TIME_FORMAT).to_string(),
        publish_time: publish_time.as_deref(),
        message_id: message_id.as_deref(),
        recognition,
    };
    PendingEvent::new(conversation.clone(), &published)
        .map_err(|e| malformed(format!("cannot serialise the event: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn envelope(data: &str, extra: &str) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        format!(
            r#"{{"message":{{"data":"{b64}"{extra}}},"subscription":"projects/p/subscriptions/s"}}"#
        )
        .into_bytes()
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 13, 4, 5).unwrap()
    }

    #[test]
    fn builds_the_event_desktops_expect() {
        let data = r#"{"conversation":"projects/p/locations/global/conversations/c1","x":1}"#;
        let body = envelope(
            data,
            r#","messageId":"m1","publishTime":"2026-11-23T13:04:04.123Z","attributes":{"participant_role":"END_USER","message_id":"mm"}"#,
        );
        let event = parse(
            &body,
            EventType::NewRecognitionResultNotificationEvent,
            at(),
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

    #[test]
    fn accepts_snake_case_spellings() {
        let data = r#"{"conversation":"projects/p/conversations/c1"}"#;
        let body = envelope(data, r#","message_id":"m2","publish_time":"t""#);
        let event = parse(&body, EventType::NewMessageEvent, at()).unwrap();
        let json: serde_json::Value = serde_json::from_str(&event.json).unwrap();
        assert_eq!(json["message_id"], "m2");
        assert_eq!(json["publish_time"], "t");
        assert!(json.get("participant_role").is_none());
    }

    #[test]
    fn every_malformed_case_has_a_reason() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "empty body"),
            (b"not json".to_vec(), "not a JSON push envelope"),
            (b"{}".to_vec(), "no message"),
            (br#"{"message":{}}"#.to_vec(), "no data"),
            (br#"{"message":{"data":"***"}}"#.to_vec(), "not base64"),
            (envelope("not json", ""), "not a JSON object"),
            (envelope("[1,2]", ""), "not a JSON object"),
            (envelope(r#"{"x":1}"#, ""), "no conversation"),
            (
                envelope(r#"{"conversation":""}"#, ""),
                "invalid conversation",
            ),
        ];
        for (body, reason) in cases {
            let err = parse(&body, EventType::NewMessageEvent, at()).unwrap_err();
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
        assert!(parse(non_utf8.as_bytes(), EventType::NewMessageEvent, at())
            .unwrap_err()
            .0
            .contains("UTF-8"));
    }
}
