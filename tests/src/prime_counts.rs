//! π(n), the number of primes below n, for the limits the integration tests
//! submit as `primes` workloads (`Submission::primes`): the end value a
//! `sum-u64` reducer must return.

/// π(10⁶).
pub const PI_OF_1E6: u64 = 78_498;
/// π(10⁷).
pub const PI_OF_1E7: u64 = 664_579;
/// π(10⁸).
pub const PI_OF_1E8: u64 = 5_761_455;
/// π(10⁹), the answer of the demo workload.
pub const PI_OF_1E9: u64 = 50_847_534;
/// π(2·10⁹).
pub const PI_OF_2E9: u64 = 98_222_287;
