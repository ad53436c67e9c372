//! The queue-length phase (r = 1): Q tasks are submitted with the agents
//! idle, then as many more as the warm-up and the window take, the disk is
//! synced, then the agents start and tasks per second is measured over the
//! window, the same number of tasks for every Q after the same warm-up, so
//! the figures at 10⁴, 10⁵ and 10⁶ compare. The queue holds at least Q
//! tasks all through the window: at its close, Q are still queued.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::dispatch::agents::{Progress, Swarm};
use crate::dispatch::broker::{BrokerProcess, Io, Memory, StoreSize};
use crate::dispatch::cpu::{CpuReading, CpuSplit};
use crate::dispatch::issuer::{Issuer, Submitted};
use crate::dispatch::latency::{Latencies, LatencySummary};
use crate::dispatch::watch::{POLL, Watch};
use crate::dispatch::{DispatchPlan, Fixture, clean_up, fresh_dir, submit_all};

/// One queue-length phase.
#[derive(Clone, Debug)]
pub struct QueuePoint {
    pub queued: u64,
    /// The Q tasks' submissions (not the extra tasks' after them).
    pub submitted: Vec<Submitted>,
    /// Broker memory and store once the Q tasks are queued (before the
    /// warm-up's and the window's), agents idle.
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
    /// Tasks/s of every run of this phase, in run order (this point is the
    /// median one).
    pub run_rates: Vec<f64>,
}

impl QueuePoint {
    pub fn tasks_per_second(&self) -> f64 {
        self.window_tasks as f64 / self.window.as_secs_f64()
    }

    /// The run with the median tasks/s (the faster of the middle two for an
    /// even count), knowing every run's rate.
    pub fn median(mut runs: Vec<QueuePoint>) -> Result<QueuePoint> {
        let run_rates: Vec<f64> = runs.iter().map(QueuePoint::tasks_per_second).collect();
        runs.sort_by(|a, b| a.tasks_per_second().total_cmp(&b.tasks_per_second()));
        let middle = runs.len() / 2;
        let Some(mut point) = runs.into_iter().nth(middle) else {
            bail!("no run of the queue-length phase");
        };
        point.run_rates = run_rates;
        Ok(point)
    }

    pub fn submit_time(&self) -> Duration {
        self.submitted.iter().map(|s| s.took).sum()
    }
}

/// One run of the phase with `queued` tasks on a fresh broker: its figures,
/// and every latency sample of its window (to pool with other runs').
pub async fn queue_phase(
    plan: &DispatchPlan,
    fixture: &Fixture,
    queued: u64,
) -> Result<(QueuePoint, Latencies)> {
    let dir = fresh_dir(plan, &format!("queue-{queued}"))?;
    let mut broker = BrokerProcess::start(&plan.broker, &dir)?;
    let url = broker.url();
    let swarm = Swarm::register(&url, plan.agents, Arc::clone(&fixture.reply)).await?;
    let mut issuer = Issuer::connect(&url, fixture.module.clone()).await?;
    let submitted = submit_all(&mut issuer, plan, 0, queued, 1).await?;
    let memory_queued = broker.memory();
    let store_queued = broker.store_size();
    let warmup = plan.queue_warmup;
    let end = warmup + plan.queue_window;
    // The tasks the warm-up and the window take come on top, and those the
    // agents hold leased at its close, so that the window measures a
    // broker with at least Q tasks waiting and not one draining its queue
    // (until the thirteenth session the window took four fifths of the
    // smallest queue: it measured 10⁴ from 8 000 waiting down to none).
    submit_all(&mut issuer, plan, queued, plan.queue_extra_tasks(), 1).await?;
    // The submit's own writes (hundreds of MB at 10⁶) are written back
    // some 30 s later, in the window of a big queue but not of a small one:
    // measure every size on a quiet disk.
    crate::machine::write_back_dirty_pages();
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
    let mut latencies: Latencies = swarm.stop().await?;
    drop(broker);
    clean_up(plan, &dir);
    let point = QueuePoint {
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
        run_rates: Vec::new(),
    };
    Ok((point, latencies))
}
