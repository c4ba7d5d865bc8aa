//! The virtual agent's context: what a desktop gets as the `data` of a `virtual-agent-event`.
//!
//! From a standard call, in CX's own names (camel case, as the Dialogflow JSON of the other
//! events):
//!
//! ```json
//! {
//!   "source": "dialogflow-cx-webhook",
//!   "detectIntentResponseId": "...", "session": "projects/.../sessions/...", "tag": "handoff",
//!   "languageCode": "en",
//!   "parameters": { "reason": "refund", ... },
//!   "intent": { "name": "projects/.../intents/...", "displayName": "refund", "confidence": 0.92, "parameters": {...} },
//!   "page": { "name": "projects/.../pages/...", "displayName": "Refund" },
//!   "sentiment": { "score": -0.4, "magnitude": 0.8 },
//!   "input": { "text": "I want my money back" },
//!   "messages": [ { "text": { "text": ["Let me get you an agent."] } } ],
//!   "callerId": "+15551234"
//! }
//! ```
//!
//! Fields the call does not carry are left out. `messages` are CX's `ResponseMessage`s
//! unchanged. From a flexible call, whose shape the agent designer chose:
//! `{"source": "dialogflow-cx-flexible-webhook", "method", "query": {name: value}, "body"}`.

use agent_assist_core::event::{ConversationEvent, EventType, PendingEvent, ACK_TIME_FORMAT};
use agent_assist_core::ConversationName;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::request::{FlexibleRequest, StandardRequest};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StandardContext<'a> {
    source: &'static str,
    detect_intent_response_id: &'a str,
    session: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language_code: Option<&'a str>,
    parameters: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    intent: Option<Intent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<Page<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sentiment: Option<Sentiment>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    input: Map<String, Value>,
    #[serde(skip_serializing_if = "<[Value]>::is_empty")]
    messages: &'a [Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    caller_id: Option<&'a Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Intent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a Map<String, Value>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
}

#[derive(Serialize)]
struct Sentiment {
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    magnitude: Option<f64>,
}

#[derive(Serialize)]
struct FlexibleContext<'a> {
    source: &'static str,
    method: &'a str,
    query: Map<String, Value>,
    body: Option<&'a Map<String, Value>>,
}

/// The context of a standard call, as JSON text.
pub fn of_standard(request: &StandardRequest) -> Result<String, serde_json::Error> {
    let empty = Map::new();
    let mut input = Map::new();
    for (name, value) in [
        ("text", &request.text),
        ("transcript", &request.transcript),
        ("triggerIntent", &request.trigger_intent),
        ("triggerEvent", &request.trigger_event),
        ("dtmfDigits", &request.dtmf_digits),
    ] {
        if let Some(value) = value {
            input.insert(name.to_owned(), Value::from(value.as_str()));
        }
    }
    serde_json::to_string(&StandardContext {
        source: "dialogflow-cx-webhook",
        detect_intent_response_id: request.id(),
        session: request.session(),
        tag: Some(request.tag()).filter(|t| !t.is_empty()),
        language_code: request.language_code.as_deref(),
        parameters: request.parameters().unwrap_or(&empty),
        intent: request.intent_info.as_ref().map(|i| Intent {
            name: i.last_matched_intent.as_deref(),
            display_name: i.display_name.as_deref(),
            confidence: i.confidence,
            parameters: i.parameters.as_ref(),
        }),
        page: request.page_info.as_ref().map(|p| Page {
            name: p.current_page.as_deref(),
            display_name: p.display_name.as_deref(),
        }),
        sentiment: request
            .sentiment_analysis_result
            .as_ref()
            .map(|s| Sentiment {
                score: s.score,
                magnitude: s.magnitude,
            }),
        input,
        messages: &request.messages,
        caller_id: request.caller_id(),
    })
}

/// The context of a flexible call, as JSON text.
pub fn of_flexible(request: &FlexibleRequest) -> Result<String, serde_json::Error> {
    let query = request
        .query
        .iter()
        .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
        .collect();
    serde_json::to_string(&FlexibleContext {
        source: "dialogflow-cx-flexible-webhook",
        method: request.method.as_str(),
        query,
        body: request.body.as_ref(),
    })
}

