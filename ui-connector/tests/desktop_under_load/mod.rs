//! The load of the fault tests that run the real services (`redis_restart.rs`,
//! `redis_cluster.rs`): pushes retried the way Pub/Sub retries them, and desktops that keep pace
//! and, when disconnected, reconnect and re-join with `since` as the README tells them to.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_assist_test_support::{PushEnvelope, SocketClient};
use serde_json::{json, Value};

/// How long a push is retried (Pub/Sub's retry policy, shortened).
pub const PUSH_DEADLINE: Duration = Duration::from_secs(20);

/// What one desktop saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub message_ids: Vec<String>,
    /// `(previous, next)` offsets that were not consecutive on one open connection.
    pub jumps: Vec<(u64, u64)>,
    pub reconnects: usize,
    pub told_not_recovered: usize,
}

/// Acknowledged message ids per conversation (by index).
pub type Acked = Arc<Mutex<HashMap<usize, BTreeSet<String>>>>;

/// Posts `envelope` until it is answered 204 (retrying every 100 ms for [`PUSH_DEADLINE`]),
/// then calls `on_ack` and records the id as acknowledged.
pub async fn push_until_accepted(
    http: reqwest::Client,
    url: String,
    envelope: PushEnvelope,
    acked: Acked,
    index: usize,
    message_id: String,
    on_ack: impl FnOnce(&str),
) {
    let deadline = Instant::now() + PUSH_DEADLINE;
    while Instant::now() < deadline {
        let answer = http
            .post(&url)
            .header("content-type", "application/json")
            .body(envelope.to_body())
            .send()
            .await;
        if matches!(&answer, Ok(response) if response.status() == 204) {
            on_ack(&message_id);
            acked
                .lock()
                .unwrap()
                .entry(index)
                .or_default()
                .insert(message_id);
            return;
        }
        // Pub/Sub's retry, as an aggressive retry policy would space it.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("push {message_id} never accepted");
}

/// One desktop of conversation `index` (named `conversation`): joins, reads, and after a
/// disconnect reconnects and re-joins with `since`. Stops once `done` says the load is over and
/// it has every acknowledged event of its conversation but those `may_miss` excuses, or at
/// `give_up` (the test then reports what is missing).
#[allow(clippy::too_many_arguments)]
pub async fn desktop(
    connector: SocketAddr,
    token: String,
    conversation: String,
    index: usize,
    acked: Acked,
    done: Arc<AtomicBool>,
    give_up: Instant,
    may_miss: impl Fn(&Seen, &str) -> bool,
) -> Seen {
    let mut seen = Seen::default();
    let mut last_offset: Option<u64> = None;
    loop {
        let mut socket = match SocketClient::connect(connector, &token).await {
            Ok(socket) => socket,
            Err(_) => {
                assert!(Instant::now() < give_up, "desktop {index} cannot reconnect");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let argument = match last_offset {
            None => json!(conversation),
            Some(since) => json!({"conversation_name": conversation, "since": since}),
        };
        let ack = match socket.join(argument).await {
            Ok(ack) => ack,
            Err(_) => {
                // The bus was unavailable: the desktop retries, as it would on a refusal.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if ack.get(2).and_then(|r| r.get("recovered")) == Some(&Value::Bool(false)) {
            seen.told_not_recovered += 1;
        }
        let mut previous: Option<u64> = None;
        loop {
            let complete = {
                let acked = acked.lock().unwrap();
                let received: BTreeSet<&String> = seen.message_ids.iter().collect();
                acked.get(&index).is_none_or(|ids| {
                    ids.iter()
                        .all(|id| received.contains(id) || may_miss(&seen, id))
                })
            };
            if done.load(Ordering::SeqCst) && complete {
                return seen;
            }
            if Instant::now() > give_up {
                // Reported, with what is missing, by the test.
                return seen;
            }
            // Bounded waits, so the end of the load is noticed while the stream is quiet.
            let event =
                match tokio::time::timeout(Duration::from_millis(200), socket.next_event()).await {
                    Ok(event) => event,
                    Err(_) => continue,
                };
            let Ok(Some(event)) = event else {
                seen.reconnects += 1;
                break;
            };
            let offset = event.payload["offset"].as_u64().unwrap();
            if let Some(previous) = previous {
                if offset != previous + 1 {
                    seen.jumps.push((previous, offset));
                }
            }
            previous = Some(offset);
            last_offset = Some(offset);
            seen.message_ids
                .push(event.payload["message_id"].as_str().unwrap().to_owned());
        }
    }
}

/// Checks each desktop (two per conversation, in conversation order) against what was
/// acknowledged: no event twice, no jump on an open connection, and every acknowledged event
/// received but those `may_miss` excuses (each excused one is printed, under `label`).
pub fn assert_every_acknowledged_event_arrived(
    label: &str,
    seen: &[Seen],
    acked: &HashMap<usize, BTreeSet<String>>,
    may_miss: impl Fn(&Seen, &str) -> bool,
) {
    for (i, desk) in seen.iter().enumerate() {
        let expected = &acked[&(i / 2)];
        let received: BTreeSet<&String> = desk.message_ids.iter().collect();
        assert_eq!(
            received.len(),
            desk.message_ids.len(),
            "desktop {i}: an event arrived twice"
        );
        let not_received: Vec<&String> = expected
            .iter()
            .filter(|id| !received.contains(id))
            .collect();
        let missing: Vec<&&String> = not_received
            .iter()
            .filter(|id| !may_miss(desk, id))
            .collect();
        if not_received.len() > missing.len() {
            eprintln!(
                "{label}: desktop {i} missed {} event(s) its test excuses",
                not_received.len() - missing.len()
            );
        }
        assert!(
            missing.is_empty(),
            "desktop {i} lost {} of {} events: {missing:?}; {desk:?}",
            missing.len(),
            expected.len()
        );
        assert!(
            desk.jumps.is_empty(),
            "desktop {i} skipped: {:?}",
            desk.jumps
        );
    }
}
