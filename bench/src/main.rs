//! `wasmgrid-bench`: benchmarks that print figures, measured against a
//! baseline in the same run on the same machine.
//!
//! `cargo run --release -p wasmgrid-bench -- runtime [--quick] [--json FILE]`
//! measures the sandbox: the sample kernels natively and as wasm tasks with
//! and without fuel metering, sandbox start with a cached module, and
//! throughput of trivial tasks; and checks the figures against the targets.
//! Progress goes to stderr, the tables to stdout.
//!
//! `cargo run --release -p wasmgrid-bench -- dispatch [--quick] [--json FILE]`
//! measures the broker: a real `wasmgrid-broker` process and many simulated
//! agents over gRPC on loopback; tasks per second end to end with r=1 and
//! r=2, RPC latencies, broker CPU, RSS and store size, and tasks per second
//! against queue length (see `docs/performance.md`).
//!
//! `cargo run --release -p wasmgrid-bench -- efficiency [--quick] [--json FILE]`
//! measures the whole platform: π(10¹⁰) as 200 `primes` tasks through a
//! real broker and a real agent on this machine, against the same ranges
//! counted natively on every core; prints the ratio of the wall times.
//!
//! # Layout
//! - `kernels`: the three sample kernels as cases (input, native call).
//! - `overhead`: native vs metered vs unmetered wasm, interleaved.
//! - `start`: sandbox start of the trivial `echo` task.
//! - `handoff`: the baseline for round trips, a thread hand-off alone.
//! - `throughput`: trivial tasks per second with 1..=cores threads.
//! - `tasks`: loading guest programs, running one task with timings.
//! - `stats`: median, p99, duration formatting.
//! - `targets`: the targets and why they have their values; the targets
//!   table of `dispatch` and `efficiency`.
//! - `machine`: CPU, cores and load the figures were measured on; the
//!   opening lines of every mode's tables.
//! - `report`: the tables and the JSON.
//! - `release_build`: the release broker and agent `dispatch` and
//!   `efficiency` measure: building them, the work dir's copies, their
//!   commit.
//! - `dispatch`: the broker dispatch benchmark (its own layout inside).
//! - `efficiency`: the platform against native code (its own layout
//!   inside).

mod dispatch;
mod efficiency;
mod handoff;
mod kernels;
mod machine;
mod overhead;
mod release_build;
mod report;
mod start;
mod stats;
mod targets;
mod tasks;
mod throughput;

/// The broker's allocator (see `broker/src/main.rs`): the dispatch bench's
/// simulated agents share the machine with the broker, and glibc's malloc
/// was a sixth of their CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
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
    /// Broker throughput: a real broker, many simulated agents over gRPC.
    Dispatch(DispatchArgs),
    /// The whole platform against native code: a CPU-bound workload through
    /// a real broker and agent, and natively on every core.
    Efficiency(EfficiencyArgs),
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

