//! The figures of one `dispatch` run: tables on stdout, the targets with
//! measured value, target and ratio, and JSON for `--json`.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::dispatch::broker::{Io, Memory, StoreSize};
use crate::dispatch::latency::{LatencySummary, Rpc, find};
use crate::dispatch::{DispatchPlan, EndToEnd, PacedRuns, QueuePoint};
use crate::machine::Machine;
use crate::stats::{human, minutes};
use crate::targets::{
    self, MAX_DISPATCH_P99_MILLIS, MAX_QUEUE_LENGTH_SPREAD, MAX_QUEUED_RSS_BYTES,
    MIN_DISPATCH_TASKS_PER_SECOND, TARGET_QUEUED_TASKS, Target,
};

/// The task count the issue's figures are about, for the forecasts.
const MILLION: f64 = 1_000_000.0;

/// Everything one `dispatch` run measured.
#[derive(Clone, Debug)]
pub struct DispatchReport {
    pub machine: Machine,
    pub plan: DispatchPlan,
    pub queue: Vec<QueuePoint>,
    /// The phase below saturation (`plan.paced`), if it ran.
    pub paced: Option<PacedRuns>,
    pub end_to_end: Vec<EndToEnd>,
    pub took: Duration,
    /// The commit the broker was built from (and uncommitted changes).
    pub source: String,
}

