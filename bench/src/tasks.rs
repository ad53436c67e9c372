//! Loading the guest programs and running one task with its timings.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wasmgrid_runtime::{Limits, Outcome, Runtime, TaskModule};

/// Seed for `random_get`; none of the benchmarked tasks draws randomness.
const SEED: u64 = 7;

/// The guest program `name`, built on demand by `wasmgrid-sample-tasks`.
pub fn load(name: &str) -> Result<TaskModule> {
    let path = wasmgrid_sample_tasks::try_wasm(name)
        .with_context(|| format!("build guest program {name}"))?;
    let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    Ok(TaskModule::new(bytes))
}

/// One task's outcome and its timings.
#[derive(Debug)]
pub struct TimedRun {
    pub outcome: Outcome,
    /// Wall time around `run_blocking`: submission, queueing on the executor,
    /// the sandbox, and the wake-up of this thread.
    pub round_trip: Duration,
}

impl TimedRun {
    /// The runtime's own measurement: instantiation to the end of `_start`.
    pub fn sandbox_time(&self) -> Duration {
        self.outcome.usage.wall_time
    }
}

/// Runs `module` on `input` and fails unless the task ended with `Ok`.
pub fn run(
    runtime: &Runtime,
    module: &TaskModule,
    input: &[u8],
    limits: &Limits,
) -> Result<TimedRun> {
    let input = input.to_vec();
    let started = Instant::now();
    let outcome = runtime
        .run_blocking(module, input, limits, SEED)
        .context("run task")?;
    let round_trip = started.elapsed();
    if !outcome.status.is_ok() {
        bail!(
            "task ended with status {}; stderr: {}",
            outcome.status,
            String::from_utf8_lossy(&outcome.stderr)
        );
    }
    Ok(TimedRun {
        outcome,
        round_trip,
    })
}
