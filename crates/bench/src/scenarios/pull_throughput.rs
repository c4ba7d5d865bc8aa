//! Scenario 1b: pull throughput, the push scenario's counterpart for pull mode (issue 14).
//!
//! The fake Pub/Sub Subscriber service (`pubsub-test-server`) runs inside the harness on
//! loopback; an interceptor process of its own pulls one subscription through it
//! (`PUBSUB_EMULATOR_HOST`), with the real `google-cloud-pubsub` subscriber and its default
//! flow control. Redis is emptied first (`FLUSHALL`: the push scenario leaves ~10^5 redelivery
//! marks behind, which make every script call slower), so pull starts on an empty Redis as push
//! did. After a warm-up, `--pull-messages` messages (the same ~1 KiB event as the push
//! scenario, half to 50 conversations with a socket joined on connector A, half to 50 without)
//! are published as fast as the fake takes them; the clock runs from the first publish until
//! every message is stored (the interceptor's `interceptor_pulled_messages_total`) and every
//! joined one has reached its socket. Reported: messages/s stored and delivered, the ratio to
//! the push scenario's pushes/s in the same run (target 2x), Redis time per message and
//! messages per script call (`INFO commandstats`), batch sizes, CPU, and that the fake received
//! an acknowledgement for every message and nothing was delivered twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pubsub_test_server::PubsubTestServer;

use crate::http_client::HttpConnection;
use crate::options::Options;
use crate::payload::{self, clock_ns, Conversation, Stamp};
use crate::processes::CpuSnapshot;
use crate::report::Report;
use crate::scenarios::{thousands, wait_until};
use crate::socket_pool::{PoolSpec, SocketPool};
use crate::stack::{redis_cli, wait_ready, Stack};
use crate::tokens::PROJECT;

const SCENARIO: &str = "1b pull throughput";

/// Conversations with a joined socket, and as many without.
const CONVERSATIONS: usize = payload::THROUGHPUT_CONVERSATIONS_EACH;

/// The event type the scenario's subscription feeds (the push scenario's endpoint).
const EVENT_TYPE: &str = "human-agent-assistant-event";

/// Pull must store at least twice the pushes/s of the push scenario.
const TARGET_RATIO: f64 = 2.0;

/// Longest wait for the published messages to be stored and delivered.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(180);

