//! Runs `agent-assist-bench --smoke` against the services built alongside it (debug builds
//! under `cargo test`): every scenario with tiny loads, failing unless each one completes and
//! delivers every event. Needs `redis-server` and `redis-benchmark` (`.ci/run` installs them).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole smoke run takes a few seconds; this only stops a hung run.
const TIMEOUT: Duration = Duration::from_secs(240);

/// Builds the two services into the directory the bench binary is in (a no-op when they are
/// fresh; `cargo test -p agent-assist-bench` alone would not build them).
fn build_services(bin_dir: &Path) {
    let target_dir = bin_dir.parent().expect("target directory");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "-p", "ui-connector", "--bin", "ui-connector"])
        .args([
            "-p",
            "cloud-pubsub-interceptor",
            "--bin",
            "cloud-pubsub-interceptor",
        ])
        .arg("--target-dir")
        .arg(target_dir);
    if bin_dir.file_name().is_some_and(|name| name == "release") {
        cargo.arg("--release");
    }
    let status = cargo.status().expect("run cargo build");
    assert!(status.success(), "building the services failed");
}

/// Runs `agent-assist-bench --smoke` with `args` against the services beside it; its output
/// once it has exited successfully and printed its completion line.
fn smoke_run(args: &[&str]) -> String {
    let bench = Path::new(env!("CARGO_BIN_EXE_agent-assist-bench"));
    let bin_dir = bench.parent().expect("binary directory");
    build_services(bin_dir);

    let log = std::env::temp_dir().join(format!(
        "agent-assist-bench-smoke-{}-{}.log",
        std::process::id(),
        args.join("_").replace(['-', ','], "")
    ));
    let mut child = Command::new(bench)
        .arg("--smoke")
        .args(args)
        .arg("--bin-dir")
        .arg(bin_dir)
        .stdout(std::fs::File::create(&log).expect("create the output file"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start agent-assist-bench");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for agent-assist-bench") {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the smoke run did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    println!("{output}");
    assert!(
        status.success(),
        "the smoke run failed ({status}), see the table above"
    );
    assert!(
        output.contains("every scenario completed and delivered everything"),
        "no completion line in the output"
    );
    output
}

#[test]
fn smoke_run_completes_and_delivers_everything() {
    let output = smoke_run(&[]);
    for scenario in [
        "1 push throughput",
        "1b pull throughput",
        "2 end-to-end",
        "3 fan-out",
        "4 connections",
        "5 cold start",
    ] {
        assert!(output.contains(scenario), "{scenario} did not report");
    }
}

/// Issue 15: the push and end-to-end scenarios on a 3-primary cluster, beside standalone in
/// the same run, with Redis CPU per event per shard.
#[test]
fn a_cluster_run_measures_standalone_and_the_cluster_side_by_side() {
    let output = smoke_run(&["--redis-cluster", "--only", "push,e2e"]);
    for row in [
        "| 1 push throughput (standalone) ",
        "| 1 push throughput (cluster) ",
        "| 1 push throughput, standalone / cluster | pushes/s ",
        "| 1 push throughput, standalone / cluster | Redis CPU per event ",
    ] {
        assert!(output.contains(row), "no row starting {row:?}");
    }
    for bus in ["(standalone)", "(cluster)"] {
        assert!(
            output
                .lines()
                .any(|l| l.starts_with("| 2 end-to-end, K=") && l.contains(bus)),
            "no end-to-end row {bus}"
        );
    }
    let per_shard = output
        .lines()
        .find(|l| l.contains("(cluster)") && l.contains("Redis CPU per event per shard"))
        .expect("the cluster's per-shard row");
    assert_eq!(
        per_shard.matches(" µs (").count(),
        3,
        "one figure per primary: {per_shard}"
    );
}