impl DispatchReport {
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_header(&mut out);
        self.render_queue(&mut out);
        self.render_paced(&mut out);
        self.render_end_to_end(&mut out);
        self.render_targets(&mut out);
        out
    }

    fn render_header(&self, out: &mut String) {
        let p = &self.plan;
        self.machine
            .render_header(out, "broker dispatch", p.quick, Some(self.took));
        let _ = writeln!(
            out,
            "broker: {} {}, on 127.0.0.1, plain gRPC, embedded SQLite (WAL, acknowledged changes synced), \
             settings as shipped",
            p.broker_origin, self.source
        );
        let _ = writeln!(
            out,
            "agents: {} simulated in this process, {} slots each, own connection, registration and token; \
             tasks not run{}",
            p.agents.agents,
            p.agents.slots,
            if p.agents.task_time.is_zero() {
                String::new()
            } else {
                format!(" ({} per cycle instead)", human(p.agents.task_time))
            }
        );
        let _ = writeln!(
            out,
            "workloads: `echo` over 12-byte inputs, free (no ledger postings), at most {} tasks per submitted workload",
            p.workload_tasks
        );
        let _ = writeln!(
            out,
            "CPU columns: cores' worth used by the broker and by this load generator, and the share of the \
             machine other processes took (figures are only comparable when that is near 0)"
        );
    }

    fn render_queue(&self, out: &mut String) {
        if self.queue.is_empty() {
            return;
        }
        let p = &self.plan;
        let _ = writeln!(
            out,
            "\n1. Queue length: r=1; Q tasks submitted with the agents idle, then {} more (the warm-up's, the window's and the agents' slots' worth), then tasks/s over {} tasks after the first {}: Q tasks wait all through the window",
            p.queue_extra_tasks(),
            p.queue_window,
            p.queue_warmup
        );
        let _ = writeln!(
            out,
            "{:>9} | {:>9} {:>9} | {:>9} {:>9} | {:>9} | {:>8} | {:>9} {:>9} | {:>6} {:>7} {:>6}",
            "queued",
            "submit",
            "tasks/s",
            "RSS",
            "peak RSS",
            "store",
            "tasks/s",
            "disp p50",
            "disp p99",
            "broker",
            "loadgen",
            "others"
        );
        for point in &self.queue {
            let dispatch = find(&point.latencies, Rpc::Dispatch);
            let memory = point.memory_queued.unwrap_or_default();
            let _ = writeln!(
                out,
                "{:>9} | {:>9} {:>9.0} | {:>9} {:>9} | {:>9} | {:>8.0} | {:>9} {:>9} | {:>6} {:>7} {:>6}",
                point.queued,
                human(point.submit_time()),
                point.queued as f64 / point.submit_time().as_secs_f64(),
                mib(memory.rss),
                mib(memory.peak_rss),
                mib(point.store_queued.total),
                point.tasks_per_second(),
                dispatch.map_or("-".into(), |d| human(d.p50)),
                dispatch.map_or("-".into(), |d| human(d.p99)),
                cores(point.cpu.cores(point.cpu.broker)),
                cores(point.cpu.cores(point.cpu.bench)),
                share(point.cpu.foreign_share),
            );
        }
        let _ = writeln!(
            out,
            "  submit, RSS and store for the Q tasks (agents idle); tasks/s and latencies over the window, which starts after a `sync`"
        );
        if self.queue.iter().any(|point| point.run_rates.len() > 1) {
            let runs: Vec<String> = self
                .queue
                .iter()
                .map(|point| {
                    let rates: Vec<String> =
                        point.run_rates.iter().map(|r| format!("{r:.0}")).collect();
                    format!("{}: {}", point.queued, rates.join(" / "))
                })
                .collect();
            let _ = writeln!(
                out,
                "  each row is the median of {} runs on fresh brokers, the sizes taking turns; tasks/s of every run: {}",
                self.plan.queue_repeats,
                runs.join("; ")
            );
        }
        if let Some(spread) = self.queue_spread() {
            let _ = writeln!(
                out,
                "  slowest / fastest: {:.2} (spread {:.0} %)",
                1.0 - spread,
                spread * 100.0
            );
        }
        for point in &self.queue {
            if let Some(io) = point.io {
                let _ = writeln!(
                    out,
                    "  queue {}: broker I/O in the window {}",
                    point.queued,
                    io_per_task(io, point.window_tasks)
                );
            }
            render_errors(out, &format!("queue {}", point.queued), &point.errors);
        }
        if let Some(point) = self.queue.iter().max_by_key(|point| point.queued) {
            self.render_saturated(
                out,
                &format!("{} queued", point.queued),
                point.tasks_per_second(),
                &point.latencies,
            );
        }
    }

    /// The dispatch latency of a saturated phase, beside the queueing it
    /// cannot be less than: each agent always has one cycle going, so by
    /// Little's law a cycle takes agents / (cycles per second) on average.
    fn render_saturated(
        &self,
        out: &mut String,
        phase: &str,
        tasks_per_second: f64,
        latencies: &[LatencySummary],
    ) {
        let agents = &self.plan.agents;
        let Some(dispatch) = find(latencies, Rpc::Dispatch).filter(|_| agents.task_time.is_zero())
        else {
            return;
        };
        let cycles_per_second = tasks_per_second / f64::from(agents.slots);
        let _ = writeln!(
            out,
            "  saturated, {phase}: dispatch p50 {}, p99 {}; every agent always has a cycle going, so a cycle waits \
             for the others: {} agents / {cycles_per_second:.0} cycles/s = {} per cycle on average (Little's law). \
             The latency target is measured below saturation",
            human(dispatch.p50),
            human(dispatch.p99),
            agents.agents,
            human(Duration::from_secs_f64(
                agents.agents as f64 / cycles_per_second.max(f64::MIN_POSITIVE)
            )),
        );
    }

    fn render_paced(&self, out: &mut String) {
        let (Some(runs), Some(paced)) = (&self.paced, &self.plan.paced) else {
            return;
        };
        let _ = writeln!(
            out,
            "\n2. Below saturation: r=1, {} tasks queued (and the window's on top, as above); each agent takes {} (±50 %) over its cycle's tasks, \
             so {} agents offer {:.0} tasks/s; latencies over {} tasks after the first {} in each of {} on fresh brokers, pooled",
            runs.queued(),
            human(paced.task_time),
            self.plan.agents.agents,
            paced.offered(&self.plan.agents),
            paced.window,
            paced.warmup(),
            match runs.runs.len() {
                1 => "1 run".to_owned(),
                n => format!("{n} runs"),
            },
        );
        let _ = writeln!(
            out,
            "{:>9} | {:>8} {:>8} | {:>9} {:>9} {:>9} | {:>6} {:>7} {:>6}",
            "run",
            "offered",
            "tasks/s",
            "disp p50",
            "disp p99",
            "disp max",
            "broker",
            "loadgen",
            "others"
        );
        let offered = paced.offered(&self.plan.agents);
        for (number, point) in runs.runs.iter().enumerate() {
            let dispatch = find(&point.latencies, Rpc::Dispatch);
            let _ = writeln!(
                out,
                "{:>9} | {:>8.0} {:>8.0} | {:>9} {:>9} {:>9} | {:>6} {:>7} {:>6}",
                number + 1,
                offered,
                point.tasks_per_second(),
                dispatch.map_or("-".into(), |d| human(d.p50)),
                dispatch.map_or("-".into(), |d| human(d.p99)),
                dispatch.map_or("-".into(), |d| human(d.max)),
                cores(point.cpu.cores(point.cpu.broker)),
                cores(point.cpu.cores(point.cpu.bench)),
                share(point.cpu.foreign_share),
            );
        }
        if runs.runs.len() > 1 {
            let dispatch = runs.dispatch();
            let _ = writeln!(
                out,
                "{:>9} | {:>8.0} {:>8.0} | {:>9} {:>9} {:>9} |",
                "pooled",
                offered,
                runs.tasks_per_second(),
                dispatch.map_or("-".into(), |d| human(d.p50)),
                dispatch.map_or("-".into(), |d| human(d.p99)),
                dispatch.map_or("-".into(), |d| human(d.max)),
            );
        }
        for (number, point) in runs.runs.iter().enumerate() {
            if let Some(io) = point.io {
                let _ = writeln!(
                    out,
                    "  run {}: broker I/O in the window {}",
                    number + 1,
                    io_per_task(io, point.window_tasks)
                );
            }
            render_errors(out, "below saturation", &point.errors);
        }
        render_latencies(out, &runs.latencies);
    }

    fn render_end_to_end(&self, out: &mut String) {
        if self.end_to_end.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n3. End to end: submits while {} agents work; tasks/s = tasks done / (first submit → last workload finished)",
            self.plan.agents.agents
        );
        let _ = writeln!(
            out,
            "{:>2} | {:>8} {:>8} | {:>9} {:>8} {:>8} | {:>9} {:>9} | {:>9} {:>8} | {:>8} | {:>15} | {:>7} {:>6}",
            "r",
            "tasks",
            "failed",
            "elapsed",
            "tasks/s",
            "runs/s",
            "submit",
            "tasks/s",
            "broker",
            "CPU/task",
            "peak RSS",
            "store (db+wal)",
            "loadgen",
            "others"
        );
        for run in &self.end_to_end {
            let broker_cpu = run.cpu.broker.unwrap_or_default();
            let _ = writeln!(
                out,
                "{:>2} | {:>8} {:>8} | {:>9} {:>8.0} {:>8.0} | {:>9} {:>9.0} | {:>9} {:>8} | {:>8} | {:>15} | {:>7} {:>6}",
                run.replicas,
                run.done,
                run.failed,
                human(run.elapsed),
                run.tasks_per_second(),
                run.progress.counted as f64 / run.elapsed.as_secs_f64(),
                human(run.submit_time()),
                run.submit_rate(),
                format!(
                    "{:.1}s {}",
                    broker_cpu.as_secs_f64(),
                    cores(run.cpu.cores(run.cpu.broker))
                ),
                human(broker_cpu / u32::try_from(run.done.max(1)).unwrap_or(u32::MAX)),
                mib(run.memory.unwrap_or_default().peak_rss),
                store(run.store),
                cores(run.cpu.cores(run.cpu.bench)),
                share(run.cpu.foreign_share),
            );
        }
        let _ = writeln!(
            out,
            "  broker = CPU seconds and cores' worth; CPU/task = broker CPU per task done; store = every file of the data dir"
        );
        for run in &self.end_to_end {
            let _ = writeln!(
                out,
                "  r={}: {} runs reported ({} counted), {} leases, {} offers, {} accepted offers gone, {} idle requests, \
                 {} agents registered in {}; 10⁶ tasks at this rate: {}",
                run.replicas,
                run.progress.reports,
                run.progress.counted,
                run.progress.leases,
                run.progress.offers,
                run.progress.rejected,
                run.progress.idle_requests,
                self.plan.agents.agents,
                human(run.registered_in),
                minutes(MILLION / run.tasks_per_second())
            );
            if let Some(io) = run.io {
                let _ = writeln!(
                    out,
                    "  r={}: broker I/O {}",
                    run.replicas,
                    io_per_task(io, run.done)
                );
            }
            render_errors(out, &format!("r={}", run.replicas), &run.errors);
            self.render_saturated(
                out,
                &format!("end to end r={}", run.replicas),
                run.progress.counted as f64 / run.elapsed.as_secs_f64(),
                &run.latencies,
            );
        }
        for run in &self.end_to_end {
            let _ = writeln!(
                out,
                "\nRPC latency, r={} (every call from the first submit to the end; Register before)",
                run.replicas
            );
            render_latencies(out, &run.latencies);
        }
        if let Some(point) = self.queue.last() {
            let _ = writeln!(
                out,
                "\nRPC latency in the queue-length window with {} queued",
                point.queued
            );
            render_latencies(out, &point.latencies);
        }
    }

    /// 1 − slowest/fastest of the queue-length phases, with two or more.
    fn queue_spread(&self) -> Option<f64> {
        if self.queue.len() < 2 {
            return None;
        }
        let rates = self.queue.iter().map(QueuePoint::tasks_per_second);
        let fastest = rates.clone().reduce(f64::max)?;
        let slowest = rates.reduce(f64::min)?;
        Some(1.0 - slowest / fastest)
    }

    fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        if let Some(run) = self.end_to_end.iter().find(|run| run.replicas == 1) {
            let rate = run.tasks_per_second();
            targets.push(Target {
                what: format!("end-to-end tasks/s, r=1, {} tasks", run.done),
                measured: format!("{rate:.0}"),
                target: format!("≥ {MIN_DISPATCH_TASKS_PER_SECOND:.0}"),
                ratio: rate / MIN_DISPATCH_TASKS_PER_SECOND,
                met: Some(rate >= MIN_DISPATCH_TASKS_PER_SECOND),
            });
        }
        if let Some(largest) = self.queue.iter().max_by_key(|point| point.queued)
            && let Some(memory) = largest.memory_queued
        {
            let held = queue_named_by_target(largest.queued);
            targets.push(Target {
                what: format!("broker peak RSS, {} tasks queued{held}", largest.queued),
                measured: mib(memory.peak_rss),
                target: format!("≤ {}", mib(MAX_QUEUED_RSS_BYTES)),
                ratio: memory.peak_rss as f64 / MAX_QUEUED_RSS_BYTES as f64,
                met: (largest.queued >= TARGET_QUEUED_TASKS)
                    .then_some(memory.peak_rss <= MAX_QUEUED_RSS_BYTES),
            });
        }
        if let Some(runs) = &self.paced
            && let Some(dispatch) = runs.dispatch()
        {
            let held = queue_named_by_target(runs.queued());
            let millis = dispatch.p99.as_secs_f64() * 1e3;
            let pooled = match runs.runs.len() {
                1 => String::new(),
                n => format!(", {n} runs pooled"),
            };
            targets.push(Target {
                what: format!(
                    "dispatch p99, {} queued, {:.0} tasks/s{pooled}{held}",
                    runs.queued(),
                    runs.tasks_per_second()
                ),
                measured: human(dispatch.p99),
                target: format!("≤ {MAX_DISPATCH_P99_MILLIS} ms"),
                ratio: millis / MAX_DISPATCH_P99_MILLIS,
                met: (runs.queued() >= TARGET_QUEUED_TASKS)
                    .then_some(millis <= MAX_DISPATCH_P99_MILLIS),
            });
        }
        if let Some(spread) = self.queue_spread() {
            let sizes: Vec<String> = self.queue.iter().map(|p| p.queued.to_string()).collect();
            targets.push(Target {
                what: format!("tasks/s spread over queues of {}", sizes.join(", ")),
                measured: format!("{:.0} %", spread * 100.0),
                target: format!("≤ {:.0} %", MAX_QUEUE_LENGTH_SPREAD * 100.0),
                ratio: spread / MAX_QUEUE_LENGTH_SPREAD,
                met: Some(spread <= MAX_QUEUE_LENGTH_SPREAD),
            });
        }
        targets
    }

    fn render_targets(&self, out: &mut String) {
        targets::render_table(out, 4, &self.targets());
    }

    pub fn to_json(&self) -> Value {
        let p = &self.plan;
        json!({
            "machine": self.machine.to_json(),
            "plan": {
                "quick": p.quick,
                "agents": p.agents.agents,
                "slots": p.agents.slots,
                "task_time_ms": p.agents.task_time.as_millis() as u64,
                "tasks": p.tasks,
                "workload_tasks": p.workload_tasks,
                "replicas": p.replicas,
                "queue_sizes": p.queue_sizes,
                "queue_warmup": p.queue_warmup,
                "queue_window": p.queue_window,
                "queue_repeats": p.queue_repeats,
                "paced": p.paced.map(|paced| json!({
                    "queued": paced.queued,
                    "task_time_ms": paced.task_time.as_millis() as u64,
                    "window": paced.window,
                    "offered_tasks_per_second": paced.offered(&p.agents),
                    "repeats": paced.repeats,
                })),
                "broker": p.broker_origin,
            },
            "took_s": self.took.as_secs_f64(),
            "broker_source": self.source,
            "queue": self.queue.iter().map(queue_point_json).collect::<Vec<_>>(),
            "paced": self.paced.as_ref().map(|runs| json!({
                "runs": runs.runs.iter().map(queue_point_json).collect::<Vec<_>>(),
                "tasks_per_second": runs.tasks_per_second(),
                "latencies": runs.latencies.iter().map(|l| l.to_json()).collect::<Vec<_>>(),
            })),
            "end_to_end": self.end_to_end.iter().map(|run| json!({
                "replicas": run.replicas,
                "tasks": run.tasks(),
                "workloads": run.submitted.len(),
                "done": run.done,
                "failed": run.failed,
                "elapsed_s": run.elapsed.as_secs_f64(),
                "tasks_per_second": run.tasks_per_second(),
                "submit_s": run.submit_time().as_secs_f64(),
                "submit_tasks_per_second": run.submit_rate(),
                "reports": run.progress.reports,
                "counted_reports": run.progress.counted,
                "leases": run.progress.leases,
                "offers": run.progress.offers,
                "idle_requests": run.progress.idle_requests,
                "agent_errors": run.progress.errors,
                "registered_s": run.registered_in.as_secs_f64(),
                "latencies": run.latencies.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
                "cpu": run.cpu.to_json(),
                "io": run.io.map(io_json),
                "memory": run.memory.map(memory_json),
                "store": store_json(run.store),
                "errors": run.errors,
            })).collect::<Vec<_>>(),
            "targets": self.targets().iter().map(Target::to_json).collect::<Vec<_>>(),
        })
    }
}

