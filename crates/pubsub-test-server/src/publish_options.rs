//! What a test may choose about a message it publishes on the fake besides data and attributes.
//!
//! The service picks a message's id and publish time; so does [`crate::PubsubTestServer::publish`].
//! Two interceptor tests need to choose them: comparing a pulled event with the push of the same
//! message (same id, same publish time), and a redelivery of a message already acknowledged
//! (at-least-once delivery allows it; the service does it after a lease or ack is lost), which
//! is the same message id arriving again.

use std::time::SystemTime;

/// Options of [`crate::PubsubTestServer::publish_with`]; the default is what `publish` does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// The message id; by default the next number. Must not name a message still pending.
    pub message_id: Option<String>,
    /// The publish time; by default now.
    pub publish_time: Option<SystemTime>,
}

impl PublishOptions {
    pub fn message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    pub fn publish_time(mut self, time: SystemTime) -> Self {
        self.publish_time = Some(time);
        self
    }
}
