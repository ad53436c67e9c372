//! The agent's own speed: a running estimate of the fuel per second its
//! tasks burn, learned from completed runs, read by the offer policy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::offer_policy::DEFAULT_FUEL_PER_SECOND;

/// Weight of the newest run in the estimate: recent runs count most, yet
/// one odd run (a machine busy with other work) does not swing it much.
const NEWEST_WEIGHT: f64 = 0.2;

/// Runs shorter than this are not timed: their wall time is mostly start-up
/// (instantiation, WASI set-up), not fuel burnt, and would make the agent
/// look slower than it is.
const MIN_TIMED_RUN: Duration = Duration::from_millis(5);

/// Fuel per second, shared by the workers (which time their runs) and the
/// work loop (which hands it to the offer policy). Lock-free.
#[derive(Debug)]
pub(crate) struct SpeedEstimate {
    /// The estimate's `f64` bits; 0 bits (0.0) until a run was timed.
    bits: AtomicU64,
}

impl Default for SpeedEstimate {
    fn default() -> Self {
        SpeedEstimate {
            bits: AtomicU64::new(0),
        }
    }
}

impl SpeedEstimate {
    /// The estimate now: [`DEFAULT_FUEL_PER_SECOND`] before any timed run.
    pub(crate) fn fuel_per_second(&self) -> f64 {
        let estimate = f64::from_bits(self.bits.load(Ordering::Relaxed));
        if estimate > 0.0 {
            estimate
        } else {
            DEFAULT_FUEL_PER_SECOND
        }
    }

    /// Learns from a completed run that burnt `fuel` in `wall_time`. The
    /// first timed run replaces the default; later ones move the estimate
    /// towards theirs. Runs too short to time, or without fuel, are ignored.
    pub(crate) fn record(&self, fuel: u64, wall_time: Duration) {
        if fuel == 0 || wall_time < MIN_TIMED_RUN {
            return;
        }
        let measured = fuel as f64 / wall_time.as_secs_f64();
        if !measured.is_finite() || measured <= 0.0 {
            return;
        }
        // Concurrent workers: retry on a lost race so no run is dropped.
        let _ = self
            .bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let current = f64::from_bits(bits);
                let next = if current > 0.0 {
                    current + NEWEST_WEIGHT * (measured - current)
                } else {
                    measured
                };
                Some(next.to_bits())
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_until_a_run_is_timed() {
        let speed = SpeedEstimate::default();
        assert_eq!(speed.fuel_per_second(), DEFAULT_FUEL_PER_SECOND);
        speed.record(0, Duration::from_secs(1));
        speed.record(1_000, Duration::from_millis(1));
        assert_eq!(speed.fuel_per_second(), DEFAULT_FUEL_PER_SECOND);

        speed.record(200_000_000, Duration::from_secs(1));
        assert_eq!(speed.fuel_per_second(), 2e8);
    }

    #[test]
    fn later_runs_move_the_estimate() {
        let speed = SpeedEstimate::default();
        speed.record(1_000_000_000, Duration::from_secs(1));
        speed.record(2_000_000_000, Duration::from_secs(1));
        let estimate = speed.fuel_per_second();
        assert!((estimate - 1.2e9).abs() < 1.0, "{estimate}");
        for _ in 0..100 {
            speed.record(500_000_000, Duration::from_secs(1));
        }
        let estimate = speed.fuel_per_second();
        assert!((estimate - 5e8).abs() < 1e3, "{estimate}");
    }
}