/// A queue-length phase (or the one below saturation) as JSON.
fn queue_point_json(point: &QueuePoint) -> Value {
    json!({
        "queued": point.queued,
        "submit_s": point.submit_time().as_secs_f64(),
        "memory_queued": point.memory_queued.map(memory_json),
        "store_queued": store_json(point.store_queued),
        "window_tasks": point.window_tasks,
        "window_s": point.window.as_secs_f64(),
        "tasks_per_second": point.tasks_per_second(),
        "run_tasks_per_second": point.run_rates,
        "latencies": point.latencies.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
        "cpu": point.cpu.to_json(),
        "io": point.io.map(io_json),
        "reports": point.progress.reports,
        "idle_requests": point.progress.idle_requests,
        "agent_errors": point.progress.errors,
        "errors": point.errors,
    })
}

/// Nothing when `queued` is the queue the targets are about, else a note
/// saying which that is.
fn queue_named_by_target(queued: u64) -> String {
    if queued == TARGET_QUEUED_TASKS {
        String::new()
    } else {
        format!(" (target is for {TARGET_QUEUED_TASKS})")
    }
}

fn render_latencies(out: &mut String, latencies: &[LatencySummary]) {
    let _ = writeln!(
        out,
        "  {:<30} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "rpc", "count", "p50", "p99", "max", "mean"
    );
    for s in latencies {
        let _ = writeln!(
            out,
            "  {:<30} {:>9} {:>10} {:>10} {:>10} {:>10}",
            s.rpc.name(),
            s.count,
            human(s.p50),
            human(s.p99),
            human(s.max),
            human(s.mean)
        );
    }
}

