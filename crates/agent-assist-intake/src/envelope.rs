//! The push envelope: what Pub/Sub POSTs to a push endpoint.
//!
//! `{"message": {"data": <base64>, "messageId", "publishTime", "attributes"}, "subscription"}`;
//! Pub/Sub also sends `message_id` and `publish_time`, and either spelling is accepted.
//! [`parse`] reads one into a [`PubsubMessage`]; [`PushEnvelope`] builds one, for the tools and
//! tests that stand in for Pub/Sub (so there is one place that knows the format).

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine;
use serde::Deserialize;

use crate::message::{malformed, MalformedMessage, PubsubMessage};

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
    #[serde(rename = "messageId")]
    message_id_camel: Option<String>,
    message_id: Option<String>,
    #[serde(rename = "publishTime")]
    publish_time_camel: Option<String>,
    publish_time: Option<String>,
    #[serde(default)]
    attributes: HashMap<String, String>,
}

/// Reads a push body; every way it can be wrong has its reason.
pub fn parse(body: &[u8]) -> Result<PubsubMessage, MalformedMessage> {
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
    let data = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| malformed(format!("message data is not base64: {e}")))?;
    Ok(PubsubMessage {
        data,
        message_id: message.message_id_camel.or(message.message_id),
        publish_time: message.publish_time_camel.or(message.publish_time),
        attributes: message.attributes,
    })
}

/// A push body as Pub/Sub sends it, built field by field.
#[derive(Debug, Clone)]
pub struct PushEnvelope {
    data: Vec<u8>,
    message_id: Option<String>,
    publish_time: Option<String>,
    attributes: serde_json::Map<String, serde_json::Value>,
    subscription: String,
}

impl PushEnvelope {
    /// An envelope around `data` (the Dialogflow event JSON), without id, time or attributes.
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        Self {
            data: data.into(),
            message_id: None,
            publish_time: None,
            attributes: serde_json::Map::new(),
            subscription: "projects/demo-project/subscriptions/agent-assist-events".to_owned(),
        }
    }

    pub fn message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    pub fn publish_time(mut self, time: impl Into<String>) -> Self {
        self.publish_time = Some(time.into());
        self
    }

    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes
            .insert(name.into(), serde_json::Value::String(value.into()));
        self
    }

    pub fn subscription(mut self, subscription: impl Into<String>) -> Self {
        self.subscription = subscription.into();
        self
    }

    /// The envelope as JSON, in Pub/Sub's camel-case spelling.
    pub fn to_json(&self) -> serde_json::Value {
        let mut message = serde_json::json!({
            "data": base64::engine::general_purpose::STANDARD.encode(&self.data),
            "attributes": self.attributes,
        });
        if let Some(id) = &self.message_id {
            message["messageId"] = id.as_str().into();
        }
        if let Some(time) = &self.publish_time {
            message["publishTime"] = time.as_str().into();
        }
        serde_json::json!({ "message": message, "subscription": self.subscription })
    }

    /// The body to POST.
    pub fn to_body(&self) -> String {
        self.to_json().to_string()
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_envelopes_parse_back() {
        let body = PushEnvelope::new(r#"{"conversation":"c"}"#)
            .message_id("m1")
            .publish_time("2026-11-23T13:04:04.123Z")
            .attribute("participant_role", "END_USER")
            .to_body();
        let message = parse(body.as_bytes()).unwrap();
        assert_eq!(message.data, br#"{"conversation":"c"}"#);
        assert_eq!(message.message_id.as_deref(), Some("m1"));
        assert_eq!(
            message.publish_time.as_deref(),
            Some("2026-11-23T13:04:04.123Z")
        );
        assert_eq!(message.attributes["participant_role"], "END_USER");
    }

    #[test]
    fn snake_case_spellings_are_accepted() {
        let body = br#"{"message":{"data":"e30=","message_id":"m2","publish_time":"t"}}"#;
        let message = parse(body).unwrap();
        assert_eq!(message.message_id.as_deref(), Some("m2"));
        assert_eq!(message.publish_time.as_deref(), Some("t"));
    }
}