/// The `virtual-agent-event` carrying `context` to `conversation`: `publish_time` is when CX
/// called, `ack_time` when the event entered the bus (later for a context that waited for its
/// integration key), `message_id` the call's identity (the bus drops a second publish of it).
pub fn event(
    conversation: &ConversationName,
    context: &str,
    message_id: &str,
    called_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<PendingEvent, serde_json::Error> {
    let publish_time = called_at.to_rfc3339_opts(SecondsFormat::Millis, true);
    PendingEvent::new(
        conversation.clone(),
        &ConversationEvent {
            conversation_name: conversation.as_str(),
            data: context,
            data_type: EventType::VirtualAgentEvent,
            ack_time: now.format(ACK_TIME_FORMAT).to_string(),
            publish_time: Some(&publish_time),
            message_id: Some(message_id),
            recognition: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Method, Uri};
    use chrono::TimeZone;

    #[test]
    fn a_standard_context_carries_what_the_agent_needs() {
        let body = serde_json::json!({
            "detectIntentResponseId": "d-1",
            "languageCode": "en",
            "fulfillmentInfo": {"tag": "handoff"},
            "intentInfo": {"lastMatchedIntent": "i", "displayName": "refund", "confidence": 0.5},
            "pageInfo": {"currentPage": "p", "displayName": "Refund"},
            "sessionInfo": {"session": "s", "parameters": {"reason": "refund"}},
            "messages": [{"text": {"text": ["One moment."]}}],
            "payload": {"telephony": {"caller_id": "+1555"}},
            "sentimentAnalysisResult": {"score": -0.4, "magnitude": 0.8},
            "transcript": "refund please",
        });
        let request = StandardRequest::parse(body.to_string().as_bytes()).unwrap();
        let context: Value = serde_json::from_str(&of_standard(&request).unwrap()).unwrap();
        assert_eq!(
            context,
            serde_json::json!({
                "source": "dialogflow-cx-webhook",
                "detectIntentResponseId": "d-1",
                "session": "s",
                "tag": "handoff",
                "languageCode": "en",
                "parameters": {"reason": "refund"},
                "intent": {"name": "i", "displayName": "refund", "confidence": 0.5},
                "page": {"name": "p", "displayName": "Refund"},
                "sentiment": {"score": -0.4, "magnitude": 0.8},
                "input": {"transcript": "refund please"},
                "messages": [{"text": {"text": ["One moment."]}}],
                "callerId": "+1555",
            })
        );
    }

    #[test]
    fn a_minimal_context_leaves_out_what_was_not_sent() {
        let body = br#"{"detectIntentResponseId": "d", "sessionInfo": {"session": "s"}}"#;
        let request = StandardRequest::parse(body).unwrap();
        let context: Value = serde_json::from_str(&of_standard(&request).unwrap()).unwrap();
        assert_eq!(
            context,
            serde_json::json!({
                "source": "dialogflow-cx-webhook", "detectIntentResponseId": "d",
                "session": "s", "parameters": {},
            })
        );
    }

    #[test]
    fn a_flexible_context_is_what_the_designer_sent() {
        let uri: Uri = "/f?conversation=c&reason=late".parse().unwrap();
        let request = FlexibleRequest::parse(Method::PUT, &uri, br#"{"a": [1]}"#).unwrap();
        let context: Value = serde_json::from_str(&of_flexible(&request).unwrap()).unwrap();
        assert_eq!(
            context,
            serde_json::json!({
                "source": "dialogflow-cx-flexible-webhook", "method": "PUT",
                "query": {"conversation": "c", "reason": "late"}, "body": {"a": [1]},
            })
        );
    }

    #[test]
    fn the_event_is_a_virtual_agent_event() {
        let conversation = ConversationName::parse("projects/p/conversations/c").unwrap();
        let called = Utc.with_ymd_and_hms(2026, 11, 23, 13, 0, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 13, 0, 5).unwrap();
        let event = event(&conversation, r#"{"x":1}"#, "cx-abc", called, now).unwrap();
        assert_eq!(event.data_type, EventType::VirtualAgentEvent);
        assert_eq!(event.message_id.as_deref(), Some("cx-abc"));
        let json: Value = serde_json::from_str(&event.json).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "conversation_name": "projects/p/conversations/c",
                "data": r#"{"x":1}"#,
                "data_type": "virtual-agent-event",
                "ack_time": "2026-11-23T13:00:05Z",
                "publish_time": "2026-11-23T13:00:00.000Z",
                "message_id": "cx-abc",
            })
        );
    }
}
