//! What Dialogflow CX sends: a standard webhook's `WebhookRequest`, or a flexible webhook's
//! method, query parameters and JSON body.
//!
//! Only the fields the webhook reads are modelled; CX adds fields over time and unknown ones
//! are ignored. A standard request must carry what every CX call carries (a
//! `detectIntentResponseId` and `sessionInfo.session`), and every field it does carry must
//! have CX's type: anything else is not a CX request and is refused with the reason (400).

use axum::http::{Method, Uri};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Why a request is not one the webhook can read; the text is the 400 answer's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedRequest(pub String);

fn malformed(reason: impl Into<String>) -> MalformedRequest {
    MalformedRequest(reason.into())
}

/// A standard webhook's `WebhookRequest`, as far as the webhook reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StandardRequest {
    pub detect_intent_response_id: Option<String>,
    pub language_code: Option<String>,
    pub fulfillment_info: Option<FulfillmentInfo>,
    pub intent_info: Option<IntentInfo>,
    pub page_info: Option<PageInfo>,
    pub session_info: Option<SessionInfo>,
    #[serde(default)]
    pub messages: Vec<Value>,
    pub payload: Option<Map<String, Value>>,
    pub sentiment_analysis_result: Option<SentimentAnalysisResult>,
    // The caller's input of this turn: one of these.
    pub text: Option<String>,
    pub transcript: Option<String>,
    pub trigger_intent: Option<String>,
    pub trigger_event: Option<String>,
    pub dtmf_digits: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FulfillmentInfo {
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentInfo {
    pub last_matched_intent: Option<String>,
    pub display_name: Option<String>,
    pub confidence: Option<f64>,
    pub parameters: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub current_page: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionInfo {
    pub session: Option<String>,
    pub parameters: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SentimentAnalysisResult {
    pub score: Option<f64>,
    pub magnitude: Option<f64>,
}

impl StandardRequest {
    /// Reads a standard webhook body.
    pub fn parse(body: &[u8]) -> Result<Self, MalformedRequest> {
        if body.is_empty() {
            return Err(malformed(
                "empty body: expected a Dialogflow CX WebhookRequest",
            ));
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| malformed(format!("body is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(malformed(
                "body is not a JSON object (a Dialogflow CX WebhookRequest)",
            ));
        }
        let request: StandardRequest = serde_json::from_value(value)
            .map_err(|e| malformed(format!("not a Dialogflow CX WebhookRequest: {e}")))?;
        if request.id().is_empty() {
            return Err(malformed(
                "not a Dialogflow CX WebhookRequest: no detectIntentResponseId",
            ));
        }
        if request.session().is_empty() {
            return Err(malformed(
                "not a Dialogflow CX WebhookRequest: no sessionInfo.session",
            ));
        }
        Ok(request)
    }

    /// `detectIntentResponseId` (never empty once parsed).
    pub fn id(&self) -> &str {
        self.detect_intent_response_id.as_deref().unwrap_or("")
    }

    /// `sessionInfo.session` (never empty once parsed).
    pub fn session(&self) -> &str {
        self.session_info
            .as_ref()
            .and_then(|s| s.session.as_deref())
            .unwrap_or("")
    }

    /// `fulfillmentInfo.tag`, `""` when absent.
    pub fn tag(&self) -> &str {
        self.fulfillment_info
            .as_ref()
            .and_then(|f| f.tag.as_deref())
            .unwrap_or("")
    }

    /// `sessionInfo.parameters`.
    pub fn parameters(&self) -> Option<&Map<String, Value>> {
        self.session_info
            .as_ref()
            .and_then(|s| s.parameters.as_ref())
    }

    /// One session parameter.
    pub fn parameter(&self, name: &str) -> Option<&Value> {
        self.parameters().and_then(|p| p.get(name))
    }

    /// `payload.telephony.caller_id`: the caller's number when the call came through CX's
    /// telephony (phone gateway or a partner integration).
    pub fn caller_id(&self) -> Option<&Value> {
        self.payload.as_ref()?.get("telephony")?.get("caller_id")
    }
}

/// What a flexible webhook call carries: everything the agent designer configured.
#[derive(Debug, Clone)]
pub struct FlexibleRequest {
    pub method: Method,
    /// The query parameters in order; a name given twice keeps its last value in the context.
    pub query: Vec<(String, String)>,
    /// The JSON body, if any (GET calls have none).
    pub body: Option<Map<String, Value>>,
    /// The body as received, for the request's identity.
    pub raw_body: Vec<u8>,
}

impl FlexibleRequest {
    pub fn parse(method: Method, uri: &Uri, body: &[u8]) -> Result<Self, MalformedRequest> {
        let query = match uri.query() {
            None => Vec::new(),
            Some(_) => {
                axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
                    .map_err(|e| malformed(format!("query string: {e}")))?
                    .0
            }
        };
        let body_value = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(fields)) => Some(fields),
                Ok(_) => return Err(malformed("body is not a JSON object")),
                Err(e) => return Err(malformed(format!("body is not JSON: {e}"))),
            }
        };
        Ok(Self {
            method,
            query,
            body: body_value,
            raw_body: body.to_vec(),
        })
    }

    /// The last value of a query parameter, if not empty.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_full_request() {
        let body = br#"{
            "detectIntentResponseId": "d-1",
            "languageCode": "en",
            "fulfillmentInfo": {"tag": "handoff"},
            "intentInfo": {"lastMatchedIntent": "projects/p/locations/l/agents/a/intents/i",
                           "displayName": "billing", "confidence": 0.9},
            "pageInfo": {"currentPage": "projects/p/locations/l/agents/a/flows/f/pages/x",
                         "displayName": "Billing"},
            "sessionInfo": {"session": "projects/p/locations/l/agents/a/sessions/s",
                            "parameters": {"reason": "refund"}},
            "messages": [{"text": {"text": ["Let me transfer you."]}}],
            "payload": {"telephony": {"caller_id": "+15551234"}},
            "sentimentAnalysisResult": {"score": -0.4, "magnitude": 0.8},
            "text": "I want a refund",
            "somethingNew": {"ignored": true}
        }"#;
        let request = StandardRequest::parse(body).unwrap();
        assert_eq!(request.id(), "d-1");
        assert_eq!(request.tag(), "handoff");
        assert_eq!(
            request.session(),
            "projects/p/locations/l/agents/a/sessions/s"
        );
        assert_eq!(request.parameter("reason").unwrap(), "refund");
        assert_eq!(request.caller_id().unwrap(), "+15551234");
        assert_eq!(request.text.as_deref(), Some("I want a refund"));
    }

    #[test]
    fn what_is_not_a_cx_request_has_a_reason() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "empty body"),
            (b"{not json", "not JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"sessionInfo": {"session": "s"}}"#, "no detectIntentResponseId"),
            (br#"{"detectIntentResponseId": "d"}"#, "no sessionInfo.session"),
            (
                br#"{"detectIntentResponseId": 7, "sessionInfo": {"session": "s"}}"#,
                "not a Dialogflow CX WebhookRequest",
            ),
            (
                br#"{"detectIntentResponseId": "d", "sessionInfo": {"session": "s", "parameters": []}}"#,
                "not a Dialogflow CX WebhookRequest",
            ),
        ];
        for (body, reason) in cases {
            let err = StandardRequest::parse(body).unwrap_err();
            assert!(err.0.contains(reason), "{:?} should say {reason:?}", err.0);
        }
    }

    #[test]
    fn flexible_requests_take_query_and_an_optional_object_body() {
        let uri: Uri = "/dialogflow-cx-webhook/flexible?conversation=a&x=1&x=2&empty="
            .parse()
            .unwrap();
        let request = FlexibleRequest::parse(Method::GET, &uri, b"").unwrap();
        assert_eq!(request.query_value("conversation"), Some("a"));
        assert_eq!(request.query_value("x"), Some("2"));
        assert_eq!(request.query_value("empty"), None);
        assert!(request.body.is_none());
        let request = FlexibleRequest::parse(Method::POST, &uri, br#"{"k": 1}"#).unwrap();
        assert_eq!(request.body.unwrap()["k"], 1);
        assert!(FlexibleRequest::parse(Method::POST, &uri, b"[1]").is_err());
        assert!(FlexibleRequest::parse(Method::POST, &uri, b"{").is_err());
    }
}
