//! The sandbox against real modules built from `sample-tasks/`: every sample
//! task, every hostile module, determinism, isolation, the module cache and
//! concurrency. One test binary, one module per concern.

mod baseline;
mod cache;
mod concurrency;
mod determinism;
mod hostile;
mod isolation;
mod samples;
mod throttle;

use std::sync::OnceLock;
use std::time::Duration;

use wasmgrid_runtime::{Limits, Outcome, Runtime, RuntimeConfig, TaskModule};

/// One runtime shared by the tests that need no special setup, so each
/// sample module is compiled once per test binary.
pub fn shared_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime starts"))
}

/// A built sample task or hostile crate, by name.
pub fn sample(name: &str) -> TaskModule {
    TaskModule::new(wasmgrid_sample_tasks::read_wasm(name))
}

/// A hand-written hostile module from `sample-tasks/hostile/` (`.wat` or raw).
pub fn hostile_file(file_name: &str) -> TaskModule {
    let path = wasmgrid_sample_tasks::hostile_file(file_name);
    let bytes = if file_name.ends_with(".wat") {
        wat::parse_file(&path).expect("hostile .wat parses")
    } else {
        std::fs::read(&path).expect("hostile file readable")
    };
    TaskModule::new(bytes)
}

/// Limits small enough that hostile tasks end quickly.
pub fn tight_limits() -> Limits {
    Limits {
        memory_bytes: 64 << 20,
        fuel: 2_000_000_000,
        wall_time: Duration::from_secs(20),
        max_output_bytes: 1 << 20,
        max_stack_bytes: 1 << 20,
    }
}

/// Runs on the shared runtime with `limits` and seed 1.
pub fn run(module: &TaskModule, input: impl Into<Vec<u8>>, limits: &Limits) -> Outcome {
    shared_runtime()
        .run_blocking(module, input.into(), limits, 1)
        .expect("the host runs the task")
}

/// The output as UTF-8 text (sample tasks answer in JSON).
pub fn text(outcome: &Outcome) -> String {
    String::from_utf8_lossy(&outcome.output).into_owned()
}
