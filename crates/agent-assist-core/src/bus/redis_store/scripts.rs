//! The two Lua scripts that make publishing and reading history atomic, and how they are
//! called.
//!
//! Publishing is one script ([`PUBLISH_SCRIPT`]), so no reader ever sees an event in history
//! that was not published, or the reverse; reading history is another ([`HISTORY_SCRIPT`]), so
//! the latest offset and the kept events it returns belong together.

use std::sync::Arc;

use redis::Script;

use super::{keys, Commands};
use crate::bus::{BusError, History, PublishOutcome};
use crate::config::BusConfig;
use crate::conversation::ConversationName;
use crate::event::{BusEvent, PendingEvent};

/// KEYS: seq, history, [dedup]. ARGV: the event JSON without its closing brace (an event
/// object always has fields, so the offset follows a comma), channel, history length, history
/// TTL (s), dedup window (s). Returns the offset, or -1 for a redelivery.
///
/// `seq` is a hash: `first` (the generation's first offset) and `last`. `HINCRBY` on a missing
/// hash answers 1: that is a new generation, seeded from the server clock in microseconds. The
/// payload is one concatenation of the event text, the offset and `}`: never re-serialised,
/// and sent from Rust as a slice of the serialised event, without a copy.
/// Numbers are formatted with `%.0f` because Lua 5.1 would write a 16-digit number in exponent
/// form. The dedup mark is written last: if anything before it fails, Pub/Sub's redelivery is
/// processed again instead of being dropped as a duplicate.
const PUBLISH_SCRIPT: &str = r#"
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then
  return -1
end
local offset = redis.call('HINCRBY', KEYS[1], 'last', 1)
if offset == 1 then
  local t = redis.call('TIME')
  offset = tonumber(t[1]) * 1000000 + tonumber(t[2]) + 1
  redis.call('HSET', KEYS[1], 'first', string.format('%.0f', offset), 'last', string.format('%.0f', offset))
end
local payload = ARGV[1] .. ',"offset":' .. string.format('%.0f', offset) .. '}'
redis.call('RPUSH', KEYS[2], payload)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[2], payload)
if KEYS[3] then
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[5])
end
return offset
"#;

/// KEYS: seq, history. ARGV: since ('' for none). Returns {latest, complete (0/1), events}.
/// Offsets are consecutive within a generation, so the first kept offset is
/// `last - LLEN + 1` and the events after `since` start at list index `since + 1 - first_kept`.
/// `since` = 0 means "from the start": complete when nothing was trimmed. A `since` from an
/// older generation (expired or emptied history) is never complete.
const HISTORY_SCRIPT: &str = r#"
local seq = redis.call('HMGET', KEYS[1], 'first', 'last')
local first = tonumber(seq[1] or '1')
local latest = tonumber(seq[2] or '0')
if ARGV[1] == '' then
  return {latest, 1, {}}
end
local since = tonumber(ARGV[1])
if since >= latest then
  if since == latest then return {latest, 1, {}} end
  return {latest, 0, {}}
end
local first_kept = latest - redis.call('LLEN', KEYS[2]) + 1
local start = since + 1 - first_kept
local complete = 1
if since == 0 then
  if first_kept > first then complete = 0 end
elseif since + 1 < first_kept then
  complete = 0
end
if start < 0 then start = 0 end
return {latest, complete, redis.call('LRANGE', KEYS[2], start, -1)}
"#;

/// The loaded scripts; cheap to clone.
#[derive(Clone)]
pub(crate) struct Scripts {
    publish: Arc<Script>,
    history: Arc<Script>,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            publish: Arc::new(Script::new(PUBLISH_SCRIPT)),
            history: Arc::new(Script::new(HISTORY_SCRIPT)),
        }
    }

    pub(crate) async fn publish(
        &self,
        commands: &Commands,
        config: &BusConfig,
        event: &PendingEvent,
    ) -> Result<PublishOutcome, BusError> {
        let mut invocation = self.publish.prepare_invoke();
        invocation
            .key(keys::seq(&event.conversation))
            .key(keys::history(&event.conversation));
        if let Some(id) = &event.message_id {
            invocation.key(keys::dedup(&event.conversation, event.data_type, id));
        }
        invocation
            .arg(event.json.strip_suffix('}').unwrap_or(&event.json))
            .arg(keys::channel(&event.conversation))
            .arg(config.history_len)
            .arg(config.history_ttl.as_secs())
            .arg(config.dedup_window.as_secs());
        let mut connection = commands.connection();
        let offset: i64 = commands
            .timed(invocation.invoke_async(&mut connection))
            .await?;
        Ok(if offset < 0 {
            PublishOutcome::Duplicate
        } else {
            PublishOutcome::Published {
                offset: offset as u64,
            }
        })
    }

    pub(crate) async fn history(
        &self,
        commands: &Commands,
        conversation: &ConversationName,
        since: Option<u64>,
    ) -> Result<History, BusError> {
        let mut invocation = self.history.prepare_invoke();
        invocation
            .key(keys::seq(conversation))
            .key(keys::history(conversation))
            .arg(since.map(|s| s.to_string()).unwrap_or_default());
        let mut connection = commands.connection();
        let (latest, complete, payloads): (u64, u8, Vec<String>) = commands
            .timed(invocation.invoke_async(&mut connection))
            .await?;
        let events = payloads
            .into_iter()
            .map(BusEvent::from_payload)
            .collect::<Result<_, _>>()?;
        Ok(History {
            events,
            latest,
            complete: complete == 1,
        })
    }
}
