//! [`Pricing`]: what a run of a workload's task costs, in integer
//! micro-credits, and the escrow that covers the worst case.
//!
//! Rates arrive as decimal numbers (credits per unit of fuel, per MiB-second)
//! and are turned once into integer pico-credits, so every payment is exact
//! integer arithmetic: the same report is paid the same on every broker and
//! after every restart. Memory-time uses the task's virtual clock (1 ns per
//! unit of fuel), so replicas agree on it and the bill is verifiable.

use crate::error::{BrokerError, BrokerResult};

/// Micro-credits per credit.
pub const MICRO_PER_CREDIT: i64 = 1_000_000;
/// Pico-credits per credit: the resolution of rates.
const PICO_PER_CREDIT: f64 = 1e12;
/// Pico-credits per micro-credit.
const PICO_PER_MICRO: u128 = 1_000_000;
/// Bytes per MiB.
const MIB: u128 = 1 << 20;
/// Units of fuel per virtual second (1 ns each).
const FUEL_PER_SECOND: u128 = 1_000_000_000;
/// Basis points in a whole.
pub const BASIS_POINTS: i64 = 10_000;

/// A workload's prices, as integers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pricing {
    /// Pico-credits per unit of fuel.
    pub pico_per_fuel: u64,
    /// Pico-credits per MiB-second of peak memory.
    pub pico_per_mib_second: u64,
    /// The broker's fee on what agents are paid, in basis points.
    pub fee_basis_points: u32,
}

impl Pricing {
    /// Prices from the issuer's decimal rates; refuses rates that are
    /// negative, not finite, too fine to represent (below 1e-12) or absurdly
    /// high.
    pub fn from_rates(
        credits_per_fuel: f64,
        credits_per_mib_second: f64,
        fee_basis_points: u32,
    ) -> BrokerResult<Pricing> {
        Ok(Pricing {
            pico_per_fuel: to_pico(credits_per_fuel, "credits per fuel")?,
            pico_per_mib_second: to_pico(credits_per_mib_second, "credits per MiB-second")?,
            fee_basis_points,
        })
    }

    /// True when memory is priced: replicas must then also agree on peak
    /// memory.
    pub fn prices_memory(&self) -> bool {
        self.pico_per_mib_second > 0
    }

    /// What a run that consumed `fuel` with `peak_memory` bytes earns, in
    /// micro-credits (rounded down), or `None` on overflow.
    pub fn run_pay(&self, fuel: u64, peak_memory: u64) -> Option<i64> {
        let fuel_pico = u128::from(fuel).checked_mul(u128::from(self.pico_per_fuel))?;
        // MiB × s × pico/(MiB·s) = bytes × fuel × pico / (MiB × fuel/s).
        let memory_pico = u128::from(peak_memory)
            .checked_mul(u128::from(fuel))?
            .checked_mul(u128::from(self.pico_per_mib_second))?
            / (MIB * FUEL_PER_SECOND);
        let micro = fuel_pico.checked_add(memory_pico)? / PICO_PER_MICRO;
        i64::try_from(micro).ok()
    }

    /// The broker's fee on `paid` micro-credits (rounded down).
    pub fn fee(&self, paid: i64) -> i64 {
        let fee = i128::from(paid) * i128::from(self.fee_basis_points) / i128::from(BASIS_POINTS);
        i64::try_from(fee).unwrap_or(i64::MAX)
    }

    /// The escrow a workload needs: every task paid `paid_runs` times at its
    /// limits, plus the fee on that. Refuses a workload whose worst case
    /// does not fit the ledger's integers.
    pub fn escrow(
        &self,
        tasks: u32,
        paid_runs: u32,
        max_fuel: u64,
        max_memory: u64,
    ) -> BrokerResult<i64> {
        let too_big = || {
            BrokerError::invalid(
                "the workload's worst-case cost does not fit the ledger: lower the rates or the limits",
            )
        };
        let per_run = self.run_pay(max_fuel, max_memory).ok_or_else(too_big)?;
        let paid = i64::from(tasks)
            .checked_mul(i64::from(paid_runs))
            .and_then(|runs| runs.checked_mul(per_run))
            .ok_or_else(too_big)?;
        // The fee rounds down, so paid + fee(paid) bounds every smaller sum.
        paid.checked_add(self.fee(paid)).ok_or_else(too_big)
    }
}

