//! The scheduler's in-memory state: which pending tasks need another run,
//! what is offered to whom, and the fair order in which workloads are
//! served. Rebuilt from the store at start (see `recovery`); the store stays
//! the truth, and every change here follows a committed store change.
//!
//! # Layout
//! - this file: [`Scheduler`], per-workload queues and offers.
//! - `fair_queue`: round robin over issuers, then over their workloads.
//! - `verdict`: judging a task from its leases.

mod fair_queue;
pub mod verdict;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use self::fair_queue::FairQueue;
use self::verdict::Progress;
use crate::store::workloads::WorkloadRow;

/// A task: workload id and index.
pub type TaskKey = (String, u32);

/// What the scheduler tracks of a pending task.
#[derive(Debug, Default)]
struct TaskProgress {
    /// Offers outstanding plus active leases.
    in_flight: u32,
    /// Agents that run, were offered, or reported the task: replicas never
    /// go to the same agent.
    agents: HashSet<String>,
    /// Agents on which a run failed or expired: the task is retried
    /// elsewhere first, but on them again when no other agent takes it
    /// (a grid of one agent must still finish its work).
    tried: HashSet<String>,
    best_agreement: u32,
}

#[derive(Debug)]
struct WorkloadQueue {
    row: Arc<WorkloadRow>,
    tasks: HashMap<u32, TaskProgress>,
    /// Tasks that may need another run, in order; checked when taken.
    ready: VecDeque<u32>,
}

impl WorkloadQueue {
    fn needs_run(&self, progress: &TaskProgress) -> bool {
        progress.best_agreement + progress.in_flight < self.row.replicas
    }
}

/// An offer held for an agent.
#[derive(Clone, Debug)]
pub struct Offered {
    pub workload: Arc<WorkloadRow>,
    pub index: u32,
    pub expires_ms: i64,
}

/// The scheduling state of all running workloads.
#[derive(Debug, Default)]
pub struct Scheduler {
    workloads: HashMap<String, WorkloadQueue>,
    order: FairQueue,
    /// Offers by agent and task, with their expiry.
    offers: HashMap<(String, TaskKey), i64>,
}

impl Scheduler {
    /// Adds a running workload with its pending tasks and their progress.
    pub fn add_workload(
        &mut self,
        row: Arc<WorkloadRow>,
        pending: Vec<(u32, Progress, HashSet<String>, HashSet<String>)>,
    ) {
        let mut queue = WorkloadQueue {
            row: Arc::clone(&row),
            tasks: HashMap::with_capacity(pending.len()),
            ready: VecDeque::new(),
        };
        for (index, progress, agents, tried) in pending {
            let task = TaskProgress {
                in_flight: progress.active,
                agents,
                tried,
                best_agreement: progress.best_agreement,
            };
            if queue.needs_run(&task) {
                queue.ready.push_back(index);
            }
            queue.tasks.insert(index, task);
        }
        self.order.add(&row.issuer, &row.id);
        self.workloads.insert(row.id.clone(), queue);
    }

    /// Forgets a workload (finished or cancelled) and its offers.
    pub fn remove_workload(&mut self, workload_id: &str) {
        if let Some(queue) = self.workloads.remove(workload_id) {
            self.order.remove(&queue.row.issuer, workload_id);
        }
        self.offers.retain(|(_, (w, _)), _| w != workload_id);
    }

    /// Pending tasks of a running workload still tracked.
    pub fn pending_count(&self, workload_id: &str) -> Option<usize> {
        self.workloads
            .get(workload_id)
            .map(|queue| queue.tasks.len())
    }

    /// The workload row of a running workload.
    pub fn workload(&self, workload_id: &str) -> Option<Arc<WorkloadRow>> {
        self.workloads
            .get(workload_id)
            .map(|queue| Arc::clone(&queue.row))
    }

    /// Chooses up to `capacity` tasks for `agent` that fit `free_memory`,
    /// fairly across issuers and their workloads, and holds them as offers
    /// until `expires_ms`.
    pub fn offer(
        &mut self,
        agent: &str,
        capacity: usize,
        mut free_memory: u64,
        now_ms: i64,
        expires_ms: i64,
    ) -> Vec<Offered> {
        self.expire_offers(now_ms);
        let mut offers = Vec::new();
        let mut fruitless = 0;
        while offers.len() < capacity && fruitless < self.order.len() {
            let Some(workload_id) = self.order.next() else {
                break;
            };
            let Some(queue) = self.workloads.get_mut(&workload_id) else {
                fruitless += 1;
                continue;
            };
            if queue.row.limits.memory_bytes > free_memory {
                fruitless += 1;
                continue;
            }
            match take_ready(queue, agent) {
                Some(index) => {
                    fruitless = 0;
                    free_memory -= queue.row.limits.memory_bytes;
                    self.offers
                        .insert((agent.to_owned(), (workload_id.clone(), index)), expires_ms);
                    offers.push(Offered {
                        workload: Arc::clone(&queue.row),
                        index,
                        expires_ms,
                    });
                }
                None => fruitless += 1,
            }
        }
        offers
    }

