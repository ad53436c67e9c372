//! Offers and leases: what an agent is offered, and accepting offers.

use std::sync::Arc;
use std::time::Duration;

use crate::core::Broker;
use crate::error::BrokerResult;
use crate::ids::{new_lease_id, now_ms, task_seed};
use crate::scheduler::{Offered, TaskKey, WorkRequest};
use crate::store::events::{self, TaskEvent};
use crate::store::leases::{self, LeaseRow, LeaseState};
use crate::store::workloads::WorkloadRow;
use crate::store::{agents, tasks};

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
    ) -> BrokerResult<Vec<Offered>> {
        let now = now_ms();
        // As many alternatives again, so the agent has a choice; what it
        // does not take returns to the queue when it answers.
        let capacity = (capacity as usize).min(self.config.max_offers_per_request);
        let extra = capacity.min(self.config.max_offers_per_request - capacity);
        let hold = duration_ms(self.config.offer_hold);
        let speed = self.fuel_per_ms(agent_id);
        let suspect = {
            let mut conn = self.store.conn().await?;
            agents::record(&mut conn, agent_id)
                .await?
                .is_some_and(|(record, _, _)| {
                    record.invalid > 0 && !record.trusted(self.config.trust_after)
                })
        };
        Ok(self.scheduler.lock().await.offer(&WorkRequest {
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
        let mut solo_runs = Vec::new();
        let mut tx = self.store.write().await?;
        let trusted = if accepted
            .iter()
            .any(|(task, _)| scheduler.is_undecided(task))
        {
            agents::record(&mut tx, agent_id)
                .await?
                .is_some_and(|(record, _, _)| record.trusted(self.config.trust_after))
        } else {
            false
        };
        for ((workload_id, index), workload) in &accepted {
            let Some(input) = tasks::input(&mut tx, workload_id, *index).await? else {
                continue;
            };
            let task = (workload_id.clone(), *index);
            let solo = if scheduler.is_undecided(&task) {
                let solo = trusted && rand::random::<f64>() >= self.config.spot_check_rate;
                solo_runs.push((task, solo));
                solo
            } else {
                false
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
                solo,
                verdict: None,
                paid_micro: 0,
                agent_owner: String::new(),
                agent_address: String::new(),
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
                    detail: solo.then(|| "solo run of a trusted agent".to_owned()),
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
        for (task, solo) in &solo_runs {
            scheduler.decide(task, agent_id, *solo);
        }
        let taken: Vec<TaskKey> = accepted.iter().map(|(task, _)| task.clone()).collect();
        scheduler.decline_others(agent_id, &taken);
        drop(scheduler);
        self.changed();
        Ok((granted, rejected))
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