/// A decimal rate in integer pico-credits.
fn to_pico(rate: f64, what: &str) -> BrokerResult<u64> {
    if !rate.is_finite() || rate < 0.0 {
        return Err(BrokerError::invalid(format!(
            "{what} must be a finite number ≥ 0"
        )));
    }
    let pico = (rate * PICO_PER_CREDIT).round();
    if rate > 0.0 && pico < 1.0 {
        return Err(BrokerError::invalid(format!(
            "{what} must be 0 or at least 1e-12"
        )));
    }
    if pico >= u64::MAX as f64 {
        return Err(BrokerError::invalid(format!("{what} is too high")));
    }
    Ok(pico as u64)
}

/// Micro-credits as a credit amount, e.g. `12.500000`.
pub fn credits_text(micro: i64) -> String {
    let sign = if micro < 0 { "-" } else { "" };
    let abs = micro.unsigned_abs();
    let per = MICRO_PER_CREDIT as u64;
    format!("{sign}{}.{:06}", abs / per, abs % per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuel_is_paid_exactly() {
        // 1e-9 credits per fuel: 1 credit per 10^9 fuel.
        let pricing = Pricing::from_rates(1e-9, 0.0, 0).expect("valid");
        assert_eq!(pricing.pico_per_fuel, 1000);
        assert_eq!(pricing.run_pay(1_000_000_000, 0), Some(MICRO_PER_CREDIT));
        assert_eq!(pricing.run_pay(1_234_567, 1 << 30), Some(1234));
        assert_eq!(pricing.run_pay(0, 0), Some(0));
    }

    #[test]
    fn memory_time_uses_the_virtual_clock() {
        // 1 credit per MiB-second: 64 MiB for 2·10^9 fuel (2 s) = 128 credits.
        let pricing = Pricing::from_rates(0.0, 1.0, 0).expect("valid");
        assert_eq!(
            pricing.run_pay(2_000_000_000, 64 << 20),
            Some(128 * MICRO_PER_CREDIT)
        );
        assert!(pricing.prices_memory());
    }

    #[test]
    fn escrow_covers_every_run_and_the_fee() {
        let pricing = Pricing::from_rates(1e-9, 0.0, 500).expect("valid");
        // 10 tasks × 2 runs × 1 credit, plus 5 %.
        let escrow = pricing.escrow(10, 2, 1_000_000_000, 0).expect("fits");
        assert_eq!(escrow, 21 * MICRO_PER_CREDIT);
        assert_eq!(pricing.fee(20 * MICRO_PER_CREDIT), MICRO_PER_CREDIT);
        let expensive = Pricing::from_rates(1e6, 0.0, 0).expect("valid");
        assert!(expensive.escrow(u32::MAX, 16, u64::MAX / 2, 0).is_err());
    }

    #[test]
    fn bad_rates_are_refused() {
        assert!(Pricing::from_rates(-1.0, 0.0, 0).is_err());
        assert!(Pricing::from_rates(f64::NAN, 0.0, 0).is_err());
        assert!(Pricing::from_rates(1e-15, 0.0, 0).is_err());
        assert!(Pricing::from_rates(0.0, f64::INFINITY, 0).is_err());
        assert!(Pricing::from_rates(1e30, 0.0, 0).is_err());
    }

    #[test]
    fn credits_are_printed_with_six_decimals() {
        assert_eq!(credits_text(12_500_000), "12.500000");
        assert_eq!(credits_text(-1), "-0.000001");
    }
}
