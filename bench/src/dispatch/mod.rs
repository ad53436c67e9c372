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
//!   tasks with the agents idle, then the agents start, and tasks per second
//!   is measured over a window of the drain (the same number of tasks for
//!   every Q, after a warm-up), so the figures at 10⁴, 10⁵, 10⁶ compare.
//!
//! # Layout
//! - `broker`: the broker child process, its CPU, memory and store size.
//! - `agents`: the simulated agents.
//! - `issuer`: submitting and following workloads.
//! - `latency`: per-RPC latency samples.
//! - `cpu`: who used the machine during a window.
//! - `report`: the tables, the targets and the JSON.

mod agents;
mod broker;
mod cpu;
mod issuer;
mod latency;
mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use wasmgrid_runtime::{Runtime, RuntimeConfig};

pub use self::agents::AgentPlan;
use self::agents::{Progress, Reply, Swarm};
pub use self::broker::build_release_broker;
use self::broker::{BrokerProcess, Io, Memory, StoreSize};
use self::cpu::{CpuReading, CpuSplit};
pub use self::issuer::limits as task_limits;
use self::issuer::{Issuer, Submitted};
use self::latency::{Latencies, LatencySummary};
pub use self::report::DispatchReport;
use crate::machine::Machine;

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
    /// A phase fails when no report arrives for this long.
    pub stall_timeout: Duration,
    /// Where the brokers' data dirs and logs go (kept with `keep`).
    pub work_dir: PathBuf,
    pub keep: bool,
    pub broker: PathBuf,
    /// How the broker binary was chosen, for the report.
    pub broker_origin: String,
}

/// One end-to-end run.
#[derive(Clone, Debug)]
pub struct EndToEnd {
    pub replicas: u32,
    pub submitted: Vec<Submitted>,
    /// First submit sent to the last workload finished.
    pub elapsed: Duration,
    pub done: u64,
    pub failed: u64,
    pub progress: Progress,
    pub registered_in: Duration,
    pub latencies: Vec<LatencySummary>,
    /// CPU from the first submit to the moment the bench saw every
    /// workload final.
    pub cpu: CpuSplit,
    /// The broker's I/O over the same window.
    pub io: Option<Io>,
    pub memory: Option<Memory>,
    pub store: StoreSize,
    pub errors: Vec<String>,
}

impl EndToEnd {
    pub fn tasks(&self) -> u64 {
        self.submitted.iter().map(|s| s.tasks).sum()
    }

    pub fn tasks_per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }

    pub fn submit_time(&self) -> Duration {
        self.submitted.iter().map(|s| s.took).sum()
    }

    /// Tasks per second of the submits alone (their own time, summed).
    pub fn submit_rate(&self) -> f64 {
        self.tasks() as f64 / self.submit_time().as_secs_f64()
    }
}

/// One queue-length phase.
#[derive(Clone, Debug)]
pub struct QueuePoint {
    pub queued: u64,
    pub submitted: Vec<Submitted>,
    /// Broker memory and store once the Q tasks are queued, agents idle.
    pub memory_queued: Option<Memory>,
    pub store_queued: StoreSize,
    /// Tasks done in the window, and its length.
    pub window_tasks: u64,
    pub window: Duration,
    pub latencies: Vec<LatencySummary>,
    pub cpu: CpuSplit,
    /// The broker's I/O during the window.
    pub io: Option<Io>,
    pub errors: Vec<String>,
    pub progress: Progress,
}

impl QueuePoint {
    pub fn tasks_per_second(&self) -> f64 {
        self.window_tasks as f64 / self.window.as_secs_f64()
    }

    pub fn submit_time(&self) -> Duration {
        self.submitted.iter().map(|s| s.took).sum()
    }
}

