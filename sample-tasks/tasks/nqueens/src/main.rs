//! Counts N-queens solutions below a prefix: JSON `NQueensInput` in, JSON
//! count out; an impossible prefix fails the task (exit 1).

use wasmgrid_kernels::nqueens::NQueensInput;

fn main() {
    wasmgrid_sdk::run_json(|input: NQueensInput| input.count());
}
