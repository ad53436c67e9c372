//! Lease life: extended by heartbeats, released by the agent, expired by the
//! broker when the deadline passes (then the task is offered again, or
//! failed after `max_attempts`). All three go through the group commit.

use std::sync::Arc;

use rusqlite::Connection;

use crate::config::ReplicaSeparation;
use crate::core::Broker;
use crate::core::group_commit::{Then, then, unchanged};
use crate::core::report::{ReportedRun, apply_verdict, owned_lease, settle_task};
use crate::core::work::duration_ms;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::now_ms;
use crate::store::events::TaskEvent;
use crate::store::leases::LeaseState;
use crate::store::writer::agents::ResultTally;
use crate::store::writer::{events, leases, workloads};

impl Broker {
    /// Pushes an active lease's deadline one lease timeout out.
    pub async fn extend(&self, agent_id: &str, lease_id: &str) -> BrokerResult<i64> {
        let deadline = now_ms() + duration_ms(self.config.lease_timeout);
        let (agent_id, lease_id) = (agent_id.to_owned(), lease_id.to_owned());
        self.commits
            .run(move |conn| {
                let lease = owned_lease(conn, &agent_id, &lease_id)?;
                if lease.state != LeaseState::Active || !leases::extend(conn, &lease_id, deadline)?
                {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "lease {lease_id} is {}",
                        lease.state.as_str()
                    )));
                }
                Ok(unchanged(deadline))
            })
            .await
    }

    /// The agent gives a lease back unfinished; the task is offered again
    /// (to any agent, this one included) and no attempt is counted.
    pub async fn release(&self, agent_id: &str, lease_id: &str, reason: &str) -> BrokerResult<()> {
        let now = now_ms();
        let (agent_id, lease_id) = (agent_id.to_owned(), lease_id.to_owned());
        let reason: String = reason.chars().take(500).collect();
        self.commits
            .run(move |conn| {
                let lease = owned_lease(conn, &agent_id, &lease_id)?;
                if !leases::end(conn, &lease_id, LeaseState::Released, now)? {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "lease {lease_id} is {}",
                        lease.state.as_str()
                    )));
                }
                events::record(
                    conn,
                    TaskEvent {
                        workload_id: &lease.workload_id,
                        index: lease.index,
                        event: "released",
                        lease_id: Some(&lease_id),
                        agent_id: Some(&agent_id),
                        at_ms: now,
                        detail: Some(reason.clone()),
                    },
                )?;
                let agent_id = agent_id.clone();
                Ok(then(move |scheduler| {
                    scheduler.run_ended(&(lease.workload_id, lease.index), Some(&agent_id), true);
                }))
            })
            .await?;
        self.changed();
        Ok(())
    }

    /// Expires every active lease past its deadline (and every offer past
    /// its hold); returns how many leases.
    pub async fn expire_due(self: &Arc<Self>) -> BrokerResult<usize> {
        let now = now_ms();
        self.scheduler.lock().await.expire_offers(now);
        let separation = self.config.replica_separation;
        let (expired, complete) = self
            .commits
            .run(move |conn| expire_leases(conn, separation, now))
            .await?;
        for workload_id in complete {
            self.spawn_aggregation(workload_id);
        }
        if expired > 0 {
            self.changed();
        }
        Ok(expired)
    }
}

/// Ends the leases past their deadline and settles their tasks; the
/// scheduler then counts each as a failed attempt. Answers how many expired
/// and the workloads that have no pending task left.
fn expire_leases(
    conn: &Connection,
    separation: ReplicaSeparation,
    now: i64,
) -> BrokerResult<Then<(usize, Vec<String>)>> {
    let due = leases::expired(conn, now)?;
    if due.is_empty() {
        return Ok(unchanged((0, Vec::new())));
    }
    let mut settled = Vec::new();
    let mut results = ResultTally::default();
    for lease in due {
        if !leases::end(conn, &lease.id, LeaseState::Expired, now)? {
            continue;
        }
        events::record(
            conn,
            TaskEvent {
                workload_id: &lease.workload_id,
                index: lease.index,
                event: "expired",
                lease_id: Some(&lease.id),
                agent_id: Some(&lease.agent_id),
                at_ms: now,
                detail: None,
            },
        )?;
        let workload = workloads::require(conn, &lease.workload_id)?;
        let verdict = if workload.state.is_final() {
            None
        } else {
            settle_task(
                conn,
                &workload,
                lease.index,
                separation,
                None,
                &mut results,
                now,
            )?
        };
        settled.push((lease, verdict));
    }
    results.store(conn)?;
    Ok(then(move |scheduler| {
        let expired = settled.len();
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
            if apply_verdict(scheduler, &task, Some(&run), verdict.as_ref()) {
                complete.push(task.0);
            }
        }
        (expired, complete)
    }))
}
