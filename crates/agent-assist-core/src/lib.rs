//! What the two Agent Assist backend services share.
//!
//! - [`event`]: the event a desktop receives, field by field, and the four event types.
//! - [`conversation`]: conversation names and the location-free key events are routed by.
//! - [`bus`]: the conversation bus that carries events from the interceptor to every connector
//!   (Redis in production, in memory for local runs and tests), with history, offsets and dedup.
//! - [`config`], [`telemetry`], [`health`], [`shutdown`]: how both services read settings, log,
//!   report readiness, and stop.

pub mod bus;
pub mod config;
pub mod conversation;
pub mod event;
pub mod google_id_token;
pub mod health;
pub mod shutdown;
pub mod telemetry;

pub use bus::{BusError, ConversationBus, PublishOutcome, Recovery, Subscription};
pub use conversation::ConversationName;
pub use event::{BusEvent, ConversationEvent, EventType};
