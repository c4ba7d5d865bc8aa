//! What the two Agent Assist backend services share.
//!
//! - [`event`]: the event a desktop receives, field by field, and the event types.
//! - [`conversation`]: conversation names and the location-free key events are routed by.
//! - [`bus`]: the conversation bus that carries events from the interceptor to every connector
//!   (Redis in production, in memory for local runs and tests), with history, offsets and dedup.
//! - [`config`], [`telemetry`], [`health`], [`shutdown`]: how both services read settings, log,
//!   report readiness, and stop.
//! - [`bearer`]: reading the token out of an `Authorization` header, one way for every caller.
//! - [`integration_key`]: how `/conversation-name` stores integration keys, for every reader.

pub mod bearer;
pub mod bus;
pub mod config;
pub mod conversation;
pub mod event;
pub mod google_id_token;
pub mod health;
pub mod integration_key;
pub mod shutdown;
pub mod telemetry;

pub use bus::{BusError, ConversationBus, KeyValueStore, PublishOutcome, Recovery, Subscription};
pub use conversation::ConversationName;
pub use event::{BusEvent, ConversationEvent, EventType};
