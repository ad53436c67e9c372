//! Offers and leases: what an agent is offered, and accepting offers.

use std::sync::Arc;
use std::time::Duration;

use crate::core::Broker;
use crate::error::BrokerResult;
use crate::ids::{new_lease_id, now_ms, task_seed};
use crate::scheduler::{Offered, TaskKey};
use crate::store::events::{self, TaskEvent};
use crate::store::leases::{self, LeaseRow, LeaseState};
use crate::store::tasks;
use crate::store::workloads::WorkloadRow;

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
    /// Offers for an agent with `capacity` free slots and `free_memory`.
    pub async fn request_work(
        &self,
        agent_id: &str,
        capacity: u32,
        free_memory: u64,
    ) -> Vec<Offered> {
        let now = now_ms();
        let capacity = (capacity as usize).min(self.config.max_offers_per_request);
        let hold = duration_ms(self.config.offer_hold);
        self.scheduler
            .lock()
            .await
            .offer(agent_id, capacity, free_memory, now, now + hold)
    }

    /// Turns the agent's live offers among `tasks` into leases; returns the
    /// leases and the tasks that were no longer on offer.
    pub async fn accept(
        &self,
        agent_id: &str,
        tasks: &[TaskKey],
    ) -> BrokerResult<(Vec<GrantedLease>, Vec<TaskKey>)> {
        let now = now_ms();
        let deadline = now + duration_ms(self.config.lease_timeout);
        let mut scheduler = self.scheduler.lock().await;
        let (mut accepted, mut rejected) = (Vec::new(), Vec::new());
        for task in tasks {
            match scheduler.workload(&task.0) {
                Some(workload)
                    if scheduler.has_offer(agent_id, task, now)
                        && !accepted.iter().any(|(t, _)| t == task) =>
                {
                    accepted.push((task.clone(), workload))
                }
                _ => rejected.push(task.clone()),
            }
        }
        let mut granted = Vec::with_capacity(accepted.len());
        let mut tx = self.store.pool().begin().await?;
        for ((workload_id, index), workload) in &accepted {
            let Some(input) = tasks::input(&mut tx, workload_id, *index).await? else {
                continue;
            };
            let lease = LeaseRow {
                id: new_lease_id(),
                workload_id: workload_id.clone(),
                index: *index,
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
            };
            leases::insert(&mut tx, &lease).await?;
            events::record(
                &mut tx,
                TaskEvent {
                    workload_id,
                    index: *index,
                    event: "leased",
                    lease_id: Some(&lease.id),
                    agent_id: Some(agent_id),
                    at_ms: now,
                    detail: None,
                },
            )
            .await?;
            granted.push(GrantedLease {
                lease_id: lease.id,
                workload: Arc::clone(workload),
                index: *index,
                input,
                seed: task_seed(workload_id, *index),
                deadline_ms: deadline,
            });
        }
        tx.commit().await?;
        for (task, _) in &accepted {
            scheduler.offer_accepted(agent_id, task);
        }
        drop(scheduler);
        self.changed();
        Ok((granted, rejected))
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
