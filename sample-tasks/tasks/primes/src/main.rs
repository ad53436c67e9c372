//! Counts the primes in a range: JSON `PrimesInput` in, JSON count out.
//!
//! Split "primes below N" into ranges, one task each, and add the counts
//! with the `sum-u64` reducer.

use std::convert::Infallible;

use wasmgrid_kernels::primes::PrimesInput;

fn main() {
    wasmgrid_sdk::run_json(|input: PrimesInput| Ok::<_, Infallible>(input.count()));
}
