//! `wasmgrid-bench efficiency`: the whole platform against native code.
//!
//! A CPU-bound workload — count the primes below N, split into T ranges —
//! runs two ways on this machine, in alternating rounds (native, platform,
//! native, …):
//!
//! - **native**: the `primes` kernel of `sample-tasks/kernels` (the sample
//!   task's native twin) on one std thread per core, each pulling the next
//!   range from a shared counter;
//! - **platform**: a fresh release `wasmgrid-broker` (embedded SQLite,
//!   durable, as shipped) and one release `wasmgrid-agent` with a slot per
//!   core (wasmtime, fuel metering on, as shipped) as child processes; the
//!   T ranges submitted as one paid workload of the `primes` task with r=1
//!   and the `sum-u64` reducer; timed from the submit to the end result in
//!   the issuer's hands.
//!
//! The ratio of the medians is the platform's overhead in one number:
//! sandbox, metering, scheduling, reporting, aggregation.
//!
//! # Layout
//! - `native`: the native baseline.
//! - `grid`: the agent child process and the gRPC clients (the broker is
//!   the dispatch bench's `BrokerProcess`).
//! - `platform`: one platform round.
//! - `report`: the tables, the target and the JSON.

mod grid;
mod native;
mod platform;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wasmgrid_kernels::primes::{PrimesInput, count_primes};
use wasmgrid_runtime::{Limits, MAX_FUEL};

pub use self::grid::build_release_agent;
use self::native::NativeRun;
use self::platform::PlatformRun;
pub use self::report::EfficiencyReport;
use crate::machine::{self, Machine};
use crate::release_build;

/// π(10^k) for k = 0..=12, to check the totals without a reference run.
/// A copy of the table in `cli/src/commands/demo/prime_count.rs` (`wasmgrid
/// demo`), as [`ranges`] and [`known_count`] are of the functions there: the
/// cli crate has no library to share them from.
const PRIMES_BELOW_POWERS_OF_TEN: [u64; 13] = [
    0,
    4,
    25,
    168,
    1_229,
    9_592,
    78_498,
    664_579,
    5_761_455,
    50_847_534,
    455_052_511,
    4_118_054_813,
    37_607_912_018,
];

/// Memory limit of each task; the agent gets this much per slot. `primes`
/// needs a 32 KiB segment and the base primes up to √N (~100 KiB at 10¹⁰).
const TASK_MEMORY_MIB: u64 = 64;

/// Fuel budgeted per number of a range: `primes` uses ~20 per number near
/// 10⁹ (the demo's rule, `wasmgrid demo`), so five times that never runs out.
const FUEL_PER_NUMBER: u64 = 100;

/// Least fuel per task, for ranges so small that start-up dominates.
const MIN_FUEL: u64 = 10_000_000_000;

/// Longest a task may run: far beyond what a range needs, so only a broken
/// run hits it.
const TASK_WALL_TIME: Duration = Duration::from_secs(600);

/// The workload's price (the demo's): one credit per 10⁹ fuel.
const CREDITS_PER_FUEL: f64 = 1e-9;

/// What one `efficiency` run measures.
#[derive(Clone, Debug)]
pub struct EfficiencyPlan {
    pub quick: bool,
    /// Count the primes in `[0, limit)`.
    pub limit: u64,
    /// Ranges (tasks) of nearly equal width.
    pub tasks: u32,
    /// Platform rounds; one more native round than this, alternating.
    pub rounds: usize,
    /// Native threads and agent slots: the machine's cores.
    pub slots: usize,
    /// Where the brokers' data dirs, the agents' state dirs and the logs go.
    pub work_dir: PathBuf,
    pub keep: bool,
    pub broker: PathBuf,
    pub agent: PathBuf,
    /// How the binaries were chosen, for the report.
    pub binaries_origin: String,
}

/// The workload both ways: the ranges, and the modules for the platform.
#[derive(Debug)]
pub struct Job {
    pub limit: u64,
    pub ranges: Vec<PrimesInput>,
    pub module: Vec<u8>,
    pub reducer: Vec<u8>,
    pub credits_per_fuel: f64,
}

impl Job {
    fn new(limit: u64, tasks: u32) -> Result<Self> {
        let load =
            |name: &str| -> Result<Vec<u8>> { Ok(crate::tasks::load(name)?.bytes().to_vec()) };
        Ok(Job {
            limit,
            ranges: ranges(limit, tasks),
            module: load("primes")?,
            reducer: load("sum-u64")?,
            credits_per_fuel: CREDITS_PER_FUEL,
        })
    }

    /// The widest range.
    pub fn width(&self) -> u64 {
        self.ranges
            .iter()
            .map(|range| range.end.saturating_sub(range.start))
            .max()
            .unwrap_or(0)
    }

    /// The tasks' inputs, as the `primes` task reads them (JSON).
    pub fn inputs(&self) -> Result<Vec<Vec<u8>>> {
        self.ranges
            .iter()
            .map(|range| serde_json::to_vec(range).context("encode a primes input"))
            .collect()
    }

    /// Limits for every task (and the reducer): enough fuel and time for the
    /// widest range with a wide margin.
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: TASK_MEMORY_MIB << 20,
            fuel: self
                .width()
                .saturating_mul(FUEL_PER_NUMBER)
                .clamp(MIN_FUEL, MAX_FUEL),
            wall_time: TASK_WALL_TIME,
            ..Limits::default()
        }
    }

    /// Memory the agent offers: one task's limit per slot.
    pub fn agent_memory_mib(&self, slots: usize) -> u64 {
        TASK_MEMORY_MIB * slots as u64
    }

    /// Credits granted to the issuer before submitting: every task at its
    /// fuel limit, plus a fifth for the broker's fee (as `wasmgrid demo`).
    pub fn grant_micro(&self) -> Result<i64> {
        let per_task = self.limits().fuel as f64 * self.credits_per_fuel;
        let credits = (per_task * self.ranges.len() as f64 * 1.2).ceil().max(1.0);
        let micro = credits * 1e6;
        if !micro.is_finite() || micro > i64::MAX as f64 / 2.0 {
            bail!("the workload could cost more credits than a balance holds ({credits:e})");
        }
        Ok(micro as i64)
    }

    pub fn name(&self) -> String {
        format!("primes below {}", self.limit)
    }
}

