//! The phase below saturation, where the dispatch latency target is
//! measured: the queue-length phase with agents that take their time over
//! each cycle, run several times on fresh brokers, every run's latencies
//! pooled into one distribution.
//!
//! One run's p99 moved between 7.8 and 13.4 ms from run to run on this
//! machine, minutes apart, while within a run it held steady (the twelfth
//! performance session: every 3 s part of a 30 s window alike): the
//! spread is between brokers and the machine's moments, and more samples
//! from one broker do not average it. Pooling runs on fresh brokers does.

use anyhow::{Result, bail};

use crate::dispatch::latency::{Latencies, LatencySummary, Rpc, find};
use crate::dispatch::queue_length::{QueuePoint, queue_phase};
use crate::dispatch::{DispatchPlan, Fixture, PacedPlan};
use crate::stats::human;

/// Every run of the phase below saturation.
#[derive(Clone, Debug)]
pub struct PacedRuns {
    /// Each run, in run order, with its own latencies.
    pub runs: Vec<QueuePoint>,
    /// Every run's samples together.
    pub latencies: Vec<LatencySummary>,
}

impl PacedRuns {
    /// Tasks queued in each run.
    pub fn queued(&self) -> u64 {
        self.runs.first().map_or(0, |run| run.queued)
    }

    /// Tasks done in every window over their length together.
    pub fn tasks_per_second(&self) -> f64 {
        let tasks: u64 = self.runs.iter().map(|run| run.window_tasks).sum();
        let seconds: f64 = self.runs.iter().map(|run| run.window.as_secs_f64()).sum();
        tasks as f64 / seconds.max(f64::MIN_POSITIVE)
    }

    /// The pooled dispatch latency.
    pub fn dispatch(&self) -> Option<LatencySummary> {
        find(&self.latencies, Rpc::Dispatch)
    }
}

/// Runs the phase `paced.repeats` times, one after the other, each on a
/// fresh broker.
pub async fn paced_phase(
    plan: &DispatchPlan,
    paced: &PacedPlan,
    fixture: &Fixture,
) -> Result<PacedRuns> {
    let phase_plan = paced.apply(plan);
    let mut runs = Vec::new();
    let mut pooled = Latencies::default();
    for repeat in 1..=paced.repeats {
        eprintln!(
            "below saturation, run {repeat} of {}: {} queued, agents taking {} per cycle ({:.0} tasks/s offered), {} tasks measured…",
            paced.repeats,
            paced.queued,
            human(paced.task_time),
            paced.offered(&plan.agents),
            paced.window
        );
        let (point, samples) = queue_phase(&phase_plan, fixture, paced.queued).await?;
        let p99 = find(&point.latencies, Rpc::Dispatch).map_or("-".into(), |d| human(d.p99));
        eprintln!(
            "  {:.0} tasks/s, dispatch p99 {p99}",
            point.tasks_per_second()
        );
        pooled.merge(samples);
        runs.push(point);
    }
    if runs.is_empty() {
        bail!("no run of the phase below saturation");
    }
    Ok(PacedRuns {
        runs,
        latencies: pooled.summarise(),
    })
}