fn render_errors(out: &mut String, phase: &str, errors: &[String]) {
    for error in errors {
        let _ = writeln!(out, "  {phase}: agent error: {error}");
    }
}

fn mib(bytes: u64) -> String {
    let mib = bytes as f64 / f64::from(1u32 << 20);
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

fn store(size: StoreSize) -> String {
    format!("{}+{}", mib(size.database), mib(size.wal))
}

fn cores(cores: Option<f64>) -> String {
    cores.map_or("?".into(), |c| format!("{c:.2}"))
}

fn share(share: Option<f64>) -> String {
    share.map_or("?".into(), |s| format!("{:.0} %", s * 100.0))
}

/// "per task: 41.2 KiB written to disk, 0.0 KiB read, 12.1 write and 30.5
/// read calls".
fn io_per_task(io: Io, tasks: u64) -> String {
    let tasks = tasks.max(1) as f64;
    format!(
        "per task: {:.1} KiB written to disk, {:.1} KiB read from disk, {:.1} write and {:.1} read \
         calls (file, pipe and eventfd calls; socket sends and receives are not counted)",
        io.disk_write_bytes as f64 / 1024.0 / tasks,
        io.disk_read_bytes as f64 / 1024.0 / tasks,
        io.write_calls as f64 / tasks,
        io.read_calls as f64 / tasks,
    )
}

fn io_json(io: Io) -> Value {
    json!({
        "read_calls": io.read_calls,
        "write_calls": io.write_calls,
        "disk_read_bytes": io.disk_read_bytes,
        "disk_write_bytes": io.disk_write_bytes,
    })
}

fn memory_json(memory: Memory) -> Value {
    json!({ "rss_bytes": memory.rss, "peak_rss_bytes": memory.peak_rss })
}

fn store_json(size: StoreSize) -> Value {
    json!({
        "database_bytes": size.database,
        "wal_bytes": size.wal,
        "total_bytes": size.total,
    })
}