/// Everything the bench needs that is the same in every phase.
#[derive(Debug)]
struct Fixture {
    module: Vec<u8>,
    reply: Arc<Reply>,
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
    // Every phase runs this copy: a `cargo build` of someone else's broker
    // change during the run cannot swap the binary between phases.
    let broker = plan.work_dir.join("wasmgrid-broker");
    std::fs::copy(&plan.broker, &broker)
        .with_context(|| format!("copy {} to {}", plan.broker.display(), broker.display()))?;
    let plan = &DispatchPlan {
        broker,
        ..plan.clone()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    let mut report = runtime.block_on(run_phases(plan, &fixture))?;
    report.source = source_description();
    Ok(report)
}

/// The commit the broker was built from, and whether its sources (broker,
/// proto, runtime) had uncommitted changes, as `git` tells.
fn source_description() -> String {
    let repo = wasmgrid_sample_tasks::repo_root();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (no git)".to_owned();
    };
    let changed = git(&[
        "status",
        "--porcelain",
        "--",
        "broker",
        "proto",
        "runtime",
        "Cargo.toml",
    ])
    .unwrap_or_default();
    let files = changed.lines().count();
    if files == 0 {
        format!("commit {commit}")
    } else {
        format!("commit {commit} + {files} uncommitted files in broker/, proto/, runtime/")
    }
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
    let mut queue = Vec::new();
    for &queued in &plan.queue_sizes {
        eprintln!(
            "queue length {queued}: submit with the agents idle, then measure {} tasks after {}…",
            plan.queue_window, plan.queue_warmup
        );
        let point = queue_phase(plan, fixture, queued).await?;
        eprintln!(
            "  {:.0} tasks/s over {:.1} s",
            point.tasks_per_second(),
            point.window.as_secs_f64()
        );
        queue.push(point);
    }
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

/// "about 3.2 min".
pub fn minutes(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 2.0 * 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// A fresh, empty data dir for a phase.
fn fresh_dir(plan: &DispatchPlan, name: &str) -> Result<PathBuf> {
    let dir = plan.work_dir.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    Ok(dir)
}

fn clean_up(plan: &DispatchPlan, dir: &Path) {
    if !plan.keep {
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_file(dir.with_extension("log"));
    }
}

/// Submits `tasks` tasks from input `first` on, as workloads of at most
/// `plan.workload_tasks`, one after the other.
async fn submit_all(
    issuer: &mut Issuer,
    plan: &DispatchPlan,
    tasks: u64,
    replicas: u32,
) -> Result<Vec<Submitted>> {
    let mut submitted = Vec::new();
    let mut first = 0;
    while first < tasks {
        let count = plan.workload_tasks.min(tasks - first);
        let name = format!("dispatch-bench-{}", submitted.len());
        submitted.push(issuer.submit(name, first, count, replicas).await?);
        first += count;
    }
    Ok(submitted)
}

/// Watches the agents' progress: fails the phase when the broker dies or
/// nothing is reported for `plan.stall_timeout`; prints progress.
struct Watch {
    label: String,
    last: Progress,
    last_change: Instant,
    last_print: Instant,
    printed: Progress,
    /// CPU at the last print, for the split since.
    printed_cpu: Option<CpuReading>,
}

/// How often progress is printed.
const PRINT_EVERY: Duration = Duration::from_secs(10);
/// How often the monitor looks at the counters.
const POLL: Duration = Duration::from_millis(5);

impl Watch {
    fn new(label: String) -> Self {
        Watch {
            label,
            last: Progress::default(),
            last_change: Instant::now(),
            last_print: Instant::now(),
            printed: Progress::default(),
            printed_cpu: None,
        }
    }

    fn check(&mut self, broker: &mut BrokerProcess, swarm: &Swarm, stall: Duration) -> Result<()> {
        broker.check_alive()?;
        let now = swarm.progress();
        if now.reports != self.last.reports || now.requests != self.last.requests {
            if now.reports != self.last.reports {
                self.last_change = Instant::now();
            }
            self.last = now;
        }
        if self.last_change.elapsed() > stall {
            bail!(
                "{}: no report for {:?} (progress {:?}; agent errors: {:?})\nbroker log:\n{}",
                self.label,
                stall,
                now,
                swarm.errors(),
                broker.log_tail()
            );
        }
        if self.last_print.elapsed() >= PRINT_EVERY {
            let seconds = self.last_print.elapsed().as_secs_f64();
            let cpu_now = CpuReading::now(broker.pid());
            let load = self
                .printed_cpu
                .map(|earlier| {
                    let split = cpu_now.since(&earlier);
                    format!(
                        ", broker {:.2} cores, others {:.0} %",
                        split.cores(split.broker).unwrap_or(0.0),
                        split.foreign_share.unwrap_or(0.0) * 100.0
                    )
                })
                .unwrap_or_default();
            eprintln!(
                "  {}: {} reports ({:.0}/s), {} idle requests, {} errors{load}",
                self.label,
                now.reports,
                (now.reports - self.printed.reports) as f64 / seconds,
                now.idle_requests,
                now.errors
            );
            self.printed = now;
            self.printed_cpu = Some(cpu_now);
            self.last_print = Instant::now();
        }
        Ok(())
    }
}

fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn end_to_end_phase(
    plan: &DispatchPlan,
    fixture: &Fixture,
    replicas: u32,
) -> Result<EndToEnd> {
    let dir = fresh_dir(plan, &format!("end-to-end-r{replicas}"))?;
    let mut broker = BrokerProcess::start(&plan.broker, &dir)?;
    let url = broker.url();
    let swarm = Swarm::register(&url, plan.agents, Arc::clone(&fixture.reply)).await?;
    let mut submitter = Issuer::connect(&url, fixture.module.clone()).await?;
    let mut follower = Issuer::connect(&url, Vec::new()).await?;
    swarm.record_latencies(true);
    let cpu_start = CpuReading::now(broker.pid());
    let io_start = broker.io();
    let start_ms = unix_ms(SystemTime::now());
    swarm.go();
    let submitting = {
        let plan = plan.clone();
        tokio::spawn(async move {
            let submitted = submit_all(&mut submitter, &plan, plan.tasks, replicas).await;
            (submitter, submitted)
        })
    };
    let mut watch = Watch::new(format!("r={replicas}"));
    while !submitting.is_finished() {
        watch.check(&mut broker, &swarm, plan.stall_timeout)?;
        tokio::time::sleep(POLL).await;
    }
    let (submitter, submitted) = submitting.await.context("the submitting task panicked")?;
    let submitted = submitted?;
    // Reading a workload's status counts its tasks in the store: poll it
    // only once the agents have reported every run wanted, or every few
    // seconds in case some runs were lost (expired leases run again).
    let runs_wanted = plan.tasks * u64::from(replicas);
    let mut open: Vec<&Submitted> = submitted.iter().collect();
    let (mut done, mut failed, mut finished_ms) = (0u64, 0u64, start_ms);
    let mut last_poll = Instant::now();
    while !open.is_empty() {
        watch.check(&mut broker, &swarm, plan.stall_timeout)?;
        let all_reported = swarm.progress().counted >= runs_wanted;
        if all_reported || last_poll.elapsed() > Duration::from_secs(5) {
            last_poll = Instant::now();
            let mut still_open = Vec::new();
            for workload in open {
                let status = follower.status(&workload.workload_id).await?;
                if issuer::is_final(&status) {
                    done += u64::from(status.done);
                    failed += u64::from(status.failed);
                    finished_ms = finished_ms.max(status.finished_unix_ms);
                } else {
                    still_open.push(workload);
                }
            }
            open = still_open;
            if !open.is_empty() && all_reported {
                // Every run is in: the last tasks settle now.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } else {
            tokio::time::sleep(POLL).await;
        }
    }
    let cpu = CpuReading::now(broker.pid()).since(&cpu_start);
    let io = broker
        .io()
        .zip(io_start)
        .map(|(now, then)| now.since(&then));
    let memory = broker.memory();
    let store = broker.store_size();
    let errors = swarm.errors();
    let progress = swarm.progress();
    let registered_in = swarm.registered_in;
    let mut latencies = swarm.registration.clone();
    latencies.merge(swarm.stop().await?);
    latencies.merge(submitter.latencies);
    latencies.merge(follower.latencies);
    drop(broker);
    clean_up(plan, &dir);
    let elapsed_ms = u64::try_from(finished_ms - start_ms).unwrap_or(0).max(1);
    Ok(EndToEnd {
        replicas,
        submitted,
        elapsed: Duration::from_millis(elapsed_ms),
        done,
        failed,
        progress,
        registered_in,
        latencies: latencies.summarise(),
        cpu,
        io,
        memory,
        store,
        errors,
    })
}

async fn queue_phase(plan: &DispatchPlan, fixture: &Fixture, queued: u64) -> Result<QueuePoint> {
    let dir = fresh_dir(plan, &format!("queue-{queued}"))?;
    let mut broker = BrokerProcess::start(&plan.broker, &dir)?;
    let url = broker.url();
    let swarm = Swarm::register(&url, plan.agents, Arc::clone(&fixture.reply)).await?;
    let mut issuer = Issuer::connect(&url, fixture.module.clone()).await?;
    let submitted = submit_all(&mut issuer, plan, queued, 1).await?;
    let memory_queued = broker.memory();
    let store_queued = broker.store_size();
    let warmup = plan.queue_warmup;
    let end = warmup + plan.queue_window;
    if end > queued {
        bail!(
            "the queue-length window ({warmup} + {} tasks) is larger than the queue of {queued}",
            plan.queue_window
        );
    }
    let mut watch = Watch::new(format!("queue {queued}"));
    swarm.go();
    while swarm.progress().counted < warmup {
        watch.check(&mut broker, &swarm, plan.stall_timeout)?;
        tokio::time::sleep(POLL).await;
    }
    swarm.record_latencies(true);
    let cpu_start = CpuReading::now(broker.pid());
    let io_start = broker.io();
    let counted_start = swarm.progress().counted;
    while swarm.progress().counted < end {
        watch.check(&mut broker, &swarm, plan.stall_timeout)?;
        tokio::time::sleep(POLL).await;
    }
    swarm.record_latencies(false);
    let cpu = CpuReading::now(broker.pid()).since(&cpu_start);
    let io = broker
        .io()
        .zip(io_start)
        .map(|(now, then)| now.since(&then));
    let progress = swarm.progress();
    let window_tasks = progress.counted - counted_start;
    let errors = swarm.errors();
    let latencies: Latencies = swarm.stop().await?;
    drop(broker);
    clean_up(plan, &dir);
    Ok(QueuePoint {
        queued,
        submitted,
        memory_queued,
        store_queued,
        window_tasks,
        window: cpu.wall,
        latencies: latencies.summarise(),
        cpu,
        io,
        errors,
        progress,
    })
}
