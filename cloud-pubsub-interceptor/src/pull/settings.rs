//! Pull mode's settings: which subscription feeds which event type, where Pub/Sub is, and how
//! much a stream may hold.
//!
//! `PUBSUB_PULL_SUBSCRIPTIONS` is a comma-separated list of `<event type>=<subscription>`, any
//! subset of the four types, each with the full subscription name. Everything is checked at
//! start so a typo stops the service with a message naming the setting, instead of becoming a
//! stream that fails (or, worse, delivers events under the wrong type) at run time.

use std::collections::HashSet;
use std::time::Duration;

use agent_assist_core::config::{ConfigError, Settings};
use agent_assist_core::EventType;

/// Messages a stream may hold unacknowledged (`PUBSUB_PULL_MAX_OUTSTANDING_MESSAGES`).
///
/// The service enforces it and counts a message until its acknowledgement arrives, which the
/// library sends in batches every 100 ms or as soon as 1,000 are pending, so the limit must
/// cover what is stored while acknowledgements travel. Measured on the benchmark's pull
/// scenario (BENCHMARKS.md): 1,000 stored 26,800 messages/s, 2,000 31,000, 4,000 34,500 to
/// 36,500, 8,000 and 16,000 no more (Redis is then the limit). 4,000 messages of a few KiB are
/// a few MiB; a larger limit only lets one instance take more than its share of a backlog, and
/// gives more back at shutdown.
pub const DEFAULT_MAX_OUTSTANDING_MESSAGES: i64 = 4_000;

/// Bytes a stream may hold unacknowledged (`PUBSUB_PULL_MAX_OUTSTANDING_BYTES`): 64 MiB. Agent
/// Assist events are a few KiB, so the message limit binds first; this bounds memory when large
/// messages (up to Pub/Sub's 10 MiB) arrive together, on an instance with 512 MiB.
pub const DEFAULT_MAX_OUTSTANDING_BYTES: i64 = 64 * 1024 * 1024;

/// How long a malformed message is held before it is nacked
/// (`PUBSUB_PULL_MALFORMED_NACK_DELAY_SECONDS`); see [`super::malformed`].
pub const DEFAULT_MALFORMED_NACK_DELAY: Duration = Duration::from_secs(10);

/// The setting names, for error messages and the README.
pub const SUBSCRIPTIONS: &str = "PUBSUB_PULL_SUBSCRIPTIONS";
pub const EMULATOR_HOST: &str = "PUBSUB_EMULATOR_HOST";
pub const MAX_OUTSTANDING_MESSAGES: &str = "PUBSUB_PULL_MAX_OUTSTANDING_MESSAGES";
pub const MAX_OUTSTANDING_BYTES: &str = "PUBSUB_PULL_MAX_OUTSTANDING_BYTES";
pub const MALFORMED_NACK_DELAY: &str = "PUBSUB_PULL_MALFORMED_NACK_DELAY_SECONDS";

/// One event type pulled from one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledSubscription {
    pub event_type: EventType,
    /// `projects/<project>/subscriptions/<id>`.
    pub subscription: String,
}

/// Where the subscriber connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubsubEndpoint {
    /// Google's service, with Application Default Credentials.
    Google,
    /// `PUBSUB_EMULATOR_HOST=<host:port>`: plain-text HTTP/2 and no credentials, as Google's
    /// own clients treat that variable.
    Emulator { host: String },
}

/// Pull mode's configuration; `None` in [`crate::config::InterceptorConfig`] when no
/// subscription is pulled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullConfig {
    pub subscriptions: Vec<PulledSubscription>,
    pub endpoint: PubsubEndpoint,
    pub max_outstanding_messages: i64,
    pub max_outstanding_bytes: i64,
    pub malformed_nack_delay: Duration,
}

impl PullConfig {
    /// `None` when `PUBSUB_PULL_SUBSCRIPTIONS` is unset: push only.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let Some(raw) = settings.get(SUBSCRIPTIONS) else {
            return Ok(None);
        };
        let subscriptions = parse_subscriptions(&raw)?;
        let endpoint = match settings.get(EMULATOR_HOST) {
            None => PubsubEndpoint::Google,
            Some(host) => PubsubEndpoint::Emulator {
                host: check_emulator_host(&host)?,
            },
        };
        Ok(Some(Self {
            subscriptions,
            endpoint,
            max_outstanding_messages: settings.at_least(
                MAX_OUTSTANDING_MESSAGES,
                DEFAULT_MAX_OUTSTANDING_MESSAGES,
                1,
            )?,
            // One Pub/Sub message can be 10 MiB; a smaller limit would still let one through
            // (a stream always takes one message) but says something the service will not do.
            max_outstanding_bytes: settings.at_least(
                MAX_OUTSTANDING_BYTES,
                DEFAULT_MAX_OUTSTANDING_BYTES,
                10 * 1024 * 1024,
            )?,
            malformed_nack_delay: settings.fractional_seconds_or(
                MALFORMED_NACK_DELAY,
                DEFAULT_MALFORMED_NACK_DELAY,
                600.0,
            )?,
        }))
    }
}

