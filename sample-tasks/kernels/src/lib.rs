//! The compute kernels of the sample tasks.
//!
//! Each wasm task in `sample-tasks/tasks/` is a thin `main` around one of
//! these functions, and the benchmark runs the very same functions natively:
//! sharing the code is what makes "wasm vs native" a fair comparison (one
//! function, counting a sieve segment's flags, has a SIMD form for wasm
//! where the native build vectorises its own; see [`primes`]). The
//! kernels only use integer and plain `f64` arithmetic, so their results are
//! identical on every machine.
//!
//! # Layout
//!
//! - [`primes`]: count primes in a range with a segmented sieve.
//! - [`nqueens`]: count N-queens solutions below a fixed prefix of rows, and
//!   list the prefixes that split a board into tasks.
//! - [`mandelbrot`]: render one tile of a Mandelbrot image.
//! - [`sum`]: the overflow-checked sum used by the `sum-u64` reducer.

pub mod mandelbrot;
pub mod nqueens;
pub mod primes;
pub mod sum;
