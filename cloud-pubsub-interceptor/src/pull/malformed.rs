//! Malformed messages: held for a while, then nacked.
//!
//! A message that can never be published (not JSON, no conversation...) is what a push answers
//! 400: it is counted and logged with its message id, and left to the subscription's
//! dead-letter policy, which moves it aside after its maximum delivery attempts. For that it
//! must be nacked, not acknowledged. Nacked at once, though, Pub/Sub sends it straight back
//! (when the subscription has no retry policy), and without a dead-letter policy it would
//! circle between Pub/Sub and the interceptor at network speed until the subscription's
//! retention expires (7 days by default), logging every time.
//!
//! The library offers no "nack in N seconds" (a deadline modification with a chosen value), so
//! the delay is made here: the message is held, its lease kept alive by the library, for
//! `PUBSUB_PULL_MALFORMED_NACK_DELAY_SECONDS` (default 10 s), then nacked. A poison message
//! then costs one delivery per delay instead of a loop. At most [`MAX_HELD`] are held per
//! stream, since each takes a place in the stream's flow control; past that, and once shutdown
//! starts, they are nacked at once. Acknowledging and dropping them instead would lose what the
//! dead-letter topic is there to keep.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use google_cloud_pubsub::subscriber::handler::Handler;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Malformed messages held at once per stream, out of its flow-control allowance.
pub const MAX_HELD: usize = 100;

/// Holds malformed messages of one stream and nacks each after the delay.
pub struct MalformedHold {
    queue: mpsc::UnboundedSender<(Instant, Handler)>,
    held: Arc<AtomicUsize>,
    release: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl MalformedHold {
    pub fn start(delay: Duration) -> Self {
        let (queue, arrivals) = mpsc::unbounded_channel();
        let held = Arc::new(AtomicUsize::new(0));
        let release = CancellationToken::new();
        let task = tokio::spawn(nack_when_due(
            arrivals,
            delay,
            held.clone(),
            release.clone(),
        ));
        Self {
            queue,
            held,
            release,
            task: Mutex::new(Some(task)),
        }
    }

    /// Holds `handler`'s message, or nacks it at once when too many are held or shutdown has
    /// begun.
    pub fn hold(&self, handler: Handler) {
        if self.release.is_cancelled() || self.held.load(Ordering::Relaxed) >= MAX_HELD {
            handler.nack();
            return;
        }
        self.held.fetch_add(1, Ordering::Relaxed);
        // If the task has already ended, the handler is dropped with the message, and a dropped
        // handler is a nack too.
        let _ = self.queue.send((Instant::now(), handler));
    }

    /// Messages held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Nacks every held message now and waits until that is done.
    pub async fn release_all(&self) {
        self.release.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Every message waits the same delay, so arrival order is due order: a FIFO queue suffices.
async fn nack_when_due(
    mut arrivals: mpsc::UnboundedReceiver<(Instant, Handler)>,
    delay: Duration,
    held: Arc<AtomicUsize>,
    release: CancellationToken,
) {
    let mut waiting: VecDeque<(Instant, Handler)> = VecDeque::new();
    let nack = |handler: Handler| {
        handler.nack();
        held.fetch_sub(1, Ordering::Relaxed);
    };
    loop {
        let due = waiting.front().map(|(arrived, _)| *arrived + delay);
        tokio::select! {
            biased;
            _ = release.cancelled() => break,
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                if let Some((_, handler)) = waiting.pop_front() {
                    nack(handler);
                }
            }
            arrival = arrivals.recv() => match arrival {
                Some(item) => waiting.push_back(item),
                None => break,
            },
        }
    }
    for (_, handler) in waiting.drain(..) {
        nack(handler);
    }
    arrivals.close();
    while let Ok((_, handler)) = arrivals.try_recv() {
        nack(handler);
    }
}
