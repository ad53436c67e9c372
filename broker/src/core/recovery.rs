//! Rebuilding the scheduler from the store at start: every running workload
//! with its pending tasks, their active leases (which expire as usual if
//! their agent is gone) and their reports so far. Workloads whose tasks all
//! finished before a crash are aggregated now.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::core::Broker;
use crate::core::group_commit::unchanged;
use crate::core::report::{rules, settle_task};
use crate::error::BrokerResult;
use crate::ids::now_ms;
use crate::scheduler::PendingTask;
use crate::scheduler::verdict::{Verdict, judge};
use crate::store::leases::{LeaseRow, LeaseState};
use crate::store::writer::agents::ResultTally;
use crate::store::{agents, leases, tasks, workloads};

impl Broker {
    pub(crate) async fn recover(self: &Arc<Self>) -> BrokerResult<()> {
        let separation = self.config.replica_separation;
        let mut conn = self.store.conn().await?;
        let mut groups = Vec::new();
        for agent in agents::list(&mut conn).await? {
            if let Some(group) = self.replica_group(&agent) {
                groups.push((agent.id, group));
            }
        }
        for (agent_id, fuel, ms) in leases::speeds(&mut conn).await? {
            self.add_speed(&agent_id, fuel, ms);
        }
        let running = workloads::list(&mut conn, true).await?;
        let mut recovered = Vec::new();
        let mut complete = Vec::new();
        for workload in running {
            let workload = Arc::new(workload);
            let mut by_task: BTreeMap<u32, Vec<LeaseRow>> = BTreeMap::new();
            for lease in leases::of_workload(&mut conn, &workload.id).await? {
                by_task.entry(lease.index).or_default().push(lease);
            }
            let mut pending = Vec::new();
            for index in tasks::pending(&mut conn, &workload.id).await? {
                let runs = by_task.remove(&index).unwrap_or_default();
                match judge(&runs, rules(&workload, separation)) {
                    Verdict::Pending(progress) => {
                        let (agents, tried) = agents_of(&runs);
                        let solo_agent = runs
                            .iter()
                            .find(|run| run.solo && run.state == LeaseState::Active)
                            .map(|run| run.agent_id.clone());
                        pending.push(PendingTask {
                            index,
                            progress,
                            agents,
                            tried,
                            solo_agent,
                        });
                    }
                    _ => {
                        // Settled through the writer, the verdict and its
                        // payments in one commit. The scheduler is not
                        // locked here: the writer takes it after commits.
                        let workload = Arc::clone(&workload);
                        self.commits
                            .run(move |conn| {
                                let mut results = ResultTally::default();
                                settle_task(
                                    conn,
                                    &workload,
                                    index,
                                    separation,
                                    None,
                                    &mut results,
                                    now_ms(),
                                )?;
                                results.store(conn)?;
                                Ok(unchanged(()))
                            })
                            .await?;
                    }
                }
            }
            if pending.is_empty() {
                complete.push(workload.id.clone());
            }
            tracing::info!(workload = %workload.id, pending = pending.len(), "workload recovered");
            recovered.push((workload, pending));
        }
        drop(conn);
        {
            let mut scheduler = self.scheduler.lock().await;
            for (agent_id, group) in groups {
                scheduler.set_group(&agent_id, group);
            }
            for (workload, pending) in recovered {
                scheduler.add_workload(workload, pending);
            }
        }
        for workload_id in complete {
            self.spawn_aggregation(workload_id);
        }
        Ok(())
    }
}

/// Agents holding or having reported a task OK, and agents on which it
/// failed or expired.
fn agents_of(runs: &[LeaseRow]) -> (HashSet<String>, HashSet<String>) {
    let mut agents = HashSet::new();
    let mut tried = HashSet::new();
    for lease in runs {
        match lease.state {
            LeaseState::Active => {
                agents.insert(lease.agent_id.clone());
            }
            LeaseState::Reported if lease.status == Some(wasmgrid_runtime::Status::Ok) => {
                agents.insert(lease.agent_id.clone());
            }
            LeaseState::Reported | LeaseState::Expired => {
                tried.insert(lease.agent_id.clone());
            }
            LeaseState::Released | LeaseState::Revoked => {}
        }
    }
    (agents, tried)
}
