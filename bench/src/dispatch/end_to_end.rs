//! The end-to-end phase: the issuer submits the workloads while the agents
//! work; tasks per second is tasks done over the time from the first
//! submit to the last workload's end, as the broker recorded it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::dispatch::agents::{Progress, Swarm};
use crate::dispatch::broker::{BrokerProcess, Io, Memory, StoreSize};
use crate::dispatch::cpu::{CpuReading, CpuSplit};
use crate::dispatch::issuer::{self, Issuer, Submitted};
use crate::dispatch::latency::LatencySummary;
use crate::dispatch::watch::{POLL, Watch};
use crate::dispatch::{DispatchPlan, Fixture, clean_up, fresh_dir, submit_all};

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

fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub async fn end_to_end_phase(
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
            let submitted = submit_all(&mut submitter, &plan, 0, plan.tasks, replicas).await;
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
