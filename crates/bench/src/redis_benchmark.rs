//! The raw ceiling beside the push throughput: `redis-benchmark` sending `PUBLISH` of an
//! event-sized payload at the same concurrency, against the same Redis.

use std::time::Duration;

use anyhow::{bail, Context};

/// What `redis-benchmark --csv` reports for one command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceiling {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Runs `redis-benchmark -c <clients> -n <requests> --csv PUBLISH <channel> <payload>`.
pub async fn publish_ceiling(
    port: u16,
    clients: usize,
    requests: usize,
    payload_bytes: usize,
) -> anyhow::Result<Ceiling> {
    let payload = "x".repeat(payload_bytes);
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-c", &clients.to_string(), "-n", &requests.to_string()])
            .args(["--csv", "PUBLISH", "bench:ceiling", &payload])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("redis-benchmark timed out")?
    .context("run redis-benchmark (installed with redis-server)")?;
    if !output.status.success() {
        bail!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_csv(&String::from_utf8_lossy(&output.stdout))
}

/// Reads the last CSV line: `"test","rps","avg","min","p50","p95","p99","max"`. The test name
/// contains the whole command, so fields are taken from the right.
fn parse_csv(output: &str) -> anyhow::Result<Ceiling> {
    let line = output
        .lines()
        .rev()
        .find(|l| l.starts_with('"') && !l.starts_with("\"test\""))
        .context("no result line in redis-benchmark output")?;
    let fields: Vec<f64> = line
        .rsplitn(8, "\",\"")
        .take(7)
        .map(|f| f.trim_matches('"').parse::<f64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("unreadable redis-benchmark line {line:?}"))?;
    // Right to left: max, p99, p95, p50, min, avg, rps.
    Ok(Ceiling {
        requests_per_second: fields[6],
        p50_ms: fields[3],
        p99_ms: fields[1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_csv_line() {
        let output = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                      \"PUBLISH bench:ceiling xxx\",\"65359.48\",\"0.700\",\"0.100\",\"0.647\",\"1.100\",\"1.500\",\"3.000\"\n";
        let ceiling = parse_csv(output).unwrap();
        assert_eq!(
            ceiling,
            Ceiling {
                requests_per_second: 65359.48,
                p50_ms: 0.647,
                p99_ms: 1.5
            }
        );
    }
}
