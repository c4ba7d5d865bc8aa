//! Scenario 2: end-to-end latency.
//!
//! K sockets on connector A, each joined to its own conversation; pushes at a fixed rate R for
//! `--duration`, push `j` going to conversation `j mod K` with sequence number `j div K`. Every
//! event carries its send time, taken just before its request is written (the generator's lag
//! behind the schedule is reported on its own). Latency is from that time to the event's arrival
//! on its socket; every (conversation, sequence) pair is tracked, so duplicates, losses and
//! misrouting are counted exactly, and each socket's offsets must only grow (ordering).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::http_client::HttpConnection;
use crate::latency::{Latencies, Ms};
use crate::options::{EndToEndRun, Options};
use crate::payload::{self, clock_ns, Conversation, Stamp, PUSH_PATH};
use crate::report::Report;
use crate::scenarios::{thousands, wait_until};
use crate::socket_pool::{PoolSpec, SocketPool};
use crate::stack::Stack;

/// How long deliveries may trail the last push.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The p99 target for a number of sockets.
fn p99_target(sockets: usize) -> (Duration, &'static str) {
    if sockets <= 1_000 {
        (Duration::from_millis(5), "p99 < 5 ms")
    } else {
        (Duration::from_millis(20), "p99 < 20 ms")
    }
}

