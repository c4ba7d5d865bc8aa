//! `post-sample-events`: posts the realistic Dialogflow events in `samples/` to an interceptor as
//! Pub/Sub push requests, and the Dialogflow CX webhook request as CX would call the webhook.
//!
//! It exists so a developer can drive the whole pipeline (interceptor -> bus -> connector ->
//! desktop) without a live Dialogflow conversation or a Pub/Sub subscription: point it at a
//! local `ui-connector --local` or a deployed interceptor and watch the events reach a desktop or
//! the demo page. The samples are embedded at build time, so the binary works from anywhere.
//! Usage and the sample format are in `samples/README.md`.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent_assist_core::EventType;
use agent_assist_intake::cx_webhook::STANDARD_PATH;
use agent_assist_intake::PushEnvelope;
use anyhow::{bail, Context};
use serde_json::{Map, Value};

/// The conversation name the samples use; replaced by `--conversation` in every string value.
const PLACEHOLDER: &str = "projects/demo-project/locations/global/conversations/demo-conversation";

const USAGE: &str = "\
Posts sample Agent Assist events to an interceptor as Pub/Sub push requests, and a sample
Dialogflow CX webhook request to its CX webhook.

Usage: post-sample-events --url <base> [--conversation <name>] [--kind <kind>]... [--bearer <token>]

  --url <base>           interceptor base URL, e.g. http://localhost:8080 (required)
  --conversation <name>  conversation to post to (default: the samples' placeholder,
                         projects/demo-project/locations/global/conversations/demo-conversation)
  --kind <kind>          one of human-agent-assistant-event, conversation-lifecycle-event,
                         new-message-event, new-recognition-result-notification-event (each
                         pushed to /<kind>), virtual-agent-event (a CX WebhookRequest POSTed to
                         /dialogflow-cx-webhook); repeatable (default: all five, in that order)
  --bearer <token>       sent as `Authorization: Bearer <token>` (authenticated push endpoints;
                         the CX webhook's static header secret `Bearer <secret>`)

Prints each response status; exits 1 if any post fails or answers other than 2xx.";

/// One sample: the Dialogflow event JSON (the push message's `data`) and the message
/// attributes Dialogflow sends with it; for `virtual-agent-event`, the CX `WebhookRequest`.
struct Sample {
    data: &'static str,
    attributes: Option<&'static str>,
}

fn sample(kind: EventType) -> Sample {
    match kind {
        EventType::HumanAgentAssistantEvent => Sample {
            data: include_str!("../../samples/human-agent-assistant-event.json"),
            attributes: None,
        },
        EventType::ConversationLifecycleEvent => Sample {
            data: include_str!("../../samples/conversation-lifecycle-event.json"),
            attributes: None,
        },
        EventType::NewMessageEvent => Sample {
            data: include_str!("../../samples/new-message-event.json"),
            attributes: None,
        },
        EventType::NewRecognitionResultNotificationEvent => Sample {
            data: include_str!("../../samples/new-recognition-result-notification-event.json"),
            attributes: Some(include_str!(
                "../../samples/new-recognition-result-notification-event.attributes.json"
            )),
        },
        EventType::VirtualAgentEvent => Sample {
            data: include_str!("../../samples/virtual-agent-event.json"),
            attributes: None,
        },
    }
}

#[derive(Debug)]
struct Args {
    url: String,
    conversation: String,
    kinds: Vec<EventType>,
    bearer: Option<String>,
}

/// `Ok(None)` means `--help` was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let mut url = None;
    let mut conversation = None;
    let mut kinds = Vec::new();
    let mut bearer = None;
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--conversation" => conversation = Some(value()?),
            "--kind" => {
                let kind = value()?;
                kinds.push(EventType::from_str(&kind)?);
            }
            "--bearer" => bearer = Some(value()?),
            other => bail!("unknown argument {other:?}"),
        }
    }
    let Some(url) = url else {
        bail!("--url is required");
    };
    if kinds.is_empty() {
        kinds = EventType::ALL.to_vec();
    }
    Ok(Some(Args {
        url: url.trim_end_matches('/').to_owned(),
        conversation: conversation.unwrap_or_else(|| PLACEHOLDER.to_owned()),
        kinds,
        bearer,
    }))
}

/// The sample's Dialogflow JSON, compact as Dialogflow sends it, with the placeholder
/// conversation replaced in every string (participant and message names embed it too).
fn event_data(sample: &str, conversation: &str) -> anyhow::Result<String> {
    fn replace(value: &mut Value, conversation: &str) {
        match value {
            Value::String(s) if s.contains(PLACEHOLDER) => {
                *s = s.replace(PLACEHOLDER, conversation);
            }
            Value::Array(items) => items.iter_mut().for_each(|v| replace(v, conversation)),
            Value::Object(fields) => fields.values_mut().for_each(|v| replace(v, conversation)),
            _ => {}
        }
    }
    let mut value: Value = serde_json::from_str(sample).context("malformed sample")?;
    replace(&mut value, conversation);
    Ok(value.to_string())
}

/// The body CX POSTs to the standard webhook: the sample, conversation replaced, with a
/// `detectIntentResponseId` of its own (the webhook answers a repeated id from memory).
fn webhook_body(sample: &Sample, conversation: &str, call_id: &str) -> anyhow::Result<String> {
    let mut request: Value = serde_json::from_str(&event_data(sample.data, conversation)?)?;
    request["detectIntentResponseId"] = Value::from(call_id);
    Ok(request.to_string())
}

