//! What the load generators push and what the sockets receive.
//!
//! Every push is a Pub/Sub push envelope around a realistic, about 1 KiB Dialogflow
//! `HumanAgentAssistantEvent` (an FAQ suggestion), base64-encoded as Pub/Sub sends it, with a
//! unique `messageId`. The event carries a `bench` object: the conversation's index, a sequence
//! number within the conversation, and the send time in nanoseconds on the harness's monotonic
//! clock ([`clock_ns`]). A socket receives it back inside the connector's event
//! (`{conversation_name, data, data_type, ack_time, publish_time, message_id, offset}`), with
//! `data` the Dialogflow JSON as text; [`parse_delivery`] reads the stamp out of it.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Instant;

use agent_assist_intake::PushEnvelope;
use bytes::Bytes;
use serde::Deserialize;

use crate::tokens::PROJECT;

/// Conversations the push and pull scenarios spread their events over: half with a socket
/// joined on connector A, half without. 100 in all, the load issue 15 specifies ("64
/// connections, a unique message id per push, 100 conversations"); 128 until 2026-12-01.
pub const THROUGHPUT_CONVERSATIONS_EACH: usize = 50;

/// The interceptor endpoint every scenario pushes to.
pub const PUSH_PATH: &str = "/human-agent-assistant-event";

/// The Socket.IO event name the pushed events arrive under.
pub const EVENT_NAME: &str = "human-agent-assistant-event";

/// Nanoseconds since the harness started, on a monotonic clock shared by every task of the
/// process (senders stamp with it, receivers compare against it).
pub fn clock_ns() -> u64 {
    clock_ns_at(Instant::now())
}

/// [`clock_ns`] of an instant taken earlier (a frame's arrival).
pub fn clock_ns_at(at: Instant) -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    at.saturating_duration_since(*BASE.get_or_init(Instant::now))
        .as_nanos() as u64
}

/// A conversation as Dialogflow names it (with a location) and as desktops join it (without).
#[derive(Debug, Clone)]
pub struct Conversation {
    pub dialogflow_name: String,
    pub join_name: String,
}

/// Conversation `index` of a scenario (`label`) in run `run_id`; names never repeat across runs.
pub fn conversation(run_id: &str, label: &str, index: usize) -> Conversation {
    let id = format!("{run_id}-{label}-{index}");
    Conversation {
        dialogflow_name: format!("projects/{PROJECT}/locations/global/conversations/{id}"),
        join_name: format!("projects/{PROJECT}/conversations/{id}"),
    }
}

/// What the harness needs back from a delivered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Stamp {
    /// Index of the conversation in its scenario.
    pub conv: u32,
    /// Sequence number within the conversation, from 0.
    pub seq: u32,
    /// [`clock_ns`] when the push was sent.
    pub sent_ns: u64,
}

/// The answer text is padded to this many bytes so the event is about 1 KiB.
const ANSWER_LEN: usize = 420;

/// The Dialogflow event JSON for one push: a `HumanAgentAssistantEvent` with an FAQ suggestion.
pub fn dialogflow_event(conversation: &Conversation, stamp: Stamp) -> String {
    static ANSWER: OnceLock<String> = OnceLock::new();
    let answer = ANSWER.get_or_init(|| {
        let text = "To change the billing date, open Account settings, choose Billing, then \
                    Payment schedule, and pick a new date; the change applies from the next cycle \
                    and a prorated amount is shown before you confirm. ";
        text.repeat(ANSWER_LEN / text.len() + 1)[..ANSWER_LEN].to_owned()
    });
    let conv = &conversation.dialogflow_name;
    format!(
        concat!(
            r#"{{"conversation":"{conv}","participant":"{conv}/participants/agent-1","#,
            r#""suggestionResults":[{{"suggestFaqAnswersResponse":{{"faqAnswers":[{{"#,
            r#""answer":"{answer}","confidence":0.87,"question":"How do I change my billing date?","#,
            r#""source":"projects/{project}/locations/global/knowledgeBases/kb-1/documents/faq-billing","#,
            r#""metadata":{{"document_display_name":"Billing FAQ"}},"#,
            r#""answerRecord":"projects/{project}/locations/global/answerRecords/ar-{conv_index}-{seq}"}}],"#,
            r#""latestMessage":"{conv}/messages/m-{seq}","contextSize":4}}}}],"#,
            r#""bench":{{"conv":{conv_index},"seq":{seq},"sent_ns":{sent_ns}}}}}"#
        ),
        conv = conv,
        answer = answer,
        project = PROJECT,
        conv_index = stamp.conv,
        seq = stamp.seq,
        sent_ns = stamp.sent_ns,
    )
}

/// The Pub/Sub push body carrying `event`, as Pub/Sub posts it.
pub fn push_body(event: &str, message_id: &str) -> Bytes {
    Bytes::from(
        PushEnvelope::new(event)
            .message_id(message_id)
            .publish_time("2026-01-01T00:00:00.000Z")
            .subscription(format!(
                "projects/{PROJECT}/subscriptions/agent-assist-events"
            ))
            .to_body(),
    )
}

/// A delivered event, as read from a Socket.IO event frame.
#[derive(Debug)]
pub struct Delivery {
    pub conversation_name: String,
    pub offset: u64,
    pub stamp: Stamp,
}

/// Reads a Socket.IO event's arguments (`["<event>", {...}]`, the frame after `42`).
pub fn parse_delivery(arguments: &str) -> anyhow::Result<Delivery> {
    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        conversation_name: Cow<'a, str>,
        #[serde(borrow)]
        data: Cow<'a, str>,
        offset: u64,
    }
    #[derive(Deserialize)]
    struct Data {
        bench: Stamp,
    }
    let (name, event): (Cow<'_, str>, Event<'_>) = serde_json::from_str(arguments)?;
    anyhow::ensure!(name == EVENT_NAME, "unexpected event {name}");
    let data: Data = serde_json::from_str(&event.data)?;
    Ok(Delivery {
        conversation_name: event.conversation_name.into_owned(),
        offset: event.offset,
        stamp: data.bench,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn events_are_about_one_kib_and_round_trip() {
        let conversation = conversation("run1", "e2e", 42);
        let stamp = Stamp {
            conv: 42,
            seq: 7,
            sent_ns: 123_456_789,
        };
        let event = dialogflow_event(&conversation, stamp);
        assert!((900..=1200).contains(&event.len()), "{} bytes", event.len());
        let parsed: serde_json::Value = serde_json::from_str(&event).unwrap();
        assert_eq!(
            parsed["conversation"],
            conversation.dialogflow_name.as_str()
        );

        let body = push_body(&event, "m-1");
        let envelope: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let data = base64::engine::general_purpose::STANDARD
            .decode(envelope["message"]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(data, event.as_bytes());

        // What the connector emits: the event with `data` as text, plus the bus fields.
        let delivered = serde_json::json!([EVENT_NAME, {
            "conversation_name": conversation.join_name,
            "data": event,
            "data_type": EVENT_NAME,
            "ack_time": "2026-01-01T00:00:00Z",
            "publish_time": "2026-01-01T00:00:00.000Z",
            "message_id": "m-1",
            "offset": 17,
        }]);
        let delivery = parse_delivery(&delivered.to_string()).unwrap();
        assert_eq!(delivery.stamp, stamp);
        assert_eq!(delivery.offset, 17);
        assert_eq!(delivery.conversation_name, conversation.join_name);
    }
}
