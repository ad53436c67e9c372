//! The three sample kernels as benchmark cases: the task's input, and the
//! same computation called natively, producing the bytes the wasm task
//! must output.
//!
//! Sizes are chosen so one run takes roughly 0.3–1 s natively on a current
//! x86-64 core: long enough that instantiation and JSON decoding vanish
//! against the kernel, short enough for several repetitions.

use std::hint::black_box;

use anyhow::{Context, Result};
use wasmgrid_kernels::mandelbrot::{self, MandelbrotTile};
use wasmgrid_kernels::nqueens::{self, NQueensInput};
use wasmgrid_kernels::primes::{self, PrimesInput};

/// Computes a case natively and returns the task's output encoding.
type NativeFn = Box<dyn Fn() -> Result<Vec<u8>>>;

/// One kernel to compare natively and in the sandbox.
pub struct KernelCase {
    /// The guest program's name in `sample-tasks/tasks/`.
    pub task: &'static str,
    /// What is computed, for the table.
    pub workload: String,
    /// The task's stdin.
    pub input: Vec<u8>,
    native: NativeFn,
}

impl std::fmt::Debug for KernelCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelCase")
            .field("task", &self.task)
            .field("workload", &self.workload)
            .finish_non_exhaustive()
    }
}

impl KernelCase {
    /// Runs the kernel natively once; the result is what the task outputs.
    pub fn run_native(&self) -> Result<Vec<u8>> {
        (self.native)()
    }
}

/// Primes in `[10⁹, 1.8·10⁹)`: a sieve, byte stores and integer loops.
const PRIMES: PrimesInput = PrimesInput {
    start: 1_000_000_000,
    end: 1_800_000_000,
};

/// Board size and first-row queen for N-queens: bit tricks and recursion.
const NQUEENS_N: u32 = 16;
const NQUEENS_PREFIX: [u32; 1] = [3];

/// A 512×512 tile of the classic view at 1000 iterations: `f64` multiply-add
/// chains; about a third of the pixels never escape.
const MANDELBROT: MandelbrotTile = MandelbrotTile {
    width: 512,
    height: 512,
    x0: -2.0,
    y0: -1.25,
    x1: 0.5,
    y1: 1.25,
    tile_x: 0,
    tile_y: 0,
    tile_w: 512,
    tile_h: 512,
    max_iter: 2000,
};

/// All cases, in the order they are reported.
pub fn cases() -> Result<Vec<KernelCase>> {
    Ok(vec![primes_case()?, nqueens_case()?, mandelbrot_case()?])
}

fn primes_case() -> Result<KernelCase> {
    Ok(KernelCase {
        task: "primes",
        workload: format!("count primes in [{}, {})", PRIMES.start, PRIMES.end),
        input: serde_json::to_vec(&PRIMES).context("encode primes input")?,
        native: Box::new(|| {
            let count = black_box(primes::count_primes(
                black_box(PRIMES.start),
                black_box(PRIMES.end),
            ));
            serde_json::to_vec(&count).context("encode prime count")
        }),
    })
}

fn nqueens_case() -> Result<KernelCase> {
    let input = NQueensInput {
        n: NQUEENS_N,
        prefix: NQUEENS_PREFIX.to_vec(),
    };
    Ok(KernelCase {
        task: "nqueens",
        workload: format!("n-queens n={NQUEENS_N} prefix={NQUEENS_PREFIX:?}"),
        input: serde_json::to_vec(&input).context("encode nqueens input")?,
        native: Box::new(|| {
            let count = black_box(
                nqueens::count_solutions(black_box(NQUEENS_N), black_box(&NQUEENS_PREFIX))
                    .context("count n-queens solutions")?,
            );
            serde_json::to_vec(&count).context("encode solution count")
        }),
    })
}

fn mandelbrot_case() -> Result<KernelCase> {
    Ok(KernelCase {
        task: "mandelbrot",
        workload: format!(
            "mandelbrot {}x{} tile, max_iter {}",
            MANDELBROT.tile_w, MANDELBROT.tile_h, MANDELBROT.max_iter
        ),
        input: serde_json::to_vec(&MANDELBROT).context("encode mandelbrot tile")?,
        native: Box::new(|| {
            let pixels = mandelbrot::render(black_box(&MANDELBROT)).context("render tile")?;
            Ok(black_box(pixels))
        }),
    })
}
