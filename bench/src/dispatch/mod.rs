//! `wasmgrid-bench dispatch`: the broker's throughput under many agents.
//!
//! Each phase starts a fresh release broker (its own data dir, embedded
//! SQLite, settings as shipped) and registers the simulated agents, then:
//!
//! - **end to end** (once per replica count): the issuer submits the
//!   workloads while the agents work; tasks per second is tasks done over
//!   the time from the first submit to the last workload's end (the
//!   broker's own `finished` time);
//! - **queue length** (once per queue size, r = 1): the issuer submits Q
//!   tasks with the agents idle, and as many more as the measurement takes,
//!   then the agents start, and tasks per second is measured over a window
//!   (the same number of tasks for every Q, after a warm-up) all through
//!   which at least Q tasks wait, so the figures at 10⁴, 10⁵, 10⁶ compare.
//! - **below saturation** (three runs, r = 1): a queue-length phase with
//!   10⁶ queued whose agents take a while over each cycle's tasks, so that
//!   they offer less load than the broker can take: the dispatch latency of
//!   a broker that serves its agents, not of one they queue up at; the
//!   runs' latencies are pooled.
//!
//! # Layout
//! - `end_to_end`, `queue_length`: the two kinds of phase; `paced`: the
//!   runs of the queue-length phase below saturation, pooled.
//! - `watch`: the monitor of a running phase (stalls, progress).
//! - `broker`: the broker child process, its CPU, memory, I/O and store
//!   size.
//! - `agents`: the simulated agents; `connection`: their HTTP/2
//!   connections.
//! - `issuer`: submitting and following workloads.
//! - `latency`: per-RPC latency samples.
//! - `cpu`: who used the machine during a window.
//! - `report`: the tables, the targets and the JSON.

mod agents;
pub(crate) mod broker;
mod connection;
mod cpu;
mod end_to_end;
mod issuer;
mod latency;
mod paced;
mod queue_length;
mod report;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wasmgrid_runtime::{Runtime, RuntimeConfig};

pub use self::agents::AgentPlan;
use self::agents::Reply;
pub use self::broker::build_release_broker;
use self::end_to_end::{EndToEnd, end_to_end_phase};
pub use self::issuer::limits as task_limits;
use self::issuer::{Issuer, Submitted};
use self::paced::{PacedRuns, paced_phase};
use self::queue_length::{QueuePoint, queue_phase};
pub use self::report::DispatchReport;
use crate::machine::Machine;
use crate::release_build;
use crate::stats::minutes;

/// What one `dispatch` run measures.
#[derive(Clone, Debug)]
pub struct DispatchPlan {
    pub quick: bool,
    pub agents: AgentPlan,
    /// Tasks of each end-to-end run.
    pub tasks: u64,
    /// Tasks per submitted workload: a 10⁶-task run is several workloads,
    /// submitted one after the other while the agents work.
    pub workload_tasks: u64,
    /// One end-to-end run per replica count.
    pub replicas: Vec<u32>,
    /// One queue-length phase per size.
    pub queue_sizes: Vec<u64>,
    /// Tasks done after the agents start before the queue-length window
    /// opens (connections warm, every agent has fetched the module).
    pub queue_warmup: u64,
    /// Tasks done in the queue-length window.
    pub queue_window: u64,
    /// Runs of each queue-length phase; the median one is reported.
    pub queue_repeats: u32,
    /// The phase below saturation, if any.
    pub paced: Option<PacedPlan>,
    /// A phase fails when no report arrives for this long.
    pub stall_timeout: Duration,
    /// Where the brokers' data dirs and logs go (kept with `keep`).
    pub work_dir: PathBuf,
    pub keep: bool,
    pub broker: PathBuf,
    /// How the broker binary was chosen, for the report.
    pub broker_origin: String,
}

impl DispatchPlan {
    /// Tasks a queue-length phase submits after its Q: those the warm-up
    /// and the window take, and those the agents hold leased when the
    /// window closes, so that Q tasks are still waiting then.
    pub fn queue_extra_tasks(&self) -> u64 {
        let in_flight = self.agents.agents as u64 * u64::from(self.agents.slots);
        self.queue_warmup + self.queue_window + in_flight
    }
}

/// The phase below saturation: a queue-length phase whose agents spend
/// `task_time` on each cycle's tasks.
#[derive(Clone, Copy, Debug)]
pub struct PacedPlan {
    /// Tasks queued before the agents start.
    pub queued: u64,
    /// The agents' mean time per cycle (see [`AgentPlan::task_time`]).
    pub task_time: Duration,
    /// Tasks measured, after a fifth of it as warm-up.
    pub window: u64,
    /// Runs on fresh brokers, one after the other; their latencies are
    /// pooled.
    pub repeats: u32,
}

impl PacedPlan {
    /// Tasks per second the agents offer: every agent's slots once per
    /// mean cycle.
    pub fn offered(&self, agents: &AgentPlan) -> f64 {
        agents.agents as f64 * f64::from(agents.slots) / self.task_time.as_secs_f64()
    }

    /// Tasks done before the window opens: a fifth of it.
    pub fn warmup(&self) -> u64 {
        self.window / 5
    }

    /// `plan` with this phase's agents and window.
    pub(crate) fn apply(&self, plan: &DispatchPlan) -> DispatchPlan {
        DispatchPlan {
            agents: AgentPlan {
                task_time: self.task_time,
                ..plan.agents
            },
            queue_warmup: self.warmup(),
            queue_window: self.window,
            ..plan.clone()
        }
    }
}

/// Everything the bench needs that is the same in every phase.
#[derive(Debug)]
pub(crate) struct Fixture {
    pub(crate) module: Vec<u8>,
    pub(crate) reply: Arc<Reply>,
}

