//! The worker of one subscription: takes batches off its streaming pull, has them stored, and
//! keeps the stream open until shutdown.
//!
//! - **Batches.** The library hands out one message per `next()` but receives them in server
//!   responses; whatever is already received is taken at once (`now_or_never`), up to
//!   [`MAX_BATCH_MESSAGES`] (one bus script call) or [`MAX_BATCH_BYTES`], and stored together.
//!   Up to [`BATCHES_IN_FLIGHT`] batches are stored at once, so the next batch is read while the
//!   previous one waits for Redis.
//! - **Pacing.** After a batch the bus refused (and that was nacked), the worker waits before the
//!   next one, 100 ms doubling to 2 s, so an outage does not turn every message into a tight
//!   nack-redeliver loop that spends its delivery attempts (and the dead-letter policy's count)
//!   in seconds; the subscription's retry policy spaces redeliveries further.
//! - **Failures.** Transient stream errors are retried by the library unseen. A permanent one
//!   (subscription not found, permission denied) ends the stream: it is reported to `/ready`,
//!   logged, and a new stream is opened after a backoff (1 s doubling to 60 s), because such
//!   causes are often fixed without a restart (an IAM grant still propagating).
//! - **Shutdown.** On the token the worker stops reading, then at once: nacks the malformed
//!   messages it holds, lets the batches in flight finish (each acks only what was stored), and
//!   shuts the stream down, which nacks what was received but not handed out and returns once
//!   the acknowledgements are flushed. The caller bounds the whole within Cloud Run's 10 s.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_assist_core::ConversationBus;
use futures::FutureExt;
use google_cloud_pubsub::client::Subscriber;
use google_cloud_pubsub::subscriber::MessageStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::batch::{self, Batch, BatchResult};
use super::health::StreamHealth;
use super::malformed::MalformedHold;
use super::metrics::PullMetrics;
use super::settings::{PullConfig, PulledSubscription};

/// Messages stored together: the bus's limit for one script call.
pub const MAX_BATCH_MESSAGES: usize = agent_assist_core::bus::MAX_EVENTS_PER_CALL;
/// Bytes of message data stored together, so a batch of large messages cannot hold Redis long.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Batches of one stream being stored at once (as many as the bus runs script calls at once).
pub const BATCHES_IN_FLIGHT: usize = 4;

const BUS_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BUS_BACKOFF_MAX: Duration = Duration::from_secs(2);
const STREAM_BACKOFF_FIRST: Duration = Duration::from_secs(1);
const STREAM_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Everything one subscription's worker needs.
pub struct StreamWorker {
    pub pulled: PulledSubscription,
    pub client: Subscriber,
    pub config: Arc<PullConfig>,
    pub bus: ConversationBus,
    pub metrics: Arc<PullMetrics>,
    pub health: Arc<StreamHealth>,
}

/// How a stream ended.
enum Ended {
    Shutdown,
    Failed(String),
}

/// What the batch tasks share with the worker.
struct Shared {
    bus: ConversationBus,
    metrics: Arc<PullMetrics>,
    malformed: MalformedHold,
    /// Batches refused by the bus in a row.
    bus_failures: AtomicU32,
}

