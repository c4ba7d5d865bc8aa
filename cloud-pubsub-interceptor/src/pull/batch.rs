//! One pulled batch: stored with one bus call, then each message acknowledged or nacked.
//!
//! The rules that make pull at-least-once and never lossy:
//! - a message is acknowledged only after the bus has stored it, or recognised it as a
//!   redelivery of one it stored (`Duplicate`);
//! - when the bus call fails, none of the batch can be assumed stored, so every message of it
//!   is nacked and Pub/Sub redelivers it (a part that was stored is then a `Duplicate`);
//! - a malformed message is never acknowledged: it goes to [`MalformedHold`] and is nacked later
//!   (see there), like a push answered 400;
//! - nothing is acknowledged before its batch's outcome is known, whatever happens around it
//!   (shutdown waits for the batch, see [`super::stream`]).

use std::time::Instant;

use agent_assist_core::bus::PublishOutcome;
use agent_assist_core::{ConversationBus, EventType};
use chrono::{DateTime, Utc};
use google_cloud_pubsub::model::Message;
use google_cloud_pubsub::subscriber::handler::Handler;

use super::malformed::MalformedHold;
use super::message::to_pubsub_message;
use super::metrics::{PullMetrics, PullOutcome};

/// Messages taken from the stream together.
pub struct Batch {
    pub messages: Vec<(Message, Handler)>,
    /// When the first message came out of the stream: the start of the ack latency.
    pub received: Instant,
    /// The same moment on the wall clock: the events' `ack_time`, as a push's receipt time.
    pub received_at: DateTime<Utc>,
}

/// What became of a batch, for the stream's pacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchResult {
    /// Everything that could be stored was (or there was nothing to store).
    Stored,
    /// The bus call failed; the batch was nacked.
    BusFailed,
}

/// Stores `batch` on the bus and settles every message of it.
pub async fn handle(
    event_type: EventType,
    batch: Batch,
    bus: &ConversationBus,
    metrics: &PullMetrics,
    malformed: &MalformedHold,
) -> BatchResult {
    let mut events = Vec::with_capacity(batch.messages.len());
    let mut handlers = Vec::with_capacity(batch.messages.len());
    for (message, handler) in batch.messages {
        match to_pubsub_message(&message).to_event(event_type, batch.received_at) {
            Ok(event) => {
                events.push(event);
                handlers.push((message.message_id, handler));
            }
            Err(reason) => {
                metrics.message(event_type, PullOutcome::Malformed);
                tracing::warn!(
                    %event_type,
                    message_id = %message.message_id,
                    delivery_attempt = handler.delivery_attempt(),
                    %reason,
                    "malformed message, nacked after a delay and left to the subscription's dead-letter policy"
                );
                malformed.hold(handler);
            }
        }
    }
    if events.is_empty() {
        return BatchResult::Stored;
    }
    metrics.batch(events.len());
    match bus.publish_batch(events).await {
        Ok(outcomes) => {
            for ((message_id, handler), outcome) in handlers.into_iter().zip(outcomes) {
                handler.ack();
                metrics.acked_after(batch.received.elapsed().as_secs_f64());
                match outcome {
                    PublishOutcome::Published { .. } => {
                        metrics.message(event_type, PullOutcome::Accepted);
                    }
                    PublishOutcome::Duplicate => {
                        metrics.message(event_type, PullOutcome::Duplicate);
                        tracing::info!(%event_type, %message_id, "redelivery acknowledged, not published again");
                    }
                }
            }
            BatchResult::Stored
        }
        Err(error) => {
            let count = handlers.len();
            for (_, handler) in handlers {
                handler.nack();
                metrics.message(event_type, PullOutcome::Nacked);
            }
            tracing::warn!(%event_type, messages = count, %error, "bus unavailable, batch nacked for redelivery");
            BatchResult::BusFailed
        }
    }
}
