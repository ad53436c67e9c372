//! The credits the demo grants its issuer before submitting: an upper bound
//! of what the workload can cost, so the broker's escrow never refuses it.

use anyhow::bail;
use wasmgrid_runtime::Limits;

use crate::credits::MICRO_PER_CREDIT;

/// Share added on top of the runs' cost for the broker's fee.
const FEE_ALLOWANCE: f64 = 0.2;

/// What the workload may cost at most and what is granted for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Paid runs the bound counts: every replica of every task (a run that
    /// fails or disagrees is not paid, so retries cost nothing).
    pub runs: u64,
    /// The most one run can be paid, in credits: its whole fuel limit at
    /// the fuel price, plus its whole memory cap at the memory price for as
    /// many virtual seconds as that fuel lasts.
    pub per_run_credits: f64,
    /// The grant: runs × per-run cost plus [`FEE_ALLOWANCE`], rounded up to
    /// whole credits, in micro-credits.
    pub grant_micro: i64,
}

/// The budget of `tasks` tasks with `replicas` replicas each under
/// `limits` at these prices.
pub fn budget(
    tasks: u32,
    replicas: u32,
    limits: &Limits,
    credits_per_fuel: f64,
    credits_per_mib_second: f64,
) -> anyhow::Result<Budget> {
    let runs = u64::from(tasks) * u64::from(replicas);
    #[expect(
        clippy::cast_precision_loss,
        reason = "an estimate rounded up to whole credits and padded by a fifth"
    )]
    let (fuel, mib, runs_f) = (
        limits.fuel as f64,
        limits.memory_bytes as f64 / f64::from(1u32 << 20),
        runs as f64,
    );
    let virtual_seconds = fuel * 1e-9;
    let per_run_credits = fuel * credits_per_fuel + mib * virtual_seconds * credits_per_mib_second;
    let credits = (runs_f * per_run_credits * (1.0 + FEE_ALLOWANCE)).ceil();
    #[expect(
        clippy::cast_precision_loss,
        reason = "only the order of magnitude of the limit matters"
    )]
    let most = (i64::MAX / MICRO_PER_CREDIT) as f64;
    if !credits.is_finite() || credits > most {
        bail!("the workload could cost more credits than a balance can hold ({credits:e})");
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "credits is a whole number in 0..=i64::MAX / 10^6, checked above"
    )]
    let grant_micro = (credits.max(1.0) as i64).saturating_mul(MICRO_PER_CREDIT);
    Ok(Budget {
        runs,
        per_run_credits,
        grant_micro,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grant_covers_every_run_at_its_limits_plus_the_fee() {
        let limits = Limits {
            fuel: 10_000_000_000,
            ..Limits::default()
        };
        let budget = budget(100, 2, &limits, 1e-9, 0.0).expect("budget");
        assert_eq!(budget.runs, 200);
        assert!((budget.per_run_credits - 10.0).abs() < 1e-9);
        assert_eq!(budget.grant_micro, 2_400 * MICRO_PER_CREDIT);
    }

    #[test]
    fn memory_is_priced_for_as_long_as_the_fuel_lasts() {
        let limits = Limits {
            fuel: 2_000_000_000,
            memory_bytes: 64 << 20,
            ..Limits::default()
        };
        // 2 virtual seconds × 64 MiB × 0.01 = 1.28 credits per run, no fuel price.
        let budget = budget(1, 1, &limits, 0.0, 0.01).expect("budget");
        assert!((budget.per_run_credits - 1.28).abs() < 1e-9);
        assert_eq!(budget.grant_micro, 2 * MICRO_PER_CREDIT);
    }

    #[test]
    fn an_unpayable_workload_is_an_error_and_a_free_one_still_gets_a_credit() {
        let limits = Limits {
            fuel: u64::MAX / 2,
            ..Limits::default()
        };
        assert!(budget(1_000_000, 1, &limits, 1.0, 0.0).is_err());
        let free = budget(10, 1, &Limits::default(), 0.0, 0.0).expect("budget");
        assert_eq!(free.grant_micro, MICRO_PER_CREDIT);
    }
}