impl StreamWorker {
    /// Pulls until `shutdown` fires, then drains as described in the module docs.
    pub async fn run(self, shutdown: CancellationToken) {
        let event_type = self.pulled.event_type;
        let shared = Arc::new(Shared {
            bus: self.bus.clone(),
            metrics: self.metrics.clone(),
            malformed: MalformedHold::start(self.config.malformed_nack_delay),
            bus_failures: AtomicU32::new(0),
        });
        let slots = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
        // Batches being stored, and shutdowns of streams that failed (they flush the
        // acknowledgements of their batches).
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut backoff = STREAM_BACKOFF_FIRST;
        let last_stream = loop {
            let mut stream = self
                .client
                .subscribe(&self.pulled.subscription)
                .set_max_outstanding_messages(self.config.max_outstanding_messages)
                .set_max_outstanding_bytes(self.config.max_outstanding_bytes)
                .build();
            self.health.opened();
            let ended = self
                .pull(
                    &mut stream,
                    &shared,
                    &slots,
                    &mut tasks,
                    &shutdown,
                    &mut backoff,
                )
                .await;
            let error = match ended {
                Ended::Shutdown => break Some(stream),
                Ended::Failed(error) => error,
            };
            self.health.failed(error.clone());
            self.metrics.stream_failed(event_type);
            tracing::error!(
                %event_type,
                subscription = %self.pulled.subscription,
                %error,
                retry_in_seconds = backoff.as_secs(),
                "pull stream failed, reopening it after a backoff"
            );
            let token = stream.shutdown_token();
            drop(stream);
            tasks.spawn(async move { token.shutdown().await });
            tokio::select! {
                _ = shutdown.cancelled() => break None,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(STREAM_BACKOFF_MAX);
        };

        let started = Instant::now();
        let stream_closed = last_stream.map(|stream| {
            let token = stream.shutdown_token();
            // Dropping the stream ends the gRPC call, so the server sends nothing more.
            drop(stream);
            async move { token.shutdown().await }
        });
        let held = shared.malformed.held();
        tokio::join!(
            shared.malformed.release_all(),
            async { while tasks.join_next().await.is_some() {} },
            async {
                if let Some(closed) = stream_closed {
                    closed.await;
                }
            },
        );
        self.health.stopped();
        tracing::info!(
            %event_type,
            malformed_nacked = held,
            took_ms = started.elapsed().as_millis() as u64,
            "pull stream stopped, acknowledgements flushed"
        );
    }

    /// Reads batches off `stream` until shutdown or a permanent error.
    async fn pull(
        &self,
        stream: &mut MessageStream,
        shared: &Arc<Shared>,
        slots: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
        shutdown: &CancellationToken,
        backoff: &mut Duration,
    ) -> Ended {
        let event_type = self.pulled.event_type;
        loop {
            while tasks.try_join_next().is_some() {}
            let failures = shared.bus_failures.load(Ordering::Relaxed);
            if failures > 0 {
                let pause = BUS_BACKOFF_FIRST
                    .saturating_mul(1u32 << (failures - 1).min(8))
                    .min(BUS_BACKOFF_MAX);
                tokio::select! {
                    _ = shutdown.cancelled() => return Ended::Shutdown,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
            let slot = tokio::select! {
                _ = shutdown.cancelled() => return Ended::Shutdown,
                slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            };
            let first = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ended::Shutdown,
                item = stream.next() => item,
            };
            let first = match first {
                Some(Ok(item)) => item,
                Some(Err(error)) => return Ended::Failed(error.to_string()),
                None => return Ended::Failed("the stream ended".into()),
            };
            let received = Instant::now();
            let received_at = chrono::Utc::now();
            let mut bytes = message_bytes(&first.0);
            let mut messages = vec![first];
            let mut failure = None;
            while messages.len() < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES {
                match stream.next().now_or_never() {
                    Some(Some(Ok(item))) => {
                        bytes += message_bytes(&item.0);
                        messages.push(item);
                    }
                    // A permanent error behind messages already received: those are stored
                    // first, then the stream is reported failed.
                    Some(Some(Err(error))) => {
                        failure = Some(error.to_string());
                        break;
                    }
                    Some(None) | None => break,
                }
            }
            self.health.received(messages.len());
            self.metrics.taken(messages.len());
            *backoff = STREAM_BACKOFF_FIRST;
            let shared = shared.clone();
            tasks.spawn(async move {
                let count = messages.len();
                let batch = Batch {
                    messages,
                    received,
                    received_at,
                };
                let result = batch::handle(
                    event_type,
                    batch,
                    &shared.bus,
                    &shared.metrics,
                    &shared.malformed,
                )
                .await;
                shared.metrics.settled(count);
                match result {
                    BatchResult::Stored => shared.bus_failures.store(0, Ordering::Relaxed),
                    BatchResult::BusFailed => {
                        shared.bus_failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                drop(slot);
            });
            if let Some(error) = failure {
                return Ended::Failed(error);
            }
        }
    }
}

/// What a message weighs in a batch: its data and attributes.
fn message_bytes(message: &google_cloud_pubsub::model::Message) -> usize {
    message.data.len()
        + message
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}
