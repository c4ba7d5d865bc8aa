//! A pulled message as the intake reads it: the same [`PubsubMessage`] a push envelope becomes,
//! so a pulled event and a pushed one carry identical fields.
//!
//! The one field that needs care is the publish time. A push carries `publishTime` as the
//! protobuf JSON mapping writes a `Timestamp`: RFC 3339 in UTC with `Z` and 0, 3, 6 or 9
//! fractional digits (`2026-11-23T13:04:04.123Z`). The library hands a pulled message's time as
//! seconds and nanoseconds, and its own string conversion trims digits differently (`.5Z`), so
//! the push form is written here.

use agent_assist_intake::PubsubMessage;
use chrono::{DateTime, SecondsFormat, Utc};
use google_cloud_pubsub::model::Message;

/// The intake's view of a pulled message.
pub fn to_pubsub_message(message: &Message) -> PubsubMessage {
    PubsubMessage {
        data: message.data.to_vec(),
        message_id: Some(message.message_id.clone()).filter(|id| !id.is_empty()),
        publish_time: message
            .publish_time
            .as_ref()
            .and_then(|t| publish_time(t.seconds(), t.nanos())),
        attributes: message.attributes.clone(),
    }
}

/// `seconds` and `nanos` since the epoch as the protobuf JSON mapping writes them.
fn publish_time(seconds: i64, nanos: i32) -> Option<String> {
    let nanos = u32::try_from(nanos).ok()?;
    let time = DateTime::<Utc>::from_timestamp(seconds, nanos)?;
    let format = if nanos == 0 {
        SecondsFormat::Secs
    } else if nanos.is_multiple_of(1_000_000) {
        SecondsFormat::Millis
    } else if nanos.is_multiple_of(1_000) {
        SecondsFormat::Micros
    } else {
        SecondsFormat::Nanos
    };
    Some(time.to_rfc3339_opts(format, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_time_as_push_writes_it() {
        let at = 1_795_439_044; // 2026-11-23T13:04:04Z
        assert_eq!(publish_time(at, 0).as_deref(), Some("2026-11-23T13:04:04Z"));
        assert_eq!(
            publish_time(at, 500_000_000).as_deref(),
            Some("2026-11-23T13:04:04.500Z")
        );
        assert_eq!(
            publish_time(at, 123_456_000).as_deref(),
            Some("2026-11-23T13:04:04.123456Z")
        );
        assert_eq!(
            publish_time(at, 123_456_789).as_deref(),
            Some("2026-11-23T13:04:04.123456789Z")
        );
        assert_eq!(publish_time(at, -1), None);
    }

    #[test]
    fn fields_carry_over() {
        let message = Message::new()
            .set_data("{}")
            .set_message_id("42")
            .set_attributes([("participant_role", "END_USER")]);
        let mapped = to_pubsub_message(&message);
        assert_eq!(mapped.data, b"{}");
        assert_eq!(mapped.message_id.as_deref(), Some("42"));
        assert_eq!(mapped.publish_time, None);
        assert_eq!(mapped.attributes["participant_role"], "END_USER");
        assert_eq!(
            to_pubsub_message(&Message::new()).message_id,
            None,
            "an empty id is no id, as in a push without messageId"
        );
    }
}
