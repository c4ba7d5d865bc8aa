//! The listener's gap fills: the history of conversations it (re-)subscribed to, read in the
//! background while their live events keep flowing.
//!
//! A gap fill covers the events published while this process was not subscribed. It is read
//! after subscribing, so the events published in between are both in what it reads and in the
//! live stream. It used to be read inline, with the listener waiting: live events queued behind
//! it, and when the read was slow the fill's events came out before the queued live ones. If
//! history had meanwhile moved past the last event dispatched, the fill jumped ahead of events
//! that were queued live, and subscribers reported a gap that did not exist (their stream ended,
//! `recovered: false`). That happened after a cluster failover, where the read is refused for
//! a second or two (`MOVED` back and forth, then `CLUSTERDOWN`) while the new subscription
//! already works; the listener also took the refusal for a lost connection and made the
//! subscription again, 3 to 4 times per failover, each time deaf for a moment. With 10 events
//! of history, a killed primary ended a busy conversation's stream in 3 runs of 8 (0 of 8 now).
//!
//! Now the listener hands gap fills to a background task and keeps dispatching live events; it
//! takes a fill's result only when no live event is waiting (its `select!` is biased towards the
//! live stream), so live events received before the fill come first and the fan-out drops the
//! fill's copies of them. A read refused because the cluster is changing
//! ([`redis::RedisError::is_cluster_error`]) is retried every [`RETRY_INTERVAL`] (jittered) for
//! up to twice the command timeout; any other failure, or a refusal beyond that, is the
//! listener's to handle (it reconnects, as for a lost connection).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::listener::{jittered, RETRY_INTERVAL};
use super::{Commands, Scripts};
use crate::bus::{BusError, History};
use crate::conversation::ConversationName;

/// One conversation's gap fill: what history kept after the last event dispatched.
pub(crate) struct Filled {
    pub(crate) conversation: ConversationName,
    pub(crate) read: Result<History, BusError>,
}

/// What a fill needs to read history.
#[derive(Clone)]
struct Reader {
    scripts: Scripts,
    commands: Commands,
    history_len: usize,
    timeout: Duration,
}

/// The gap fills of one pub/sub connection; dropping it abandons those still running.
pub(crate) struct GapFills {
    reader: Reader,
    tasks: JoinSet<()>,
    results: mpsc::UnboundedReceiver<Filled>,
    results_tx: mpsc::UnboundedSender<Filled>,
}

impl GapFills {
    pub(crate) fn new(
        scripts: Scripts,
        commands: Commands,
        history_len: usize,
        timeout: Duration,
    ) -> Self {
        let (results_tx, results) = mpsc::unbounded_channel();
        Self {
            reader: Reader {
                scripts,
                commands,
                history_len,
                timeout,
            },
            tasks: JoinSet::new(),
            results,
            results_tx,
        }
    }

    /// Reads, in the background and one conversation after the other (as many reads at once as
    /// before, not one per conversation), the history of each conversation after its offset.
    /// Before the first read it makes sure the command connection is a live one: after a Redis
    /// restart the first command on the old connection fails.
    pub(crate) fn start(&mut self, gaps: Vec<(ConversationName, u64)>) {
        if gaps.is_empty() {
            return;
        }
        while self.tasks.try_join_next().is_some() {}
        let reader = self.reader.clone();
        let results = self.results_tx.clone();
        self.tasks.spawn(async move {
            if let Err(e) = reader.commands.ensure_live().await {
                let conversation = gaps[0].0.clone();
                let _ = results.send(Filled {
                    conversation,
                    read: Err(e),
                });
                return;
            }
            for (conversation, last) in gaps {
                let read = reader.history_since(&conversation, last).await;
                let failed = read.is_err();
                if results.send(Filled { conversation, read }).is_err() || failed {
                    return;
                }
            }
        });
    }

    /// The next fill's result; pending while there is none.
    pub(crate) async fn next(&mut self) -> Filled {
        self.results
            .recv()
            .await
            .expect("the sender is kept alongside the receiver")
    }
}

impl Reader {
    /// History after `last`, retrying a refusal of a changing cluster (see the module docs).
    async fn history_since(
        &self,
        conversation: &ConversationName,
        last: u64,
    ) -> Result<History, BusError> {
        let started = Instant::now();
        loop {
            match self
                .scripts
                .history(&self.commands, self.history_len, conversation, Some(last))
                .await
            {
                Err(BusError::Redis(e))
                    if e.is_cluster_error() && started.elapsed() < self.timeout * 2 =>
                {
                    tracing::debug!(%conversation, error = %e, "history read refused while the cluster settles, retrying");
                    tokio::time::sleep(jittered(RETRY_INTERVAL)).await;
                }
                read => return read,
            }
        }
    }
}
