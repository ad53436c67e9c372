//! Lease life: extended by heartbeats, released by the agent, expired by the
//! broker when the deadline passes (then the task is offered again, or
//! failed after `max_attempts`).

use std::sync::Arc;

use crate::core::Broker;
use crate::core::report::{ReportedRun, apply_verdict, owned_lease, settle_task};
use crate::core::work::duration_ms;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::now_ms;
use crate::store::events::{self, TaskEvent};
use crate::store::leases::{self, LeaseState};
use crate::store::workloads;

impl Broker {
    /// Pushes an active lease's deadline one lease timeout out.
    pub async fn extend(&self, agent_id: &str, lease_id: &str) -> BrokerResult<i64> {
        let mut conn = self.store.conn().await?;
        let lease = owned_lease(&mut conn, agent_id, lease_id).await?;
        let deadline = now_ms() + duration_ms(self.config.lease_timeout);
        if lease.state != LeaseState::Active
            || !leases::extend(&mut conn, lease_id, deadline).await?
        {
            return Err(BrokerError::FailedPrecondition(format!(
                "lease {lease_id} is {}",
                lease.state.as_str()
            )));
        }
        Ok(deadline)
    }

    /// The agent gives a lease back unfinished; the task is offered again
    /// (to any agent, this one included) and no attempt is counted.
    pub async fn release(&self, agent_id: &str, lease_id: &str, reason: &str) -> BrokerResult<()> {
        let now = now_ms();
        let mut scheduler = self.scheduler.lock().await;
        let mut tx = self.store.write().await?;
        let lease = owned_lease(&mut tx, agent_id, lease_id).await?;
        if !leases::end(&mut tx, lease_id, LeaseState::Released, now).await? {
            return Err(BrokerError::FailedPrecondition(format!(
                "lease {lease_id} is {}",
                lease.state.as_str()
            )));
        }
        events::record(
            &mut tx,
            TaskEvent {
                workload_id: &lease.workload_id,
                index: lease.index,
                event: "released",
                lease_id: Some(lease_id),
                agent_id: Some(agent_id),
                at_ms: now,
                detail: Some(reason.chars().take(500).collect()),
            },
        )
        .await?;
        tx.commit().await?;
        scheduler.run_ended(&(lease.workload_id, lease.index), Some(agent_id), true);
        drop(scheduler);
        self.changed();
        Ok(())
    }

    /// Expires every active lease past its deadline; returns how many.
    pub async fn expire_due(self: &Arc<Self>) -> BrokerResult<usize> {
        let now = now_ms();
        let mut scheduler = self.scheduler.lock().await;
        scheduler.expire_offers(now);
        let mut tx = self.store.write().await?;
        let due = leases::expired(&mut tx, now).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut settled = Vec::new();
        for lease in &due {
            if !leases::end(&mut tx, &lease.id, LeaseState::Expired, now).await? {
                continue;
            }
            events::record(
                &mut tx,
                TaskEvent {
                    workload_id: &lease.workload_id,
                    index: lease.index,
                    event: "expired",
                    lease_id: Some(&lease.id),
                    agent_id: Some(&lease.agent_id),
                    at_ms: now,
                    detail: None,
                },
            )
            .await?;
            let workload = workloads::require(&mut tx, &lease.workload_id).await?;
            let verdict = if workload.state.is_final() {
                None
            } else {
                settle_task(
                    &mut tx,
                    &workload,
                    lease.index,
                    self.config.replica_separation,
                    now,
                )
                .await?
            };
            settled.push((lease, verdict));
        }
        tx.commit().await?;
        let mut complete = Vec::new();
        for (lease, verdict) in settled {
            let task = (lease.workload_id.clone(), lease.index);
            tracing::info!(lease = %lease.id, agent = %lease.agent_id, workload = %task.0, task = task.1, "lease expired");
            // The run ended like a failed report: it counts as an attempt,
            // and the agent is not offered the task again.
            let run = ReportedRun {
                agent: &lease.agent_id,
                ok: false,
                was_in_flight: true,
            };
            if apply_verdict(&mut scheduler, &task, Some(&run), verdict.as_ref()) {
                complete.push(task.0);
            }
        }
        drop(scheduler);
        for workload_id in complete {
            self.spawn_aggregation(workload_id);
        }
        self.changed();
        Ok(due.len())
    }
}
