//! Property tests of the push envelope: any body (arbitrary bytes, arbitrary JSON, envelopes with
//! fields of the wrong type, huge ids, deep nesting, valid bodies with a few bytes changed) is
//! either a message whose every field is what the body says, or a refusal with one of the
//! documented reasons; and every envelope [`PushEnvelope`] builds parses back to its fields.

use std::collections::HashMap;

use base64::Engine;
use proptest::prelude::*;
use proptest_inputs::json;
use serde_json::{Map, Value};

use super::*;

/// The reasons [`parse`] gives, each followed by detail for some.
const REASONS: &[&str] = &[
    "empty body",
    "body is not a JSON push envelope",
    "no message in the push envelope",
    "no data in the message",
    "message data is not base64",
];

const MESSAGE_FIELDS: &[&str] = &[
    "data",
    "messageId",
    "message_id",
    "publishTime",
    "publish_time",
    "attributes",
];

fn base64_data() -> impl Strategy<Value = Value> {
    let standard = base64::engine::general_purpose::STANDARD;
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    (prop::collection::vec(any::<u8>(), 0..64), 0..4u8).prop_map(move |(bytes, how)| {
        Value::String(match how {
            0 => standard.encode(&bytes),
            1 => format!(" \n{}\t", standard.encode(&bytes)),
            2 => url_safe.encode(&bytes),
            _ => standard.encode(&bytes).trim_end_matches('=').to_owned(),
        })
    })
}

fn message_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[0-9]{1,20}".prop_map(Value::String),
        (250..3000usize).prop_map(|len| Value::String("7".repeat(len))),
        json::string().prop_map(Value::String),
    ]
}

/// A field of the right type most of the time, else absent or of any JSON type.
fn field(right: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => right.prop_map(Some),
        1 => Just(None),
        1 => json::value().prop_map(Some),
    ]
}

/// An envelope whose message fields are each right, absent or of any other JSON type, in
/// either spelling or both.
fn near_valid_envelope() -> impl Strategy<Value = Value> {
    let attributes = prop_oneof![
        prop::collection::hash_map(json::string(), json::string(), 0..4).prop_map(|m| {
            Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
        }),
        json::value_using_keys(&["participant_role", "message_id"]),
    ];
    let time = || json::string().prop_map(Value::String);
    let message = (
        field(base64_data()),
        field(message_id()),
        field(message_id()),
        field(time()),
        field(time()),
        field(attributes),
        prop::collection::vec((json::string(), json::value()), 0..3),
    )
        .prop_map(
            |(data, camel_id, snake_id, camel_time, snake_time, attributes, extra)| {
                let mut message: Map<String, Value> = extra.into_iter().collect();
                let fields = [data, camel_id, snake_id, camel_time, snake_time, attributes];
                for (name, value) in MESSAGE_FIELDS.iter().zip(fields) {
                    match value {
                        Some(value) => drop(message.insert((*name).to_owned(), value)),
                        None => drop(message.remove(*name)),
                    }
                }
                Value::Object(message)
            },
        );
    (
        prop_oneof![6 => message, 1 => json::value()],
        prop::option::of(json::value()),
    )
        .prop_map(|(message, subscription)| {
            let mut envelope = serde_json::json!({ "message": message });
            if let Some(subscription) = subscription {
                envelope["subscription"] = subscription;
            }
            envelope
        })
}

fn valid_body() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(any::<u8>(), 0..64), "[0-9]{1,20}").prop_map(|(data, id)| {
        PushEnvelope::new(data)
            .message_id(id)
            .to_body()
            .into_bytes()
    })
}

fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => json::value().prop_map(|v| v.to_string().into_bytes()),
        3 => near_valid_envelope().prop_map(|v| v.to_string().into_bytes()),
        1 => json::value_using_keys(&["message", "data", "messageId", "attributes"])
            .prop_map(|v| v.to_string().into_bytes()),
        1 => json::deeply_nested_text().prop_map(String::into_bytes),
        1 => json::deeply_nested_text().prop_map(|deep| {
            format!(r#"{{"message":{{"data":"e30=","attributes":{{}},"x":{deep}}}}}"#).into_bytes()
        }),
        2 => valid_body().prop_flat_map(proptest_inputs::mutation::near),
    ]
}

