//! Scenario 1: push throughput.
//!
//! `--push-connections` keep-alive HTTP/1.1 connections (64) post Pub/Sub pushes to the
//! interceptor as fast as it answers, for `--warmup` plus `--duration` seconds; requests started
//! in the measured window count. Even pushes go to 50 conversations that each have a socket
//! joined on connector A (which must receive every one of them), odd pushes to 50 conversations
//! nobody has joined. Reported beside it: `redis-benchmark` `PUBLISH` of an event-sized payload
//! at the same concurrency (the raw ceiling), the Redis time per push from `INFO commandstats`,
//! and the CPU each process used in the window.
//!
//! With `--push-auth` the same run is repeated against a second interceptor with push
//! authentication on ([`crate::push_auth`]): every push carries the same Google ID token, which
//! the interceptor verifies against a JWKS stand-in in this process. Reported: both runs'
//! pushes/s and p99, the interceptor's CPU per push with and without (the verification's cost
//! in the service), and one verification's cost measured alone on one thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;

use crate::http_client::HttpConnection;
use crate::latency::{Latencies, Summary};
use crate::options::Options;
use crate::payload::{self, clock_ns, Conversation, Stamp, PUSH_PATH};
use crate::processes::CpuSnapshot;
use crate::push_auth::PushAuthSetup;
use crate::redis_benchmark;
use crate::report::Report;
use crate::scenarios::{megabytes, thousands, wait_until};
use crate::socket_pool::{PoolSpec, SocketPool};
use crate::stack::{redis_cli, wait_ready, Stack};

const SCENARIO: &str = "1 push throughput";

/// Conversations with a joined socket, and as many without.
const CONVERSATIONS: usize = payload::THROUGHPUT_CONVERSATIONS_EACH;

/// Upper bound on requests, whatever the duration.
const MAX_REQUESTS: u64 = 10_000_000;

const TARGET_RATE: f64 = 30_000.0;
const TARGET_P99: Duration = Duration::from_millis(10);
/// Issue 15: Redis's CPU per published event, over the push run.
const TARGET_REDIS_CPU_PER_EVENT_US: f64 = 8.0;
/// The bound for what push authentication may add per push ("well under").
const TARGET_VERIFY_COST: Duration = Duration::from_millis(1);

/// What one push connection did.
#[derive(Default)]
struct ConnectionResult {
    latencies: Latencies,
    /// Answered requests started in the measured window.
    measured: u64,
    non_2xx: u64,
    errors: u64,
    /// Accepted pushes to joined conversations, warm-up included (each must reach its socket).
    joined_accepted: u64,
}

struct Plan {
    run_id: String,
    joined: Vec<Conversation>,
    unjoined: Vec<Conversation>,
    next: AtomicU64,
    measure_from: Instant,
    end: Instant,
    /// Sent with every push (the push token), when push authentication is on.
    authorization: Option<HeaderValue>,
}

/// The interceptor a run pushes to.
struct Target {
    addr: std::net::SocketAddr,
    /// Its name in the CPU accounts.
    name: String,
    pid: u32,
    /// Names this run's conversations and message ids.
    label: &'static str,
    authorization: Option<HeaderValue>,
}

/// What one run measured.
struct Measured {
    /// Pushes per second in the measured window.
    rate: f64,
    latency: Summary,
    non_2xx: u64,
    errors: u64,
    delivered: u64,
    joined_accepted: u64,
    all_delivered: bool,
    sockets_ended: usize,
    /// Each process's CPU in the window, in percent of one core.
    cpu: Vec<(String, f64)>,
    /// The target interceptor's CPU time per measured push.
    interceptor_cpu_per_push: Option<Duration>,
}

/// What the push run measured that a later step compares: the pull scenario its rate, a run
/// on both buses (`--redis-cluster`) the two runs side by side ([`compare_buses`]).
pub struct PushSummary {
    pub rate: f64,
    pub p99: Duration,
    /// Redis CPU per stored event: one figure standalone, one per primary on a cluster.
    pub redis_cpu_per_event: String,
}