pub async fn run(
    options: &Options,
    stack: &mut Stack,
    report: &mut Report,
    push_rate: Option<f64>,
) -> anyhow::Result<()> {
    redis_cli(&stack.redis, &["FLUSHALL"]).await?;
    let fake = PubsubTestServer::start().await;
    let subscription = format!(
        "projects/{PROJECT}/subscriptions/bench-pull-{}",
        stack.run_id
    );
    fake.create_subscription(&subscription);
    let (interceptor, _) = stack.launcher.start_interceptor_with(
        "interceptor-pull",
        vec![
            ("PUBSUB_EMULATOR_HOST", fake.emulator_host()),
            (
                "PUBSUB_PULL_SUBSCRIPTIONS",
                format!("{EVENT_TYPE}={subscription}"),
            ),
        ],
    )?;
    wait_ready(interceptor.addr()).await?;

    let joined: Vec<Conversation> = (0..CONVERSATIONS)
        .map(|i| payload::conversation(&stack.run_id, "pull-joined", i))
        .collect();
    let unjoined: Vec<Conversation> = (0..CONVERSATIONS)
        .map(|i| payload::conversation(&stack.run_id, "pull-unjoined", i))
        .collect();
    let delivered = Arc::new(AtomicU64::new(0));
    let token = stack.launcher.token();
    let pool = SocketPool::open(
        PoolSpec {
            server: stack.connectors[0].addr(),
            token: &token,
            conversations: joined.iter().map(|c| c.join_name.clone()).collect(),
            concurrency: 64,
            source_offset: 0,
        },
        {
            let delivered = delivered.clone();
            Arc::new(move |_, _, _| {
                delivered.fetch_add(1, Ordering::Relaxed);
            })
        },
    )
    .await?;
    let mut metrics = HttpConnection::open(interceptor.addr()).await?;
    let mut sequence = 0u64;
    let mut publish = |count: u64| {
        for _ in 0..count {
            let n = sequence;
            sequence += 1;
            let index = (n / 2) as usize % CONVERSATIONS;
            let conversation = if n.is_multiple_of(2) {
                &joined[index]
            } else {
                &unjoined[index]
            };
            let stamp = Stamp {
                conv: index as u32,
                seq: (n / 2 / CONVERSATIONS as u64) as u32,
                sent_ns: clock_ns(),
            };
            fake.publish(
                &subscription,
                payload::dialogflow_event(conversation, stamp),
                [] as [(&str, &str); 0],
            );
        }
    };

    // Warm-up: connections, the stream and the script cache, unmeasured.
    let warmup = (options.pull_messages / 20).clamp(100, 5_000) as u64;
    publish(warmup);
    wait_stored(&mut metrics, warmup, DRAIN_TIMEOUT).await?;
    let joined_warmup = warmup.div_ceil(2);
    wait_until(Duration::from_secs(10), || {
        delivered.load(Ordering::Relaxed) >= joined_warmup
    })
    .await;

    redis_cli(&stack.redis, &["CONFIG", "RESETSTAT"]).await?;
    let batches_before = batch_stats(&mut metrics).await?;
    let accounts = stack.cpu_accounts(("interceptor-pull", interceptor.pid()));
    let cpu = CpuSnapshot::take(&accounts);
    let measured = options.pull_messages as u64;
    let started = Instant::now();
    publish(measured);
    let published_in = started.elapsed();
    wait_stored(&mut metrics, warmup + measured, DRAIN_TIMEOUT).await?;
    let stored_in = started.elapsed();
    let joined_total = (warmup + measured).div_ceil(2);
    let all_delivered = wait_until(DRAIN_TIMEOUT, || {
        delivered.load(Ordering::Relaxed) >= joined_total
    })
    .await;
    let done_in = started.elapsed();
    let cpu_usage = cpu.usage_since();
    let batches_after = batch_stats(&mut metrics).await?;
    // Anything more than expected would be a duplicate; give it a moment to show.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let delivered = delivered.load(Ordering::Relaxed);
    let ended = pool.ended_by_server();
    pool.close().await;

    let rate = measured as f64 / done_in.as_secs_f64();
    report.info(
        SCENARIO,
        &format!("messages published to the fake ({})", thousands(measured)),
        format!(
            "in {:.2} s ({}/s)",
            published_in.as_secs_f64(),
            thousands((measured as f64 / published_in.as_secs_f64()) as u64)
        ),
    );
    report.info(
        SCENARIO,
        "messages/s stored (acked after storing)",
        thousands((measured as f64 / stored_in.as_secs_f64()) as u64),
    );
    match push_rate {
        Some(push_rate) => report.target(
            SCENARIO,
            "messages/s stored and delivered, ratio to pushes/s",
            format!(
                "{} ({:.2}x push's {})",
                thousands(rate as u64),
                rate / push_rate,
                thousands(push_rate as u64)
            ),
            ">= 2x push",
            rate >= TARGET_RATIO * push_rate,
        ),
        None => report.info(
            SCENARIO,
            "messages/s stored and delivered",
            format!("{} (push scenario not run)", thousands(rate as u64)),
        ),
    }
    report.check(
        SCENARIO,
        "events delivered to the joined sockets",
        format!(
            "{} of {} (sockets closed by server: {ended})",
            thousands(delivered),
            thousands(joined_total)
        ),
        all_delivered && delivered == joined_total && ended == 0,
    );
    let acked = wait_acked(&fake, &subscription, warmup + measured).await;
    report.check(
        SCENARIO,
        "acknowledgements received by the fake",
        format!("{} of {}", thousands(acked), thousands(warmup + measured)),
        acked == warmup + measured,
    );
    let messages_in_window = measured as f64;
    let batches = batches_after.count - batches_before.count;
    if batches > 0.0 {
        report.info(
            SCENARIO,
            "messages per bus call (batch)",
            format!(
                "{:.1} ({} calls)",
                (batches_after.sum - batches_before.sum) / batches,
                thousands(batches as u64)
            ),
        );
    }
    match redis_time_per_message(stack, messages_in_window).await {
        Ok(text) => report.info(SCENARIO, "Redis time per message (INFO commandstats)", text),
        Err(e) => report.info(
            SCENARIO,
            "Redis time per message",
            format!("unavailable: {e:#}"),
        ),
    }
    let cpu_text = cpu_usage
        .iter()
        .map(|(name, percent)| format!("{name} {percent:.0}%"))
        .collect::<Vec<_>>()
        .join(", ");
    report.info(
        SCENARIO,
        "CPU while draining (% of one core; the fake runs in bench)",
        cpu_text,
    );
    // Killed before the fake goes away (locals drop in reverse order anyway).
    drop(interceptor);
    Ok(())
}

