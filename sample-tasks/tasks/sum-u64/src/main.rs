//! Reducer: adds the task outputs of a workload, each a JSON `u64`, and
//! outputs the total as JSON; an overflowing total fails the task (exit 1)
//! rather than wrapping around.

use wasmgrid_kernels::sum::sum_u64;

fn main() {
    wasmgrid_sdk::run_reducer_json(|values: Vec<u64>| sum_u64(&values));
}