/// Runs the scenario.
pub async fn run(
    options: &Options,
    stack: &mut Stack,
    report: &mut Report,
) -> anyhow::Result<PushSummary> {
    redis_cli(&stack.redis, &["CONFIG", "RESETSTAT"]).await?;
    let shards_before = stack.cluster.as_ref().map(shard_cpu);
    let redis_cpu_before = redis_cpu_seconds(stack).await?;
    let target = Target {
        addr: stack.interceptor.addr(),
        name: "interceptor".into(),
        pid: stack.interceptor.pid(),
        label: "push",
        authorization: None,
    };
    let plain = measure(options, stack, &target).await?;
    report.target(
        SCENARIO,
        &format!(
            "pushes/s ({} connections, {:.0} s)",
            options.push_connections,
            options.duration.as_secs_f64()
        ),
        thousands(plain.rate as u64),
        ">= 30,000",
        plain.rate >= TARGET_RATE,
    );
    report.target(
        SCENARIO,
        "push latency",
        plain.latency.to_string(),
        "p99 < 10 ms",
        plain.latency.p99 < TARGET_P99,
    );
    report_checks(report, "", &plain);
    report.info(
        SCENARIO,
        "CPU in the window (% of one core)",
        cpu_text(&plain),
    );
    if let Ok(rss) = stack.interceptor.rss_kib() {
        report.info(SCENARIO, "interceptor RSS after the run", megabytes(rss));
    }
    let redis_cpu_per_event = match (&stack.cluster, shards_before) {
        (Some(cluster), Some(before)) => {
            let per_shard = shard_cpu_per_event(cluster, &before);
            report.info(
                SCENARIO,
                "Redis CPU per event per shard (INFO cpu, SPUBLISH calls)",
                per_shard.clone(),
            );
            per_shard
        }
        _ => match redis_cpu_per_event(stack, redis_cpu_before).await {
            Ok((micros, events)) => {
                let text = format!("{micros:.1} µs ({} events)", thousands(events));
                report.target(
                    SCENARIO,
                    "Redis CPU per event (INFO cpu / PUBLISH calls)",
                    text.clone(),
                    "<= 8 µs",
                    micros <= TARGET_REDIS_CPU_PER_EVENT_US,
                );
                text
            }
            Err(e) => {
                let text = format!("unavailable: {e:#}");
                report.info(SCENARIO, "Redis CPU per event", text.clone());
                text
            }
        },
    };
    // On a cluster the standalone server is idle; the per-shard row above stands for this one.
    if stack.cluster.is_none() {
        match redis_time_per_push(stack).await {
            Ok(text) => report.info(SCENARIO, "Redis time per push (INFO commandstats)", text),
            Err(e) => report.info(
                SCENARIO,
                "Redis time per push",
                format!("unavailable: {e:#}"),
            ),
        }
    }

    // The ceiling: PUBLISH of a published event's size, same concurrency, same Redis.
    let sample = payload::dialogflow_event(
        &payload::conversation(&stack.run_id, "push-joined", 0),
        Stamp {
            conv: 0,
            seq: 0,
            sent_ns: clock_ns(),
        },
    );
    let event_bytes = serde_json::to_string(&sample)?.len() + 230;
    let ceiling = redis_benchmark::publish_ceiling(
        stack.redis.port(),
        options.push_connections,
        options.redis_requests,
        event_bytes,
    )
    .await?;
    report.info(
        SCENARIO,
        &format!(
            "redis-benchmark PUBLISH {event_bytes} B, -c {}",
            options.push_connections
        ),
        format!(
            "{}/s (p50 {:.2} ms, p99 {:.2} ms)",
            thousands(ceiling.requests_per_second as u64),
            ceiling.p50_ms,
            ceiling.p99_ms
        ),
    );
    report.info(
        SCENARIO,
        "pushes/s as a share of the PUBLISH ceiling",
        format!("{:.2}", plain.rate / ceiling.requests_per_second),
    );
    if options.push_auth {
        with_push_auth(options, stack, report, &plain).await?;
    }
    Ok(PushSummary {
        rate: plain.rate,
        p99: plain.latency.p99,
        redis_cpu_per_event,
    })
}

/// The same push run on one Redis and on a 3-primary cluster, side by side. Both ran on this
/// machine, so the cluster's six servers shared its cores with everything else: the figures
/// compare Redis's work per event, not what a cluster on nodes of its own would carry.
pub fn compare_buses(report: &mut Report, standalone: &PushSummary, cluster: &PushSummary) {
    const COMPARED: &str = "1 push throughput, standalone / cluster";
    report.info(
        COMPARED,
        "pushes/s",
        format!(
            "{} / {} (cluster {:.2}x)",
            thousands(standalone.rate as u64),
            thousands(cluster.rate as u64),
            cluster.rate / standalone.rate
        ),
    );
    report.info(
        COMPARED,
        "push p99",
        format!(
            "{:.2} ms / {:.2} ms",
            standalone.p99.as_secs_f64() * 1e3,
            cluster.p99.as_secs_f64() * 1e3
        ),
    );
    report.info(
        COMPARED,
        "Redis CPU per event (per primary on the cluster)",
        format!(
            "{} / {}",
            standalone.redis_cpu_per_event, cluster.redis_cpu_per_event
        ),
    );
}

