//! Offers and leases: what an agent is offered, and accepting offers.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use rusqlite::Connection;

use crate::core::Broker;
use crate::core::group_commit::{Then, then};
use crate::error::BrokerResult;
use crate::ids::{new_lease_id, now_ms, task_seed};
use crate::scheduler::{Offered, TaskKey, WorkRequest};
use crate::store::agents;
use crate::store::leases::{LeaseRow, LeaseState};
use crate::store::workloads::WorkloadRow;
use crate::store::writer::{leases, tasks};

/// Requests for work answered since the broker started: alone
/// (`RequestWork`) or with reports (`ReportResults` asking for work too).
#[derive(Clone, Debug, Default)]
pub struct WorkRequestCounts {
    pub alone: Counter,
    pub with_reports: Counter,
}

/// A lease granted on an accepted offer, with what the agent needs to run it.
#[derive(Clone, Debug)]
pub struct GrantedLease {
    pub lease_id: String,
    pub workload: Arc<WorkloadRow>,
    pub index: u32,
    pub input: Vec<u8>,
    pub seed: u64,
    pub deadline_ms: i64,
}

impl Broker {
    /// [`Broker::request_work`], but when there is nothing to offer, waits
    /// up to `work_wait` for a task to become ready (or the broker to stop)
    /// and asks once more: an idle agent gets new work within a round trip.
    pub async fn request_work_waiting(
        &self,
        agent_id: &str,
        capacity: u32,
        free_memory: u64,
    ) -> BrokerResult<Vec<Offered>> {
        let wait = self.config.work_wait;
        if wait.is_zero() {
            return self.request_work(agent_id, capacity, free_memory).await;
        }
        // Registered before looking, so a task readied in between is not
        // missed.
        let ready = self.work_ready.notified();
        tokio::pin!(ready);
        ready.as_mut().enable();
        let offered = self.request_work(agent_id, capacity, free_memory).await?;
        if !offered.is_empty() {
            return Ok(offered);
        }
        let mut stopping = self.stopping();
        tokio::select! {
            () = ready => {}
            () = tokio::time::sleep(wait) => {}
            _ = stopping.wait_for(|stopping| *stopping) => return Ok(offered),
        }
        self.request_work(agent_id, capacity, free_memory).await
    }

    /// Offers for an agent with `capacity` free slots and `free_memory`.
    pub async fn request_work(
        &self,
        agent_id: &str,
        capacity: u32,
        free_memory: u64,
    ) -> BrokerResult<Vec<Offered>> {
        let now = now_ms();
        // As many alternatives again, so the agent has a choice; what it
        // does not take returns to the queue when it answers.
        let capacity = (capacity as usize).min(self.config.max_offers_per_request);
        let extra = capacity.min(self.config.max_offers_per_request - capacity);
        let hold = duration_ms(self.config.offer_hold);
        let speed = self.fuel_per_ms(agent_id);
        let mut scheduler = self.scheduler.lock().await;
        let mut suspect = false;
        if !scheduler.is_clean(agent_id) {
            let epoch = scheduler.clean_epoch();
            drop(scheduler);
            let record = {
                let mut conn = self.store.conn().await?;
                agents::record(&mut conn, agent_id).await?
            };
            scheduler = self.scheduler.lock().await;
            if let Some((record, _, _)) = record {
                suspect = record.invalid > 0 && !record.trusted(self.config.trust_after);
                if record.invalid == 0 {
                    scheduler.mark_clean(agent_id, epoch);
                }
            }
        }
        Ok(scheduler.offer(&WorkRequest {
            agent: agent_id,
            capacity,
            extra,
            free_memory,
            now_ms: now,
            expires_ms: now + hold,
            fuel_per_ms: speed,
            suspect,
        }))
    }

