//! Which conversation a webhook call is about.
//!
//! In order:
//! 1. A conversation name the call names itself: the session parameter
//!    `agent_assist_conversation` (standard) or the `conversation` query parameter (flexible).
//!    The webhook's answer sets that session parameter, so after the first call that found the
//!    conversation, later calls of the session name it directly.
//! 2. An integration key, mapped to a conversation by `/conversation-name`: the session
//!    parameter `conversation_integration_key`, the `integration_key` query parameter
//!    (flexible), or the caller's number (`payload.telephony.caller_id`). A key nobody mapped
//!    yet is [`Resolution::Unmapped`]: its context waits for the mapping (see `pending`).
//! 3. Neither: [`Resolution::Unrouted`], nothing is published.
//!
//! A name or key that is present but cannot be one (a number as conversation name, a key of
//! control characters...) is the designer's mistake, answered 400 so CX raises
//! `webhook.error`, rather than silently falling through to the next way.

use agent_assist_core::bus::BusError;
use agent_assist_core::integration_key::{self, IntegrationKeys};
use agent_assist_core::ConversationName;
use serde_json::Value;

use super::request::{FlexibleRequest, MalformedRequest, StandardRequest};

/// Session parameter naming the conversation; also set by the webhook's answer.
pub const CONVERSATION_PARAMETER: &str = "agent_assist_conversation";
/// Session parameter holding an integration key.
pub const INTEGRATION_KEY_PARAMETER: &str = "conversation_integration_key";
/// Flexible webhook query parameter naming the conversation.
pub const CONVERSATION_QUERY: &str = "conversation";
/// Flexible webhook query parameter holding an integration key.
pub const INTEGRATION_KEY_QUERY: &str = "integration_key";

/// What a call says about its conversation, before any lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    Conversation(ConversationName),
    IntegrationKey(String),
    Nothing,
}

/// The outcome of resolving a [`Routing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Publish to this conversation.
    Conversation(ConversationName),
    /// An integration key `/conversation-name` has not mapped (yet).
    Unmapped(String),
    /// The call names no conversation and no key.
    Unrouted,
}

impl Routing {
    pub fn of_standard(request: &StandardRequest) -> Result<Self, MalformedRequest> {
        if let Some(name) = text(
            request.parameter(CONVERSATION_PARAMETER),
            CONVERSATION_PARAMETER,
        )? {
            return conversation(&name, CONVERSATION_PARAMETER);
        }
        if let Some(key) = text(
            request.parameter(INTEGRATION_KEY_PARAMETER),
            INTEGRATION_KEY_PARAMETER,
        )? {
            return key_routing(key, INTEGRATION_KEY_PARAMETER);
        }
        if let Some(key) = text(request.caller_id(), "payload.telephony.caller_id")? {
            return key_routing(key, "payload.telephony.caller_id");
        }
        Ok(Routing::Nothing)
    }

    pub fn of_flexible(request: &FlexibleRequest) -> Result<Self, MalformedRequest> {
        if let Some(name) = request.query_value(CONVERSATION_QUERY) {
            return conversation(name, CONVERSATION_QUERY);
        }
        if let Some(key) = request.query_value(INTEGRATION_KEY_QUERY) {
            return key_routing(key.to_owned(), INTEGRATION_KEY_QUERY);
        }
        Ok(Routing::Nothing)
    }

    /// Looks an integration key up in the `/conversation-name` store.
    pub async fn resolve(self, keys: &IntegrationKeys) -> Result<Resolution, BusError> {
        match self {
            Routing::Conversation(name) => Ok(Resolution::Conversation(name)),
            Routing::Nothing => Ok(Resolution::Unrouted),
            Routing::IntegrationKey(key) => Ok(match mapped(keys, &key).await? {
                Some(name) => Resolution::Conversation(name),
                None => Resolution::Unmapped(key),
            }),
        }
    }
}

