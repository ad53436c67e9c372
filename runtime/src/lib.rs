//! The wasmgrid sandbox: runs one `wasm32-wasip1` task under hard limits,
//! deterministically, and says what it consumed.
//!
//! # Brief overview
//! A [`Runtime`] takes a [`TaskModule`] (module bytes with their sha256),
//! input bytes, [`Limits`] and a seed, and returns an [`Outcome`]: a
//! [`Status`], stdout, stderr and [`Usage`]. Inside the sandbox a task has
//! stdin, stdout, stderr, virtual clocks and seeded randomness; no files,
//! environment, network or threads. The same module, input and seed give the
//! same output and the same `fuel_consumed` on every machine, for one
//! [`Compiler`].
//!
//! ```no_run
//! # async fn demo(wasm: Vec<u8>) -> Result<(), wasmgrid_runtime::RuntimeError> {
//! use wasmgrid_runtime::{Limits, Runtime, RuntimeConfig, TaskModule};
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let module = TaskModule::new(wasm);
//! let outcome = runtime
//!     .run(&module, br#"{"start":0,"end":1000}"#.to_vec(), &Limits::default(), 7)
//!     .await?;
//! println!("{} → {:?} ({} fuel)", outcome.status, outcome.output, outcome.usage.fuel_consumed);
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `runtime`: [`Runtime`], the entry point: checks limits, dispatches.
//! - `limits`, `outcome`, `config`: the types in and out.
//! - `module_hash`: [`ModuleHash`] and [`TaskModule`], modules by sha256.
//! - `engine`: wasmtime engines per stack class and compiler, and the epoch
//!   ticker (for unmetered runs only).
//! - `module_cache`: compile once, in memory; `artifact_dir`: on disk.
//! - `module_check`: whether a module can run, short of compiling it;
//!   `command_shape`: what makes a valid module a runnable task.
//! - `declared_sizes`: initial memory and table sizes, read before compiling.
//! - `compile_cost`: a static bound on what compiling a module may cost.
//! - `executor`: the task threads, with stacks big enough for wasm.
//! - `sandbox`: one run in a fresh store, and how it ended.
//! - `limiter`: the memory and table cap.
//! - `wasi`: the sandbox's own WASI preview-1 host functions.
//! - `error`: [`RuntimeError`], failures of the host, not of a task.

mod artifact_dir;
mod command_shape;
mod compile_cost;
mod config;
mod declared_sizes;
mod engine;
mod error;
mod executor;
mod limiter;
mod limits;
mod module_cache;
mod module_check;
mod module_hash;
mod outcome;
mod runtime;
mod sandbox;
mod wasi;

pub use config::{Compiler, RuntimeConfig};
pub use error::RuntimeError;
pub use limits::{Limits, MAX_STACK_BYTES, MIN_STACK_BYTES};
pub use module_hash::{ModuleHash, TaskModule};
pub use outcome::{BASELINE_METERING_VERSION, METERING_VERSION, Outcome, Status, Usage};
pub use runtime::{MAX_FUEL, Runtime};
