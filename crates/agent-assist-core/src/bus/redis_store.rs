//! The Redis store: what connects the interceptor to every connector instance in production.
//!
//! # Keys (prefix `agent-assist:`)
//! - `agent-assist:{conversation}:seq`: a hash of the generation's first and last offsets.
//! - `agent-assist:{conversation}:history`: a list of the last events, as published.
//! - `agent-assist:dedup:{data_type}:{message_id}`: a redelivery mark.
//! - channel `agent-assist:{conversation}:events`: live events.
//!
//! Publishing is one Lua script ([`PUBLISH_SCRIPT`]), so no reader ever sees an event in history
//! that was not published, or the reverse. Commands go through a `ConnectionManager` (one
//! multiplexed connection, reconnecting on its own); every call has a timeout so that a caller
//! learns quickly that Redis is away (the interceptor then answers 503).
//!
//! Live events come through one Pub/Sub connection per process, owned by a listener task. It
//! subscribes to a conversation while this process has subscribers for it, and on a lost
//! connection reconnects with backoff, re-subscribes everything, and fills the gap from history.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use tokio::sync::{mpsc, oneshot};

use super::fanout::Fanout;
use super::{BusError, History, PublishOutcome};
use crate::config::BusConfig;
use crate::conversation::ConversationName;
use crate::event::{BusEvent, PendingEvent};

const PREFIX: &str = "agent-assist:";
const CHANNEL_SUFFIX: &str = ":events";

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

fn seq_key(conversation: &ConversationName) -> String {
    format!("{PREFIX}{conversation}:seq")
}

fn history_key(conversation: &ConversationName) -> String {
    format!("{PREFIX}{conversation}:history")
}

fn channel(conversation: &ConversationName) -> String {
    format!("{PREFIX}{conversation}{CHANNEL_SUFFIX}")
}

fn conversation_of(channel: &str) -> Option<ConversationName> {
    let name = channel.strip_prefix(PREFIX)?.strip_suffix(CHANNEL_SUFFIX)?;
    ConversationName::parse(name).ok()
}

/// Commands and history reads, shared by the store and its listener task.
#[derive(Clone)]
struct Commands {
    connection: ConnectionManager,
    publish: Arc<Script>,
    history: Arc<Script>,
    config: BusConfig,
}