/// The message fields as the body's JSON states them; `None` where parse must have refused.
fn stated(body: &[u8]) -> Option<PubsubMessage> {
    // Lossy: bytes that are not UTF-8 can only be in fields the parser skips (it refuses them
    // elsewhere), and serde_json skips strings without checking them.
    let envelope: Value = serde_json::from_str(&String::from_utf8_lossy(body)).ok()?;
    let message = envelope.get("message")?.as_object()?;
    let text = |name: &str| message.get(name).and_then(Value::as_str).map(str::to_owned);
    let data = message.get("data")?.as_str()?;
    let attributes: HashMap<String, String> = match message.get("attributes") {
        None => HashMap::new(),
        Some(Value::Object(attributes)) => attributes
            .iter()
            .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect::<Option<_>>()?,
        Some(_) => return None,
    };
    Some(PubsubMessage {
        data: base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()?,
        message_id: text("messageId").or(text("message_id")),
        publish_time: text("publishTime").or(text("publish_time")),
        attributes,
    })
}

proptest! {
    #![proptest_config(proptest_inputs::config())]

    #[test]
    fn any_body_is_the_message_it_states_or_a_documented_refusal(body in any_body()) {
        match parse(&body) {
            Ok(message) => match serde_json::from_str::<Value>(&String::from_utf8_lossy(&body)) {
                // Nested deeper than serde_json builds a `Value` (128 levels), in a field the
                // parser skips: nothing to compare with.
                Err(e) if e.to_string().starts_with("recursion limit exceeded") => {}
                _ => prop_assert_eq!(Some(message), stated(&body)),
            },
            Err(MalformedMessage(reason)) => prop_assert!(
                REASONS.iter().any(|r| reason.starts_with(r)),
                "undocumented reason {reason:?}"
            ),
        }
    }

    #[test]
    fn valid_envelopes_in_either_spelling_parse_to_their_fields(
        data in prop::collection::vec(any::<u8>(), 0..64),
        (before, after) in ("[ \t\n\r]{0,2}", "[ \t\n\r]{0,2}"),
        (camel_id, snake_id) in (prop::option::of("[0-9]{1,20}"), prop::option::of("[0-9]{1,20}")),
        (camel_time, snake_time) in (prop::option::of(json::string()), prop::option::of(json::string())),
        attributes in prop::option::of(prop::collection::hash_map(json::string(), json::string(), 0..3)),
    ) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
        let mut message = serde_json::json!({ "data": format!("{before}{encoded}{after}") });
        let fields = [
            ("messageId", &camel_id),
            ("message_id", &snake_id),
            ("publishTime", &camel_time),
            ("publish_time", &snake_time),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                message[name] = value.as_str().into();
            }
        }
        if let Some(attributes) = &attributes {
            message["attributes"] = serde_json::to_value(attributes).unwrap();
        }
        let body = serde_json::json!({ "message": message }).to_string();
        // The camel-case spelling (Pub/Sub's JSON) wins when both are present.
        let expected = PubsubMessage {
            data,
            message_id: camel_id.or(snake_id),
            publish_time: camel_time.or(snake_time),
            attributes: attributes.unwrap_or_default(),
        };
        prop_assert_eq!(parse(body.as_bytes()), Ok(expected));
    }

    #[test]
    fn built_envelopes_parse_back_to_their_fields(
        data in prop::collection::vec(any::<u8>(), 0..512),
        message_id in prop::option::of(json::string()),
        publish_time in prop::option::of(json::string()),
        attributes in prop::collection::hash_map(json::string(), json::string(), 0..5),
        subscription in json::string(),
    ) {
        let mut envelope = PushEnvelope::new(data.clone()).subscription(subscription);
        if let Some(id) = &message_id {
            envelope = envelope.message_id(id);
        }
        if let Some(time) = &publish_time {
            envelope = envelope.publish_time(time);
        }
        for (name, value) in &attributes {
            envelope = envelope.attribute(name, value);
        }
        let expected = PubsubMessage { data, message_id, publish_time, attributes };
        prop_assert_eq!(parse(envelope.to_body().as_bytes()), Ok(expected));
    }
}
