//! Scenario 5: cold start, from just before `exec` to the first `200` on `GET /status`
//! (polled every 0.2 ms on fresh connections), for each binary, median of `--cold-starts` runs.
//! The services are started exactly as in the other scenarios (same Redis, same settings).

use std::time::Duration;

use crate::latency::{median, Ms};
use crate::options::Options;
use crate::report::Report;
use crate::stack::Stack;

const SCENARIO: &str = "5 cold start";
const TARGET: Duration = Duration::from_millis(50);

pub async fn run(options: &Options, stack: &mut Stack, report: &mut Report) -> anyhow::Result<()> {
    for service in ["interceptor", "connector"] {
        let mut times = Vec::with_capacity(options.cold_starts);
        for run in 0..options.cold_starts {
            let name = format!("cold-{service}-{run}");
            let (process, time) = match service {
                "interceptor" => stack.launcher.start_interceptor(&name)?,
                _ => stack.launcher.start_connector(&name)?,
            };
            times.push(time);
            drop(process);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let all = times
            .iter()
            .map(|t| format!("{:.1}", t.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ");
        let median = median(&times);
        report.target(
            SCENARIO,
            &format!(
                "{service}: exec to first /status (median of {})",
                times.len()
            ),
            format!("{} (runs, ms: {all})", Ms(median)),
            "< 50 ms",
            median < TARGET,
        );
    }
    Ok(())
}
