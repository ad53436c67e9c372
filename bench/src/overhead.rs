//! Sandbox overhead on real work: each kernel natively, as a task with fuel
//! metering, and as a task without, in the same process.
//!
//! Repetitions are interleaved (native, metered, unmetered, native, …) so
//! that a burst of load from elsewhere on the machine hits all three alike
//! instead of skewing one of them. One warm-up round comes first: it
//! compiles the module in both runtimes, faults in memory, and yields the
//! native result that every wasm output is checked against.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use wasmgrid_runtime::{Limits, Runtime, RuntimeConfig, TaskModule};

use crate::kernels::KernelCase;
use crate::stats::{Summary, ratio};
use crate::tasks::{self, TimedRun};

/// Two runtimes that differ only in fuel metering.
#[derive(Debug)]
pub struct Runtimes {
    metered: Runtime,
    unmetered: Runtime,
}

impl Runtimes {
    pub fn new() -> Result<Self> {
        Ok(Runtimes {
            metered: Runtime::new(RuntimeConfig::default()).context("start metered runtime")?,
            unmetered: Runtime::new(RuntimeConfig {
                fuel_metering: false,
                ..RuntimeConfig::default()
            })
            .context("start unmetered runtime")?,
        })
    }
}

/// Timings of one kernel as a wasm task in one runtime.
#[derive(Clone, Copy, Debug)]
pub struct WasmFigures {
    /// `Usage::wall_time`: instantiation to the end of `_start`.
    pub sandbox: Summary,
    /// Wall time around `run_blocking`.
    pub round_trip: Summary,
}

impl WasmFigures {
    fn of(runs: &[TimedRun]) -> Result<Self> {
        let sandbox: Vec<Duration> = runs.iter().map(TimedRun::sandbox_time).collect();
        let round_trip: Vec<Duration> = runs.iter().map(|run| run.round_trip).collect();
        Ok(WasmFigures {
            sandbox: Summary::of(&sandbox)?,
            round_trip: Summary::of(&round_trip)?,
        })
    }

    fn to_json(self) -> Value {
        json!({ "sandbox": self.sandbox.to_json(), "round_trip": self.round_trip.to_json() })
    }
}

/// What one kernel costs natively and in the sandbox.
#[derive(Clone, Debug)]
pub struct KernelFigures {
    pub task: &'static str,
    pub workload: String,
    pub native: Summary,
    pub metered: WasmFigures,
    pub unmetered: WasmFigures,
    /// Fuel the metered task consumed (the same on every run).
    pub fuel_consumed: u64,
}

impl KernelFigures {
    /// Metered sandbox time over native time, by medians.
    pub fn metered_ratio(&self) -> f64 {
        ratio(self.metered.sandbox.median, self.native.median)
    }

    /// Unmetered sandbox time over native time, by medians.
    pub fn unmetered_ratio(&self) -> f64 {
        ratio(self.unmetered.sandbox.median, self.native.median)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "task": self.task,
            "workload": self.workload,
            "native": self.native.to_json(),
            "wasm_fuel": self.metered.to_json(),
            "wasm_no_fuel": self.unmetered.to_json(),
            "ratio_wasm_fuel_over_native": self.metered_ratio(),
            "ratio_wasm_no_fuel_over_native": self.unmetered_ratio(),
            "fuel_consumed": self.fuel_consumed,
        })
    }
}

/// Measures `case` with `repetitions` interleaved rounds after a warm-up.
pub fn measure(
    case: &KernelCase,
    runtimes: &Runtimes,
    repetitions: usize,
) -> Result<KernelFigures> {
    let module = tasks::load(case.task)?;
    let limits = Limits {
        wall_time: Duration::from_secs(300),
        ..Limits::default()
    };
    let expected = case.run_native().context("native warm-up")?;
    let warm_metered = run_checked(case, &runtimes.metered, &module, &limits, &expected)?;
    run_checked(case, &runtimes.unmetered, &module, &limits, &expected)?;

    let mut native = Vec::with_capacity(repetitions);
    let mut metered = Vec::with_capacity(repetitions);
    let mut unmetered = Vec::with_capacity(repetitions);
    for _ in 0..repetitions {
        let started = Instant::now();
        let output = case.run_native()?;
        native.push(started.elapsed());
        if output != expected {
            bail!("{}: native output changed between runs", case.task);
        }
        metered.push(run_checked(
            case,
            &runtimes.metered,
            &module,
            &limits,
            &expected,
        )?);
        unmetered.push(run_checked(
            case,
            &runtimes.unmetered,
            &module,
            &limits,
            &expected,
        )?);
    }

    let fuel_consumed = warm_metered.outcome.usage.fuel_consumed;
    if let Some(run) = metered
        .iter()
        .find(|run| run.outcome.usage.fuel_consumed != fuel_consumed)
    {
        bail!(
            "{}: fuel is not deterministic ({} then {})",
            case.task,
            fuel_consumed,
            run.outcome.usage.fuel_consumed
        );
    }
    Ok(KernelFigures {
        task: case.task,
        workload: case.workload.clone(),
        native: Summary::of(&native)?,
        metered: WasmFigures::of(&metered)?,
        unmetered: WasmFigures::of(&unmetered)?,
        fuel_consumed,
    })
}

/// Runs the task and fails loudly unless its output equals the native one.
fn run_checked(
    case: &KernelCase,
    runtime: &Runtime,
    module: &TaskModule,
    limits: &Limits,
    expected: &[u8],
) -> Result<TimedRun> {
    let metering = if runtime.config().fuel_metering {
        "with"
    } else {
        "without"
    };
    let run = tasks::run(runtime, module, &case.input, limits)
        .with_context(|| format!("{} as wasm {metering} fuel", case.task))?;
    if run.outcome.output != expected {
        bail!(
            "{} as wasm {metering} fuel: output differs from native ({} bytes vs {}; starts {:?} vs {:?})",
            case.task,
            run.outcome.output.len(),
            expected.len(),
            preview(&run.outcome.output),
            preview(expected),
        );
    }
    Ok(run)
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(32)]).into_owned()
}
