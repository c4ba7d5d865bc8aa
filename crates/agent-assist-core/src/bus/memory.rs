//! The in-memory store: the bus for local mode and tests, in one process.
//!
//! It keeps the same semantics as the Redis store (offsets, bounded history with expiry,
//! redelivery window) under one lock, which also orders dispatch to the local fan-out.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use super::fanout::Fanout;
use super::{now_micros, History, PublishOutcome};
use crate::config::BusConfig;
use crate::conversation::ConversationName;
use crate::event::{with_offset, BusEvent, EventType, PendingEvent};

/// Expired entries are swept once every this many writes, so memory stays bounded without a
/// background task.
const SWEEP_EVERY: u64 = 1024;

pub(crate) struct MemoryStore {
    config: BusConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    conversations: HashMap<ConversationName, Conversation>,
    /// Redelivery marks, per conversation as on Redis (where they live in its hash slot).
    accepted: HashMap<(ConversationName, EventType, String), Instant>,
    writes: u64,
}

struct Conversation {
    /// The first offset of this generation (see the bus module docs).
    first: u64,
    last: u64,
    events: VecDeque<Arc<BusEvent>>,
    expires: Instant,
}

impl MemoryStore {
    pub(crate) fn new(config: BusConfig) -> Self {
        Self {
            config,
            state: Mutex::default(),
        }
    }

    pub(crate) fn publish(&self, event: &PendingEvent, fanout: &Fanout) -> PublishOutcome {
        let now = Instant::now();
        let mut state = self.state.lock().expect("memory store lock");
        state.sweep(now);
        let dedup_key = event
            .message_id
            .clone()
            .map(|id| (event.conversation.clone(), event.data_type, id));
        if let Some(key) = &dedup_key {
            if state.accepted.get(key).is_some_and(|&until| until > now) {
                return PublishOutcome::Duplicate;
            }
        }
        let conversation = state
            .conversations
            .entry(event.conversation.clone())
            .or_insert_with(|| {
                let seed = now_micros();
                Conversation {
                    first: seed + 1,
                    last: seed,
                    events: VecDeque::new(),
                    expires: now + Duration::from_secs(1),
                }
            });
        if conversation.expires <= now {
            // Expired: start a new generation of offsets, later than anything before.
            let seed = conversation.last.max(now_micros());
            conversation.events.clear();
            conversation.first = seed + 1;
            conversation.last = seed;
        }
        let offset = conversation.last + 1;
        let payload = with_offset(&event.json, offset);
        let bus_event = Arc::new(BusEvent {
            offset,
            data_type: event.data_type,
            payload: RawValue::from_string(payload).expect("serialised event is valid JSON"),
        });
        conversation.last = offset;
        conversation.events.push_back(bus_event.clone());
        while conversation.events.len() > self.config.history_len {
            conversation.events.pop_front();
        }
        conversation.expires = now + self.config.history_ttl;
        fanout.dispatch(&event.conversation, bus_event);
        if let Some(key) = dedup_key {
            state.accepted.insert(key, now + self.config.dedup_window);
        }
        PublishOutcome::Published { offset }
    }

    pub(crate) fn history(&self, conversation: &ConversationName, since: Option<u64>) -> History {
        let now = Instant::now();
        let state = self.state.lock().expect("memory store lock");
        let (first, latest, kept) = match state.conversations.get(conversation) {
            Some(c) if c.expires > now => (c.first, c.last, &c.events),
            _ => {
                return History {
                    events: Vec::new(),
                    latest: 0,
                    complete: since.is_none_or(|s| s == 0),
                }
            }
        };
        let Some(since) = since else {
            return History {
                events: Vec::new(),
                latest,
                complete: true,
            };
        };
        if since >= latest {
            return History {
                events: Vec::new(),
                latest,
                complete: since == latest,
            };
        }
        let first_kept = latest + 1 - kept.len() as u64;
        let complete = if since == 0 {
            first_kept == first
        } else {
            since + 1 >= first_kept
        };
        History {
            events: kept.iter().filter(|e| e.offset > since).cloned().collect(),
            latest,
            complete,
        }
    }
}

impl State {
    fn sweep(&mut self, now: Instant) {
        self.writes += 1;
        if !self.writes.is_multiple_of(SWEEP_EVERY) {
            return;
        }
        self.accepted.retain(|_, until| *until > now);
        // An expired conversation keeps its last offset (a few bytes) only while it has events;
        // dropping it entirely is safe because new generations start from the clock.
        self.conversations.retain(|_, c| c.expires > now);
    }
}
