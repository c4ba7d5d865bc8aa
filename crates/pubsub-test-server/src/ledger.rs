//! The message ledger of one subscription: which messages wait for delivery, which are leased
//! to which stream and until when, which were acknowledged or dead-lettered.
//!
//! It follows the service's at-least-once contract: every delivery gets a fresh ack id and a
//! lease; an ack with the current ack id ends the message, an ack with an older or unknown one is
//! ignored (and counted, so tests can see late acks); a deadline change of 0 s (a nack) or the
//! lease running out puts the message back at the head of the backlog for prompt redelivery,
//! unless the dead-letter policy says it has had its deliveries. Time is passed in, so the rules
//! are tested here without a clock or a network.

use crate::proto::{PubsubMessage, ReceivedMessage};
use crate::subscription_config::SubscriptionConfig;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// Identifies one StreamingPull stream for the life of a server.
pub(crate) type StreamId = u64;

/// A message that has been published and is neither acknowledged nor dead-lettered.
#[derive(Debug)]
struct Entry {
    message: PubsubMessage,
    /// Encoded size, the unit of byte flow control.
    size: usize,
    deliveries: u32,
}

/// One delivery of a message, held by a stream until acked, nacked or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) message_id: String,
    pub(crate) stream: StreamId,
    pub(crate) deadline: Instant,
    pub(crate) size: usize,
}

/// What a deadline change did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DeadlineChange {
    /// The lease now ends later (or sooner) than it did.
    Moved,
    /// 0 s: the lease ended and the message is due for redelivery.
    Nacked(Lease),
    /// The ack id is not a current lease (already acked, nacked or expired): ignored.
    Ignored,
}

/// Counters and lists that tests inspect.
#[derive(Debug, Default, Clone)]
pub(crate) struct LedgerHistory {
    pub(crate) published: usize,
    pub(crate) acked: Vec<String>,
    pub(crate) dead_lettered: Vec<String>,
    pub(crate) delivery_counts: BTreeMap<String, u32>,
    pub(crate) late_acks: u64,
    pub(crate) nacks: u64,
    pub(crate) expirations: u64,
    pub(crate) extensions: u64,
}

#[derive(Debug)]
pub(crate) struct Ledger {
    config: SubscriptionConfig,
    entries: HashMap<String, Entry>,
    /// Message ids waiting for delivery, next first.
    backlog: VecDeque<String>,
    /// Current leases by ack id.
    leases: HashMap<String, Lease>,
    /// (deadline, ack id) of every current lease, earliest first, so expiry and the next wake-up
    /// cost a logarithm rather than a scan of all leases.
    deadlines: BTreeSet<(Instant, String)>,
    history: LedgerHistory,
}

impl Ledger {
    pub(crate) fn new(config: SubscriptionConfig) -> Self {
        Self {
            config,
            entries: HashMap::new(),
            backlog: VecDeque::new(),
            leases: HashMap::new(),
            deadlines: BTreeSet::new(),
            history: LedgerHistory::default(),
        }
    }

    pub(crate) fn config(&self) -> &SubscriptionConfig {
        &self.config
    }

    /// Adds a message (its `message_id` already set) at the end of the backlog.
    pub(crate) fn publish(&mut self, message: PubsubMessage) {
        let id = message.message_id.clone();
        let size = prost::Message::encoded_len(&message);
        self.entries.insert(
            id.clone(),
            Entry {
                message,
                size,
                deliveries: 0,
            },
        );
        self.backlog.push_back(id);
        self.history.published += 1;
    }

    /// Whether `message_id` is published and neither acknowledged nor dead-lettered.
    pub(crate) fn is_pending(&self, message_id: &str) -> bool {
        self.entries.contains_key(message_id)
    }

    /// The encoded size of the next message to deliver, if any waits.
    pub(crate) fn next_size(&self) -> Option<usize> {
        self.backlog
            .front()
            .and_then(|id| self.entries.get(id))
            .map(|e| e.size)
    }