impl Commands {
    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, BusError> {
        match tokio::time::timeout(self.config.redis_timeout, call).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(BusError::Timeout(self.config.redis_timeout)),
        }
    }

    async fn history(
        &self,
        conversation: &ConversationName,
        since: Option<u64>,
    ) -> Result<History, BusError> {
        let mut invocation = self.history.prepare_invoke();
        invocation
            .key(seq_key(conversation))
            .key(history_key(conversation))
            .arg(since.map(|s| s.to_string()).unwrap_or_default());
        let mut connection = self.connection.clone();
        let (latest, complete, payloads): (u64, u8, Vec<String>) =
            self.timed(invocation.invoke_async(&mut connection)).await?;
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

pub(crate) struct RedisStore {
    commands: Commands,
    listener: mpsc::UnboundedSender<ListenerCommand>,
}

enum ListenerCommand {
    Listen(ConversationName, oneshot::Sender<()>),
    Release(ConversationName),
}

impl RedisStore {
    pub(crate) fn open(
        url: &str,
        config: BusConfig,
        fanout: Arc<Fanout>,
    ) -> Result<Self, BusError> {
        let client = match &config.redis_ca_cert {
            None => redis::Client::open(url)?,
            Some(path) => {
                let root_cert = std::fs::read(path).map_err(|e| {
                    BusError::Config(format!(
                        "cannot read REDIS_CA_CERT_PATH {}: {e}",
                        path.display()
                    ))
                })?;
                redis::Client::build_with_tls(
                    url,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(root_cert),
                    },
                )?
            }
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.redis_timeout))
            .set_response_timeout(Some(config.redis_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)?;
        let commands = Commands {
            connection,
            publish: Arc::new(Script::new(PUBLISH_SCRIPT)),
            history: Arc::new(Script::new(HISTORY_SCRIPT)),
            config,
        };
        let (listener, requests) = mpsc::unbounded_channel();
        tokio::spawn(Listener::new(client, commands.clone(), fanout).run(requests));
        Ok(Self { commands, listener })
    }

    pub(crate) async fn publish(&self, event: &PendingEvent) -> Result<PublishOutcome, BusError> {
        let config = &self.commands.config;
        let mut invocation = self.commands.publish.prepare_invoke();
        invocation
            .key(seq_key(&event.conversation))
            .key(history_key(&event.conversation));
        if let Some(id) = &event.message_id {
            invocation.key(format!("{PREFIX}dedup:{}:{id}", event.data_type));
        }
        invocation
            .arg(event.json.strip_suffix('}').unwrap_or(&event.json))
            .arg(channel(&event.conversation))
            .arg(config.history_len)
            .arg(config.history_ttl.as_secs())
            .arg(config.dedup_window.as_secs());
        let mut connection = self.commands.connection.clone();
        let offset: i64 = self
            .commands
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
        conversation: &ConversationName,
        since: Option<u64>,
    ) -> Result<History, BusError> {
        self.commands.history(conversation, since).await
    }

    /// Returns once this process receives the conversation's live events.
    pub(crate) async fn listen(&self, conversation: &ConversationName) -> Result<(), BusError> {
        let (done, subscribed) = oneshot::channel();
        self.listener
            .send(ListenerCommand::Listen(conversation.clone(), done))
            .map_err(|_| BusError::ListenerStopped)?;
        // Twice the command timeout: a (re)connection plus the SUBSCRIBE itself.
        let wait = self.commands.config.redis_timeout * 2;
        match tokio::time::timeout(wait, subscribed).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(BusError::ListenerStopped),
            Err(_) => Err(BusError::Timeout(wait)),
        }
    }

    pub(crate) fn release(&self, conversation: &ConversationName) {
        let _ = self
            .listener
            .send(ListenerCommand::Release(conversation.clone()));
    }

    pub(crate) async fn ping(&self) -> Result<(), BusError> {
        let mut connection = self.commands.connection.clone();
        let _: String = self
            .commands
            .timed(redis::cmd("PING").query_async(&mut connection))
            .await?;
        Ok(())
    }

    pub(crate) async fn put_value(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), BusError> {
        let mut connection = self.commands.connection.clone();
        let key = format!("{PREFIX}{key}");
        self.commands
            .timed(connection.set_ex::<_, _, ()>(key, value, ttl.as_secs().max(1)))
            .await
    }

    pub(crate) async fn get_value(&self, key: &str) -> Result<Option<String>, BusError> {
        let mut connection = self.commands.connection.clone();
        self.commands
            .timed(connection.get(format!("{PREFIX}{key}")))
            .await
    }

    pub(crate) async fn delete_value(&self, key: &str) -> Result<bool, BusError> {
        let mut connection = self.commands.connection.clone();
        let removed: u64 = self
            .commands
            .timed(connection.del(format!("{PREFIX}{key}")))
            .await?;
        Ok(removed > 0)
    }
}

/// Owns the Pub/Sub connection; requests arrive in order on one channel, so a release and a
/// new listen for the same conversation can never race.
struct Listener {
    client: redis::Client,
    commands: Commands,
    fanout: Arc<Fanout>,
    /// Listen requests waiting for a connection.
    waiting: Vec<oneshot::Sender<()>>,
}

