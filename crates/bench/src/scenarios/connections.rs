//! Scenario 4: connections and memory.
//!
//! Idle resident memory of the interceptor and of a connector (measured when the stack is
//! ready, before any load); then a fresh connector of its own takes `--sockets` steps of joined
//! sockets (10,000 then 20,000), each socket in its own conversation, held by helper processes
//! ([`crate::socket_holder`]). At each step: the connector's RSS, RSS per socket, and `/status`
//! timings. `/status` is also polled every 50 ms for the whole ramp and hold, and must never
//! fail. Finally every socket closes: the RSS is read at once, then sampled until it falls below
//! 60 MB (the connector hands freed memory back after a crowd leaves, see
//! `ui-connector/src/memory_release.rs`) or 30 s pass; and read again with as many new sockets as
//! the first step (a leak would show as growth; memory the allocator kept or took back does not).
//!
//! Both the connector and each holder need a file descriptor per socket, so the largest step
//! is capped just under the open-file limit (`ulimit -n`, raised to the hard limit) when needed.

use std::time::Duration;

use crate::options::Options;
use crate::processes;
use crate::report::Report;
use crate::scenarios::{megabytes, thousands};
use crate::socket_holder::{HolderSpec, SocketHolder};
use crate::stack::{wait_ready, Stack};
use crate::status_monitor::{self, StatusMonitor};

const SCENARIO: &str = "4 connections and memory";

const IDLE_TARGET_KIB: u64 = 15_000 * 1000 / 1024;
const PER_SOCKET_TARGET_BYTES: f64 = 20.0 * 1024.0;

/// Sockets per holder process.
const PER_HOLDER: usize = 10_000;

/// File descriptors a process needs besides its sockets (listener, Redis, epoll, stdio, logs).
const FD_RESERVE: u64 = 64;

/// Longest wait for a holder to connect and join its sockets.
const HOLDER_TIMEOUT: Duration = Duration::from_secs(600);

/// The connector must be back below [`RELEASE_TARGET_KIB`] this soon after the last socket closed.
const RELEASE_WINDOW: Duration = Duration::from_secs(30);
const RELEASE_TARGET_KIB: u64 = 60_000 * 1000 / 1024;
/// When the RSS is read once more, after the connector has had time to finish giving back.
const SETTLED: Duration = Duration::from_secs(10);
/// How often the RSS is read while waiting for it to fall (a read of `/proc/<pid>/status`).
const RELEASE_SAMPLE: Duration = Duration::from_millis(100);

