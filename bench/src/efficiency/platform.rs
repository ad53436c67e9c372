//! One platform round: a fresh release broker and one release agent on this
//! machine, the workload submitted as an issuer would, and the time from
//! the submit to the end result in hand.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use wasmgrid_proto::status_from_wire;
use wasmgrid_proto::submission::Workload;
use wasmgrid_proto::v1::result_item::Item;
use wasmgrid_proto::v1::{self, WorkloadState, WorkloadStatus};

use crate::dispatch::broker::{BrokerProcess, own_cpu_ticks, process_cpu_ticks, ticks_to_duration};
use crate::efficiency::grid::{AgentProcess, Clients};
use crate::efficiency::{EfficiencyPlan, Job};
use crate::machine::machine_cpu_ticks;
use crate::stats::nanos;

/// The issuer the bench's workloads belong to (the admin token acts for it).
const ISSUER: &str = "efficiency-bench";

/// A round fails when the workload's status does not change for this long:
/// longer than any task may run (the wall-time limit of `Job::limits`).
const STALL_TIMEOUT: Duration = Duration::from_secs(660);

/// How often the watcher checks that the broker and the agent still run.
const LIVENESS_POLL: Duration = Duration::from_millis(500);

/// One platform round's figures.
#[derive(Clone, Debug)]
pub struct PlatformRun {
    /// `SubmitWorkload` opened to the end result received by the issuer.
    pub wall: Duration,
    /// The `SubmitWorkload` stream, opened to answered.
    pub submit: Duration,
    /// The workload's `created` to `finished`, as the broker recorded them
    /// (its clock, millisecond steps).
    pub broker_span: Option<Duration>,
    /// The workload finished (as the watcher saw it) to the end result
    /// received.
    pub fetch: Duration,
    /// Agent process started to registered.
    pub registered_in: Duration,
    /// The reducer's end result.
    pub total: u64,
    /// The tasks' own counts, summed by the bench.
    pub task_total: u64,
    pub tasks_done: u32,
    /// Σ of every task's `Usage::wall_time` as the agent reported it (the
    /// sandbox's own measurement, whole milliseconds).
    pub sandbox: Duration,
    /// Σ of every task's fuel.
    pub fuel: u64,
    pub slots: usize,
    /// CPU over the timed window, when the OS tells.
    pub broker_cpu: Option<Duration>,
    pub agent_cpu: Option<Duration>,
    /// This process: the issuer's client (and the idle tokio runtime).
    pub issuer_cpu: Option<Duration>,
    /// Share of the machine's CPU everything but the bench, the broker and
    /// the agent took over the window.
    pub foreign_share: Option<f64>,
    /// What the agent was paid and the broker's fee.
    pub paid_micro: i64,
    pub fee_micro: i64,
    /// The leases, as the broker recorded them (after the window).
    pub leases: Option<Leases>,
}

/// The workload's leases on the broker's clock (milliseconds): when the
/// slots held a task, and when not.
#[derive(Clone, Copy, Debug)]
pub struct Leases {
    /// Runs leased (more than the tasks when a lease was retried).
    pub count: usize,
    /// Workload created to the first lease.
    pub first_lease: Duration,
    /// The last report to the workload finished (the reducer and the
    /// aggregation).
    pub last_report_to_finished: Duration,
    /// First lease to last report.
    pub span: Duration,
    /// Σ lease to report of every run: the sandbox's time plus fetching and
    /// compiling the module and the report's trip (the agent frees the slot
    /// when the run ends, before the report is acknowledged).
    pub held: Duration,
}

impl Leases {
    /// Leases open at once on average, first lease to last report: above
    /// the slots by the reports in flight.
    pub fn mean_open(&self) -> f64 {
        self.held.as_secs_f64() / self.span.as_secs_f64().max(1e-3)
    }

    fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "created_to_first_lease_ns": nanos(self.first_lease),
            "last_report_to_finished_ns": nanos(self.last_report_to_finished),
            "first_lease_to_last_report_ns": nanos(self.span),
            "held_sum_ns": nanos(self.held),
            "mean_open": self.mean_open(),
        })
    }
}

impl PlatformRun {
    /// Share of the slots' wall time spent running tasks in the sandbox.
    pub fn occupancy(&self) -> f64 {
        self.sandbox.as_secs_f64() / (self.wall.as_secs_f64() * self.slots as f64)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "wall_ns": nanos(self.wall),
            "submit_ns": nanos(self.submit),
            "broker_created_to_finished_ns": self.broker_span.map(nanos),
            "finished_to_result_ns": nanos(self.fetch),
            "agent_registered_in_ns": nanos(self.registered_in),
            "total": self.total,
            "task_total": self.task_total,
            "tasks_done": self.tasks_done,
            "sandbox_time_sum_ns": nanos(self.sandbox),
            "fuel": self.fuel,
            "slots": self.slots,
            "occupancy": self.occupancy(),
            "broker_cpu_ns": self.broker_cpu.map(nanos),
            "agent_cpu_ns": self.agent_cpu.map(nanos),
            "issuer_cpu_ns": self.issuer_cpu.map(nanos),
            "foreign_cpu_share": self.foreign_share,
            "paid_micro": self.paid_micro,
            "fee_micro": self.fee_micro,
            "leases": self.leases.map(Leases::to_json),
        })
    }
}

/// CPU counters at one instant, in clock ticks.
#[derive(Clone, Copy, Debug)]
struct Reading {
    machine: Option<(u64, u64)>,
    own: Option<f64>,
    broker: Option<f64>,
    agent: Option<f64>,
}

impl Reading {
    fn now(broker: u32, agent: u32) -> Self {
        Reading {
            machine: machine_cpu_ticks(),
            own: own_cpu_ticks(),
            broker: process_cpu_ticks(broker),
            agent: process_cpu_ticks(agent),
        }
    }
}

fn delta(now: Option<f64>, then: Option<f64>) -> Option<f64> {
    now.zip(then).map(|(now, then)| now - then)
}

