//! Latency recording: an HDR histogram in microseconds and the summary the report prints.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies from 1 µs to 10 minutes, 3 significant digits.
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.record_ns(latency.as_nanos().min(u64::MAX as u128) as u64);
    }

    pub fn record_ns(&mut self, nanos: u64) {
        self.0.saturating_record((nanos / 1_000).max(1));
    }

    pub fn add(&mut self, other: &Latencies) {
        self.0
            .add(&other.0)
            .expect("histograms with the same bounds");
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn summary(&self) -> Summary {
        let at = |q: f64| Duration::from_micros(self.0.value_at_quantile(q));
        Summary {
            p50: at(0.5),
            p99: at(0.99),
            max: Duration::from_micros(self.0.max()),
        }
    }
}

/// Percentiles of a set of latencies.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {} / p99 {} / max {}",
            Ms(self.p50),
            Ms(self.p99),
            Ms(self.max)
        )
    }
}

/// A duration printed in milliseconds with a precision that suits its size.
pub struct Ms(pub Duration);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_secs_f64() * 1_000.0;
        if ms < 10.0 {
            write!(f, "{ms:.2} ms")
        } else if ms < 1_000.0 {
            write!(f, "{ms:.1} ms")
        } else {
            write!(f, "{ms:.0} ms")
        }
    }
}

/// The median of a few measurements (cold starts, fan-out rounds).
pub fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_median() {
        let mut latencies = Latencies::default();
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        let summary = latencies.summary();
        assert_eq!(latencies.count(), 100);
        assert!(summary.p50.as_millis() == 50, "{summary}");
        assert!(summary.p99.as_millis() == 99, "{summary}");
        assert_eq!(summary.max.as_millis(), 100);
        let d = Duration::from_millis;
        assert_eq!(median(&[d(3), d(1), d(2)]), d(2));
        assert_eq!(
            median(&[d(4), d(1), d(2), d(3)]),
            Duration::from_micros(2_500)
        );
    }
}
