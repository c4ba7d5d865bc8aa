//! The scenarios. Each drives the [`Stack`](crate::stack::Stack) and adds its rows to the
//! [`Report`](crate::report::Report); a scenario that cannot complete returns an error, which
//! the report shows as a failed row, and the next scenario still runs.

pub mod cold_start;
pub mod connections;
pub mod end_to_end;
pub mod fan_out;
pub mod pull_throughput;
pub mod push_throughput;

use std::time::Duration;

/// Waits (bounded by `timeout`) until `done` holds, checking every millisecond. Delivery times
/// come from the receivers' own timestamps, so the polling period does not affect them.
pub async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// KiB as MB (10^6 bytes) with one decimal.
pub fn megabytes(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 * 1024.0 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(megabytes(10_000), "10.2 MB");
    }
}
