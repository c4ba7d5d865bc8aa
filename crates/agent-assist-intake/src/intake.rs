//! Publishing a received message on the bus, counted by outcome.
//!
//! This is the domain step behind every door (the push endpoints today): turn the message into
//! the event desktops receive, store and publish it, and say what happened in terms the door
//! maps to its own answer (a push answers 204, 400 or 503).

use std::sync::Arc;
use std::time::Instant;

use agent_assist_core::bus::{BusError, PublishOutcome};
use agent_assist_core::{ConversationBus, EventType};

use crate::message::{MalformedMessage, PubsubMessage};
use crate::metrics::{IntakeMetrics, Outcome};

/// Why a message was not accepted: malformed is final, unavailable asks for redelivery.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Malformed(#[from] MalformedMessage),
    #[error("conversation bus unavailable: {0}")]
    Unavailable(#[from] BusError),
}

/// The bus and the metrics; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    bus: ConversationBus,
    metrics: Arc<IntakeMetrics>,
}

impl Intake {
    pub fn new(bus: ConversationBus, metrics: Arc<IntakeMetrics>) -> Self {
        Self { bus, metrics }
    }

    pub fn bus(&self) -> &ConversationBus {
        &self.bus
    }

    pub fn metrics(&self) -> &IntakeMetrics {
        &self.metrics
    }

    /// Counts and logs a message that could not even be read.
    pub fn refuse(&self, event_type: EventType, error: MalformedMessage) -> IntakeError {
        self.metrics.push(event_type, Outcome::Malformed);
        tracing::warn!(%event_type, reason = %error, "malformed message");
        IntakeError::Malformed(error)
    }

    /// Publishes `message`, received on `event_type`'s subscription, on the bus.
    pub async fn accept(
        &self,
        event_type: EventType,
        message: &PubsubMessage,
    ) -> Result<PublishOutcome, IntakeError> {
        let event = message
            .to_event(event_type, chrono::Utc::now())
            .map_err(|e| self.refuse(event_type, e))?;
        let started = Instant::now();
        let outcome = self.bus.publish(&event).await.inspect_err(|e| {
            self.metrics.push(event_type, Outcome::Unavailable);
            tracing::warn!(%event_type, error = %e, "bus unavailable, the message will be redelivered");
        })?;
        self.metrics
            .publish_latency(started.elapsed().as_secs_f64());
        match outcome {
            PublishOutcome::Published { offset } => {
                self.metrics.push(event_type, Outcome::Accepted);
                tracing::debug!(%event_type, conversation = %event.conversation, offset, "event published");
            }
            PublishOutcome::Duplicate => {
                self.metrics.push(event_type, Outcome::Duplicate);
                tracing::info!(%event_type, message_id = event.message_id.as_deref().unwrap_or(""), "redelivery acknowledged, not published again");
            }
        }
        Ok(outcome)
    }
}
