//! Property tests of the join argument: any JSON a Socket.IO client can send (alone or as the
//! first of several arguments) is either a request for exactly the conversation and offset it
//! states, or a refusal with a reason for the acknowledgement; both valid forms round-trip.

use proptest::prelude::*;
use proptest_inputs::{conversation_names, json};
use serde_json::{json, Value};

use super::*;

/// Reasons of the parser itself; the rest are [`ConversationName::parse`]'s.
const OWN_REASONS: &[&str] = &[
    "conversation_name must be a string",
    "since must be a non-negative integer offset",
    "expected a conversation name or {conversation_name, since}",
];

/// `since` values: valid offsets, the 2^53 boundary, and every other JSON type.
fn since() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0..=MAX_OFFSET).prop_map(Value::from),
        prop::sample::select(vec![MAX_OFFSET, MAX_OFFSET + 1, u64::MAX]).prop_map(Value::from),
        Just(Value::Null),
        json::value(),
    ]
}

/// Join arguments: names (valid, hostile, of any type), recovery objects with any fields, any
/// JSON, each alone or first of an array.
fn argument() -> impl Strategy<Value = Option<Value>> {
    let name = prop_oneof![
        3 => conversation_names::any_name().prop_map(Value::String),
        1 => json::value(),
    ];
    let recovery = (
        prop::option::of(name.clone()),
        prop::option::of(since()),
        json::value_using_keys(&["conversation_name", "since"]),
    )
        .prop_map(|(name, since, extra)| {
            let mut object = match extra {
                Value::Object(object) => object,
                _ => Default::default(),
            };
            if let Some(name) = name {
                object.insert("conversation_name".to_owned(), name);
            }
            if let Some(since) = since {
                object.insert("since".to_owned(), since);
            }
            Value::Object(object)
        });
    let one = prop_oneof![name, recovery, json::value()];
    prop_oneof![
        Just(None),
        one.clone().prop_map(Some),
        (one, prop::collection::vec(json::value(), 0..3)).prop_map(|(first, mut rest)| {
            rest.insert(0, first);
            Some(Value::Array(rest))
        }),
    ]
}

/// The request the argument states, restated from the module docs: a name, or an object with a
/// `conversation_name` string and an optional (or null) `since` within exact JavaScript numbers.
fn stated(argument: &Option<Value>) -> Option<(String, Option<u64>)> {
    let request = match argument {
        Some(Value::Array(args)) => args.first()?,
        other => other.as_ref()?,
    };
    match request {
        Value::String(name) => Some((name.clone(), None)),
        Value::Object(fields) => {
            let name = fields.get("conversation_name")?.as_str()?.to_owned();
            let since = match fields.get("since") {
                None | Some(Value::Null) => None,
                Some(since) => Some(since.as_u64().filter(|&s| s < 1 << 53)?),
            };
            Some((name, since))
        }
        _ => None,
    }
}

proptest! {
    #![proptest_config(proptest_inputs::config())]

    #[test]
    fn any_argument_is_the_request_it_states_or_a_reason(argument in argument()) {
        let stated = stated(&argument);
        match JoinRequest::parse(argument) {
            Ok(request) => {
                let (name, since) = stated.expect("accepted an argument that states no request");
                prop_assert_eq!(Ok(request.conversation), ConversationName::parse(&name));
                prop_assert_eq!(request.since, since);
            }
            Err(reason) => {
                let name_refused = stated.is_some_and(|(name, _)| ConversationName::parse(&name).is_err());
                prop_assert!(
                    OWN_REASONS.contains(&reason.as_str())
                        || (name_refused && reason.contains("conversation name")),
                    "{reason:?}"
                );
            }
        }
    }

    #[test]
    fn both_forms_round_trip(
        name in conversation_names::valid(),
        since in prop::option::of(0..=MAX_OFFSET),
        null_since in any::<bool>(),
        more in prop::collection::vec(json::value(), 0..3),
    ) {
        let recovery = match (since, null_since) {
            (Some(since), _) => json!({ "conversation_name": name.raw, "since": since }),
            (None, true) => json!({ "conversation_name": name.raw, "since": null }),
            (None, false) => json!({ "conversation_name": name.raw }),
        };
        let mut as_array = vec![recovery.clone()];
        as_array.extend(more);
        for (argument, expected_since) in [
            (Value::String(name.raw.clone()), None),
            (recovery, since),
            (Value::Array(as_array), since),
        ] {
            let request = JoinRequest::parse(Some(argument)).unwrap();
            prop_assert_eq!(request.conversation.as_str(), &name.location_free);
            prop_assert_eq!(request.since, expected_since);
        }
    }
}
