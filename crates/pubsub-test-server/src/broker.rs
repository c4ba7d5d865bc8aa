//! The fake's state, shared by the gRPC service, the dispatcher task and the test's handle:
//! subscriptions with their ledgers and open streams.
//!
//! Every operation takes one short lock (never held across an await) and, when it changed
//! something, wakes the dispatcher (which does all delivery and expiry) and bumps a change
//! counter that tests await conditions on. Requests are checked the way the service checks them
//! and rejected with the same status codes (INVALID_ARGUMENT, NOT_FOUND).

use crate::ledger::{DeadlineChange, Lease, Ledger, StreamId};
use crate::proto::{PubsubMessage, ReceivedMessage, StreamingPullRequest};
use crate::publish_options::PublishOptions;
use crate::pull_stream::{Outbound, PullStream, StreamSettings};
use crate::snapshot::SubscriptionSnapshot;
use crate::subscription_config::SubscriptionConfig;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// The range the service accepts for lease lengths, in seconds.
const MIN_STREAM_ACK_DEADLINE: i32 = 10;
const MAX_ACK_DEADLINE: i32 = 600;

#[derive(Debug)]
pub(crate) struct Broker {
    state: Mutex<State>,
    /// Wakes the dispatcher: something may be deliverable or due now.
    work: Notify,
    /// Bumped after every change, for tests awaiting a condition.
    changes: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    subscriptions: BTreeMap<String, Subscription>,
    next_message_id: u64,
    next_stream_id: StreamId,
}

#[derive(Debug)]
struct Subscription {
    ledger: Ledger,
    streams: BTreeMap<StreamId, PullStream>,
    streams_opened: Vec<StreamSettings>,
    /// Which stream is served first in the next dispatch, so streams share the backlog.
    rotation: usize,
}

impl Subscription {
    /// Gives a finished lease's message and bytes back to its stream's flow control.
    fn release(&mut self, lease: &Lease) {
        if let Some(stream) = self.streams.get_mut(&lease.stream) {
            stream.flow.release(lease.size);
        }
    }

    fn ack_all(&mut self, ack_ids: &[String]) {
        for ack_id in ack_ids {
            if let Some(lease) = self.ledger.ack(ack_id) {
                self.release(&lease);
            }
        }
    }

    fn modify_deadline_all(&mut self, ack_ids: &[String], seconds: u32, now: Instant) {
        for ack_id in ack_ids {
            if let DeadlineChange::Nacked(lease) = self.ledger.modify_deadline(ack_id, seconds, now)
            {
                self.release(&lease);
            }
        }
    }

    /// Hands waiting messages to streams with room, one message per stream in turn, and sends
    /// each stream its batch as one response. Returns whether anything was delivered.
    fn dispatch(&mut self, now: Instant) -> bool {
        if self.streams.is_empty() || self.ledger.backlog_len() == 0 {
            return false;
        }
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        let start = self.rotation % ids.len();
        self.rotation = self.rotation.wrapping_add(1);
        let mut batches: HashMap<StreamId, Vec<ReceivedMessage>> = HashMap::new();
        'rounds: loop {
            let mut delivered = false;
            for offset in 0..ids.len() {
                let id = ids[(start + offset) % ids.len()];
                let Some(size) = self.ledger.next_size() else {
                    break 'rounds;
                };
                let stream = self.streams.get_mut(&id).expect("ids come from the map");
                if !stream.flow.admits(size) {
                    continue;
                }
                if let Some(received) = self.ledger.lease_next(id, now, stream.ack_deadline) {
                    stream.flow.take(size);
                    batches.entry(id).or_default().push(received);
                    delivered = true;
                }
            }
            if !delivered {
                break;
            }
        }
        let any = !batches.is_empty();
        for (id, batch) in batches {
            let gone = self
                .streams
                .get(&id)
                .is_some_and(|stream| !stream.deliver(batch));
            if gone {
                // The client went away; what was just sent is lost with the connection and
                // comes back when its lease runs out, as on the real service.
                self.streams.remove(&id);
            }
        }
        any
    }

    fn snapshot(&self, name: &str) -> SubscriptionSnapshot {
        let history = self.ledger.history();
        SubscriptionSnapshot {
            name: name.to_string(),
            published: history.published,
            backlog: self.ledger.backlog_len(),
            outstanding: self.ledger.outstanding(),
            acked: history.acked.clone(),
            dead_lettered: history.dead_lettered.clone(),
            delivery_counts: history.delivery_counts.clone(),
            late_acks: history.late_acks,
            nacks: history.nacks,
            expirations: history.expirations,
            extensions: history.extensions,
            open_streams: self.streams.len(),
            streams_opened: self.streams_opened.clone(),
        }
    }
}

