//! Cancelling a workload: its pending tasks stop being offered, its active
//! leases are revoked (agents learn it at their next heartbeat or report).

use crate::core::{Broker, billing};
use crate::error::{BrokerError, BrokerResult};
use crate::ids::now_ms;
use crate::store::events::{self, TaskEvent};
use crate::store::workloads::{self, WorkloadState};
use crate::store::{leases, tasks};

impl Broker {
    /// Cancels a running workload.
    pub async fn cancel(&self, workload_id: &str) -> BrokerResult<WorkloadState> {
        let now = now_ms();
        let mut scheduler = self.scheduler.lock().await;
        let mut tx = self.store.write().await?;
        let workload = workloads::require(&mut tx, workload_id).await?;
        if workload.state.is_final() {
            return Err(BrokerError::FailedPrecondition(format!(
                "workload {workload_id} is already {}",
                workload.state.as_str()
            )));
        }
        for index in tasks::cancel_pending(&mut tx, workload_id, now).await? {
            events::record(
                &mut tx,
                TaskEvent {
                    workload_id,
                    index,
                    event: "cancelled",
                    lease_id: None,
                    agent_id: None,
                    at_ms: now,
                    detail: None,
                },
            )
            .await?;
        }
        for (lease_id, index, agent_id) in leases::revoke_all(&mut tx, workload_id, now).await? {
            events::record(
                &mut tx,
                TaskEvent {
                    workload_id,
                    index,
                    event: "revoked",
                    lease_id: Some(&lease_id),
                    agent_id: Some(&agent_id),
                    at_ms: now,
                    detail: None,
                },
            )
            .await?;
        }
        let finished = workloads::finish(
            &mut tx,
            workload_id,
            WorkloadState::Cancelled,
            Some("cancelled by the issuer"),
            None,
            now,
        )
        .await?;
        if finished {
            billing::close(&mut tx, &workload, now).await?;
        }
        tx.commit().await?;
        scheduler.remove_workload(workload_id);
        drop(scheduler);
        self.ended();
        tracing::info!(workload = %workload_id, "workload cancelled");
        Ok(WorkloadState::Cancelled)
    }
}