fn parse_subscriptions(raw: &str) -> Result<Vec<PulledSubscription>, ConfigError> {
    let invalid = |reason: String| ConfigError::new(SUBSCRIPTIONS, reason);
    let mut subscriptions: Vec<PulledSubscription> = Vec::new();
    let mut names = HashSet::new();
    for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (event_type, subscription) = item.split_once('=').ok_or_else(|| {
            invalid(format!(
                "{item:?} is not <event type>=projects/<project>/subscriptions/<subscription>"
            ))
        })?;
        let event_type: EventType = event_type.trim().parse().map_err(|_| {
            invalid(format!(
                "{:?} is not an event type (one of {})",
                event_type.trim(),
                EventType::ALL.map(EventType::as_str).join(", ")
            ))
        })?;
        let subscription = subscription.trim();
        check_subscription_name(subscription)
            .map_err(|reason| invalid(format!("{subscription:?} for {event_type}: {reason}")))?;
        if subscriptions.iter().any(|s| s.event_type == event_type) {
            return Err(invalid(format!("{event_type} is listed twice")));
        }
        // One subscription feeding two types would label half of one topic's events wrongly.
        if !names.insert(subscription.to_owned()) {
            return Err(invalid(format!(
                "{subscription} is listed for two event types"
            )));
        }
        subscriptions.push(PulledSubscription {
            event_type,
            subscription: subscription.to_owned(),
        });
    }
    if subscriptions.is_empty() {
        return Err(invalid("lists no subscription".into()));
    }
    Ok(subscriptions)
}

/// `projects/<project>/subscriptions/<id>` with Pub/Sub's naming rules for the id: 3 to 255
/// characters, starting with a letter, of letters, digits and `-_.~+%`, not starting with
/// `goog`. The project part is checked loosely (ids and domain-scoped `example.com:p` names).
fn check_subscription_name(name: &str) -> Result<(), String> {
    let parts: Vec<&str> = name.split('/').collect();
    let [projects, project, subscriptions, id] = parts[..] else {
        return Err("expected projects/<project>/subscriptions/<subscription>".into());
    };
    if projects != "projects" || subscriptions != "subscriptions" {
        return Err("expected projects/<project>/subscriptions/<subscription>".into());
    }
    let project_ok = !project.is_empty()
        && project.len() <= 100
        && project
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c));
    if !project_ok {
        return Err(format!("{project:?} is not a project id"));
    }
    let id_ok = (3..=255).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c))
        && !id.starts_with("goog");
    if !id_ok {
        return Err(format!(
            "{id:?} is not a subscription id (3-255 letters, digits or -_.~+%, starting with a \
             letter, not with goog)"
        ));
    }
    Ok(())
}

