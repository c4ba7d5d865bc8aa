//! The Redis store: what connects the interceptor to every connector instance in production.
//!
//! - [`keys`]: the key layout.
//! - [`scripts`]: the atomic publish and history scripts.
//! - [`batcher`]: group commit, several publishes per script call.
//! - [`connection`]: the client and the command connection (with timeouts).
//! - [`listener`]: the one Pub/Sub connection per process that feeds the local fan-out.
//! - [`pubsub`]: that connection, classic pub/sub on a standalone Redis or sharded pub/sub on a
//!   Redis Cluster.
//!
//! # Cluster mode
//! With `REDIS_CLUSTER_NODES` the same store runs on a Redis Cluster: every key of a
//! conversation carries its hash tag, so the publish script stays one atomic step on one shard;
//! events go out with `SPUBLISH` on the conversation's sharded channel, so each shard carries
//! only its own conversations' traffic; a script call carries only one slot's events. The
//! listener subscribes with `SSUBSCRIBE` and subscribes again (then fills the gap from history)
//! when a topology change drops a subscription (see [`listener`]).

mod batcher;
mod connection;
mod gap_fill;
pub(crate) mod keys;
mod listener;
mod pubsub;
mod scripts;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use batcher::Batcher;
use connection::ClusterSettings;
pub(crate) use connection::Commands;
use listener::{Inbox, ListenRequest, Listener};
use pubsub::PubSubSource;
use scripts::{PublishOptions, Scripts};

use super::fanout::Fanout;
use super::{BusError, History, PublishOutcome};
use crate::config::BusConfig;
use crate::conversation::ConversationName;
use crate::event::PendingEvent;

pub(crate) struct RedisStore {
    commands: Commands,
    scripts: Scripts,
    options: PublishOptions,
    batcher: Batcher,
    config: BusConfig,
    listen: mpsc::UnboundedSender<ListenRequest>,
}

impl RedisStore {
    /// Connects lazily and starts the listener, which stops when `shutdown` fires. `idle` is
    /// the fan-out's channel of conversations nobody here wants any more.
    ///
    /// Standalone with `config.redis_url`, on a Redis Cluster with `config.redis_cluster_nodes`.
    pub(crate) fn open(
        config: BusConfig,
        fanout: Arc<Fanout>,
        idle: mpsc::UnboundedReceiver<ConversationName>,
        shutdown: CancellationToken,
    ) -> Result<Self, BusError> {
        let (commands, source) = if config.is_cluster() {
            let settings = ClusterSettings::new(&config)?;
            (
                Commands::open_cluster(&settings)?,
                PubSubSource::Cluster(settings),
            )
        } else {
            let url = config.redis_url.as_deref().ok_or_else(|| {
                BusError::Config("neither REDIS_URL nor REDIS_CLUSTER_NODES is set".into())
            })?;
            let client = connection::client(url, &config)?;
            (
                Commands::open(client.clone(), config.redis_timeout)?,
                PubSubSource::Standalone(client),
            )
        };
        let scripts = Scripts::new();
        let options = PublishOptions::new(&config);
        let batcher = Batcher::start(commands.clone(), scripts.clone(), options.clone());
        let (listen, requests) = mpsc::unbounded_channel();
        let listener = Listener {
            source,
            commands: commands.clone(),
            scripts: scripts.clone(),
            history_len: config.history_len,
            fanout,
            timeout: config.redis_timeout,
            waiting: Vec::new(),
        };
        tokio::spawn(listener.run(Inbox {
            listen: requests,
            idle,
            shutdown,
        }));
        Ok(Self {
            commands,
            scripts,
            options,
            batcher,
            config,
            listen,
        })
    }

    pub(crate) fn commands(&self) -> &Commands {
        &self.commands
    }

    /// One event, grouped with whatever else is being published (see [`batcher`]).
    pub(crate) async fn publish(&self, event: &PendingEvent) -> Result<PublishOutcome, BusError> {
        self.batcher.publish(Arc::new(event.clone())).await
    }

    /// A batch already gathered (a pulled batch): one script call per
    /// [`MAX_EVENTS_PER_CALL`](crate::bus::MAX_EVENTS_PER_CALL) events (and, on a cluster, per slot), one after the other.
    pub(crate) async fn publish_batch(
        &self,
        events: Vec<PendingEvent>,
    ) -> Result<Vec<PublishOutcome>, BusError> {
        let events: Vec<Arc<PendingEvent>> = events.into_iter().map(Arc::new).collect();
        let mut outcomes = vec![PublishOutcome::Duplicate; events.len()];
        for call in batcher::script_calls(&events, self.options.one_slot_per_call) {
            let chunk: Vec<Arc<PendingEvent>> = call.iter().map(|&i| events[i].clone()).collect();
            let published = self
                .scripts
                .publish(&self.commands, &self.options, &chunk)
                .await?;
            for (i, outcome) in call.into_iter().zip(published) {
                outcomes[i] = outcome;
            }
        }
        Ok(outcomes)
    }

    pub(crate) async fn history(
        &self,
        conversation: &ConversationName,
        since: Option<u64>,
    ) -> Result<History, BusError> {
        self.scripts
            .history(&self.commands, self.config.history_len, conversation, since)
            .await
    }

    /// Returns once this process receives the conversation's live events.
    pub(crate) async fn listen(&self, conversation: &ConversationName) -> Result<(), BusError> {
        let (done, subscribed) = oneshot::channel();
        self.listen
            .send((conversation.clone(), done))
            .map_err(|_| BusError::ListenerStopped)?;
        // Twice the command timeout: a (re)connection plus the SUBSCRIBE itself.
        let wait = self.config.redis_timeout * 2;
        match tokio::time::timeout(wait, subscribed).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(BusError::ListenerStopped),
            Err(_) => Err(BusError::Timeout(wait)),
        }
    }

    pub(crate) async fn ping(&self) -> Result<(), BusError> {
        let mut connection = self.commands.connection();
        let _: String = self
            .commands
            .timed(redis::cmd("PING").query_async(&mut connection))
            .await?;
        Ok(())
    }
}
