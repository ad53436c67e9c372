//! Outputs its input unchanged.
//!
//! The cheapest possible task: benchmarks use it to measure what a task
//! costs before doing any work (instantiation, WASI set-up, I/O).

use std::convert::Infallible;

fn main() {
    wasmgrid_sdk::run_bytes(Ok::<_, Infallible>);
}