/// The body Pub/Sub pushes: the event base64-encoded in `message.data`.
fn push_body(
    kind: EventType,
    sample: &Sample,
    conversation: &str,
    message_id: &str,
    publish_time: &str,
) -> anyhow::Result<String> {
    let data = event_data(sample.data, conversation)?;
    let attributes: Map<String, Value> = match sample.attributes {
        Some(text) => serde_json::from_str(text).context("malformed sample attributes")?,
        None => Map::new(),
    };
    let project = match conversation.split('/').collect::<Vec<_>>().as_slice() {
        ["projects", project, ..] => project.to_string(),
        _ => "demo-project".to_owned(),
    };
    let mut envelope = PushEnvelope::new(data)
        .message_id(message_id)
        .publish_time(publish_time)
        .subscription(format!(
            "projects/{project}/subscriptions/agent-assist-{kind}"
        ));
    for (name, value) in attributes {
        let Value::String(value) = value else {
            bail!("sample attribute {name} is not a string");
        };
        envelope = envelope.attribute(name, value);
    }
    Ok(envelope.to_body())
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    // Pub/Sub message ids are decimal strings; the start time in nanoseconds plus a counter keeps
    // them unique across runs, so the interceptor's redelivery check never swallows a repeat.
    let run_id = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let mut all_ok = true;
    for (index, kind) in args.kinds.iter().copied().enumerate() {
        let message_id = format!("{run_id}{index:02}");
        let publish_time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (path, body) = if kind.is_pubsub() {
            let body = push_body(
                kind,
                &sample(kind),
                &args.conversation,
                &message_id,
                &publish_time,
            )?;
            (kind.route(), body)
        } else {
            let body = webhook_body(&sample(kind), &args.conversation, &message_id)?;
            (STANDARD_PATH.to_owned(), body)
        };
        let url = format!("{}{}", args.url, path);
        let mut request = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(token) = &args.bearer {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                println!("{kind}: {} (messageId {message_id})", response.status());
            }
            Ok(response) => {
                all_ok = false;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                println!("{kind}: {status} (messageId {message_id}) {}", text.trim());
            }
            Err(error) => {
                all_ok = false;
                println!("{kind}: request to {url} failed: {error}");
            }
        }
    }
    Ok(all_ok)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("post-sample-events: {error:#}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("post-sample-events: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> anyhow::Result<Option<Args>> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn every_sample_is_valid_json_and_names_the_placeholder() {
        for kind in EventType::PUBSUB {
            let value: Value = serde_json::from_str(sample(kind).data).unwrap();
            assert_eq!(value["conversation"], PLACEHOLDER, "{kind}");
        }
        let request: Value =
            serde_json::from_str(sample(EventType::VirtualAgentEvent).data).unwrap();
        assert_eq!(
            request["sessionInfo"]["parameters"]["agent_assist_conversation"],
            PLACEHOLDER
        );
    }

    #[test]
    fn the_webhook_sample_gets_the_conversation_and_its_own_call_id() {
        let body = webhook_body(
            &sample(EventType::VirtualAgentEvent),
            "projects/p/conversations/c1",
            "run-7",
        )
        .unwrap();
        let request: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(request["detectIntentResponseId"], "run-7");
        assert_eq!(
            request["sessionInfo"]["parameters"]["agent_assist_conversation"],
            "projects/p/conversations/c1"
        );
        let request =
            agent_assist_intake::cx_webhook::request::StandardRequest::parse(body.as_bytes())
                .unwrap();
        assert_eq!(request.tag(), "handoff-to-agent");
    }

    #[test]
    fn defaults_to_all_kinds_and_the_placeholder() {
        let parsed = args(&["--url", "http://h:1/"]).unwrap().unwrap();
        assert_eq!(parsed.url, "http://h:1");
        assert_eq!(parsed.conversation, PLACEHOLDER);
        assert_eq!(parsed.kinds, EventType::ALL.to_vec());
        assert!(parsed.bearer.is_none());
    }

    #[test]
    fn kinds_repeat_and_unknown_kinds_are_refused() {
        let parsed = args(&[
            "--url",
            "u",
            "--kind",
            "new-message-event",
            "--kind",
            "conversation-lifecycle-event",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            parsed.kinds,
            [
                EventType::NewMessageEvent,
                EventType::ConversationLifecycleEvent
            ]
        );
        assert!(args(&["--url", "u", "--kind", "nope"]).is_err());
        assert!(args(&["--kind", "new-message-event"]).is_err(), "no --url");
        assert!(args(&["--url"]).is_err(), "missing value");
        assert!(args(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn replaces_the_conversation_everywhere() {
        let data = event_data(
            sample(EventType::NewMessageEvent).data,
            "projects/p/conversations/c1",
        )
        .unwrap();
        assert!(!data.contains("demo-conversation"));
        let value: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(value["conversation"], "projects/p/conversations/c1");
        assert!(value["newMessagePayload"]["name"]
            .as_str()
            .unwrap()
            .starts_with("projects/p/conversations/c1/messages/"));
    }
}