pub async fn run(options: &Options, stack: &mut Stack, report: &mut Report) -> anyhow::Result<()> {
    for (name, kib) in &stack.idle_rss {
        if name == "connector-b" {
            continue;
        }
        let service = if name.starts_with("connector") {
            "connector"
        } else {
            name.as_str()
        };
        report.target(
            SCENARIO,
            &format!("{service} idle RSS"),
            megabytes(*kib),
            "< 15 MB",
            *kib < IDLE_TARGET_KIB,
        );
    }

    let (connector, _) = stack.launcher.start_connector("connector-sockets")?;
    let mut connector = connector;
    wait_ready(connector.addr()).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = connector.rss_kib()?;
    report.info(
        SCENARIO,
        "fresh connector RSS, ready, no socket",
        megabytes(idle),
    );

    let (open_files, _) = processes::raise_open_file_limit();
    let cap = open_files.saturating_sub(FD_RESERVE) as usize;
    let mut steps: Vec<usize> = options.socket_steps.iter().map(|&s| s.min(cap)).collect();
    steps.sort_unstable();
    steps.dedup();
    if options.socket_steps.iter().any(|&s| s > cap) {
        report.info(
            SCENARIO,
            "socket count capped",
            format!(
                "at {} by the open-file limit {open_files} (ulimit -Hn; each socket is a \
                 descriptor in the connector)",
                thousands(cap as u64)
            ),
        );
    }
    let per_holder = PER_HOLDER.min(cap).max(1);
    let monitor = StatusMonitor::start(connector.addr());
    let token = stack.launcher.token();
    let mut holders: Vec<SocketHolder> = Vec::new();
    let mut opened = 0;
    let result: anyhow::Result<()> = async {
        for (i, &step) in steps.iter().enumerate() {
            let ramp_started = std::time::Instant::now();
            while opened < step {
                let count = (step - opened).min(per_holder);
                let spec = HolderSpec {
                    server: connector.addr(),
                    run_id: stack.run_id.clone(),
                    label: "idle".into(),
                    first: opened,
                    count,
                    concurrency: 256,
                    max_hold: Duration::from_secs(1_800),
                };
                let mut holder = SocketHolder::start(&spec, &token)?;
                holder.ready(HOLDER_TIMEOUT).await?;
                holders.push(holder);
                opened += count;
            }
            let ramp = ramp_started.elapsed();
            tokio::time::sleep(Duration::from_secs(1)).await;
            for holder in &mut holders {
                holder.check().await?;
            }
            connector.ensure_running()?;
            let rss = connector.rss_kib()?;
            let per_socket = (rss.saturating_sub(idle) * 1024) as f64 / step as f64;
            let sockets = thousands(step as u64);
            report.info(
                SCENARIO,
                &format!("connector RSS, {sockets} joined sockets"),
                format!(
                    "{} (opened and joined in {:.1} s)",
                    megabytes(rss),
                    ramp.as_secs_f64()
                ),
            );
            let per_socket_text = format!("{:.1} KiB", per_socket / 1024.0);
            if i + 1 == steps.len() {
                report.target(
                    SCENARIO,
                    &format!("connector RSS per socket at {sockets}"),
                    per_socket_text,
                    "< 20 KiB",
                    per_socket < PER_SOCKET_TARGET_BYTES,
                );
            } else {
                report.info(
                    SCENARIO,
                    &format!("connector RSS per socket at {sockets}"),
                    per_socket_text,
                );
            }
            let status = status_monitor::probe(connector.addr(), 20).await?;
            report.info(
                SCENARIO,
                &format!("GET /status with {sockets} sockets (20 probes)"),
                status.to_string(),
            );
            let holder_kib: u64 = holders
                .iter()
                .filter_map(|h| h.pid())
                .filter_map(|pid| processes::rss_kib(pid).ok())
                .sum();
            report.info(
                SCENARIO,
                &format!("load-generator RSS, {sockets} client sockets"),
                megabytes(holder_kib),
            );
        }
        Ok(())
    }
    .await;
    let probes = monitor.stop().await?;
    // `/status` keeps being probed while the crowd leaves and the connector gives memory back:
    // trimming holds the allocator's locks, and this is where it would show.
    let leaving = StatusMonitor::start(connector.addr());
    for holder in holders {
        holder.stop().await;
    }
    if let Err(e) = result {
        let _ = leaving.stop().await;
        return Err(e);
    }
    report.check(
        SCENARIO,
        "GET /status every 50 ms through ramp and hold",
        probes.describe(),
        probes.all_answered(),
    );
    // Every holder has exited, so the last client socket is closed now (the connector may still
    // be tearing sockets down). From here the RSS must fall below the target within the window.
    let closed_at = std::time::Instant::now();
    connector.ensure_running()?;
    report.info(
        SCENARIO,
        "connector RSS when the last socket closed",
        megabytes(connector.rss_kib()?),
    );
    // The RSS 10 s after the closing and the `/status` probes of those 10 s are taken beside the
    // release wait, so the probes cover the same window whether or not memory goes back.
    // The smoke run holds a few hundred sockets and checks only that the rows appear.
    let settle = if options.smoke {
        Duration::from_secs(1)
    } else {
        SETTLED
    };
    let settled = async {
        tokio::time::sleep_until((closed_at + settle).into()).await;
        let rss = connector.rss_kib();
        (rss, leaving.stop().await)
    };
    let (release, (settled_rss, leaving)) =
        tokio::join!(wait_for_release(&connector, closed_at), settled);
    let (released, released_in) = release?;
    report.target(
        SCENARIO,
        "connector RSS after the crowd left",
        match released {
            Release::Below(kib) => format!(
                "{} after {:.1} s",
                megabytes(kib),
                released_in.as_secs_f64()
            ),
            Release::Stuck(kib) => format!(
                "{} after {:.0} s (lowest seen)",
                megabytes(kib),
                RELEASE_WINDOW.as_secs_f64()
            ),
        },
        "< 60 MB within 30 s",
        matches!(released, Release::Below(_)),
    );
    connector.ensure_running()?;
    report.info(
        SCENARIO,
        &format!(
            "connector RSS {} s after the last socket closed",
            settle.as_secs()
        ),
        megabytes(settled_rss?),
    );
    let leaving = leaving?;
    report.check(
        SCENARIO,
        &format!(
            "GET /status every 50 ms from the closing to {} s after",
            settle.as_secs()
        ),
        leaving.describe(),
        leaving.all_answered(),
    );

    // Leak check: the same number of new sockets again. Freed memory the allocator kept is
    // reused, so the RSS stays put; a leak would add the per-socket cost once more.
    let again = steps.first().copied().unwrap_or(0).min(per_holder);
    if again > 0 {
        let spec = HolderSpec {
            server: connector.addr(),
            run_id: stack.run_id.clone(),
            label: "idle-again".into(),
            first: 0,
            count: again,
            concurrency: 256,
            max_hold: Duration::from_secs(600),
        };
        let mut holder = SocketHolder::start(&spec, &token)?;
        let ready = holder.ready(HOLDER_TIMEOUT).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = connector.rss_kib();
        holder.stop().await;
        ready?;
        report.info(
            SCENARIO,
            &format!(
                "connector RSS with {} new sockets after that (reuse check)",
                thousands(again as u64)
            ),
            megabytes(rss?),
        );
    }
    Ok(())
}

/// What the RSS did in the window after the last socket closed.
enum Release {
    /// Fell below the target (the first sample below it).
    Below(u64),
    /// Never did; the lowest sample.
    Stuck(u64),
}

/// Samples the connector's RSS until it is below the target or the window after `closed_at` has
/// passed; returns the outcome and when it was decided, counted from `closed_at`. Sampling, not
/// synchronisation: nothing in the connector announces that memory went back.
async fn wait_for_release(
    connector: &processes::Process,
    started: std::time::Instant,
) -> anyhow::Result<(Release, Duration)> {
    let mut lowest = u64::MAX;
    loop {
        let kib = connector.rss_kib()?;
        if kib < RELEASE_TARGET_KIB {
            return Ok((Release::Below(kib), started.elapsed()));
        }
        lowest = lowest.min(kib);
        if started.elapsed() >= RELEASE_WINDOW {
            return Ok((Release::Stuck(lowest), started.elapsed()));
        }
        tokio::time::sleep(RELEASE_SAMPLE).await;
    }
}