const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Listener {
    fn new(client: redis::Client, commands: Commands, fanout: Arc<Fanout>) -> Self {
        Self {
            client,
            commands,
            fanout,
            waiting: Vec::new(),
        }
    }

    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<ListenerCommand>) {
        let mut backoff = MIN_BACKOFF;
        let mut was_connected = false;
        loop {
            match self
                .serve_connection(&mut requests, &mut was_connected)
                .await
            {
                Ok(Stop) => return,
                Err(e) => {
                    if was_connected {
                        tracing::warn!(error = %e, "redis pub/sub connection lost, reconnecting");
                        backoff = MIN_BACKOFF;
                    } else {
                        tracing::debug!(error = %e, ?backoff, "redis pub/sub unavailable");
                    }
                    was_connected = false;
                }
            }
            // Keep answering requests while waiting to reconnect.
            let pause = tokio::time::sleep(backoff);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    _ = &mut pause => break,
                    request = requests.recv() => match request {
                        None => return,
                        Some(ListenerCommand::Listen(_, done)) => self.waiting.push(done),
                        Some(ListenerCommand::Release(conversation)) => {
                            self.fanout.remove_if_unused(&conversation);
                        }
                    }
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection's life: subscribe to everything the fan-out holds, fill the gap, then
    /// serve requests and messages until the connection fails.
    async fn serve_connection(
        &mut self,
        requests: &mut mpsc::UnboundedReceiver<ListenerCommand>,
        was_connected: &mut bool,
    ) -> Result<Stop, BusError> {
        let timeout = self.commands.config.redis_timeout;
        let pubsub = match tokio::time::timeout(timeout, self.client.get_async_pubsub()).await {
            Ok(result) => result?,
            Err(_) => return Err(BusError::Timeout(timeout)),
        };
        let (mut sink, mut stream) = pubsub.split();
        let mut subscribed: HashSet<ConversationName> = HashSet::new();
        let snapshot = self.fanout.snapshot();
        if !snapshot.is_empty() {
            let channels: Vec<String> = snapshot.iter().map(|(c, _)| channel(c)).collect();
            sink.subscribe(channels).await?;
            subscribed.extend(snapshot.iter().map(|(c, _)| c.clone()));
        }
        *was_connected = true;
        tracing::info!(conversations = snapshot.len(), "redis pub/sub connected");
        // Events published while this process was not subscribed are in history.
        // Subscribers skip what they already have, so replaying from an offset of 0 (nothing
        // dispatched yet) is harmless.
        for (conversation, last) in &snapshot {
            let history = self.commands.history(conversation, Some(*last)).await?;
            for event in history.events {
                self.fanout.dispatch(conversation, event);
            }
        }
        for done in self.waiting.drain(..) {
            let _ = done.send(());
        }
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else {
                        return Err(BusError::Redis(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "pub/sub connection closed",
                        ))));
                    };
                    self.dispatch(message);
                }
                request = requests.recv() => match request {
                    None => return Ok(Stop),
                    Some(ListenerCommand::Listen(conversation, done)) => {
                        if !subscribed.contains(&conversation) {
                            if let Err(e) = sink.subscribe(channel(&conversation)).await {
                                self.waiting.push(done);
                                return Err(e.into());
                            }
                            subscribed.insert(conversation);
                        }
                        let _ = done.send(());
                    }
                    Some(ListenerCommand::Release(conversation)) => {
                        if self.fanout.remove_if_unused(&conversation) && subscribed.remove(&conversation) {
                            sink.unsubscribe(channel(&conversation)).await?;
                        }
                    }
                }
            }
        }
    }

    fn dispatch(&self, message: redis::Msg) {
        let Some(conversation) = conversation_of(message.get_channel_name()) else {
            tracing::warn!(
                channel = message.get_channel_name(),
                "message on an unexpected channel"
            );
            return;
        };
        let payload: String = match message.get_payload() {
            Ok(payload) => payload,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable pub/sub message");
                return;
            }
        };
        match BusEvent::from_payload(payload) {
            Ok(event) => self.fanout.dispatch(&conversation, event),
            Err(e) => tracing::warn!(%conversation, error = %e, "malformed event on the bus"),
        }
    }
}

struct Stop;
