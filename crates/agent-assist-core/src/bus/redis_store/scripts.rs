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

/// Stores and publishes a batch of events in one step. Several pushes arriving together (group
/// commit, see `batcher`) or a pulled batch cost one script call, which is most of Redis's
/// cost per event (request parsing, the call into Lua, a reply), rather than one each.
///
/// ARGV[1..6]: history length, history TTL (s), dedup window (s), trim slack, the publish
/// command (`PUBLISH`, or `SPUBLISH` on a cluster), and the key stride: 3, or 4 when events are
/// also delivered to Python connectors (the bridge). Per event `i` (from 0): KEYS seq, history,
/// dedup mark (the seq key again when the message has no id) and, with the bridge, the
/// conversation name as Python connectors key it; ARGV[7 + 3i] the event JSON without its
/// closing brace (an event object always has fields, so the offset follows a comma),
/// ARGV[8 + 3i] its channel, ARGV[9 + 3i] `1` when it has a dedup mark. Returns each event's
/// offset, or -1 for a redelivery.
///
/// `seq` is a hash: `first` (the generation's first offset) and `last`. `HINCRBY` on a missing
/// hash answers 1: that is a new generation, seeded from the server clock in microseconds. The
/// payload is one concatenation of the event text, the offset and `}`: never re-serialised.
/// Numbers are formatted with `%.0f` because Lua 5.1 would write a 16-digit number in exponent
/// form. History is trimmed once it holds `slack` more events than it keeps, not on every push,
/// and each conversation's TTLs are refreshed once per call. The dedup mark is written last: if
/// anything before it fails, Pub/Sub's redelivery is processed again instead of being dropped as
/// a duplicate.
const PUBLISH_SCRIPT: &str = r#"
local keep = tonumber(ARGV[1])
local trim_above = keep + tonumber(ARGV[4])
local stride = tonumber(ARGV[6])
local count = (#ARGV - 6) / 3
local offsets = {}
local touched = {}
for i = 0, count - 1 do
  local k = stride * i
  local a = 7 + 3 * i
  local marked = ARGV[a + 2] == '1'
  if marked and redis.call('EXISTS', KEYS[k + 3]) == 1 then
    offsets[i + 1] = -1
  else
    local offset = redis.call('HINCRBY', KEYS[k + 1], 'last', 1)
    if offset == 1 then
      local t = redis.call('TIME')
      offset = tonumber(t[1]) * 1000000 + tonumber(t[2]) + 1
      redis.call('HSET', KEYS[k + 1], 'first', string.format('%.0f', offset), 'last', string.format('%.0f', offset))
    end
    local payload = ARGV[a] .. ',"offset":' .. string.format('%.0f', offset) .. '}'
    if redis.call('RPUSH', KEYS[k + 2], payload) > trim_above then
      redis.call('LTRIM', KEYS[k + 2], -keep, -1)
    end
    touched[KEYS[k + 1]] = KEYS[k + 2]
    redis.call(ARGV[5], ARGV[a + 1], payload)
    if stride == 4 then
      local server = redis.call('GET', KEYS[k + 4])
      if server then
        redis.call('PUBLISH', server .. ':' .. KEYS[k + 4], payload)
      end
    end
    if marked then
      redis.call('SET', KEYS[k + 3], '1', 'EX', ARGV[3])
    end
    offsets[i + 1] = offset
  end
end
for seq, history in pairs(touched) do
  redis.call('EXPIRE', seq, ARGV[2])
  redis.call('EXPIRE', history, ARGV[2])
end
return offsets
"#;

/// KEYS: seq, history. ARGV: since ('' for none), history length. Returns {latest, complete
/// (0/1), events}. Offsets are consecutive within a generation, so the first kept offset is
/// `last - kept + 1`, where `kept` is the list's length but at most the history length (the
/// publish script trims with some slack; the slack is never served, so history behaves as if
/// trimmed exactly), and the events after `since` start at list index
/// `since + 1 - first_kept` counted from the list's end.
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
local length = redis.call('LLEN', KEYS[2])
local kept = math.min(length, tonumber(ARGV[2]))
local first_kept = latest - kept + 1
local start = length - kept + since + 1 - first_kept
local complete = 1
if since == 0 then
  if first_kept > first then complete = 0 end
elseif since + 1 < first_kept then
  complete = 0
end
if start < length - kept then start = length - kept end
return {latest, complete, redis.call('LRANGE', KEYS[2], start, -1)}
"#;

/// What the publish script needs besides the events, fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct PublishOptions {
    pub history_len: usize,
    pub history_ttl_secs: u64,
    pub dedup_window_secs: u64,
    /// History may hold this many events more than it keeps before it is trimmed.
    pub trim_slack: usize,
    /// `PUBLISH`, or `SPUBLISH` (sharded pub/sub) on a Redis Cluster.
    pub publish_command: &'static str,
    /// Also deliver to Python connectors (see `keys::python_route`).
    pub python_bridge: bool,
    /// On a Redis Cluster, a script's keys must all live in one hash slot, so one call carries
    /// only events of one slot (see `batcher::script_calls`).
    pub one_slot_per_call: bool,
}