/// The conversation `key` is mapped to. A stored name that is not a conversation name (the
/// connector stores what desktops post) cannot be published to: it counts as unmapped, and the
/// context waits for a usable mapping.
pub async fn mapped(
    keys: &IntegrationKeys,
    key: &str,
) -> Result<Option<ConversationName>, BusError> {
    let Some(stored) = keys.conversation_name(key).await? else {
        return Ok(None);
    };
    match ConversationName::parse(&stored) {
        Ok(name) => Ok(Some(name)),
        Err(e) => {
            tracing::warn!(error = %e, "an integration key is mapped to something that is not a conversation name; its context waits");
            Ok(None)
        }
    }
}

/// A parameter as text: strings as they are, numbers as written (a phone number parameter
/// may be numeric); absent, null or empty is `None`; anything else is malformed.
fn text(value: Option<&Value>, name: &str) -> Result<Option<String>, MalformedRequest> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(MalformedRequest(format!("{name} must be a string"))),
    }
}

fn conversation(name: &str, from: &str) -> Result<Routing, MalformedRequest> {
    ConversationName::parse(name)
        .map(Routing::Conversation)
        .map_err(|e| MalformedRequest(format!("{from}: {e}")))
}

fn key_routing(key: String, from: &str) -> Result<Routing, MalformedRequest> {
    integration_key::check(&key).map_err(|e| MalformedRequest(format!("{from}: {e}")))?;
    Ok(Routing::IntegrationKey(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Method, Uri};

    fn standard(parameters: Value, payload: Value) -> StandardRequest {
        let body = serde_json::json!({
            "detectIntentResponseId": "d",
            "sessionInfo": {"session": "s", "parameters": parameters},
            "payload": payload,
        });
        StandardRequest::parse(body.to_string().as_bytes()).unwrap()
    }

    fn name(text: &str) -> ConversationName {
        ConversationName::parse(text).unwrap()
    }

    #[test]
    fn the_conversation_parameter_comes_first_then_the_key_then_the_caller_id() {
        let payload = serde_json::json!({"telephony": {"caller_id": "+1555"}});
        let all = serde_json::json!({
            "agent_assist_conversation": "projects/p/locations/global/conversations/c",
            "conversation_integration_key": "k",
        });
        assert_eq!(
            Routing::of_standard(&standard(all, payload.clone())).unwrap(),
            Routing::Conversation(name("projects/p/conversations/c"))
        );
        let key = serde_json::json!({"agent_assist_conversation": null, "conversation_integration_key": "k"});
        assert_eq!(
            Routing::of_standard(&standard(key, payload.clone())).unwrap(),
            Routing::IntegrationKey("k".into())
        );
        let numeric = serde_json::json!({"conversation_integration_key": 15551234});
        assert_eq!(
            Routing::of_standard(&standard(numeric, payload.clone())).unwrap(),
            Routing::IntegrationKey("15551234".into())
        );
        assert_eq!(
            Routing::of_standard(&standard(serde_json::json!({}), payload)).unwrap(),
            Routing::IntegrationKey("+1555".into())
        );
        assert_eq!(
            Routing::of_standard(&standard(serde_json::json!({}), Value::Null)).unwrap(),
            Routing::Nothing
        );
    }

    #[test]
    fn names_and_keys_that_cannot_be_are_refused() {
        for parameters in [
            serde_json::json!({"agent_assist_conversation": "not a name"}),
            serde_json::json!({"agent_assist_conversation": {"x": 1}}),
            serde_json::json!({"conversation_integration_key": "a\u{0007}b"}),
            serde_json::json!({"conversation_integration_key": "k".repeat(2000)}),
        ] {
            assert!(
                Routing::of_standard(&standard(parameters.clone(), Value::Null)).is_err(),
                "{parameters}"
            );
        }
    }

    #[test]
    fn flexible_calls_route_by_query() {
        let parse = |uri: &str| {
            let uri: Uri = uri.parse().unwrap();
            Routing::of_flexible(&FlexibleRequest::parse(Method::GET, &uri, b"").unwrap())
        };
        assert_eq!(
            parse("/f?integration_key=k&conversation=projects/p/conversations/c").unwrap(),
            Routing::Conversation(name("projects/p/conversations/c"))
        );
        assert_eq!(
            parse("/f?integration_key=k").unwrap(),
            Routing::IntegrationKey("k".into())
        );
        assert_eq!(parse("/f?x=1").unwrap(), Routing::Nothing);
        assert!(parse("/f?conversation=nope").is_err());
    }
}