#[derive(Debug, Args)]
struct DispatchArgs {
    /// Simulated agents, each with its own connection, registration and
    /// token [default: 1000; 100 with --quick].
    #[arg(long)]
    agents: Option<usize>,
    /// Tasks each agent asks for and accepts per cycle.
    #[arg(long, default_value_t = 4)]
    slots: u32,
    /// Tasks of each end-to-end run [default: 1000000; 4000 with --quick].
    #[arg(long)]
    tasks: Option<u64>,
    /// Tasks per submitted workload: larger runs are several workloads.
    #[arg(long, default_value_t = 100_000)]
    workload_tasks: u64,
    /// Replica counts, one end-to-end run each [default: 1,2]; `--replicas
    /// 0` skips the end-to-end runs.
    #[arg(long, value_delimiter = ',')]
    replicas: Option<Vec<u32>>,
    /// Queue sizes, one queue-length phase each [default:
    /// 10000,100000,1000000; 2000,10000 with --quick]; `--queue-sizes 0`
    /// skips them.
    #[arg(long, value_delimiter = ',')]
    queue_sizes: Option<Vec<u64>>,
    /// Tasks measured in each queue-length phase [default: four fifths of
    /// the smallest queue; a fifth of it more go first, as warm-up]. The
    /// phase submits them, and the agents' slots' worth, on top of the Q
    /// tasks, so Q wait all through the window, and at its start about
    /// twice Q with the default at the smallest queue.
    #[arg(long)]
    queue_window: Option<u64>,
    /// Runs of each queue-length phase, each on a fresh broker; the median
    /// run is the one reported [default: 5; 1 with --quick]. A window is
    /// under a second at 10⁴ tasks/s, so one run says little.
    #[arg(long)]
    queue_repeats: Option<u32>,
    /// Mean simulated run time of each cycle's leases, e.g. 20s, jittered
    /// ±50 % per cycle; 0 reports at once. With it the agents can offer
    /// less load than the broker takes, and latencies show the broker's
    /// service time instead of its queue.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    task_time: Duration,
    /// Mean time per cycle of the agents in the phase below saturation
    /// [default: 400ms, so that 1000 agents with 4 slots offer 10 000
    /// tasks/s, half the rated 20 000; 100ms with --quick]; 0 skips the
    /// phase. The dispatch latency
    /// target is measured there: at saturation every agent always has a
    /// call in flight, and a call waits for the calls before it.
    #[arg(long, value_parser = humantime::parse_duration)]
    paced_task_time: Option<Duration>,
    /// Tasks queued in the phase below saturation [default: 1000000; 10000
    /// with --quick].
    #[arg(long)]
    paced_queue: Option<u64>,
    /// Tasks measured in the phase below saturation, after a fifth of it
    /// as warm-up [default: 60000; 4000 with --quick].
    #[arg(long)]
    paced_window: Option<u64>,
    /// Runs of the phase below saturation, each on a fresh broker, their
    /// latencies pooled into one distribution [default: 3; 1 with
    /// --quick]: one run's p99 moves by a third from run to run.
    #[arg(long)]
    paced_repeats: Option<u32>,
    /// Stop with an error when no report arrives for this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "120s")]
    stall_timeout: Duration,
    /// A `wasmgrid-broker` binary to measure instead of building
    /// `cargo build --release -p wasmgrid-broker`.
    #[arg(long, value_name = "PATH")]
    broker: Option<PathBuf>,
    /// Where the brokers' data dirs go: on the disk being measured, never a
    /// tmpfs (fsync would cost nothing) [default: target/dispatch-bench].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Keep the data dirs and broker logs.
    #[arg(long)]
    keep: bool,
    /// Smaller counts (100 agents, 4000 tasks, queues of 2000 and 10000): a
    /// smoke test of well under a minute, not figures to publish.
    #[arg(long)]
    quick: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct EfficiencyArgs {
    /// Count the primes below this number, e.g. 1e10 [default: 1e10; 1e8
    /// with --quick].
    #[arg(long, value_name = "N", value_parser = parse_count)]
    limit: Option<u64>,
    /// Tasks (ranges of nearly equal width) the count is split into.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    tasks: u32,
    /// Platform rounds, each between two native rounds (native, platform,
    /// native, …) [default: 2; 1 with --quick].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: Option<u32>,
    /// A `wasmgrid-broker` binary to measure instead of building
    /// `cargo build --release -p wasmgrid-broker`.
    #[arg(long, value_name = "PATH")]
    broker: Option<PathBuf>,
    /// A `wasmgrid-agent` binary to measure instead of building
    /// `cargo build --release -p wasmgrid-agent`.
    #[arg(long, value_name = "PATH")]
    agent: Option<PathBuf>,
    /// Where the brokers' data dirs and the agents' state go: on the disk
    /// being measured, never a tmpfs (fsync would cost nothing) [default:
    /// target/efficiency-bench].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Keep the data dirs, state dirs and logs.
    #[arg(long)]
    keep: bool,
    /// The primes below 10^8 instead of 10^10, one platform round: a smoke
    /// test of well under a minute, not figures to publish.
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
        Command::Dispatch(args) => dispatch(&args),
        Command::Efficiency(args) => efficiency(&args),
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
    emit(&report.render(), || report.to_json(), args.json.as_deref())
}

fn dispatch(args: &DispatchArgs) -> Result<()> {
    let quick = args.quick;
    let queue_sizes: Vec<u64> = args
        .queue_sizes
        .clone()
        .unwrap_or_else(|| {
            if quick {
                vec![2_000, 10_000]
            } else {
                vec![10_000, 100_000, 1_000_000]
            }
        })
        .into_iter()
        .filter(|&size| size > 0)
        .collect();
    let replicas: Vec<u32> = args
        .replicas
        .clone()
        .unwrap_or_else(|| vec![1, 2])
        .into_iter()
        .filter(|&r| r > 0)
        .collect();
    let smallest_queue = queue_sizes.iter().copied().min().unwrap_or(0);
    let queue_window = args.queue_window.unwrap_or(smallest_queue / 5 * 4);
    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => default_work_dir("dispatch-bench")?,
    };
    let (broker, broker_origin) = match &args.broker {
        Some(path) => (
            path.clone(),
            format!("--broker {}; working tree at", path.display()),
        ),
        None => (
            dispatch::build_release_broker()?,
            "release build of the working tree at".to_owned(),
        ),
    };
    let paced_task_time = args
        .paced_task_time
        .unwrap_or(Duration::from_millis(if quick { 100 } else { 400 }));
    let paced = (!paced_task_time.is_zero()).then(|| dispatch::PacedPlan {
        queued: args
            .paced_queue
            .unwrap_or(if quick { 10_000 } else { 1_000_000 }),
        task_time: paced_task_time,
        window: args
            .paced_window
            .unwrap_or(if quick { 4_000 } else { 60_000 }),
        repeats: args
            .paced_repeats
            .unwrap_or(if quick { 1 } else { 3 })
            .max(1),
    });
    let plan = dispatch::DispatchPlan {
        quick,
        agents: dispatch::AgentPlan {
            agents: args.agents.unwrap_or(if quick { 100 } else { 1000 }),
            slots: args.slots.max(1),
            task_time: args.task_time,
            memory_per_slot: dispatch::task_limits().memory_bytes,
        },
        tasks: args.tasks.unwrap_or(if quick { 4_000 } else { 1_000_000 }),
        workload_tasks: args.workload_tasks.max(1),
        replicas,
        queue_warmup: queue_window / 5,
        queue_window,
        queue_repeats: args
            .queue_repeats
            .unwrap_or(if quick { 1 } else { 5 })
            .max(1),
        queue_sizes,
        paced,
        stall_timeout: args.stall_timeout,
        work_dir,
        keep: args.keep,
        broker,
        broker_origin,
    };
    let report = dispatch::run(&plan)?;
    emit(&report.render(), || report.to_json(), args.json.as_deref())
}