impl PublishOptions {
    pub(crate) fn new(config: &BusConfig) -> Self {
        Self {
            history_len: config.history_len,
            history_ttl_secs: config.history_ttl.as_secs(),
            dedup_window_secs: config.dedup_window.as_secs(),
            trim_slack: (config.history_len / 8).max(1),
            publish_command: if config.is_cluster() {
                "SPUBLISH"
            } else {
                "PUBLISH"
            },
            python_bridge: config.python_connector_bridge,
            one_slot_per_call: config.is_cluster(),
        }
    }
}

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

    /// Stores and publishes `events` in one script call; their outcomes, in order.
    pub(crate) async fn publish(
        &self,
        commands: &Commands,
        options: &PublishOptions,
        events: &[Arc<PendingEvent>],
    ) -> Result<Vec<PublishOutcome>, BusError> {
        let mut invocation = self.publish.prepare_invoke();
        let stride = if options.python_bridge { 4 } else { 3 };
        invocation
            .arg(options.history_len)
            .arg(options.history_ttl_secs)
            .arg(options.dedup_window_secs)
            .arg(options.trim_slack)
            .arg(options.publish_command)
            .arg(stride);
        for event in events {
            let seq = keys::seq(&event.conversation);
            let dedup = match &event.message_id {
                Some(id) => keys::dedup(&event.conversation, event.data_type, id),
                None => seq.clone(),
            };
            invocation
                .key(seq)
                .key(keys::history(&event.conversation))
                .key(dedup);
            if options.python_bridge {
                invocation.key(keys::python_route(&event.conversation));
            }
            invocation
                .arg(event.json.strip_suffix('}').unwrap_or(&event.json))
                .arg(keys::channel(&event.conversation))
                .arg(if event.message_id.is_some() { "1" } else { "0" });
        }
        let mut connection = commands.connection();
        let offsets: Vec<i64> = commands
            .timed(invocation.invoke_async(&mut connection))
            .await?;
        if offsets.len() != events.len() {
            return Err(BusError::Config(format!(
                "the publish script answered {} offsets for {} events",
                offsets.len(),
                events.len()
            )));
        }
        Ok(offsets
            .into_iter()
            .map(|offset| {
                if offset < 0 {
                    PublishOutcome::Duplicate
                } else {
                    PublishOutcome::Published {
                        offset: offset as u64,
                    }
                }
            })
            .collect())
    }

    pub(crate) async fn history(
        &self,
        commands: &Commands,
        history_len: usize,
        conversation: &ConversationName,
        since: Option<u64>,
    ) -> Result<History, BusError> {
        let mut invocation = self.history.prepare_invoke();
        invocation
            .key(keys::seq(conversation))
            .key(keys::history(conversation))
            .arg(since.map(|s| s.to_string()).unwrap_or_default())
            .arg(history_len);
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
