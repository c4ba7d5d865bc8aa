//! Delivering one call's context: the remembered answer of a retry, or resolve the
//! conversation, then publish the context, keep it for its integration key, or do nothing; and
//! remember the answer.

use agent_assist_core::bus::PublishOutcome;
use agent_assist_core::integration_key::IntegrationKeys;
use agent_assist_core::{ConversationBus, ConversationName};
use chrono::{DateTime, Utc};

use super::context;
use super::error::WebhookError;
use super::idempotency::{AnswerCache, CallId};
use super::metrics::Outcome;
use super::pending::PendingContexts;
use super::resolution::{mapped, Resolution, Routing};
use super::response::Answer;

/// A call, read: who it is, where it goes, what it carries.
pub(crate) struct Call {
    pub id: CallId,
    pub routing: Routing,
    /// The context JSON desktops get.
    pub context: String,
    pub called_at: DateTime<Utc>,
}

/// What delivering needs; shared by every call.
pub(crate) struct Delivery {
    pub bus: ConversationBus,
    pub keys: IntegrationKeys,
    pub pending: PendingContexts,
    pub answers: AnswerCache,
}

impl Delivery {
    pub async fn deliver(&self, call: Call) -> Result<(Answer, Outcome), WebhookError> {
        if let Some(answer) = self.answers.get(&call.id).await? {
            return Ok((answer, Outcome::Replayed));
        }
        let (answer, outcome) = match call.routing.clone().resolve(&self.keys).await? {
            Resolution::Conversation(conversation) => self.publish(&call, &conversation).await?,
            Resolution::Unmapped(key) => {
                self.pending
                    .keep(&key, &call.id, call.called_at, &call.context)
                    .await?;
                // Mapped since the first look? Then `/conversation-name` may have looked for
                // a context before this one was kept: publish it here (see `pending`).
                match mapped(&self.keys, &key).await? {
                    Some(conversation) => {
                        let delivered = self.publish(&call, &conversation).await?;
                        self.pending.forget(&key).await?;
                        delivered
                    }
                    None => (Answer::pending(), Outcome::Pending),
                }
            }
            Resolution::Unrouted => (Answer::unrouted(), Outcome::Unrouted),
        };
        self.answers.remember(&call.id, &answer).await?;
        Ok((answer, outcome))
    }

    async fn publish(
        &self,
        call: &Call,
        conversation: &ConversationName,
    ) -> Result<(Answer, Outcome), WebhookError> {
        let event = context::event(
            conversation,
            &call.context,
            call.id.as_str(),
            call.called_at,
            Utc::now(),
        )
        .map_err(|e| WebhookError::Internal(format!("cannot serialise the event: {e}")))?;
        let outcome = match self.bus.publish(&event).await? {
            PublishOutcome::Published { .. } => Outcome::Published,
            PublishOutcome::Duplicate => Outcome::Duplicate,
        };
        Ok((Answer::published(conversation), outcome))
    }
}