/// The same run against an interceptor with push authentication on, and the comparison.
async fn with_push_auth(
    options: &Options,
    stack: &Stack,
    report: &mut Report,
    plain: &Measured,
) -> anyhow::Result<()> {
    let setup = PushAuthSetup::start().await?;
    let (interceptor, _) = stack
        .launcher
        .start_interceptor_with("interceptor-push-auth", setup.interceptor_settings())?;
    wait_ready(interceptor.addr()).await?;
    let target = Target {
        addr: interceptor.addr(),
        name: "interceptor-push-auth".into(),
        pid: interceptor.pid(),
        label: "push-auth",
        authorization: Some(setup.authorization().clone()),
    };
    let authed = measure(options, stack, &target).await?;
    let fetches = setup.key_fetches();
    drop(interceptor);

    report.target(
        SCENARIO,
        "with push authentication: pushes/s",
        format!(
            "{} (without: {}, {:+.1} %)",
            thousands(authed.rate as u64),
            thousands(plain.rate as u64),
            (authed.rate / plain.rate - 1.0) * 100.0
        ),
        ">= 30,000",
        authed.rate >= TARGET_RATE,
    );
    report.target(
        SCENARIO,
        "with push authentication: push latency",
        format!(
            "{} (without: p99 {:.2} ms)",
            authed.latency,
            plain.latency.p99.as_secs_f64() * 1e3
        ),
        "p99 < 10 ms",
        authed.latency.p99 < TARGET_P99,
    );
    report_checks(report, "with push authentication: ", &authed);
    report.check(
        SCENARIO,
        "with push authentication: key set fetches (JWKS stand-in)",
        fetches.to_string(),
        fetches == 1,
    );
    report.info(
        SCENARIO,
        "with push authentication: CPU in the window (% of one core)",
        cpu_text(&authed),
    );
    if let (Some(without), Some(with)) = (
        plain.interceptor_cpu_per_push,
        authed.interceptor_cpu_per_push,
    ) {
        let added = with.saturating_sub(without);
        report.target(
            SCENARIO,
            "interceptor CPU per push: without / with push authentication",
            format!(
                "{:.1} µs / {:.1} µs (+{:.1} µs)",
                micros(without),
                micros(with),
                micros(with) - micros(without)
            ),
            "added < 1 ms",
            added < TARGET_VERIFY_COST,
        );
    }
    let iterations = if options.smoke { 500 } else { 20_000 };
    let cost = setup.verify_cost(iterations).await?;
    report.target(
        SCENARIO,
        "one verification alone (warm cache, one thread)",
        format!(
            "{:.1} µs wall, {} CPU (mean of {})",
            micros(cost.mean),
            cost.cpu
                .map_or_else(|| "n/a".to_owned(), |cpu| format!("{:.1} µs", micros(cpu))),
            thousands(cost.iterations as u64)
        ),
        "< 1 ms",
        cost.cpu.unwrap_or(cost.mean) < TARGET_VERIFY_COST,
    );
    Ok(())
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn cpu_text(measured: &Measured) -> String {
    measured
        .cpu
        .iter()
        .map(|(name, percent)| format!("{name} {percent:.0}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What must hold in every run: every push answered 2xx, every joined event delivered.
fn report_checks(report: &mut Report, prefix: &str, measured: &Measured) {
    report.check(
        SCENARIO,
        &format!("{prefix}non-2xx responses / errors"),
        format!("{} / {}", measured.non_2xx, measured.errors),
        measured.non_2xx == 0 && measured.errors == 0,
    );
    report.check(
        SCENARIO,
        &format!("{prefix}events delivered to the joined sockets"),
        format!(
            "{} of {} (sockets closed by server: {})",
            thousands(measured.delivered),
            thousands(measured.joined_accepted),
            measured.sockets_ended
        ),
        measured.all_delivered
            && measured.delivered == measured.joined_accepted
            && measured.sockets_ended == 0,
    );
}

/// One run: sockets joined to the joined conversations on connector A, the push connections to
/// `target`, the load for warm-up plus duration, then the delivery check.
async fn measure(options: &Options, stack: &Stack, target: &Target) -> anyhow::Result<Measured> {
    let joined: Vec<Conversation> = (0..CONVERSATIONS)
        .map(|i| payload::conversation(&stack.run_id, &format!("{}-joined", target.label), i))
        .collect();
    let unjoined: Vec<Conversation> = (0..CONVERSATIONS)
        .map(|i| payload::conversation(&stack.run_id, &format!("{}-unjoined", target.label), i))
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
    let mut connections = Vec::with_capacity(options.push_connections);
    for _ in 0..options.push_connections {
        connections.push(HttpConnection::open(target.addr).await?);
    }

    let start = Instant::now();
    let plan = Arc::new(Plan {
        run_id: format!("{}-{}", stack.run_id, target.label),
        joined,
        unjoined,
        next: AtomicU64::new(0),
        measure_from: start + options.warmup,
        end: start + options.warmup + options.duration,
        authorization: target.authorization.clone(),
    });
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|connection| tokio::spawn(push_loop(connection, plan.clone(), target.addr)))
        .collect();
    let accounts = stack.cpu_accounts((&target.name, target.pid));
    tokio::time::sleep_until(plan.measure_from.into()).await;
    let cpu = CpuSnapshot::take(&accounts);
    tokio::time::sleep_until(plan.end.into()).await;
    let cpu_usage = cpu.usage_since();

    let mut total = ConnectionResult::default();
    for task in tasks {
        let result = task.await?;
        total.latencies.add(&result.latencies);
        total.measured += result.measured;
        total.non_2xx += result.non_2xx;
        total.errors += result.errors;
        total.joined_accepted += result.joined_accepted;
    }
    let all_delivered = wait_until(Duration::from_secs(10), || {
        delivered.load(Ordering::Relaxed) >= total.joined_accepted
    })
    .await;
    // Anything more than expected would be a duplicate; give it a moment to show.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let delivered = delivered.load(Ordering::Relaxed);
    let sockets_ended = pool.ended_by_server();
    pool.close().await;

    let interceptor_cpu_per_push = cpu_usage
        .iter()
        .find(|(name, _)| *name == target.name)
        .filter(|_| total.measured > 0)
        .map(|(_, percent)| {
            Duration::from_secs_f64(
                percent / 100.0 * options.duration.as_secs_f64() / total.measured as f64,
            )
        });
    Ok(Measured {
        rate: total.measured as f64 / options.duration.as_secs_f64(),
        latency: total.latencies.summary(),
        non_2xx: total.non_2xx,
        errors: total.errors,
        delivered,
        joined_accepted: total.joined_accepted,
        all_delivered,
        sockets_ended,
        cpu: cpu_usage,
        interceptor_cpu_per_push,
    })
}

/// Posts pushes until the plan's end; reopens the connection after an error.
async fn push_loop(
    mut connection: HttpConnection,
    plan: Arc<Plan>,
    interceptor: std::net::SocketAddr,
) -> ConnectionResult {
    let mut result = ConnectionResult::default();
    loop {
        let started = Instant::now();
        if started >= plan.end {
            break;
        }
        let n = plan.next.fetch_add(1, Ordering::Relaxed);
        if n >= MAX_REQUESTS {
            break;
        }
        let joined = n.is_multiple_of(2);
        let index = (n / 2) as usize % CONVERSATIONS;
        let conversation = if joined {
            &plan.joined[index]
        } else {
            &plan.unjoined[index]
        };
        let stamp = Stamp {
            conv: index as u32,
            seq: (n / 2 / CONVERSATIONS as u64) as u32,
            sent_ns: clock_ns(),
        };
        let event = payload::dialogflow_event(conversation, stamp);
        let body = payload::push_body(&event, &format!("{}-push-{n}", plan.run_id));
        let outcome = connection
            .post_json_authorized(PUSH_PATH, body, plan.authorization.as_ref())
            .await;
        let measured = started >= plan.measure_from;
        match outcome {
            Ok(status) => {
                let ok = (200..300).contains(&status);
                if ok && joined {
                    result.joined_accepted += 1;
                }
                if measured {
                    result.latencies.record(started.elapsed());
                    result.measured += 1;
                    if !ok {
                        result.non_2xx += 1;
                    }
                }
            }
            Err(e) => {
                result.errors += 1;
                eprintln!("  push failed: {e:#}");
                match HttpConnection::open(interceptor).await {
                    Ok(fresh) => connection = fresh,
                    Err(_) => break,
                }
            }
        }
    }
    result
}

/// The interceptor's publish script: calls and Redis CPU per call since `CONFIG RESETSTAT`.
async fn redis_time_per_push(stack: &Stack) -> anyhow::Result<String> {
    let stats = redis_cli(&stack.redis, &["INFO", "commandstats"]).await?;
    let mut parts = Vec::new();
    for line in stats.lines() {
        let Some((command, fields)) = line.trim().split_once(':') else {
            continue;
        };
        let Some(command) = command.strip_prefix("cmdstat_") else {
            continue;
        };
        if !["evalsha", "eval", "publish"].contains(&command) {
            continue;
        }
        let field = |name: &str| {
            fields
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap_or("?")
                .to_owned()
        };
        parts.push(format!(
            "{command}: {} calls, {} µs/call",
            field("calls"),
            field("usec_per_call")
        ));
    }
    anyhow::ensure!(!parts.is_empty(), "no script calls recorded");
    Ok(parts.join("; "))
}

/// The value of `name` in `INFO` output (`name:value` lines).
fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
}

/// The `calls` of `command` in an `INFO commandstats` answer (0 when it never ran).
fn command_calls(info_commandstats: &str, command: &str) -> u64 {
    info_field(info_commandstats, &format!("cmdstat_{command}"))
        .and_then(|fields| {
            fields
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// `used_cpu_user + used_cpu_sys` of an `INFO cpu` answer, in seconds.
fn cpu_seconds(info_cpu: &str) -> f64 {
    ["used_cpu_user", "used_cpu_sys"]
        .iter()
        .filter_map(|name| info_field(info_cpu, name)?.parse::<f64>().ok())
        .sum()
}

/// The standalone Redis's CPU so far, in seconds.
async fn redis_cpu_seconds(stack: &Stack) -> anyhow::Result<f64> {
    Ok(cpu_seconds(
        &redis_cli(&stack.redis, &["INFO", "cpu"]).await?,
    ))
}

/// Redis's CPU per stored event since `before` (µs), and the events: the publish script sends
/// one `PUBLISH` per event it stores (`INFO commandstats` counts commands run by scripts, and
/// was reset at the start of the scenario). Everything Redis did meanwhile is counted: the
/// script calls, the connectors' subscriptions and history reads, its own background work.
async fn redis_cpu_per_event(stack: &Stack, before: f64) -> anyhow::Result<(f64, u64)> {
    let seconds = redis_cpu_seconds(stack).await? - before;
    let stats = redis_cli(&stack.redis, &["INFO", "commandstats"]).await?;
    let events = command_calls(&stats, "publish");
    anyhow::ensure!(events > 0, "no PUBLISH calls recorded");
    Ok((seconds * 1e6 / events as f64, events))
}

/// Per primary of the cluster: `used_cpu_user + used_cpu_sys` (s) and `SPUBLISH` calls (one per
/// event stored on that shard; commands run by scripts are counted too) so far.
fn shard_cpu(cluster: &redis_test_server::RedisCluster) -> Vec<(u16, f64, u64)> {
    cluster
        .primaries()
        .iter()
        .map(|node| {
            let info = |section: &str| -> String {
                cluster
                    .query(node, redis::cmd("INFO").arg(section))
                    .unwrap_or_default()
            };
            let seconds = cpu_seconds(&info("cpu"));
            let stats = info("commandstats");
            let spublish = command_calls(&stats, "spublish");
            (node.port(), seconds, spublish)
        })
        .collect()
}

/// Each primary's CPU per event since `before`, e.g. `:7001 8.1 µs (120,000 events)`.
fn shard_cpu_per_event(
    cluster: &redis_test_server::RedisCluster,
    before: &[(u16, f64, u64)],
) -> String {
    let after = shard_cpu(cluster);
    after
        .iter()
        .map(|(port, seconds, events)| {
            let Some((_, seconds_before, events_before)) =
                before.iter().find(|(p, _, _)| p == port)
            else {
                return format!(":{port} (became a primary during the run)");
            };
            let events = events.saturating_sub(*events_before);
            if events == 0 {
                return format!(":{port} no events");
            }
            let micros = (seconds - seconds_before) * 1e6 / events as f64;
            format!(":{port} {micros:.1} µs ({} events)", thousands(events))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