/// Runs every phase of `plan` and returns the figures.
pub fn run(plan: &DispatchPlan) -> Result<DispatchReport> {
    eprintln!("building guest programs (no-op when up to date)…");
    let echo = crate::tasks::load("echo")?;
    let fixture = Fixture {
        module: echo.bytes().to_vec(),
        reply: Arc::new(calibrate(&echo)?),
    };
    std::fs::create_dir_all(&plan.work_dir)
        .with_context(|| format!("create {}", plan.work_dir.display()))?;
    let plan = &DispatchPlan {
        broker: release_build::copy_to_work_dir(&plan.broker, &plan.work_dir, "wasmgrid-broker")?,
        ..plan.clone()
    };
    // Every phase's commits are synced: none should wait behind the
    // writeback of the copy just made.
    crate::machine::write_back_dirty_pages();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    let mut report = runtime.block_on(run_phases(plan, &fixture))?;
    // The commit the broker was built from, and whether its sources had
    // uncommitted changes.
    report.source = release_build::source_description(&["broker", "proto", "runtime"]);
    Ok(report)
}

/// Runs `echo` once on an input of the bench's length: what every
/// simulated report says.
fn calibrate(echo: &wasmgrid_runtime::TaskModule) -> Result<Reply> {
    let runtime = Runtime::new(RuntimeConfig::default()).context("start a sandbox")?;
    let input = issuer::input(0);
    let run = crate::tasks::run(&runtime, echo, &input, &issuer::limits())?;
    if run.outcome.output != input {
        bail!("echo did not output its input");
    }
    Ok(Reply {
        usage: run.outcome.usage,
    })
}

async fn run_phases(plan: &DispatchPlan, fixture: &Fixture) -> Result<DispatchReport> {
    let started = Instant::now();
    // The sizes take turns (10⁴, 10⁵, 10⁶, 10⁴, …) so that the machine's
    // drift over the minutes of the phase hits every size alike instead
    // of one block of runs.
    let mut runs: Vec<Vec<QueuePoint>> = plan.queue_sizes.iter().map(|_| Vec::new()).collect();
    for repeat in 1..=plan.queue_repeats {
        for (&queued, runs) in plan.queue_sizes.iter().zip(&mut runs) {
            eprintln!(
                "queue length {queued}, run {repeat} of {}: submit {queued} and {} more with the agents idle, then measure {} tasks after {}…",
                plan.queue_repeats,
                plan.queue_extra_tasks(),
                plan.queue_window,
                plan.queue_warmup
            );
            let (point, _) = queue_phase(plan, fixture, queued).await?;
            eprintln!(
                "  {:.0} tasks/s over {:.1} s",
                point.tasks_per_second(),
                point.window.as_secs_f64()
            );
            runs.push(point);
        }
    }
    let queue = runs
        .into_iter()
        .map(QueuePoint::median)
        .collect::<Result<Vec<_>>>()?;
    let paced = match &plan.paced {
        Some(paced) => Some(paced_phase(plan, paced, fixture).await?),
        None => None,
    };
    let mut end_to_end = Vec::new();
    for &replicas in &plan.replicas {
        if let Some(rate) = best_rate(&queue, &end_to_end) {
            let runs = plan.tasks * u64::from(replicas);
            eprintln!(
                "end to end, r={replicas}: {} tasks ({runs} runs); at {rate:.0} runs/s measured so far, about {}",
                plan.tasks,
                minutes(runs as f64 / rate)
            );
        } else {
            eprintln!("end to end, r={replicas}: {} tasks…", plan.tasks);
        }
        let run = end_to_end_phase(plan, fixture, replicas).await?;
        eprintln!(
            "  {:.0} tasks/s ({} tasks in {:.1} s)",
            run.tasks_per_second(),
            run.done,
            run.elapsed.as_secs_f64()
        );
        end_to_end.push(run);
    }
    Ok(DispatchReport {
        machine: Machine::describe(),
        plan: plan.clone(),
        queue,
        paced,
        end_to_end,
        took: started.elapsed(),
        source: String::new(),
    })
}

/// Runs (task reports) per second measured so far, for the forecast.
fn best_rate(queue: &[QueuePoint], end_to_end: &[EndToEnd]) -> Option<f64> {
    end_to_end
        .iter()
        .map(|run| run.progress.counted as f64 / run.elapsed.as_secs_f64())
        .chain(queue.iter().map(QueuePoint::tasks_per_second))
        .filter(|rate| rate.is_finite() && *rate > 0.0)
        .reduce(f64::max)
}

/// A fresh, empty data dir for a phase.
pub(crate) fn fresh_dir(plan: &DispatchPlan, name: &str) -> Result<PathBuf> {
    let dir = plan.work_dir.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    Ok(dir)
}

pub(crate) fn clean_up(plan: &DispatchPlan, dir: &Path) {
    if !plan.keep {
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_file(dir.with_extension("log"));
    }
}

/// Submits `tasks` tasks with inputs from `first` on, as workloads of at
/// most `plan.workload_tasks`, one after the other.
pub(crate) async fn submit_all(
    issuer: &mut Issuer,
    plan: &DispatchPlan,
    first: u64,
    tasks: u64,
    replicas: u32,
) -> Result<Vec<Submitted>> {
    let mut submitted = Vec::new();
    let end = first + tasks;
    let mut next = first;
    while next < end {
        let count = plan.workload_tasks.min(end - next);
        let name = format!("dispatch-bench-{next}");
        submitted.push(issuer.submit(name, next, count, replicas).await?);
        next += count;
    }
    Ok(submitted)
}
