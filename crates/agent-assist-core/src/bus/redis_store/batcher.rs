//! Group commit: pushes that arrive together are published by one script call.
//!
//! Every publish goes through one queue. A lone push is sent at once, as a batch of one; while
//! calls are in flight, new events wait in the queue and go together in the next call, so the
//! busier the interceptor, the fewer script calls per event, and no push is ever delayed to
//! wait for company. Up to [`MAX_IN_FLIGHT`] calls run at once (the connection is
//! multiplexed); a call carries at most [`MAX_BATCH_EVENTS`] events and about
//! [`MAX_BATCH_BYTES`], so one batch of large events cannot hold Redis for long.
//!
//! The task does not stop on the shutdown signal: pushes still being drained after SIGTERM
//! must be published. It ends when the last handle is dropped.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::scripts::{PublishOptions, Scripts};
use super::Commands;
use crate::bus::{BusError, PublishOutcome};
use crate::event::PendingEvent;

pub(crate) const MAX_IN_FLIGHT: usize = 4;
pub(crate) const MAX_BATCH_EVENTS: usize = 64;
pub(crate) const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Publishes waiting for a script call; past this, callers wait for room (back-pressure).
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<PublishOutcome, Arc<BusError>>>;

/// A handle on the batcher task; cheap to clone.
#[derive(Clone)]
pub(crate) struct Batcher {
    queue: mpsc::Sender<(Arc<PendingEvent>, Reply)>,
}

impl Batcher {
    /// Starts the batcher task, which ends once every handle is dropped.
    pub(crate) fn start(commands: Commands, scripts: Scripts, options: PublishOptions) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(jobs, commands, scripts, options));
        Self { queue }
    }

    /// Publishes one event, together with whatever else is waiting.
    pub(crate) async fn publish(
        &self,
        event: Arc<PendingEvent>,
    ) -> Result<PublishOutcome, BusError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((event, reply))
            .await
            .map_err(|_| BusError::ListenerStopped)?;
        match answer.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) => Err(BusError::Batch(e)),
            Err(_) => Err(BusError::ListenerStopped),
        }
    }
}

async fn run(
    mut jobs: mpsc::Receiver<(Arc<PendingEvent>, Reply)>,
    commands: Commands,
    scripts: Scripts,
    options: PublishOptions,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = jobs.recv().await else {
            return;
        };
        let mut bytes = first.0.json.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_EVENTS && bytes < MAX_BATCH_BYTES {
            match jobs.try_recv() {
                Ok(job) => {
                    bytes += job.0.json.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let (commands, scripts, options) = (commands.clone(), scripts.clone(), options.clone());
        tokio::spawn(async move {
            let (events, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            match scripts.publish(&commands, &options, &events).await {
                Ok(outcomes) => {
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Err(e) => {
                    let e = Arc::new(e);
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
            drop(permit);
        });
    }
}