fn not_found(subscription: &str) -> Status {
    Status::not_found(format!("Resource not found (resource={subscription})."))
}

fn check_ack_deadline(seconds: i32) -> Result<u32, Status> {
    u32::try_from(seconds)
        .ok()
        .filter(|s| *s <= MAX_ACK_DEADLINE as u32)
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "ack deadline {seconds} s is outside 0..={MAX_ACK_DEADLINE}"
            ))
        })
}

impl Broker {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            work: Notify::new(),
            changes: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not hide the state from the test that is reporting it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.work.notify_one();
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Resolves when the dispatcher has work (a permit is kept if nobody was waiting).
    pub(crate) async fn work(&self) {
        self.work.notified().await;
    }

    pub(crate) fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// `false` if the subscription already exists.
    pub(crate) fn create_subscription(&self, name: &str, config: SubscriptionConfig) -> bool {
        let mut state = self.lock();
        if state.subscriptions.contains_key(name) {
            return false;
        }
        state.subscriptions.insert(
            name.to_string(),
            Subscription {
                ledger: Ledger::new(config),
                streams: BTreeMap::new(),
                streams_opened: Vec::new(),
                rotation: 0,
            },
        );
        drop(state);
        self.changed();
        true
    }

    /// Publishes to one subscription; the message id, or `None` for an unknown subscription.
    ///
    /// # Panics
    /// If `options` names the id of a message still pending on the subscription.
    pub(crate) fn publish(
        &self,
        subscription: &str,
        data: Vec<u8>,
        attributes: HashMap<String, String>,
        options: PublishOptions,
    ) -> Option<String> {
        let mut state = self.lock();
        let message_id = match options.message_id {
            Some(id) => id,
            None => {
                state.next_message_id += 1;
                state.next_message_id.to_string()
            }
        };
        let ledger = &mut state.subscriptions.get_mut(subscription)?.ledger;
        assert!(
            !ledger.is_pending(&message_id),
            "message {message_id} is still pending on {subscription}: publish it again once it is acknowledged"
        );
        ledger.publish(PubsubMessage {
            data: prost::bytes::Bytes::from(data),
            attributes,
            message_id: message_id.clone(),
            publish_time: Some(options.publish_time.unwrap_or_else(SystemTime::now).into()),
            ordering_key: String::new(),
        });
        drop(state);
        self.changed();
        Some(message_id)
    }

    /// Registers a stream from its first request, after checking it as the service does.
    pub(crate) fn open_stream(
        &self,
        first: &StreamingPullRequest,
        outbound: Outbound,
        ended: CancellationToken,
    ) -> Result<StreamId, Status> {
        if first.subscription.is_empty() {
            return Err(Status::invalid_argument(
                "the first StreamingPullRequest must name a subscription",
            ));
        }
        if !(MIN_STREAM_ACK_DEADLINE..=MAX_ACK_DEADLINE)
            .contains(&first.stream_ack_deadline_seconds)
        {
            return Err(Status::invalid_argument(format!(
                "stream_ack_deadline_seconds must be between {MIN_STREAM_ACK_DEADLINE} and \
                 {MAX_ACK_DEADLINE}, got {}",
                first.stream_ack_deadline_seconds
            )));
        }
        let mut state = self.lock();
        state.next_stream_id += 1;
        let id = state.next_stream_id;
        let subscription = state
            .subscriptions
            .get_mut(&first.subscription)
            .ok_or_else(|| not_found(&first.subscription))?;
        let settings = StreamSettings::from(first);
        subscription
            .streams
            .insert(id, PullStream::new(&settings, outbound, ended));
        subscription.streams_opened.push(settings);
        drop(state);
        if let Err(status) = self.stream_request(&first.subscription, id, first) {
            self.close_stream(&first.subscription, id);
            return Err(status);
        }
        self.changed();
        Ok(id)
    }

