//! The demo's workload: π(limit), the number of primes below `limit`, as
//! ranges counted by the `primes` task and summed by the `sum-u64` reducer.

use std::time::Duration;

use wasmgrid_runtime::{Limits, MAX_FUEL};

/// Fuel budgeted per number of a range. `primes` (a segmented sieve) uses
/// about 19 per number near 10^9; five times that leaves room for larger
/// numbers without letting a broken task run for long.
const FUEL_PER_NUMBER: u64 = 100;

/// Least fuel per task, for ranges so small that start-up dominates.
const MIN_FUEL: u64 = 10_000_000_000;

/// π(10^k) for k = 0..=12, to check the demo's answer.
const PRIMES_BELOW_POWERS_OF_TEN: [u64; 13] = [
    0,
    4,
    25,
    168,
    1_229,
    9_592,
    78_498,
    664_579,
    5_761_455,
    50_847_534,
    455_052_511,
    4_118_054_813,
    37_607_912_018,
];

/// `tasks` ranges of (nearly) equal width covering `[0, limit)`, as the JSON
/// inputs of `primes`: `{"start":a,"end":b}`.
pub fn inputs(limit: u64, tasks: u32) -> Vec<Vec<u8>> {
    let bound = |i: u32| -> u64 {
        let bound = u128::from(limit) * u128::from(i) / u128::from(tasks);
        u64::try_from(bound).unwrap_or(limit)
    };
    (0..tasks)
        .map(|i| format!(r#"{{"start":{},"end":{}}}"#, bound(i), bound(i + 1)).into_bytes())
        .collect()
}

/// Limits generous enough for any range of `width` numbers, in fuel, memory
/// and wall time; the reducer runs under the same ones.
pub fn limits(width: u64) -> Limits {
    Limits {
        fuel: width
            .saturating_mul(FUEL_PER_NUMBER)
            .clamp(MIN_FUEL, MAX_FUEL),
        wall_time: Duration::from_secs(600),
        ..Limits::default()
    }
}

/// π(limit) when `limit` is a power of ten we know it for.
pub fn known_count(limit: u64) -> Option<(u32, u64)> {
    (0u32..)
        .zip(PRIMES_BELOW_POWERS_OF_TEN)
        .find(|(k, _)| 10u64.checked_pow(*k) == Some(limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_limit_without_gaps() {
        let inputs: Vec<String> = inputs(10, 3)
            .into_iter()
            .map(|input| String::from_utf8(input).expect("utf-8"))
            .collect();
        assert_eq!(
            inputs,
            [
                r#"{"start":0,"end":3}"#,
                r#"{"start":3,"end":6}"#,
                r#"{"start":6,"end":10}"#
            ]
        );
        assert_eq!(
            String::from_utf8(inputs_last(1_000_000_000, 100)).expect("utf-8"),
            r#"{"start":990000000,"end":1000000000}"#
        );
    }

    fn inputs_last(limit: u64, tasks: u32) -> Vec<u8> {
        inputs(limit, tasks).pop().expect("at least one task")
    }

    #[test]
    fn known_counts_are_found_for_powers_of_ten() {
        assert_eq!(known_count(1_000_000_000), Some((9, 50_847_534)));
        assert_eq!(known_count(1), Some((0, 0)));
        assert_eq!(known_count(999), None);
    }

    #[test]
    fn fuel_grows_with_the_range() {
        assert_eq!(limits(10).fuel, MIN_FUEL);
        assert_eq!(limits(1_000_000_000).fuel, 100_000_000_000);
        assert_eq!(limits(u64::MAX).fuel, MAX_FUEL);
    }
}