/// Waits until the pull interceptor has stored `count` messages (its accepted counter).
async fn wait_stored(
    metrics: &mut HttpConnection,
    count: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = 0;
    while last < count {
        if Instant::now() > deadline {
            bail!("{last} of {count} messages stored within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        last = metric(metrics, &accepted_series()).await?.unwrap_or(0.0) as u64;
    }
    Ok(())
}

fn accepted_series() -> String {
    format!(r#"interceptor_pulled_messages_total{{type="{EVENT_TYPE}",outcome="accepted"}}"#)
}

/// One sample of `/metrics` (the line starting with `series` and a space).
async fn metric(metrics: &mut HttpConnection, series: &str) -> anyhow::Result<Option<f64>> {
    let (status, body) = metrics.get("/metrics").await?;
    anyhow::ensure!(status == 200, "/metrics answered {status}");
    let text = std::str::from_utf8(&body).context("/metrics is not UTF-8")?;
    Ok(text.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    }))
}

struct BatchStats {
    count: f64,
    sum: f64,
}

async fn batch_stats(metrics: &mut HttpConnection) -> anyhow::Result<BatchStats> {
    Ok(BatchStats {
        count: metric(metrics, "interceptor_pull_batch_messages_count")
            .await?
            .unwrap_or(0.0),
        sum: metric(metrics, "interceptor_pull_batch_messages_sum")
            .await?
            .unwrap_or(0.0),
    })
}

/// Acknowledgements the fake received, once they stop arriving (the library sends them every
/// 100 ms). A snapshot copies the ack list, so this polls slowly.
async fn wait_acked(fake: &PubsubTestServer, subscription: &str, expected: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let acked = fake.snapshot(subscription).acked.len() as u64;
        if acked >= expected || Instant::now() > deadline {
            return acked;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The publish script's calls and Redis CPU since `CONFIG RESETSTAT`, per stored message.
async fn redis_time_per_message(stack: &Stack, messages: f64) -> anyhow::Result<String> {
    let stats = redis_cli(&stack.redis, &["INFO", "commandstats"]).await?;
    let line = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_evalsha:"))
        .context("no script calls recorded")?;
    let field = |name: &str| -> anyhow::Result<f64> {
        line.split(':')
            .nth(1)
            .unwrap_or_default()
            .split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .with_context(|| format!("no {name} in {line}"))?
            .trim()
            .parse()
            .with_context(|| format!("{name} in {line}"))
    };
    let calls = field("calls")?;
    let usec = field("usec")?;
    Ok(format!(
        "{:.1} µs/message ({} calls, {:.1} messages/call, {:.0} µs/call)",
        usec / messages,
        thousands(calls as u64),
        messages / calls,
        usec / calls
    ))
}
