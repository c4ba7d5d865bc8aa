//! Group commit: pushes that arrive together are published by one script call.
//!
//! Every publish goes through one queue. A lone push is sent at once, as a batch of one; while
//! calls are in flight, new events wait in the queue and go together in the next call, so the
//! busier the interceptor, the fewer script calls per event, and no push is ever delayed to
//! wait for company. Up to [`MAX_IN_FLIGHT`] calls run at once (the connection is
//! multiplexed); a call carries at most [`MAX_EVENTS_PER_CALL`] events and about
//! [`MAX_BATCH_BYTES`], so one batch cannot hold Redis for long.
//!
//! On a Redis Cluster a script's keys must share one hash slot, so a gathered batch is split
//! into one script call per slot ([`script_calls`]), sent concurrently; the events of one
//! conversation stay in order in their call. Gathering itself is unchanged: with many
//! conversations per slot group, cluster mode commits fewer events per call than standalone.
//!
//! The task does not stop on the shutdown signal: pushes still being drained after SIGTERM
//! must be published. It ends when the last handle is dropped.

use std::sync::Arc;

use std::collections::HashMap;

use futures::future::join_all;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::scripts::{PublishOptions, Scripts};
use super::{keys, Commands};
use crate::bus::{BusError, PublishOutcome, MAX_EVENTS_PER_CALL};
use crate::event::PendingEvent;

pub(crate) const MAX_IN_FLIGHT: usize = 4;
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
        while batch.len() < MAX_EVENTS_PER_CALL && bytes < MAX_BATCH_BYTES {
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
            let (events, mut replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|(e, r)| (e, Some(r))).unzip();
            let calls = script_calls(&events, options.one_slot_per_call);
            let results = join_all(calls.iter().map(|call| {
                let events: Vec<Arc<PendingEvent>> =
                    call.iter().map(|&i| events[i].clone()).collect();
                let (commands, scripts, options) = (&commands, &scripts, &options);
                async move { scripts.publish(commands, options, &events).await }
            }))
            .await;
            for (call, result) in calls.iter().zip(results) {
                let replies = call.iter().filter_map(|&i| replies[i].take());
                match result {
                    Ok(outcomes) => {
                        for (reply, outcome) in replies.zip(outcomes) {
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
            }
            drop(permit);
        });
    }
}

/// How `events` are split into script calls: the indices of each call's events, in order, at
/// most [`MAX_EVENTS_PER_CALL`] per call. Standalone, consecutive chunks; with `one_slot_per_call`
/// (a cluster), one slot's events per call (a script's keys must share a slot), calls ordered
/// by each slot's first event.
pub(crate) fn script_calls(
    events: &[Arc<PendingEvent>],
    one_slot_per_call: bool,
) -> Vec<Vec<usize>> {
    let indices = 0..events.len();
    if !one_slot_per_call {
        let all: Vec<usize> = indices.collect();
        return all
            .chunks(MAX_EVENTS_PER_CALL)
            .map(<[usize]>::to_vec)
            .collect();
    }
    let mut calls: Vec<Vec<usize>> = Vec::new();
    // Slot -> the call being filled for it.
    let mut open: HashMap<u16, usize> = HashMap::new();
    for i in indices {
        let slot = keys::slot(&events[i].conversation);
        match open.get(&slot) {
            Some(&call) if calls[call].len() < MAX_EVENTS_PER_CALL => calls[call].push(i),
            _ => {
                open.insert(slot, calls.len());
                calls.push(vec![i]);
            }
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::ConversationName;
    use crate::event::{ConversationEvent, EventType};

    fn event(conversation: &str) -> Arc<PendingEvent> {
        Arc::new(
            PendingEvent::new(
                ConversationName::parse(conversation).unwrap(),
                &ConversationEvent {
                    conversation_name: conversation,
                    data: "{}",
                    data_type: EventType::NewMessageEvent,
                    ack_time: "2026-11-23T13:00:00Z".into(),
                    publish_time: None,
                    message_id: None,
                    recognition: None,
                },
            )
            .unwrap(),
        )
    }

    #[test]
    fn a_cluster_call_carries_one_slot_in_order_and_standalone_calls_are_chunks() {
        const MAX: usize = MAX_EVENTS_PER_CALL;
        let names: Vec<String> = (0..10)
            .map(|i| format!("projects/p/conversations/c{}", i % 3))
            .chain((0..2 * MAX + 22).map(|_| "projects/p/conversations/busy".to_owned()))
            .collect();
        let events: Vec<_> = names.iter().map(|n| event(n)).collect();

        let standalone = script_calls(&events, false);
        assert_eq!(
            standalone.iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX, MAX, 32]
        );
        assert_eq!(standalone.concat(), (0..events.len()).collect::<Vec<_>>());

        let cluster = script_calls(&events, true);
        let mut seen: Vec<usize> = cluster.concat();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..events.len()).collect::<Vec<_>>(),
            "every event once"
        );
        for call in &cluster {
            assert!(call.len() <= MAX_EVENTS_PER_CALL);
            assert!(call.windows(2).all(|w| w[0] < w[1]), "in order: {call:?}");
            let slot = keys::slot(&events[call[0]].conversation);
            assert!(call
                .iter()
                .all(|&i| keys::slot(&events[i].conversation) == slot));
        }
        // c0, c1, c2 (unless two share a slot), then the busy one in three calls.
        let busy: Vec<_> = cluster
            .iter()
            .filter(|c| names[c[0]].ends_with("busy"))
            .collect();
        assert_eq!(
            busy.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [MAX, MAX, 22]
        );
    }
}
