//! A record of every gRPC method the fake was asked for, answered or not.
//!
//! The generated service answers methods it does not implement with UNIMPLEMENTED and never
//! tells us; this log sits in front of it so a test can see exactly which RPCs a client makes
//! (for instance that the subscriber calls nothing but StreamingPull, Acknowledge and
//! ModifyAckDeadline).

use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub(crate) struct CallLog(Arc<Mutex<Vec<String>>>);

impl CallLog {
    pub(crate) fn record(&self, path: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.to_string());
    }

    pub(crate) fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
