//! `agent-assist-bench`: measures the Agent Assist backend as deployed, on one machine.
//!
//! It starts `redis-server`, `cloud-pubsub-interceptor` and two `ui-connector`s as real
//! processes on loopback ([`stack`]) (and, for the pull scenario, the fake Pub/Sub service in
//! its own process with a second interceptor pulling from it), drives them with its own load generators (keep-alive
//! HTTP/1.1 pushes, [`http_client`]; the minimal Socket.IO client of `socketio-test-client`) and
//! prints a Markdown table ([`report`]). The scenarios are in [`scenarios`]; `--smoke` runs them
//! all with tiny loads and fails unless everything is delivered. See BENCHMARKS.md.
//!
//! The load generators share the machine's cores with the services they measure.

mod http_client;
mod latency;
mod options;
mod payload;
mod processes;
mod push_auth;
mod redis_benchmark;
mod report;
mod scenarios;
mod socket_holder;
mod socket_pool;
mod stack;
mod status_monitor;
mod tokens;

use std::process::ExitCode;

use options::{Options, Scenario, USAGE};
use report::Report;
use scenarios::push_throughput::PushSummary;
use stack::{Bus, Stack};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(socket_holder::SUBCOMMAND) {
        return socket_holder::main(&args[1..]);
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(options))
}

async fn run(options: Options) -> ExitCode {
    let (soft, hard) = processes::raise_open_file_limit();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "agent-assist-bench{}: {cores} cores, load average {}, open files {soft} (hard {hard}), \
         binaries from {}",
        if options.smoke { " --smoke" } else { "" },
        load_average(),
        options.bin_dir.display()
    );
    if !options.service_env.is_empty() {
        let settings: Vec<String> = options
            .service_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("service settings: {}", settings.join(" "));
    }
    let mut report = Report::new(options.smoke);
    let buses = Bus::for_run(&options);
    let mut pushes = Vec::new();
    for &bus in &buses {
        if buses.len() > 1 {
            report.set_section(Some(bus.label()));
        }
        match run_on(&options, bus, &mut report).await {
            Ok(push) => pushes.extend(push),
            // A failed row, so that what the buses before it measured is still printed.
            Err(e) => {
                report.error("starting the services", &e);
                break;
            }
        }
    }
    report.set_section(None);
    if let [standalone, cluster] = pushes.as_slice() {
        scenarios::push_throughput::compare_buses(&mut report, standalone, cluster);
    }
    println!("load average at the end: {}\n", load_average());
    println!("{}", report.markdown());
    if report.failed() {
        println!("FAILED: something was not delivered, answered or completed (see the table)");
        return ExitCode::FAILURE;
    }
    match report.missed() {
        0 => println!("every scenario completed and delivered everything"),
        n => println!("every scenario completed and delivered everything; {n} target(s) missed"),
    }
    ExitCode::SUCCESS
}

/// Starts a stack on `bus`, runs the chosen scenarios on it and stops it; returns what the
/// push scenario measured, if it ran. Fails only when the stack cannot start: a scenario's
/// failure is a row of the report.
async fn run_on(
    options: &Options,
    bus: Bus,
    report: &mut Report,
) -> anyhow::Result<Option<PushSummary>> {
    let mut stack = Stack::start(options, bus).await?;
    let mut push = None;
    for scenario in Scenario::ALL {
        if !options.runs(scenario) {
            continue;
        }
        let (name, result) = match scenario {
            Scenario::Push => (
                "1 push throughput",
                scenarios::push_throughput::run(options, &mut stack, report)
                    .await
                    .map(|summary| push = Some(summary)),
            ),
            Scenario::Pull => (
                "1b pull throughput",
                scenarios::pull_throughput::run(
                    options,
                    &mut stack,
                    report,
                    push.as_ref().map(|p| p.rate),
                )
                .await,
            ),
            Scenario::EndToEnd => (
                "2 end-to-end",
                scenarios::end_to_end::run(options, &mut stack, report).await,
            ),
            Scenario::FanOut => (
                "3 fan-out",
                scenarios::fan_out::run(options, &mut stack, report).await,
            ),
            Scenario::Connections => (
                "4 connections and memory",
                scenarios::connections::run(options, &mut stack, report).await,
            ),
            Scenario::ColdStart => (
                "5 cold start",
                scenarios::cold_start::run(options, &mut stack, report).await,
            ),
        };
        if let Err(e) = result {
            report.error(name, &e);
        }
        if let Err(e) = stack.ensure_running() {
            report.error(name, &e.context("a service died"));
            break;
        }
    }
    if report.failed() {
        stack.keep_logs();
    }
    Ok(push)
}

/// The 1, 5 and 15 minute load averages from /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
