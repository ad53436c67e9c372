//! The performance targets the figures are checked against, and why each
//! has its value.

/// Largest acceptable slowdown of a metered wasm task against the same
/// kernel compiled natively. Volunteers donate CPU time; past ~30 % the
/// sandbox would waste more of it than it protects.
pub const MAX_FUEL_SLOWDOWN: f64 = 1.30;

/// Largest acceptable median sandbox start (instantiate and run a trivial
/// task with a cached module), in microseconds. Tasks of a few milliseconds
/// must stay dominated by their own work, not by the sandbox.
pub const MAX_START_MEDIAN_MICROS: f64 = 50.0;

/// "PASS" when `value` is at most `limit`, else "MISS".
pub fn verdict(value: f64, limit: f64) -> &'static str {
    if value <= limit { "PASS" } else { "MISS" }
}
