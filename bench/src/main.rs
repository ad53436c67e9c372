//! `wasmgrid-bench`: benchmarks that print figures, measured against a
//! baseline in the same run on the same machine.
//!
//! `cargo run --release -p wasmgrid-bench -- runtime [--quick] [--json FILE]`
//! measures the sandbox: the sample kernels natively and as wasm tasks with
//! and without fuel metering, sandbox start with a cached module, and
//! throughput of trivial tasks; and checks the figures against the targets.
//! Progress goes to stderr, the tables to stdout.
//!
//! # Layout
//! - `kernels`: the three sample kernels as cases (input, native call).
//! - `overhead`: native vs metered vs unmetered wasm, interleaved.
//! - `start`: sandbox start of the trivial `echo` task.
//! - `handoff`: the baseline for round trips, a thread hand-off alone.
//! - `throughput`: trivial tasks per second with 1..=cores threads.
//! - `tasks`: loading guest programs, running one task with timings.
//! - `stats`: median, p99, duration formatting.
//! - `targets`: the targets and why they have their values.
//! - `machine`: CPU, cores and load the figures were measured on.
//! - `report`: the tables and the JSON.

mod handoff;
mod kernels;
mod machine;
mod overhead;
mod report;
mod start;
mod stats;
mod targets;
mod tasks;
mod throughput;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::machine::{CpuSnapshot, Machine};
use crate::report::{Plan, Report};

#[derive(Debug, Parser)]
#[command(about = "wasmgrid benchmarks: figures measured against a baseline in the same run")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sandbox overhead against native code, sandbox start, throughput.
    Runtime(RuntimeArgs),
}

#[derive(Debug, Args)]
struct RuntimeArgs {
    /// Fewer repetitions (2 per kernel, 300 starts, 0.25 s per throughput
    /// level): a smoke test, not figures to publish.
    #[arg(long)]
    quick: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Runtime(args) => runtime(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime(args: &RuntimeArgs) -> Result<()> {
    let plan = if args.quick {
        Plan {
            quick: true,
            repetitions: 2,
            start_iterations: 300,
            throughput_duration: Duration::from_millis(250),
        }
    } else {
        Plan {
            quick: false,
            repetitions: 5,
            start_iterations: 2000,
            throughput_duration: Duration::from_secs(1),
        }
    };

    eprintln!("building guest programs (no-op when up to date)…");
    wasmgrid_sample_tasks::guest_build::ensure_built().context("build guest programs")?;

    let mut phases = machine::Phases::default();
    let before = CpuSnapshot::now();
    let runtimes = overhead::Runtimes::new()?;
    let mut kernels = Vec::new();
    for case in kernels::cases()? {
        eprintln!("kernel {}: {}…", case.task, case.workload);
        kernels.push(overhead::measure(&case, &runtimes, plan.repetitions)?);
    }
    drop(runtimes);
    let before = phases.record("kernels", before);

    let mut start = Vec::new();
    for pooling in [true, false] {
        eprintln!("sandbox start, pooling {pooling}…");
        start.push(start::measure(pooling, plan.start_iterations)?);
    }
    eprintln!("thread hand-off baseline…");
    let handoff = handoff::measure(plan.start_iterations)?;
    let before = phases.record("sandbox start", before);

    eprintln!("throughput…");
    let throughput = throughput::measure_all(machine::cores(), plan.throughput_duration)?;
    phases.record("throughput", before);

    let report = Report {
        machine: Machine::describe(),
        plan,
        kernels,
        start,
        handoff,
        throughput,
        phases,
    };
    print!("{}", report.render());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.to_json()).context("encode JSON")?;
        std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
