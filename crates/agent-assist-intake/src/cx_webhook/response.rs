//! What CX gets back: a `WebhookResponse` (standard) or a flat JSON object (flexible) that sets
//! the session parameters
//!
//! | parameter | value |
//! |---|---|
//! | `agent_assist_conversation` | the conversation the context went to, or `null` (which removes the parameter) |
//! | `agent_assist_context_published` | whether the context is on the conversation's desktops |
//! | `agent_assist_context_pending` | whether it waits for its integration key to be mapped |
//!
//! The standard answer is `{"sessionInfo": {"parameters": {...}}}`: no fulfillment messages,
//! so the virtual agent says what it would have said anyway. A flexible webhook's designer
//! maps the three fields of the flat object to session parameters.
//!
//! CX refuses responses over 64 KiB. The answer echoes nothing of the request but the
//! conversation name (at most 512 bytes), so it stays around 150 bytes whatever the request
//! holds; [`MAX_RESPONSE_BYTES`] is still checked on every answer, and an answer that would
//! exceed it is replaced by one without the conversation name rather than sent.

use agent_assist_core::ConversationName;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::resolution::CONVERSATION_PARAMETER;

/// The largest response CX accepts.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Session parameter: whether the context reached the conversation.
pub const PUBLISHED_PARAMETER: &str = "agent_assist_context_published";
/// Session parameter: whether the context waits for its integration key.
pub const PENDING_PARAMETER: &str = "agent_assist_context_pending";

/// The outcome of a call, as remembered for retries and rendered for either kind of webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub conversation: Option<String>,
    pub published: bool,
    pub pending: bool,
}

impl Answer {
    /// Published (or found already published) on `conversation`.
    pub fn published(conversation: &ConversationName) -> Self {
        Self {
            conversation: Some(conversation.as_str().to_owned()),
            published: true,
            pending: false,
        }
    }

    /// Kept until the integration key is mapped.
    pub fn pending() -> Self {
        Self {
            conversation: None,
            published: false,
            pending: true,
        }
    }

    /// No conversation named and no key to wait for.
    pub fn unrouted() -> Self {
        Self {
            conversation: None,
            published: false,
            pending: false,
        }
    }

    fn parameters(&self) -> Value {
        json!({
            CONVERSATION_PARAMETER: self.conversation,
            PUBLISHED_PARAMETER: self.published,
            PENDING_PARAMETER: self.pending,
        })
    }

    /// The standard webhook's `WebhookResponse` body.
    pub fn standard_body(&self) -> Vec<u8> {
        let shape =
            |answer: &Answer| json!({ "sessionInfo": { "parameters": answer.parameters() } });
        capped(&shape(self), || shape(&self.without_conversation()))
    }

    /// The flexible webhook's body.
    pub fn flexible_body(&self) -> Vec<u8> {
        capped(&self.parameters(), || {
            self.without_conversation().parameters()
        })
    }

    fn without_conversation(&self) -> Answer {
        Answer {
            conversation: None,
            ..self.clone()
        }
    }
}

/// `response` as JSON if it fits [`MAX_RESPONSE_BYTES`]; otherwise `smaller()`.
fn capped(response: &Value, smaller: impl FnOnce() -> Value) -> Vec<u8> {
    let body = serde_json::to_vec(response).expect("JSON values serialise");
    if body.len() <= MAX_RESPONSE_BYTES {
        return body;
    }
    tracing::error!(
        bytes = body.len(),
        "a CX webhook answer exceeds 64 KiB; answering without the conversation name"
    );
    let body = serde_json::to_vec(&smaller()).expect("JSON values serialise");
    assert!(body.len() <= MAX_RESPONSE_BYTES, "the smaller answer fits");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn the_standard_answer_sets_the_session_parameters() {
        let name = ConversationName::parse("projects/p/conversations/c").unwrap();
        assert_eq!(
            parsed(&Answer::published(&name).standard_body()),
            json!({"sessionInfo": {"parameters": {
                "agent_assist_conversation": "projects/p/conversations/c",
                "agent_assist_context_published": true,
                "agent_assist_context_pending": false,
            }}})
        );
        assert_eq!(
            parsed(&Answer::pending().flexible_body()),
            json!({
                "agent_assist_conversation": null,
                "agent_assist_context_published": false,
                "agent_assist_context_pending": true,
            })
        );
    }

    #[test]
    fn the_largest_possible_answer_is_far_below_the_cap() {
        let longest = format!(
            "projects/{}/conversations/{}",
            "p".repeat(128),
            "c".repeat(256)
        );
        let name = ConversationName::parse(&longest).unwrap();
        let answer = Answer::published(&name);
        assert!(answer.standard_body().len() < 1024);
        assert!(answer.flexible_body().len() < 1024);
    }

    #[test]
    fn an_answer_over_the_cap_is_replaced_by_a_smaller_one() {
        let oversized = json!({ "x": "y".repeat(MAX_RESPONSE_BYTES) });
        let body = capped(&oversized, || Answer::unrouted().parameters());
        assert!(body.len() <= MAX_RESPONSE_BYTES);
        assert_eq!(parsed(&body)["agent_assist_context_published"], false);
        let fitting = json!({ "x": "y".repeat(MAX_RESPONSE_BYTES - 16) });
        assert_eq!(
            capped(&fitting, || unreachable!()).len(),
            MAX_RESPONSE_BYTES - 8
        );
    }
}