/// `host:port`, as Google's clients expect it (no scheme, no path).
fn check_emulator_host(host: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::new(EMULATOR_HOST, format!("{host:?} {reason}"));
    if host.contains("://") || host.contains('/') {
        return Err(invalid("must be host:port, without scheme or path"));
    }
    let Some((name, port)) = host.rsplit_once(':') else {
        return Err(invalid("must be host:port"));
    };
    if name.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(invalid("must be host:port with a port from 1 to 65535"));
    }
    Ok(host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Option<PullConfig>, ConfigError> {
        PullConfig::from_settings(&Settings::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn unset_means_push_only() {
        assert_eq!(config(&[]).unwrap(), None);
        assert_eq!(config(&[(SUBSCRIPTIONS, "  ")]).unwrap(), None);
        // The emulator host alone does not turn pull mode on.
        assert_eq!(config(&[(EMULATOR_HOST, "localhost:8085")]).unwrap(), None);
    }

    #[test]
    fn parses_pairs_with_defaults() {
        let config = config(&[(
            SUBSCRIPTIONS,
            " new-message-event=projects/p/subscriptions/aa-new-message-sub , \
             conversation-lifecycle-event = projects/example.com:p-2/subscriptions/life.cycle~1 ,",
        )])
        .unwrap()
        .unwrap();
        assert_eq!(
            config.subscriptions,
            [
                PulledSubscription {
                    event_type: EventType::NewMessageEvent,
                    subscription: "projects/p/subscriptions/aa-new-message-sub".into(),
                },
                PulledSubscription {
                    event_type: EventType::ConversationLifecycleEvent,
                    subscription: "projects/example.com:p-2/subscriptions/life.cycle~1".into(),
                },
            ]
        );
        assert_eq!(config.endpoint, PubsubEndpoint::Google);
        assert_eq!(
            config.max_outstanding_messages,
            DEFAULT_MAX_OUTSTANDING_MESSAGES
        );
        assert_eq!(config.max_outstanding_bytes, DEFAULT_MAX_OUTSTANDING_BYTES);
        assert_eq!(config.malformed_nack_delay, DEFAULT_MALFORMED_NACK_DELAY);
    }

    #[test]
    fn emulator_and_flow_control() {
        let config = config(&[
            (
                SUBSCRIPTIONS,
                "new-message-event=projects/p/subscriptions/s-1",
            ),
            (EMULATOR_HOST, "localhost:8085"),
            (MAX_OUTSTANDING_MESSAGES, "50"),
            (MAX_OUTSTANDING_BYTES, "20000000"),
            (MALFORMED_NACK_DELAY, "0.25"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            config.endpoint,
            PubsubEndpoint::Emulator {
                host: "localhost:8085".into()
            }
        );
        assert_eq!(config.max_outstanding_messages, 50);
        assert_eq!(config.max_outstanding_bytes, 20_000_000);
        assert_eq!(config.malformed_nack_delay, Duration::from_millis(250));
    }

    /// Settings, the variable the error must name, and what it must say.
    type Case = (Vec<(&'static str, String)>, &'static str, &'static str);

    #[test]
    fn every_mistake_names_the_setting() {
        let sub = "projects/p/subscriptions/sub-1";
        let cases: Vec<Case> = vec![
            (
                vec![(SUBSCRIPTIONS, format!("new-message={sub}"))],
                SUBSCRIPTIONS,
                "not an event type",
            ),
            (
                vec![(SUBSCRIPTIONS, sub.to_owned())],
                SUBSCRIPTIONS,
                "<event type>=",
            ),
            (
                vec![(SUBSCRIPTIONS, "new-message-event=aa-new-message-sub".into())],
                SUBSCRIPTIONS,
                "expected projects/",
            ),
            (
                vec![(
                    SUBSCRIPTIONS,
                    "new-message-event=projects/p/topics/t-1".into(),
                )],
                SUBSCRIPTIONS,
                "expected projects/",
            ),
            (
                vec![(
                    SUBSCRIPTIONS,
                    "new-message-event=projects/p/subscriptions/1abc".into(),
                )],
                SUBSCRIPTIONS,
                "not a subscription id",
            ),
            (
                vec![(
                    SUBSCRIPTIONS,
                    "new-message-event=projects/p/subscriptions/goog-sub".into(),
                )],
                SUBSCRIPTIONS,
                "not a subscription id",
            ),
            (
                vec![(
                    SUBSCRIPTIONS,
                    "new-message-event=projects/p q/subscriptions/sub".into(),
                )],
                SUBSCRIPTIONS,
                "not a project id",
            ),
            (
                vec![(
                    SUBSCRIPTIONS,
                    format!(
                        "new-message-event={sub},new-message-event=projects/p/subscriptions/other"
                    ),
                )],
                SUBSCRIPTIONS,
                "listed twice",
            ),
            (
                vec![(
                    SUBSCRIPTIONS,
                    format!("new-message-event={sub},conversation-lifecycle-event={sub}"),
                )],
                SUBSCRIPTIONS,
                "two event types",
            ),
            (
                vec![(SUBSCRIPTIONS, " , ".into())],
                SUBSCRIPTIONS,
                "no subscription",
            ),
            (
                vec![
                    (SUBSCRIPTIONS, format!("new-message-event={sub}")),
                    (EMULATOR_HOST, "http://localhost:8085".into()),
                ],
                EMULATOR_HOST,
                "without scheme",
            ),
            (
                vec![
                    (SUBSCRIPTIONS, format!("new-message-event={sub}")),
                    (EMULATOR_HOST, "localhost".into()),
                ],
                EMULATOR_HOST,
                "host:port",
            ),
            (
                vec![
                    (SUBSCRIPTIONS, format!("new-message-event={sub}")),
                    (MAX_OUTSTANDING_MESSAGES, "0".into()),
                ],
                MAX_OUTSTANDING_MESSAGES,
                "at least",
            ),
            (
                vec![
                    (SUBSCRIPTIONS, format!("new-message-event={sub}")),
                    (MAX_OUTSTANDING_BYTES, "1000".into()),
                ],
                MAX_OUTSTANDING_BYTES,
                "at least",
            ),
            (
                vec![
                    (SUBSCRIPTIONS, format!("new-message-event={sub}")),
                    (MALFORMED_NACK_DELAY, "0".into()),
                ],
                MALFORMED_NACK_DELAY,
                "more than 0",
            ),
        ];
        for (pairs, variable, reason) in cases {
            let err = PullConfig::from_settings(&Settings::from_pairs(pairs.clone()))
                .expect_err(&format!("{pairs:?} is refused"));
            assert_eq!(err.variable, variable, "{pairs:?}: {err}");
            assert!(
                err.to_string().contains(reason),
                "{pairs:?}: {err} should say {reason:?}"
            );
        }
    }
}