    /// Turns the agent's live offers among `tasks` into leases and declines
    /// its other offers; returns the leases and the tasks that were no
    /// longer on offer. Under adaptive replication, the first run of a task
    /// taken by a trusted agent is made a solo run, save for spot checks.
    ///
    /// The offers are taken in the scheduler first, so no other agent can
    /// be given them while the leases commit; if the commit fails they
    /// return to the queue.
    pub async fn accept(
        &self,
        agent_id: &str,
        tasks: &[TaskKey],
    ) -> BrokerResult<(Vec<GrantedLease>, Vec<TaskKey>)> {
        let now = now_ms();
        let deadline = now + duration_ms(self.config.lease_timeout);
        let mut scheduler = self.scheduler.lock().await;
        // Only adaptive replication needs the agent's record, read without
        // the scheduler lock. A task that turns undecided meanwhile is
        // replicated, which is always safe.
        let mut trusted = false;
        if tasks.iter().any(|task| scheduler.is_undecided(task)) {
            drop(scheduler);
            let mut conn = self.store.conn().await?;
            trusted = agents::record(&mut conn, agent_id)
                .await?
                .is_some_and(|(record, _, _)| record.trusted(self.config.trust_after));
            scheduler = self.scheduler.lock().await;
        }
        let (taken, keys, mut rejected) = {
            let mut taken: Vec<Taken> = Vec::new();
            let mut rejected = Vec::new();
            for task in tasks {
                match scheduler.workload(&task.0) {
                    Some(workload)
                        if scheduler.has_offer(agent_id, task, now)
                            && !taken.iter().any(|t| &t.task == task) =>
                    {
                        let solo = scheduler.is_undecided(task) && {
                            let solo =
                                trusted && rand::random::<f64>() >= self.config.spot_check_rate;
                            scheduler.decide(task, agent_id, solo);
                            solo
                        };
                        scheduler.offer_accepted(agent_id, task);
                        taken.push(Taken {
                            task: task.clone(),
                            workload,
                            solo,
                        });
                    }
                    _ => rejected.push(task.clone()),
                }
            }
            let keys: Vec<TaskKey> = taken.iter().map(|t| t.task.clone()).collect();
            scheduler.decline_others(agent_id, &keys);
            drop(scheduler);
            (taken, keys, rejected)
        };
        if taken.is_empty() {
            return Ok((Vec::new(), rejected));
        }
        let agent = agent_id.to_owned();
        let committed = self
            .commits
            // A machine crash may forget a lease, which costs only its run
            // (see `group_commit`): its commit is not synced on its own.
            .run_forgettable(move |conn| insert_leases(conn, &agent, &taken, now, deadline))
            .await;
        match committed {
            Ok((granted, gone)) => {
                self.changed();
                rejected.extend(gone);
                Ok((granted, rejected))
            }
            Err(error) => {
                let mut scheduler = self.scheduler.lock().await;
                for task in &keys {
                    scheduler.run_ended(task, Some(agent_id), true);
                }
                Err(error)
            }
        }
    }
}

/// An offer taken in the scheduler, to become a lease.
struct Taken {
    task: TaskKey,
    workload: Arc<WorkloadRow>,
    /// A solo run of a trusted agent (adaptive replication).
    solo: bool,
}

/// Stores a lease for each taken offer whose task is still pending; answers
/// the leases and the tasks that are not pending any more. The scheduler
/// showed them pending when the offers were taken, but a call committed
/// before this one (in this batch or the one before) may have finished or
/// cancelled them since: the store decides.
fn insert_leases(
    conn: &Connection,
    agent_id: &str,
    taken: &[Taken],
    now: i64,
    deadline: i64,
) -> BrokerResult<Then<(Vec<GrantedLease>, Vec<TaskKey>)>> {
    let mut granted = Vec::with_capacity(taken.len());
    let mut gone = Vec::new();
    for Taken {
        task: (workload_id, index),
        workload,
        solo,
    } in taken
    {
        let (index, solo) = (*index, *solo);
        let Some(input) = tasks::pending_input(conn, workload_id, index)? else {
            gone.push((workload_id.clone(), index));
            continue;
        };
        let lease = LeaseRow {
            id: new_lease_id(),
            workload_id: workload_id.clone(),
            index,
            agent_id: agent_id.to_owned(),
            state: LeaseState::Active,
            started_ms: now,
            deadline_ms: deadline,
            ended_ms: None,
            counted: false,
            status: None,
            output_sha256: None,
            fuel_consumed: 0,
            peak_memory: 0,
            wall_time_ms: 0,
            solo,
            verdict: None,
            paid_micro: 0,
            agent_owner: String::new(),
            agent_address: String::new(),
        };
        // No `leased` event: the lease row is the record (`store::events`).
        leases::insert(conn, &lease)?;
        granted.push(GrantedLease {
            lease_id: lease.id,
            seed: task_seed(workload_id, index),
            workload: Arc::clone(workload),
            index,
            input,
            deadline_ms: deadline,
        });
    }
    let agent_id = agent_id.to_owned();
    Ok(then(move |scheduler| {
        for task in &gone {
            scheduler.run_ended(task, Some(&agent_id), true);
        }
        (granted, gone)
    }))
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
