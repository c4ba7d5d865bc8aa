//! What a test can see of a subscription on the fake, and the error of a wait that ran out.
//!
//! Tests await conditions on these snapshots ([`crate::PubsubTestServer::wait_for`]) instead of
//! sleeping: the fake publishes a change notice after every state change.

use crate::pull_stream::StreamSettings;
use std::collections::BTreeMap;
use std::time::Duration;

/// The state of one subscription at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSnapshot {
    pub name: String,
    /// Messages published to the subscription so far.
    pub published: usize,
    /// Messages waiting for delivery (new, nacked or expired).
    pub backlog: usize,
    /// Messages delivered and neither acknowledged, nacked nor expired.
    pub outstanding: usize,
    /// Acknowledged message ids, in the order the acks arrived.
    pub acked: Vec<String>,
    /// Message ids moved aside by the dead-letter policy.
    pub dead_lettered: Vec<String>,
    /// How many times each delivered message id was delivered.
    pub delivery_counts: BTreeMap<String, u32>,
    /// Acks naming an ack id that was not current (late, repeated or unknown): ignored.
    pub late_acks: u64,
    /// Deadline changes to 0 s that ended a current lease.
    pub nacks: u64,
    /// Leases that ran out.
    pub expirations: u64,
    /// Deadline changes that moved a current lease's end (lease extensions).
    pub extensions: u64,
    /// Streams open on the subscription now.
    pub open_streams: usize,
    /// The first request of every stream opened so far, oldest first.
    pub streams_opened: Vec<StreamSettings>,
}

impl SubscriptionSnapshot {
    /// How many times `message_id` was delivered (0 if never).
    pub fn deliveries_of(&self, message_id: &str) -> u32 {
        self.delivery_counts.get(message_id).copied().unwrap_or(0)
    }
}

/// A [`crate::PubsubTestServer::wait_for`] whose condition did not hold in time; carries the
/// last state seen so the failure says what was there instead.
#[derive(Debug, thiserror::Error)]
#[error("condition on subscription {} not met within {waited:?}; last state: {last:#?}", last.name)]
pub struct WaitTimedOut {
    pub waited: Duration,
    pub last: Box<SubscriptionSnapshot>,
}