/// `tasks` ranges of (nearly) equal width covering `[0, limit)`.
fn ranges(limit: u64, tasks: u32) -> Vec<PrimesInput> {
    let bound = |i: u32| -> u64 {
        let bound = u128::from(limit) * u128::from(i) / u128::from(tasks);
        u64::try_from(bound).unwrap_or(limit)
    };
    (0..tasks)
        .map(|i| PrimesInput {
            start: bound(i),
            end: bound(i + 1),
        })
        .collect()
}

/// π(limit) when `limit` is a power of ten in the table.
fn known_count(limit: u64) -> Option<(u32, u64)> {
    (0u32..)
        .zip(PRIMES_BELOW_POWERS_OF_TEN)
        .find(|(k, _)| 10u64.checked_pow(*k) == Some(limit))
}

/// The total every run must reach and where it comes from.
#[derive(Clone, Debug)]
pub struct Expected {
    pub total: u64,
    pub source: String,
}

/// Runs the rounds of `plan` and returns the figures.
pub fn run(plan: &EfficiencyPlan) -> Result<EfficiencyReport> {
    let started = Instant::now();
    if plan.tasks == 0 {
        bail!("--tasks must be at least 1");
    }
    eprintln!("building guest programs (no-op when up to date)…");
    let job = Job::new(plan.limit, plan.tasks)?;
    std::fs::create_dir_all(&plan.work_dir)
        .with_context(|| format!("create {}", plan.work_dir.display()))?;
    let plan = &EfficiencyPlan {
        broker: release_build::copy_to_work_dir(&plan.broker, &plan.work_dir, "wasmgrid-broker")?,
        agent: release_build::copy_to_work_dir(&plan.agent, &plan.work_dir, "wasmgrid-agent")?,
        ..plan.clone()
    };

    let expected = match known_count(plan.limit) {
        Some((k, total)) => Expected {
            total,
            source: format!("the known π(10^{k})"),
        },
        None => {
            eprintln!(
                "reference: primes below {} on one thread, one range…",
                plan.limit
            );
            let reference_started = Instant::now();
            let total = count_primes(0, plan.limit);
            Expected {
                total,
                source: format!(
                    "a single-threaded count over one range ({:.1} s)",
                    reference_started.elapsed().as_secs_f64()
                ),
            }
        }
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    let mut natives: Vec<NativeRun> = Vec::new();
    let mut platforms: Vec<PlatformRun> = Vec::new();
    let native_round = |natives: &mut Vec<NativeRun>| -> Result<()> {
        let round = natives.len() + 1;
        eprintln!(
            "native {round}: {} ranges on {} threads…",
            job.ranges.len(),
            plan.slots
        );
        machine::write_back_dirty_pages();
        let native = native::run(&job.ranges, plan.slots)?;
        if native.total != expected.total {
            bail!(
                "native round {round} counted {} primes, {} says {}",
                native.total,
                expected.source,
                expected.total
            );
        }
        eprintln!("  {:.3} s", native.wall.as_secs_f64());
        natives.push(native);
        Ok(())
    };
    for round in 1..=plan.rounds {
        native_round(&mut natives)?;
        eprintln!(
            "platform {round}: broker + agent ({} slots), {} tasks…",
            plan.slots,
            job.ranges.len()
        );
        machine::write_back_dirty_pages();
        let platform = platform::run(&runtime, plan, &job, round)?;
        if platform.total != expected.total || platform.task_total != expected.total {
            bail!(
                "platform round {round}: end result {}, tasks' sum {}, {} says {}",
                platform.total,
                platform.task_total,
                expected.source,
                expected.total
            );
        }
        eprintln!("  {:.3} s", platform.wall.as_secs_f64());
        platforms.push(platform);
    }
    native_round(&mut natives)?;

    Ok(EfficiencyReport {
        machine: Machine::describe(),
        plan: plan.clone(),
        width: job.width(),
        limits: job.limits(),
        expected,
        natives,
        platforms,
        took: started.elapsed(),
        source: release_build::source_description(&[
            "broker",
            "agent",
            "proto",
            "runtime",
            "sample-tasks",
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_limit_without_gaps() {
        let ranges = ranges(10, 3);
        assert_eq!(
            ranges,
            [
                PrimesInput { start: 0, end: 3 },
                PrimesInput { start: 3, end: 6 },
                PrimesInput { start: 6, end: 10 },
            ]
        );
        let ranges = super::ranges(10_000_000_000, 200);
        assert_eq!(ranges.len(), 200);
        assert!(ranges.windows(2).all(|pair| pair[0].end == pair[1].start));
        assert_eq!(ranges.last().map(|r| r.end), Some(10_000_000_000));
    }

    #[test]
    fn known_counts_are_found_for_powers_of_ten() {
        assert_eq!(known_count(10_000_000_000), Some((10, 455_052_511)));
        assert_eq!(known_count(100_000_000), Some((8, 5_761_455)));
        assert_eq!(known_count(999), None);
        // The table agrees with the kernel where that is quick to check.
        for (k, known) in PRIMES_BELOW_POWERS_OF_TEN.iter().enumerate().take(8) {
            assert_eq!(count_primes(0, 10u64.pow(k as u32)), *known);
        }
    }
}
