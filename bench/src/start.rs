//! Sandbox start with a cached module: the trivial `echo` task with empty
//! input, run back to back on a one-thread runtime, so every figure is one
//! fresh store, instantiation, `_start` and teardown — with the pooling
//! allocator and without it.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use wasmgrid_runtime::{Limits, Runtime, RuntimeConfig};

use crate::stats::Summary;
use crate::tasks::{self, TimedRun};

/// Sandbox start figures for one allocator.
#[derive(Clone, Copy, Debug)]
pub struct StartFigures {
    pub pooling: bool,
    /// `Usage::wall_time`: instantiate and run the trivial task.
    pub sandbox: Summary,
    /// Wall time around `run_blocking`, including the executor hand-off.
    pub round_trip: Summary,
}

impl StartFigures {
    pub fn to_json(self) -> Value {
        json!({
            "pooling": self.pooling,
            "sandbox": self.sandbox.to_json(),
            "round_trip": self.round_trip.to_json(),
        })
    }
}

/// Runs `echo` `iterations` times after a warm-up that compiles it.
pub fn measure(pooling: bool, iterations: usize) -> Result<StartFigures> {
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_tasks: std::num::NonZeroUsize::MIN,
        pooling,
        ..RuntimeConfig::default()
    })
    .context("start runtime")?;
    let module = tasks::load("echo")?;
    let limits = Limits::default();
    tasks::run(&runtime, &module, &[], &limits).context("echo warm-up")?;

    let mut sandbox = Vec::with_capacity(iterations);
    let mut round_trip = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let run: TimedRun = tasks::run(&runtime, &module, &[], &limits).context("echo")?;
        anyhow::ensure!(
            run.outcome.output.is_empty(),
            "echo of nothing printed something"
        );
        sandbox.push(run.sandbox_time());
        round_trip.push(run.round_trip);
    }
    Ok(StartFigures {
        pooling,
        sandbox: Summary::of(&sandbox)?,
        round_trip: Summary::of(&round_trip)?,
    })
}

/// Median sandbox start in microseconds, for the target check.
pub fn median_micros(figures: &StartFigures) -> f64 {
    figures.sandbox.median.as_secs_f64() * 1e6
}