fn efficiency(args: &EfficiencyArgs) -> Result<()> {
    let quick = args.quick;
    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => default_work_dir("efficiency-bench")?,
    };
    let broker = match &args.broker {
        Some(path) => path.clone(),
        None => dispatch::build_release_broker()?,
    };
    let agent = match &args.agent {
        Some(path) => path.clone(),
        None => efficiency::build_release_agent()?,
    };
    let binaries_origin = match (&args.broker, &args.agent) {
        (None, None) => "release builds of the working tree at".to_owned(),
        _ => format!(
            "broker {}, agent {}; working tree at",
            args.broker
                .as_ref()
                .map_or("release build".into(), |p| p.display().to_string()),
            args.agent
                .as_ref()
                .map_or("release build".into(), |p| p.display().to_string()),
        ),
    };
    let plan = efficiency::EfficiencyPlan {
        quick,
        limit: args
            .limit
            .unwrap_or(if quick { 100_000_000 } else { 10_000_000_000 }),
        tasks: args.tasks,
        rounds: args.rounds.unwrap_or(if quick { 1 } else { 2 }) as usize,
        slots: machine::cores(),
        work_dir,
        keep: args.keep,
        broker,
        agent,
        binaries_origin,
    };
    let report = efficiency::run(&plan)?;
    emit(&report.render(), || report.to_json(), args.json.as_deref())
}

/// A count such as `10000000000`, `1e10` or `10_000_000_000`.
fn parse_count(text: &str) -> Result<u64, String> {
    let text = text.trim().replace('_', "");
    if let Ok(count) = text.parse::<u64>() {
        return Ok(count);
    }
    match text.parse::<f64>() {
        Ok(value) if value >= 0.0 && value.fract() == 0.0 && value <= u64::MAX as f64 => {
            Ok(value as u64)
        }
        _ => Err(format!(
            "invalid count '{text}': use a whole number, e.g. 10000000000 or 1e10"
        )),
    }
}

/// Prints a mode's tables on stdout and, with `--json FILE`, writes its
/// figures there too.
fn emit(
    tables: &str,
    figures: impl FnOnce() -> serde_json::Value,
    json: Option<&Path>,
) -> Result<()> {
    print!("{tables}");
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&figures()).context("encode JSON")?;
        std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// `target/NAME` of the workspace the bench was built in: on the
/// repository's disk, where a real broker's data dir would be.
fn default_work_dir(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("path of the running bench")?;
    let target = exe
        .parent()
        .and_then(|profile| profile.parent())
        .context("the bench executable is not in target/<profile>")?;
    Ok(target.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_whole_numbers_in_any_notation() {
        assert_eq!(parse_count("10000000000"), Ok(10_000_000_000));
        assert_eq!(parse_count("1e10"), Ok(10_000_000_000));
        assert_eq!(parse_count("10_000"), Ok(10_000));
        assert!(parse_count("1.5").is_err());
        assert!(parse_count("-1").is_err());
        assert!(parse_count("ten").is_err());
    }
}