/// Runs round `round`: starts the grid in `plan.work_dir/platform-ROUND`,
/// runs `job` on it, stops it.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    plan: &EfficiencyPlan,
    job: &Job,
    round: usize,
) -> Result<PlatformRun> {
    let dir = plan.work_dir.join(format!("platform-{round}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    let mut broker = BrokerProcess::start(&plan.broker, &dir.join("broker"))?;
    let mut agent = AgentProcess::start(
        &plan.agent,
        &broker.url(),
        &dir.join("agent"),
        "efficiency-bench",
        plan.slots,
        job.agent_memory_mib(plan.slots),
    )?;
    let result = runtime.block_on(measure(plan, job, &mut broker, &mut agent));
    let result = result.map_err(|error| {
        anyhow!(
            "{error:#}\n--- agent log ---\n{}\n--- broker log ---\n{}",
            agent.log_tail(),
            broker.log_tail()
        )
    });
    drop(agent);
    drop(broker);
    if !plan.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn measure(
    plan: &EfficiencyPlan,
    job: &Job,
    broker: &mut BrokerProcess,
    agent: &mut AgentProcess,
) -> Result<PlatformRun> {
    let mut clients = Clients::connect(&broker.url()).await?;
    let registered_in = clients.wait_for_agent(agent).await?;
    clients.grant(ISSUER, job.grant_micro()?).await?;
    let requests = Workload {
        name: job.name(),
        issuer: ISSUER.to_owned(),
        module: job.module.clone(),
        reducer: Some(job.reducer.clone()),
        inputs: job.inputs()?,
        limits: job.limits(),
        replicas: 1,
        quorum: 0,
        adaptive_replication: false,
        max_attempts: 3,
        credits_per_fuel: job.credits_per_fuel,
        credits_per_mib_second: 0.0,
    }
    .into_requests()
    .context("build the submission")?;

    // The timed window: submit to end result.
    let before = Reading::now(broker.pid(), agent.pid());
    let started = Instant::now();
    let workload_id = clients
        .issuer
        .submit_workload(tokio_stream::iter(requests))
        .await
        .map_err(|status| anyhow!("SubmitWorkload failed: {status}"))?
        .into_inner()
        .workload_id;
    let submit = started.elapsed();
    let status = follow(&mut clients, &workload_id, broker, agent).await?;
    let finished = Instant::now();
    let fetched = fetch(&mut clients, &workload_id).await?;
    let wall = started.elapsed();
    let after = Reading::now(broker.pid(), agent.pid());
    // End of the timed window.

    if status.state() != WorkloadState::Done {
        let failures: Vec<String> = status
            .failures
            .iter()
            .take(5)
            .map(|f| format!("task {}: {}", f.index, f.reason))
            .collect();
        bail!(
            "workload {workload_id} ended {:?}: {} {}",
            status.state(),
            status.error,
            failures.join("; ")
        );
    }
    let end = fetched
        .end
        .ok_or_else(|| anyhow!("workload {workload_id} is done but sent no reduced result"))?;
    let text = String::from_utf8_lossy(&end);
    let total: u64 = text
        .trim()
        .parse()
        .with_context(|| format!("the reducer's result '{text}' is not a number"))?;
    let leases = leases(&mut clients, &workload_id, &status).await?;
    let bill = clients
        .issuer
        .get_status(v1::WorkloadRequest {
            workload_id: workload_id.clone(),
        })
        .await
        .map_err(|status| anyhow!("GetStatus failed: {status}"))?
        .into_inner()
        .bill
        .unwrap_or_default();

    let broker_cpu = delta(after.broker, before.broker);
    let agent_cpu = delta(after.agent, before.agent);
    let own_cpu = delta(after.own, before.own);
    let foreign_share = after
        .machine
        .zip(before.machine)
        .zip(broker_cpu.zip(agent_cpu).zip(own_cpu))
        .and_then(
            |(((busy, total), (busy0, total0)), ((broker, agent), own))| {
                let total = total.saturating_sub(total0) as f64;
                let busy = busy.saturating_sub(busy0) as f64;
                (total > 0.0).then(|| ((busy - broker - agent - own) / total).clamp(0.0, 1.0))
            },
        );
    let broker_span = (status.finished_unix_ms >= status.created_unix_ms
        && status.finished_unix_ms > 0)
        .then(|| {
            Duration::from_millis(
                u64::try_from(status.finished_unix_ms - status.created_unix_ms).unwrap_or(0),
            )
        });
    Ok(PlatformRun {
        wall,
        submit,
        broker_span,
        fetch: wall.saturating_sub(finished.duration_since(started)),
        registered_in,
        total,
        task_total: fetched.task_total,
        tasks_done: status.done,
        sandbox: fetched.sandbox,
        fuel: fetched.fuel,
        slots: plan.slots,
        broker_cpu: broker_cpu.map(ticks_to_duration),
        agent_cpu: agent_cpu.map(ticks_to_duration),
        issuer_cpu: own_cpu.map(ticks_to_duration),
        foreign_share,
        paid_micro: bill.paid_micro,
        fee_micro: bill.fee_micro,
        leases,
    })
}

/// The leases of the workload from `ListTasks`, on the broker's clock.
async fn leases(
    clients: &mut Clients,
    workload_id: &str,
    status: &WorkloadStatus,
) -> Result<Option<Leases>> {
    let tasks = clients
        .issuer
        .list_tasks(v1::WorkloadRequest {
            workload_id: workload_id.to_owned(),
        })
        .await
        .map_err(|status| anyhow!("ListTasks failed: {status}"))?
        .into_inner()
        .tasks;
    let attempts: Vec<(i64, i64)> = tasks
        .iter()
        .flat_map(|task| &task.history)
        .filter(|attempt| attempt.ended_unix_ms >= attempt.started_unix_ms)
        .map(|attempt| (attempt.started_unix_ms, attempt.ended_unix_ms))
        .collect();
    let (Some(first), Some(last)) = (
        attempts.iter().map(|a| a.0).min(),
        attempts.iter().map(|a| a.1).max(),
    ) else {
        return Ok(None);
    };
    let ms = |from: i64, to: i64| Duration::from_millis(u64::try_from(to - from).unwrap_or(0));
    Ok(Some(Leases {
        count: attempts.len(),
        first_lease: ms(status.created_unix_ms, first),
        last_report_to_finished: ms(last, status.finished_unix_ms),
        span: ms(first, last),
        held: attempts.iter().map(|&(start, end)| ms(start, end)).sum(),
    }))
}

/// Follows `WatchProgress` until the workload ends; fails when the broker
/// or the agent exits, or nothing changes for [`STALL_TIMEOUT`].
async fn follow(
    clients: &mut Clients,
    workload_id: &str,
    broker: &mut BrokerProcess,
    agent: &mut AgentProcess,
) -> Result<WorkloadStatus> {
    let mut stream = clients
        .issuer
        .watch_progress(v1::WorkloadRequest {
            workload_id: workload_id.to_owned(),
        })
        .await
        .map_err(|status| anyhow!("WatchProgress failed: {status}"))?
        .into_inner();
    let mut last_change = Instant::now();
    let mut tick = tokio::time::interval(LIVENESS_POLL);
    loop {
        tokio::select! {
            message = stream.message() => {
                let status = message
                    .map_err(|status| anyhow!("the progress stream broke: {status}"))?
                    .ok_or_else(|| anyhow!("the progress stream closed before the workload ended"))?;
                last_change = Instant::now();
                if status.state() != WorkloadState::Running {
                    return Ok(status);
                }
            }
            _ = tick.tick() => {
                broker.check_alive()?;
                agent.check_alive()?;
                if last_change.elapsed() > STALL_TIMEOUT {
                    bail!(
                        "workload {workload_id}: no progress for {} s",
                        STALL_TIMEOUT.as_secs()
                    );
                }
            }
        }
    }
}

/// What `FetchResults` brought.
#[derive(Debug, Default)]
struct Fetched {
    end: Option<Vec<u8>>,
    task_total: u64,
    sandbox: Duration,
    fuel: u64,
}

/// Streams `FetchResults`: every task's result (checked `Ok`, its count
/// and usage summed) and the reducer's end result.
async fn fetch(clients: &mut Clients, workload_id: &str) -> Result<Fetched> {
    let mut stream = clients
        .issuer
        .fetch_results(v1::WorkloadRequest {
            workload_id: workload_id.to_owned(),
        })
        .await
        .map_err(|status| anyhow!("FetchResults failed: {status}"))?
        .into_inner();
    let mut fetched = Fetched::default();
    while let Some(item) = stream
        .message()
        .await
        .map_err(|status| anyhow!("FetchResults broke: {status}"))?
    {
        match item.item {
            Some(Item::Task(task)) => {
                let status = status_from_wire(task.status.as_ref())
                    .map_err(|error| anyhow!("task {}: {error}", task.index))?;
                if !status.is_ok() {
                    bail!("task {} ended {status}", task.index);
                }
                let text = String::from_utf8_lossy(&task.output);
                let count: u64 = text.trim().parse().with_context(|| {
                    format!("task {} output '{text}' is not a number", task.index)
                })?;
                fetched.task_total += count;
                if let Some(usage) = task.usage {
                    fetched.sandbox += Duration::from_millis(usage.wall_time_ms);
                    fetched.fuel += usage.fuel_consumed;
                }
            }
            Some(Item::End(end)) if end.reduced => fetched.end = Some(end.output),
            _ => {}
        }
    }
    Ok(fetched)
}
