//! The argument of `join-conversation` and `leave-conversation`.
//!
//! Desktops send a conversation name (with or without its location); the recovery extension
//! sends `{"conversation_name": ..., "since": <offset>}` instead. Anything else is refused with
//! a reason that goes back in the acknowledgement.

use agent_assist_core::ConversationName;
use serde_json::Value;

/// Largest offset accepted: offsets are exact JavaScript numbers.
const MAX_OFFSET: u64 = (1 << 53) - 1;

#[derive(Debug, PartialEq, Eq)]
pub struct JoinRequest {
    pub conversation: ConversationName,
    /// `Some` for the recovery form: replay what was kept after this offset.
    pub since: Option<u64>,
}

impl JoinRequest {
    pub fn parse(argument: Option<Value>) -> Result<Self, String> {
        // Socket.IO delivers several arguments as an array; the first one is the request.
        let argument = match argument {
            Some(Value::Array(mut args)) if !args.is_empty() => args.swap_remove(0),
            Some(other) => other,
            None => Value::Null,
        };
        match argument {
            Value::String(name) => Ok(Self {
                conversation: parse_name(&name)?,
                since: None,
            }),
            Value::Object(fields) => {
                let name = fields
                    .get("conversation_name")
                    .and_then(Value::as_str)
                    .ok_or("conversation_name must be a string")?;
                let since = match fields.get("since") {
                    None | Some(Value::Null) => None,
                    Some(value) => Some(
                        value
                            .as_u64()
                            .filter(|&o| o <= MAX_OFFSET)
                            .ok_or("since must be a non-negative integer offset")?,
                    ),
                };
                Ok(Self {
                    conversation: parse_name(name)?,
                    since,
                })
            }
            _ => Err("expected a conversation name or {conversation_name, since}".into()),
        }
    }
}

fn parse_name(name: &str) -> Result<ConversationName, String> {
    ConversationName::parse(name).map_err(|e| e.to_string())
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_forms() {
        let plain =
            JoinRequest::parse(Some(json!("projects/p/locations/l/conversations/c"))).unwrap();
        assert_eq!(plain.conversation.as_str(), "projects/p/conversations/c");
        assert_eq!(plain.since, None);
        let recovery = JoinRequest::parse(Some(
            json!([{"conversation_name": "projects/p/conversations/c", "since": 42}]),
        ))
        .unwrap();
        assert_eq!(recovery.since, Some(42));
    }

    #[test]
    fn bad_arguments_have_reasons() {
        for bad in [
            None,
            Some(json!(17)),
            Some(json!("")),
            Some(json!({"since": 1})),
            Some(json!({"conversation_name": "c", "since": -1})),
            Some(json!({"conversation_name": "c", "since": "1"})),
            Some(json!({"conversation_name": "c", "since": 9007199254740993u64})),
        ] {
            assert!(JoinRequest::parse(bad.clone()).is_err(), "{bad:?}");
        }
    }
}