    /// Applies the acks and deadline changes a stream request carries (any request, the first
    /// included; an empty one is a keepalive).
    pub(crate) fn stream_request(
        &self,
        subscription: &str,
        stream: StreamId,
        request: &StreamingPullRequest,
    ) -> Result<(), Status> {
        if request.modify_deadline_seconds.len() != request.modify_deadline_ack_ids.len() {
            return Err(Status::invalid_argument(
                "modify_deadline_seconds and modify_deadline_ack_ids must have the same length",
            ));
        }
        let deadlines = request
            .modify_deadline_seconds
            .iter()
            .map(|s| check_ack_deadline(*s))
            .collect::<Result<Vec<_>, _>>()?;
        let now = Instant::now();
        let mut state = self.lock();
        let sub = state
            .subscriptions
            .get_mut(subscription)
            .ok_or_else(|| not_found(subscription))?;
        if request.stream_ack_deadline_seconds > 0 {
            if let Some(open) = sub.streams.get_mut(&stream) {
                open.ack_deadline = Duration::from_secs(u64::from(check_ack_deadline(
                    request.stream_ack_deadline_seconds,
                )?));
            }
        }
        sub.ack_all(&request.ack_ids);
        for (ack_id, seconds) in request.modify_deadline_ack_ids.iter().zip(deadlines) {
            sub.modify_deadline_all(std::slice::from_ref(ack_id), seconds, now);
        }
        let touched = !request.ack_ids.is_empty() || !request.modify_deadline_ack_ids.is_empty();
        drop(state);
        if touched {
            self.changed();
        }
        Ok(())
    }

    /// Forgets a stream the client closed or abandoned; its leases run on until acked or expired.
    pub(crate) fn close_stream(&self, subscription: &str, stream: StreamId) {
        let mut state = self.lock();
        let removed = state
            .subscriptions
            .get_mut(subscription)
            .and_then(|sub| sub.streams.remove(&stream))
            .is_some();
        drop(state);
        if removed {
            self.changed();
        }
    }

    pub(crate) fn acknowledge(&self, subscription: &str, ack_ids: &[String]) -> Result<(), Status> {
        if ack_ids.is_empty() {
            return Err(Status::invalid_argument("ack_ids must not be empty"));
        }
        let mut state = self.lock();
        state
            .subscriptions
            .get_mut(subscription)
            .ok_or_else(|| not_found(subscription))?
            .ack_all(ack_ids);
        drop(state);
        self.changed();
        Ok(())
    }

    pub(crate) fn modify_ack_deadline(
        &self,
        subscription: &str,
        ack_ids: &[String],
        seconds: i32,
    ) -> Result<(), Status> {
        if ack_ids.is_empty() {
            return Err(Status::invalid_argument("ack_ids must not be empty"));
        }
        let seconds = check_ack_deadline(seconds)?;
        let mut state = self.lock();
        state
            .subscriptions
            .get_mut(subscription)
            .ok_or_else(|| not_found(subscription))?
            .modify_deadline_all(ack_ids, seconds, Instant::now());
        drop(state);
        self.changed();
        Ok(())
    }

    /// Ends every open stream with `status`; returns how many were open.
    pub(crate) fn end_streams(&self, status: &Status) -> usize {
        let mut state = self.lock();
        let mut ended = 0;
        for sub in state.subscriptions.values_mut() {
            for (_, stream) in std::mem::take(&mut sub.streams) {
                stream.end_with(status.clone());
                ended += 1;
            }
        }
        drop(state);
        self.changed();
        ended
    }

    /// Expires due leases and delivers what fits; returns when the next lease runs out.
    pub(crate) fn tick(&self, now: Instant) -> Option<Instant> {
        let mut state = self.lock();
        let mut changed = false;
        let mut next_deadline: Option<Instant> = None;
        for sub in state.subscriptions.values_mut() {
            for lease in sub.ledger.expire(now) {
                sub.release(&lease);
                changed = true;
            }
            changed |= sub.dispatch(now);
            if let Some(deadline) = sub.ledger.next_deadline() {
                next_deadline = Some(next_deadline.map_or(deadline, |d| d.min(deadline)));
            }
        }
        drop(state);
        if changed {
            self.changes.send_modify(|v| *v = v.wrapping_add(1));
        }
        next_deadline
    }

    pub(crate) fn snapshot(&self, subscription: &str) -> Option<SubscriptionSnapshot> {
        self.lock()
            .subscriptions
            .get(subscription)
            .map(|sub| sub.snapshot(subscription))
    }

    pub(crate) fn subscription_config(&self, subscription: &str) -> Option<SubscriptionConfig> {
        self.lock()
            .subscriptions
            .get(subscription)
            .map(|sub| sub.ledger.config().clone())
    }
}