    /// Leases the next waiting message to `stream` for `requested` (capped by the
    /// subscription's configuration) and returns what goes on the wire.
    pub(crate) fn lease_next(
        &mut self,
        stream: StreamId,
        now: Instant,
        requested: Duration,
    ) -> Option<ReceivedMessage> {
        let id = self.backlog.pop_front()?;
        let entry = self
            .entries
            .get_mut(&id)
            .expect("every backlog id has an entry");
        entry.deliveries += 1;
        let ack_id = format!("ack-{id}-{}", entry.deliveries);
        let deadline = now + self.config.grant(requested);
        // Counted per message id across publishes, so a message published again under its id
        // (a redelivery after an acknowledgement) shows all its deliveries.
        *self.history.delivery_counts.entry(id.clone()).or_default() += 1;
        let delivery_attempt = if self.config.max_delivery_attempts.is_some() {
            i32::try_from(entry.deliveries).unwrap_or(i32::MAX)
        } else {
            0
        };
        let received = ReceivedMessage {
            ack_id: ack_id.clone(),
            message: Some(entry.message.clone()),
            delivery_attempt,
        };
        self.deadlines.insert((deadline, ack_id.clone()));
        self.leases.insert(
            ack_id,
            Lease {
                message_id: id,
                stream,
                deadline,
                size: entry.size,
            },
        );
        Some(received)
    }

    /// Acknowledges the delivery `ack_id`. Returns the lease it ended, or `None` when the ack id
    /// is not current (a late or repeated ack), which the service ignores.
    pub(crate) fn ack(&mut self, ack_id: &str) -> Option<Lease> {
        let Some(lease) = self.end_lease(ack_id) else {
            self.history.late_acks += 1;
            return None;
        };
        self.entries.remove(&lease.message_id);
        self.history.acked.push(lease.message_id.clone());
        Some(lease)
    }

    /// Applies a ModifyAckDeadline for `ack_id`: 0 s is a nack, more moves the lease's end to
    /// `now + seconds` (capped by the subscription's configuration).
    pub(crate) fn modify_deadline(
        &mut self,
        ack_id: &str,
        seconds: u32,
        now: Instant,
    ) -> DeadlineChange {
        if seconds == 0 {
            return match self.end_lease(ack_id) {
                Some(lease) => {
                    self.history.nacks += 1;
                    self.give_back(&lease.message_id);
                    DeadlineChange::Nacked(lease)
                }
                None => DeadlineChange::Ignored,
            };
        }
        let granted = self.config.grant(Duration::from_secs(u64::from(seconds)));
        let Some(lease) = self.leases.get_mut(ack_id) else {
            return DeadlineChange::Ignored;
        };
        self.deadlines.remove(&(lease.deadline, ack_id.to_string()));
        lease.deadline = now + granted;
        self.deadlines.insert((lease.deadline, ack_id.to_string()));
        self.history.extensions += 1;
        DeadlineChange::Moved
    }

