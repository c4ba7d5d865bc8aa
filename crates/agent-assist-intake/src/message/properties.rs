//! Property tests of message -> event: any Pub/Sub message (data of any bytes or JSON, the
//! conversation of any type or spelling, ids around the length limit, any attributes) is either
//! the event its data states or a refusal with one of the documented reasons; and a valid
//! Dialogflow event becomes an event that carries its data text unchanged under the location-free
//! conversation name.

use chrono::TimeZone;
use proptest::prelude::*;
use proptest_inputs::{conversation_names, json};
use serde_json::{Map, Value};

use super::*;

/// The reasons [`PubsubMessage::to_event`] gives, each followed by detail for some.
const REASONS: &[&str] = &[
    "message id is longer than 256 bytes",
    "message data is not UTF-8 text",
    "message data is not a JSON object",
    "message data has no conversation",
    "invalid conversation: ",
    "cannot serialise the event",
];

fn received_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 13, 4, 5).unwrap()
}

fn event_type() -> impl Strategy<Value = EventType> {
    prop::sample::select(EventType::ALL.to_vec())
}

/// A would-be conversation field: valid and hostile names, and every other JSON type.
fn conversation_field() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => conversation_names::any_name().prop_map(Value::String),
        1 => json::value(),
    ]
}

/// Dialogflow-like event data: an object with a conversation field among others, the same inside
/// non-objects (an array, a string), any JSON, any bytes, deep nesting, and near-valid texts.
fn data() -> impl Strategy<Value = Vec<u8>> {
    let object = (
        conversation_field(),
        json::value_using_keys(&["conversation", "payload"]),
    )
        .prop_map(|(conversation, extra)| {
            let mut object = match extra {
                Value::Object(extra) => extra,
                _ => Map::new(),
            };
            object.insert("conversation".to_owned(), conversation);
            Value::Object(object)
        })
        .boxed();
    let valid_text = conversation_names::valid()
        .prop_map(|name| serde_json::json!({ "conversation": name.raw }).to_string());
    prop_oneof![
        4 => object.clone().prop_map(json_text),
        1 => object.clone().prop_map(|o| json_text(Value::Array(vec![o["conversation"].clone()]))),
        1 => object.prop_map(|o| json_text(Value::Array(vec![o]))),
        1 => conversation_field().prop_map(json_text),
        1 => json::value().prop_map(json_text),
        1 => prop::collection::vec(any::<u8>(), 0..128),
        1 => json::deeply_nested_text().prop_map(String::into_bytes),
        2 => valid_text.prop_flat_map(proptest_inputs::mutation::near_text).prop_map(String::into_bytes),
    ]
}

fn json_text(value: Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

fn message() -> impl Strategy<Value = PubsubMessage> {
    let id = prop_oneof![
        "[0-9]{1,20}",
        Just(String::new()),
        (255..=258usize).prop_map(|len| "7".repeat(len)),
        json::string(),
    ];
    let attributes = prop::collection::hash_map(
        prop_oneof![
            prop::sample::select(vec!["participant_role", "message_id"]).prop_map(str::to_owned),
            json::string(),
        ],
        json::string(),
        0..4,
    );
    (
        data(),
        prop::option::of(id),
        prop::option::of(json::string()),
        attributes,
    )
        .prop_map(
            |(data, message_id, publish_time, attributes)| PubsubMessage {
                data,
                message_id,
                publish_time,
                attributes,
            },
        )
}

/// What the event must say for `message`, per the event model.
fn expected_event(message: &PubsubMessage, data_type: EventType, name: &str) -> Value {
    let text = std::str::from_utf8(&message.data).unwrap();
    let mut event = serde_json::json!({
        "conversation_name": name,
        "data": text,
        "data_type": data_type.as_str(),
        "ack_time": "2026-11-23T13:04:05Z",
        "publish_time": message.publish_time,
        "message_id": message.message_id,
    });
    if data_type == EventType::NewRecognitionResultNotificationEvent {
        let attribute = |name: &str| message.attributes.get(name).cloned().unwrap_or_default();
        event["participant_role"] = attribute("participant_role").into();
        event["new_recognition_result_message_id"] = attribute("message_id").into();
    }
    event
}

proptest! {
    #![proptest_config(proptest_inputs::config())]

    #[test]
    fn any_message_is_the_event_its_data_states_or_a_documented_refusal(
        message in message(),
        data_type in event_type(),
    ) {
        let id_too_long = message.message_id.as_ref().is_some_and(|id| id.len() > MAX_MESSAGE_ID_BYTES);
        match message.to_event(data_type, received_at()) {
            Ok(event) => {
                prop_assert!(!id_too_long);
                let data: Value = serde_json::from_slice(&message.data)
                    .map_err(|e| TestCaseError::fail(format!("accepted data that is not JSON: {e}")))?;
                prop_assert!(data.is_object(), "accepted data that is not a JSON object: {data}");
                let conversation = data["conversation"].as_str().unwrap_or_default();
                prop_assert_eq!(ConversationName::parse(conversation), Ok(event.conversation.clone()));
                prop_assert_eq!(event.data_type, data_type);
                prop_assert_eq!(
                    event.message_id.as_deref(),
                    message.message_id.as_deref().filter(|id| !id.is_empty())
                );
                let json: Value = serde_json::from_str(&event.json).unwrap();
                prop_assert_eq!(json, expected_event(&message, data_type, event.conversation.as_str()));
            }
            Err(MalformedMessage(reason)) => {
                prop_assert!(REASONS.iter().any(|r| reason.starts_with(r)), "undocumented reason {reason:?}");
                prop_assert_eq!(reason.starts_with(REASONS[0]), id_too_long);
            }
        }
    }

    #[test]
    fn valid_events_carry_their_data_unchanged(
        name in conversation_names::valid(),
        extra in prop::collection::btree_map("[a-z_]{1,12}", json::value(), 0..5),
        pretty in any::<bool>(),
        message_id in prop::option::of("[0-9]{1,20}"),
        publish_time in prop::option::of("[0-9T:.Z-]{0,30}"),
        data_type in event_type(),
    ) {
        let mut object: Map<String, Value> = extra.into_iter().collect();
        object.insert("conversation".to_owned(), Value::String(name.raw.clone()));
        let object = Value::Object(object);
        let text = if pretty {
            serde_json::to_string_pretty(&object).unwrap()
        } else {
            object.to_string()
        };
        let message = PubsubMessage {
            data: text.clone().into_bytes(),
            message_id,
            publish_time,
            attributes: [("participant_role".to_owned(), "END_USER".to_owned())].into(),
        };
        let event = message.to_event(data_type, received_at()).unwrap();
        prop_assert_eq!(event.conversation.as_str(), &name.location_free);
        let json: Value = serde_json::from_str(&event.json).unwrap();
        prop_assert_eq!(json["data"].as_str(), Some(text.as_str()));
        prop_assert_eq!(json, expected_event(&message, data_type, &name.location_free));
    }
}
