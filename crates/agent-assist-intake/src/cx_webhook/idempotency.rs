//! The identity of a webhook call, and the answers already given, so that a call CX retries
//! (after a timeout or a connection error) publishes nothing more and gets the same answer.
//!
//! - A standard call is identified by its `detectIntentResponseId` and `fulfillmentInfo.tag`
//!   (one detect-intent response may call the webhook once per tag); a flexible call by its
//!   method, query parameters and body, since CX sends nothing else that would tell two calls
//!   apart. The identity is a SHA-256 digest, so it fits the bus's 256-byte bound on message
//!   ids whatever the call holds.
//! - The identity is the event's `message_id`: the bus publishes a given id once per
//!   conversation within `DEDUP_WINDOW_SECONDS`, whichever process (the webhook, a connector
//!   mapping the key) publishes it, and however many race.
//! - The answer is remembered under the identity for the same window; a retry gets it back
//!   without resolving or publishing anything. Two identical calls racing may both do the
//!   work: the bus still publishes once, and both answer alike.

use std::time::Duration;

use agent_assist_core::bus::{BusError, KeyValueStore};
use agent_assist_core::ConversationBus;
use sha2::{Digest, Sha256};

use super::request::{FlexibleRequest, StandardRequest};
use super::response::Answer;

/// The namespace of remembered answers in the bus's key-value store.
pub const ANSWER_NAMESPACE: &str = "cx-webhook-answer";

/// A call's identity: `cx-<hex>` (standard) or `cx-flex-<hex>` (flexible), 67 or 72 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallId(String);

impl CallId {
    pub fn standard(request: &StandardRequest) -> Self {
        let mut digest = Sha256::new();
        field(&mut digest, request.id().as_bytes());
        field(&mut digest, request.tag().as_bytes());
        Self(format!("cx-{}", hex::encode(digest.finalize())))
    }

    pub fn flexible(request: &FlexibleRequest) -> Self {
        let mut query = request.query.clone();
        query.sort();
        let mut digest = Sha256::new();
        field(&mut digest, request.method.as_str().as_bytes());
        field(&mut digest, &(query.len() as u64).to_be_bytes());
        for (name, value) in &query {
            field(&mut digest, name.as_bytes());
            field(&mut digest, value.as_bytes());
        }
        field(&mut digest, &request.raw_body);
        Self(format!("cx-flex-{}", hex::encode(digest.finalize())))
    }

    /// A pending context's stored identity.
    pub(crate) fn from_stored(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Length-prefixed, so no two different calls hash the same bytes.
fn field(digest: &mut Sha256, bytes: &[u8]) {
    digest.update((bytes.len() as u64).to_be_bytes());
    digest.update(bytes);
}

/// Answers given within the dedup window; cheap to clone.
#[derive(Clone)]
pub struct AnswerCache {
    store: KeyValueStore,
    window: Duration,
}

impl AnswerCache {
    pub fn new(bus: &ConversationBus, window: Duration) -> Self {
        Self {
            store: bus.key_value_store(ANSWER_NAMESPACE),
            window,
        }
    }

    /// The answer given to `id` within the window. An entry that does not read back (written
    /// by another version) counts as none: the call is then simply handled again.
    pub async fn get(&self, id: &CallId) -> Result<Option<Answer>, BusError> {
        Ok(self
            .store
            .get(id.as_str())
            .await?
            .and_then(|text| serde_json::from_str(&text).ok()))
    }

    pub async fn remember(&self, id: &CallId, answer: &Answer) -> Result<(), BusError> {
        let text = serde_json::to_string(answer).expect("an answer serialises");
        self.store.put(id.as_str(), &text, self.window).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Method, Uri};

    fn standard(id: &str, tag: Option<&str>, text: &str) -> StandardRequest {
        let mut body = serde_json::json!({
            "detectIntentResponseId": id, "sessionInfo": {"session": "s"}, "text": text,
        });
        if let Some(tag) = tag {
            body["fulfillmentInfo"] = serde_json::json!({ "tag": tag });
        }
        StandardRequest::parse(body.to_string().as_bytes()).unwrap()
    }

    fn flexible(method: Method, uri: &str, body: &[u8]) -> CallId {
        let uri: Uri = uri.parse().unwrap();
        CallId::flexible(&FlexibleRequest::parse(method, &uri, body).unwrap())
    }

    #[test]
    fn standard_calls_are_the_same_call_by_response_id_and_tag() {
        let a = CallId::standard(&standard("d1", Some("t"), "x"));
        assert_eq!(
            a,
            CallId::standard(&standard("d1", Some("t"), "other text"))
        );
        assert_ne!(a, CallId::standard(&standard("d1", Some("u"), "x")));
        assert_ne!(a, CallId::standard(&standard("d2", Some("t"), "x")));
        assert_ne!(
            CallId::standard(&standard("d1", None, "x")),
            CallId::standard(&standard("d", Some("1"), "x"))
        );
        assert!(a.as_str().starts_with("cx-"));
        assert_eq!(a.as_str().len(), 67);
    }

    #[test]
    fn flexible_calls_are_the_same_call_by_method_query_and_body() {
        let a = flexible(Method::POST, "/f?b=2&a=1", br#"{"k":1}"#);
        assert_eq!(a, flexible(Method::POST, "/f?a=1&b=2", br#"{"k":1}"#));
        assert_ne!(a, flexible(Method::PUT, "/f?a=1&b=2", br#"{"k":1}"#));
        assert_ne!(a, flexible(Method::POST, "/f?a=1&b=3", br#"{"k":1}"#));
        assert_ne!(a, flexible(Method::POST, "/f?a=1&b=2", br#"{"k":2}"#));
        assert!(a.as_str().starts_with("cx-flex-"));
        assert!(a.as_str().len() <= 256);
    }
}
