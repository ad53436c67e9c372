//! Summaries of timing samples: median, p99 and friends, and how durations
//! and ratios are printed.

use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

/// The distribution of one measured quantity.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// How many samples were taken.
    pub samples: usize,
    pub min: Duration,
    /// Middle sample; the mean of the two middle ones for an even count.
    pub median: Duration,
    /// Nearest-rank 99th percentile: the sample that 99 % of samples do not
    /// exceed. Equal to `max` below 100 samples.
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Summary {
    /// Summarises `samples`; fails when there are none.
    pub fn of(samples: &[Duration]) -> Result<Self> {
        if samples.is_empty() {
            bail!("no samples to summarise");
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        };
        let total: Duration = sorted.iter().sum();
        Ok(Summary {
            samples: n,
            min: sorted[0],
            median,
            p99: nearest_rank(&sorted, 0.99),
            max: sorted[n - 1],
            mean: total / u32::try_from(n).unwrap_or(u32::MAX),
        })
    }

    /// The summary as JSON, durations in nanoseconds.
    pub fn to_json(self) -> Value {
        json!({
            "samples": self.samples,
            "min_ns": nanos(self.min),
            "median_ns": nanos(self.median),
            "p99_ns": nanos(self.p99),
            "max_ns": nanos(self.max),
            "mean_ns": nanos(self.mean),
        })
    }
}

/// The sample at quantile `q` of `sorted` (non-empty) by nearest rank.
fn nearest_rank(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `numerator / denominator` as a float, for slowdown ratios.
pub fn ratio(numerator: Duration, denominator: Duration) -> f64 {
    numerator.as_secs_f64() / denominator.as_secs_f64()
}

/// A duration as an integer number of nanoseconds, for JSON.
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A duration with a unit that keeps three or four significant digits.
pub fn human(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds >= 1.0 {
        format!("{seconds:.3} s")
    } else if seconds >= 1e-3 {
        format!("{:.2} ms", seconds * 1e3)
    } else if seconds >= 1e-6 {
        format!("{:.1} µs", seconds * 1e6)
    } else {
        format!("{} ns", duration.as_nanos())
    }
}

/// A duration in seconds, roughly: "45 s", "3.2 min", "2.5 h".
pub fn minutes(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 2.0 * 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}