    /// Ends every lease whose deadline is at or before `now` and returns them; their messages
    /// are due for redelivery (or dead-lettered).
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Lease> {
        let mut expired = Vec::new();
        while let Some((deadline, ack_id)) = self.deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            if let Some(lease) = self.end_lease(&ack_id) {
                self.history.expirations += 1;
                self.give_back(&lease.message_id);
                expired.push(lease);
            }
        }
        expired
    }

    /// When the earliest current lease runs out.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    /// Messages waiting for delivery.
    pub(crate) fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// Messages delivered and not yet acked, nacked or expired.
    pub(crate) fn outstanding(&self) -> usize {
        self.leases.len()
    }

    pub(crate) fn history(&self) -> &LedgerHistory {
        &self.history
    }

    fn end_lease(&mut self, ack_id: &str) -> Option<Lease> {
        let lease = self.leases.remove(ack_id)?;
        self.deadlines.remove(&(lease.deadline, ack_id.to_string()));
        Some(lease)
    }

    /// Redelivers the message next, or dead-letters it once it has had its deliveries.
    fn give_back(&mut self, message_id: &str) {
        let Some(entry) = self.entries.get(message_id) else {
            return;
        };
        let exhausted = self
            .config
            .max_delivery_attempts
            .is_some_and(|max| entry.deliveries >= max);
        if exhausted {
            self.entries.remove(message_id);
            self.history.dead_lettered.push(message_id.to_string());
        } else {
            self.backlog.push_front(message_id.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn message(id: &str) -> PubsubMessage {
        PubsubMessage {
            data: prost::bytes::Bytes::copy_from_slice(id.as_bytes()),
            message_id: id.to_string(),
            ..Default::default()
        }
    }

    fn ledger_with(config: SubscriptionConfig, ids: &[&str]) -> Ledger {
        let mut ledger = Ledger::new(config);
        for id in ids {
            ledger.publish(message(id));
        }
        ledger
    }

    #[test]
    fn delivers_in_order_and_ack_ends_the_message() {
        let now = Instant::now();
        let mut ledger = ledger_with(SubscriptionConfig::default(), &["1", "2"]);
        let first = ledger.lease_next(7, now, MINUTE).unwrap();
        assert_eq!(first.message.as_ref().unwrap().message_id, "1");
        assert_eq!(
            first.delivery_attempt, 0,
            "no dead-letter policy, no attempt count"
        );
        assert_eq!(ledger.outstanding(), 1);
        assert_eq!(ledger.backlog_len(), 1);

        let lease = ledger.ack(&first.ack_id).unwrap();
        assert_eq!(lease.stream, 7);
        assert_eq!(ledger.outstanding(), 0);
        assert_eq!(ledger.history().acked, ["1"]);
        assert!(
            ledger.ack(&first.ack_id).is_none(),
            "a repeated ack is ignored"
        );
        assert_eq!(ledger.history().late_acks, 1);
    }

    #[test]
    fn nack_redelivers_first_with_a_new_ack_id() {
        let now = Instant::now();
        let mut ledger = ledger_with(SubscriptionConfig::default(), &["1", "2"]);
        let first = ledger.lease_next(1, now, MINUTE).unwrap();
        assert!(matches!(
            ledger.modify_deadline(&first.ack_id, 0, now),
            DeadlineChange::Nacked(_)
        ));
        let again = ledger.lease_next(1, now, MINUTE).unwrap();
        assert_eq!(again.message.unwrap().message_id, "1");
        assert_ne!(again.ack_id, first.ack_id);
        assert_eq!(ledger.history().delivery_counts["1"], 2);
        assert!(
            ledger.ack(&first.ack_id).is_none(),
            "the old ack id is stale"
        );
        assert!(ledger.ack(&again.ack_id).is_some());
    }

    #[test]
    fn expiry_redelivers_and_extension_postpones_it() {
        let start = Instant::now();
        let mut ledger = ledger_with(SubscriptionConfig::default(), &["1", "2"]);
        let one = ledger
            .lease_next(1, start, Duration::from_secs(10))
            .unwrap();
        let two = ledger
            .lease_next(1, start, Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            ledger.modify_deadline(&two.ack_id, 30, start),
            DeadlineChange::Moved
        );
        assert_eq!(
            ledger.next_deadline(),
            Some(start + Duration::from_secs(10))
        );

        let expired = ledger.expire(start + Duration::from_secs(10));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].message_id, "1");
        assert!(
            ledger.ack(&one.ack_id).is_none(),
            "an expired lease cannot be acked"
        );
        assert_eq!(ledger.backlog_len(), 1);
        assert_eq!(
            ledger.next_deadline(),
            Some(start + Duration::from_secs(30))
        );
        assert!(
            ledger.ack(&two.ack_id).is_some(),
            "the extended lease is still current"
        );
    }

    #[test]
    fn the_cap_shortens_every_lease() {
        let start = Instant::now();
        let cap = Duration::from_millis(200);
        let mut ledger = ledger_with(
            SubscriptionConfig::default().with_ack_deadline_cap(cap),
            &["1"],
        );
        let one = ledger.lease_next(1, start, MINUTE).unwrap();
        assert_eq!(ledger.next_deadline(), Some(start + cap));
        ledger.modify_deadline(&one.ack_id, 600, start + cap / 2);
        assert_eq!(ledger.next_deadline(), Some(start + cap / 2 + cap));
    }

    #[test]
    fn dead_letter_policy_counts_attempts_and_stops_redelivery() {
        let now = Instant::now();
        let mut ledger = ledger_with(
            SubscriptionConfig::default().with_dead_letter_after(2),
            &["1"],
        );
        let first = ledger.lease_next(1, now, MINUTE).unwrap();
        assert_eq!(first.delivery_attempt, 1);
        ledger.modify_deadline(&first.ack_id, 0, now);
        let second = ledger.lease_next(1, now, MINUTE).unwrap();
        assert_eq!(second.delivery_attempt, 2);
        ledger.modify_deadline(&second.ack_id, 0, now);
        assert!(ledger.lease_next(1, now, MINUTE).is_none());
        assert_eq!(ledger.history().dead_lettered, ["1"]);
        assert_eq!(ledger.outstanding(), 0);
    }
}