pub async fn run(options: &Options, stack: &mut Stack, report: &mut Report) -> anyhow::Result<()> {
    for run in &options.e2e_runs {
        run_one(options, stack, report, *run).await?;
        // Let the connector release the closed sockets before the next run.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// Every delivery, checked against what was sent.
struct Tracker {
    sockets: usize,
    /// Deliveries of push `seq * sockets + conv`.
    counts: Vec<AtomicU8>,
    /// The conversation each socket joined.
    conversations: Arc<Vec<Conversation>>,
    /// Per socket: the offset of the last event received (offsets must only grow).
    last_offset: Vec<AtomicU64>,
    latencies: Mutex<Latencies>,
    distinct: AtomicU64,
    duplicates: AtomicU64,
    reordered: AtomicU64,
    misrouted: AtomicU64,
    unreadable: AtomicU64,
}

impl Tracker {
    fn new(conversations: Arc<Vec<Conversation>>, pushes: usize) -> Self {
        let sockets = conversations.len();
        Self {
            sockets,
            counts: (0..pushes).map(|_| AtomicU8::new(0)).collect(),
            conversations,
            last_offset: (0..sockets).map(|_| AtomicU64::new(0)).collect(),
            latencies: Mutex::new(Latencies::default()),
            distinct: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
            misrouted: AtomicU64::new(0),
            unreadable: AtomicU64::new(0),
        }
    }

    fn on_event(&self, socket: usize, arguments: &str, received_ns: u64) {
        let Ok(delivery) = payload::parse_delivery(arguments) else {
            self.unreadable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let stamp = delivery.stamp;
        if stamp.conv as usize != socket
            || delivery.conversation_name != self.conversations[socket].join_name
        {
            self.misrouted.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let index = stamp.seq as usize * self.sockets + stamp.conv as usize;
        let Some(count) = self.counts.get(index) else {
            self.unreadable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if count.fetch_add(1, Ordering::Relaxed) == 0 {
            self.latencies
                .lock()
                .expect("latency lock")
                .record_ns(received_ns.saturating_sub(stamp.sent_ns));
            self.distinct.fetch_add(1, Ordering::Relaxed);
        } else {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        let previous = self.last_offset[socket].swap(delivery.offset, Ordering::Relaxed);
        if previous >= delivery.offset {
            self.reordered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Tracker {
    /// Pushes never delivered, counted by sequence number (`seq: count`), for diagnosis.
    fn lost_by_sequence(&self) -> String {
        let mut lost: std::collections::BTreeMap<usize, usize> = Default::default();
        for (index, count) in self.counts.iter().enumerate() {
            if count.load(Ordering::Relaxed) == 0 {
                *lost.entry(index / self.sockets).or_default() += 1;
            }
        }
        lost.iter()
            .map(|(seq, n)| format!("seq {seq}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the push workers report.
#[derive(Default)]
struct SendResult {
    accepted: u64,
    non_2xx: u64,
    errors: u64,
    /// How late sends were against the schedule.
    lag: Latencies,
    first_ns: u64,
    last_ns: u64,
}

async fn run_one(
    options: &Options,
    stack: &mut Stack,
    report: &mut Report,
    run: EndToEndRun,
) -> anyhow::Result<()> {
    let scenario = format!(
        "2 end-to-end, K={} R={}/s",
        thousands(run.sockets as u64),
        thousands(u64::from(run.rate))
    );
    let label = format!("e2e{}x{}", run.sockets, run.rate);
    let conversations: Arc<Vec<Conversation>> = Arc::new(
        (0..run.sockets)
            .map(|i| payload::conversation(&stack.run_id, &label, i))
            .collect(),
    );
    let total = (f64::from(run.rate) * options.duration.as_secs_f64()).round() as usize;
    let tracker = Arc::new(Tracker::new(conversations.clone(), total));
    let token = stack.launcher.token();
    let pool = SocketPool::open(
        PoolSpec {
            server: stack.connectors[0].addr(),
            token: &token,
            conversations: conversations.iter().map(|c| c.join_name.clone()).collect(),
            concurrency: 128,
            source_offset: 0,
        },
        {
            let tracker = tracker.clone();
            Arc::new(move |socket, arguments, at| tracker.on_event(socket, arguments, at))
        },
    )
    .await?;
    report.info(
        &scenario,
        "sockets connected and joined",
        format!(
            "{} in {:.1} s",
            thousands(pool.len() as u64),
            pool.open_time.as_secs_f64()
        ),
    );

    // Push workers take push numbers from a shared queue; the pacer fills it on schedule.
    let (queue, jobs) = mpsc::unbounded_channel::<u64>();
    let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
    let start_ns = clock_ns();
    let ns_per_push = 1e9 / f64::from(run.rate);
    let mut workers = Vec::new();
    for _ in 0..options.e2e_connections {
        let mut connection = HttpConnection::open(stack.interceptor.addr()).await?;
        let jobs = jobs.clone();
        let conversations = conversations.clone();
        // Unique per run and scenario: the interceptor drops a repeated id as a redelivery.
        let id_prefix = format!("{}-{label}", stack.run_id);
        workers.push(tokio::spawn(async move {
            let mut result = SendResult::default();
            loop {
                let Some(j) = jobs.lock().await.recv().await else {
                    break;
                };
                let conv = (j % run.sockets as u64) as usize;
                let sent_ns = clock_ns();
                let stamp = Stamp {
                    conv: conv as u32,
                    seq: (j / run.sockets as u64) as u32,
                    sent_ns,
                };
                let scheduled = start_ns + (j as f64 * ns_per_push) as u64;
                result.lag.record_ns(sent_ns.saturating_sub(scheduled));
                if result.first_ns == 0 {
                    result.first_ns = sent_ns;
                }
                result.last_ns = sent_ns;
                let event = payload::dialogflow_event(&conversations[conv], stamp);
                let body = payload::push_body(&event, &format!("{id_prefix}-{j}"));
                match connection.post_json(PUSH_PATH, body).await {
                    Ok(status) if (200..300).contains(&status) => result.accepted += 1,
                    Ok(_) => result.non_2xx += 1,
                    Err(e) => {
                        result.errors += 1;
                        eprintln!("  push failed: {e:#}");
                    }
                }
            }
            result
        }));
    }
    // The pacer: bounded by the number of pushes, and by time through the schedule itself.
    let mut queued = 0usize;
    while queued < total {
        let elapsed = clock_ns().saturating_sub(start_ns) as f64;
        let due = ((elapsed / ns_per_push) as usize + 1).min(total);
        while queued < due {
            queue.send(queued as u64)?;
            queued += 1;
        }
        tokio::time::sleep(Duration::from_micros(250)).await;
    }
    drop(queue);
    let mut sent = SendResult::default();
    for worker in workers {
        let result = worker.await?;
        sent.accepted += result.accepted;
        sent.non_2xx += result.non_2xx;
        sent.errors += result.errors;
        sent.lag.add(&result.lag);
        if result.first_ns != 0 && (sent.first_ns == 0 || result.first_ns < sent.first_ns) {
            sent.first_ns = result.first_ns;
        }
        sent.last_ns = sent.last_ns.max(result.last_ns);
    }
    let complete = wait_until(DRAIN_TIMEOUT, || {
        tracker.distinct.load(Ordering::Relaxed) >= sent.accepted
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ended = pool.ended_by_server();
    pool.close().await;

    let latencies = tracker.latencies.lock().expect("latency lock").summary();
    let (target, target_text) = p99_target(run.sockets);
    let delivered = tracker.distinct.load(Ordering::Relaxed);
    let duplicates = tracker.duplicates.load(Ordering::Relaxed);
    let reordered = tracker.reordered.load(Ordering::Relaxed);
    let misrouted = tracker.misrouted.load(Ordering::Relaxed);
    let unreadable = tracker.unreadable.load(Ordering::Relaxed);
    let lost = sent.accepted.saturating_sub(delivered);
    let send_seconds = sent.last_ns.saturating_sub(sent.first_ns) as f64 / 1e9;
    report.target(
        &scenario,
        "push-to-socket latency",
        latencies.to_string(),
        target_text,
        latencies.p99 < target,
    );
    report.check(
        &scenario,
        "delivered / sent",
        format!(
            "{} / {} (non-2xx {}, errors {}, sockets closed by server {ended})",
            thousands(delivered),
            thousands(total as u64),
            sent.non_2xx,
            sent.errors
        ),
        complete
            && delivered == total as u64
            && sent.non_2xx == 0
            && sent.errors == 0
            && ended == 0,
    );
    report.check(
        &scenario,
        "duplicated / lost / reordered / misrouted",
        if lost == 0 {
            format!("{duplicates} / {lost} / {reordered} / {misrouted} (unreadable {unreadable})")
        } else {
            format!(
                "{duplicates} / {lost} / {reordered} / {misrouted} (unreadable {unreadable}; \
                 lost {})",
                tracker.lost_by_sequence()
            )
        },
        duplicates == 0 && lost == 0 && reordered == 0 && misrouted == 0 && unreadable == 0,
    );
    let lag = sent.lag.summary();
    report.info(
        &scenario,
        "generator: achieved rate, lag behind schedule",
        format!(
            "{}/s, lag p99 {} / max {}",
            thousands((total.saturating_sub(1) as f64 / send_seconds.max(1e-9)) as u64),
            Ms(lag.p99),
            Ms(lag.max)
        ),
    );
    Ok(())
}
