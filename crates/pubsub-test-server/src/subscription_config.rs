//! The settings a test gives a subscription when it creates it on the fake.
//!
//! They mirror the two subscription properties the interceptor's pull mode depends on: a
//! dead-letter policy (which also makes the service report `delivery_attempt`), and, as a test
//! knob with no counterpart on the real service, a cap on every lease so that ack-deadline expiry
//! and redelivery can be seen in milliseconds rather than after the 10 s minimum the real service
//! enforces.

use std::time::Duration;

/// How a subscription on the fake behaves. `SubscriptionConfig::default()` is a plain
/// subscription: no dead-letter policy, leases as long as the client asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionConfig {
    /// With a dead-letter policy, a message that was delivered this many times without being
    /// acknowledged is moved to the dead-letter list instead of being delivered again, and every
    /// delivery carries its `delivery_attempt` (1, 2, ...). Without one, `delivery_attempt` is 0
    /// (the client reports `None`), as on the real service.
    pub max_delivery_attempts: Option<u32>,
    /// The longest lease the fake grants per delivery or per deadline extension, whatever the
    /// client asks for. `None` grants what the client asks (10 to 600 s).
    pub ack_deadline_cap: Option<Duration>,
}

impl SubscriptionConfig {
    /// Adds a dead-letter policy: at most `attempts` deliveries per message.
    pub fn with_dead_letter_after(mut self, attempts: u32) -> Self {
        self.max_delivery_attempts = Some(attempts.max(1));
        self
    }

    /// Caps every lease at `cap` (see [`SubscriptionConfig::ack_deadline_cap`]).
    pub fn with_ack_deadline_cap(mut self, cap: Duration) -> Self {
        self.ack_deadline_cap = Some(cap);
        self
    }

    /// The lease actually granted when a client asks for `requested`.
    pub(crate) fn grant(&self, requested: Duration) -> Duration {
        match self.ack_deadline_cap {
            Some(cap) => requested.min(cap),
            None => requested,
        }
    }
}
