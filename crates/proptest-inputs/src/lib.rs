//! What the property tests of the parsers that take outside input share: the case count
//! ([`config`]) and generators of valid and hostile inputs, so every crate's tests draw from the
//! same, deliberately nasty, distributions.
//!
//! A crate of its own (a dev-dependency of `agent-assist-core`, `agent-assist-intake` and
//! `ui-connector`) because test-only code cannot be shared between crates otherwise, and
//! `agent-assist-core` cannot use `agent-assist-test-support` (which depends on it). It depends on
//! nothing of this workspace.
//!
//! The tests themselves sit next to each parser, in a `properties` module, so
//! `cargo test -p <crate> --lib properties` runs exactly them.

mod case_count;
pub mod conversation_names;
pub mod json;
pub mod mutation;

pub use case_count::{config, DEFAULT_CASES};