    /// True if `agent` holds a live offer for the task.
    pub fn has_offer(&self, agent: &str, task: &TaskKey, now_ms: i64) -> bool {
        self.offers
            .get(&(agent.to_owned(), task.clone()))
            .is_some_and(|&expires| expires >= now_ms)
    }

    /// An accepted offer became a lease (it stays in flight).
    pub fn offer_accepted(&mut self, agent: &str, task: &TaskKey) {
        self.offers.remove(&(agent.to_owned(), task.clone()));
    }

    /// Returns expired offers' tasks to the queue.
    pub fn expire_offers(&mut self, now_ms: i64) {
        let expired: Vec<(String, TaskKey)> = self
            .offers
            .iter()
            .filter(|(_, expires)| **expires < now_ms)
            .map(|(key, _)| key.clone())
            .collect();
        for (agent, task) in expired {
            self.offers.remove(&(agent.clone(), task.clone()));
            self.run_ended(&task, Some(&agent), true);
        }
    }

    /// A run (offer or lease) of a task ended without a report. With
    /// `forget_agent` the agent may be offered the task again (it gave the
    /// task back or never took it, rather than failing it).
    pub fn run_ended(&mut self, task: &TaskKey, agent: Option<&str>, forget_agent: bool) {
        let Some(queue) = self.workloads.get_mut(&task.0) else {
            return;
        };
        let Some(progress) = queue.tasks.get_mut(&task.1) else {
            return;
        };
        progress.in_flight = progress.in_flight.saturating_sub(1);
        if let Some(agent) = agent {
            progress.agents.remove(agent);
            if !forget_agent {
                progress.tried.insert(agent.to_owned());
            }
        }
        let needs = queue.row.replicas > progress.best_agreement + progress.in_flight;
        if needs {
            queue.ready.push_back(task.1);
        }
    }

    /// A run of `agent` reported (`ok` or not) and the task is still
    /// pending, now at `progress`. `was_in_flight` is false for a late
    /// report whose lease had already expired.
    pub fn run_reported(
        &mut self,
        task: &TaskKey,
        agent: &str,
        ok: bool,
        was_in_flight: bool,
        progress: &Progress,
    ) {
        let Some(queue) = self.workloads.get_mut(&task.0) else {
            return;
        };
        let Some(tracked) = queue.tasks.get_mut(&task.1) else {
            return;
        };
        if was_in_flight {
            tracked.in_flight = tracked.in_flight.saturating_sub(1);
        }
        if ok {
            tracked.agents.insert(agent.to_owned());
            tracked.tried.remove(agent);
        } else {
            tracked.agents.remove(agent);
            tracked.tried.insert(agent.to_owned());
        }
        tracked.best_agreement = progress.best_agreement;
        if queue.row.replicas > tracked.best_agreement + tracked.in_flight {
            queue.ready.push_back(task.1);
        }
    }

    /// The task is done or failed. Returns true when it was the last
    /// pending task of its workload.
    pub fn task_finished(&mut self, task: &TaskKey) -> bool {
        let Some(queue) = self.workloads.get_mut(&task.0) else {
            return false;
        };
        queue.tasks.remove(&task.1);
        self.offers.retain(|(_, key), _| key != task);
        queue.tasks.is_empty()
    }
}

/// The next ready task of `queue` that `agent` may run, marked in flight:
/// one it has not tried if there is such, else one it failed before.
fn take_ready(queue: &mut WorkloadQueue, agent: &str) -> Option<u32> {
    // Tasks this agent may not take now are put back in order; the scan is
    // bounded so one request cannot walk a huge queue.
    let mut skipped = Vec::new();
    let mut found = None;
    let mut fallback = None;
    for _ in 0..256 {
        let Some(index) = queue.ready.pop_front() else {
            break;
        };
        let Some(progress) = queue.tasks.get(&index) else {
            continue;
        };
        if !queue.needs_run(progress) {
            continue;
        }
        if progress.agents.contains(agent) {
            skipped.push(index);
            continue;
        }
        if progress.tried.contains(agent) {
            if fallback.is_none() {
                fallback = Some(skipped.len());
            }
            skipped.push(index);
            continue;
        }
        found = Some(index);
        break;
    }
    if found.is_none()
        && let Some(position) = fallback
    {
        found = Some(skipped.remove(position));
    }
    for index in skipped.into_iter().rev() {
        queue.ready.push_front(index);
    }
    let index = found?;
    let progress = queue.tasks.get_mut(&index)?;
    progress.in_flight += 1;
    progress.agents.insert(agent.to_owned());
    if queue.row.replicas > progress.best_agreement + progress.in_flight {
        // More replicas wanted: let other agents get it soon.
        queue.ready.push_front(index);
    }
    Some(index)
}
