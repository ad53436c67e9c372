//! The scheduler's in-memory state: which pending tasks need another run,
//! what is offered to whom, and the fair order in which workloads are
//! served. Rebuilt from the store at start (see `recovery`); the store stays
//! the truth, and every change here follows a committed store change.
//!
//! # Layout
//! - this file: [`Scheduler`], per-workload queues and offers, replica
//!   groups and adaptive replication modes.
//! - `fair_queue`: round robin over issuers, then each issuer's workloads
//!   in the order submitted.
//! - `verdict`: judging a task from its leases.

mod fair_queue;
mod offers;
pub mod verdict;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio::sync::Notify;

use self::fair_queue::FairQueue;
use self::offers::Offers;
use self::verdict::Progress;
use crate::store::workloads::WorkloadRow;

/// A task: workload id and index.
pub type TaskKey = (String, u32);

/// How many runs of a task are wanted at once (adaptive replication).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// `replicas` runs, until `quorum` of them agree.
    #[default]
    Replicated,
    /// One run; whether it may stand alone is decided when an agent
    /// accepts it (a trusted agent, not spot-checked).
    Undecided,
    /// One run, on a trusted agent, whose result stands alone.
    Solo,
}

/// What the scheduler tracks of a pending task.
#[derive(Debug, Default)]
struct TaskProgress {
    /// Offers outstanding plus active leases.
    in_flight: u32,
    /// Replica groups (agents, or owners or addresses) that run, were
    /// offered, or reported the task: replicas never go to the same group.
    agents: HashSet<String>,
    /// Groups on which a run failed or expired: the task is retried
    /// elsewhere first, but on them again when no other agent takes it
    /// (a grid of one agent must still finish its work).
    tried: HashSet<String>,
    best_agreement: u32,
    mode: Mode,
    /// The agent holding the solo run, in `Mode::Solo`.
    solo_agent: Option<String>,
}

/// A pending task as recovered from the store.
#[derive(Debug, Default)]
pub struct PendingTask {
    pub index: u32,
    pub progress: Progress,
    /// Agent ids holding or having reported the task OK.
    pub agents: HashSet<String>,
    /// Agent ids on which it failed or expired.
    pub tried: HashSet<String>,
    /// The agent of an active solo run.
    pub solo_agent: Option<String>,
}

#[derive(Debug)]
struct WorkloadQueue {
    row: Arc<WorkloadRow>,
    tasks: HashMap<u32, TaskProgress>,
    /// Tasks that may need another run, in order; checked when taken.
    ready: VecDeque<u32>,
    /// Accepted results so far, their fuel and peak memory: the estimates
    /// offered for the next tasks.
    results: u64,
    fuel_sum: u128,
    memory_sum: u128,
}

/// True when adaptive replication applies to a workload's tasks.
fn adaptive(row: &WorkloadRow) -> bool {
    row.adaptive && row.quorum > 1
}

/// Runs of a task wanted at once.
fn target(row: &WorkloadRow, progress: &TaskProgress) -> u32 {
    match progress.mode {
        Mode::Replicated => row.replicas.max(row.quorum),
        Mode::Undecided | Mode::Solo => 1,
    }
}

fn needs_run(row: &WorkloadRow, progress: &TaskProgress) -> bool {
    progress.best_agreement + progress.in_flight < target(row, progress)
}

/// The mode of a task with no run in flight and no OK result.
fn fresh_mode(row: &WorkloadRow) -> Mode {
    if adaptive(row) {
        Mode::Undecided
    } else {
        Mode::Replicated
    }
}

impl WorkloadQueue {
    /// Estimated fuel and peak memory of a task: the mean of accepted
    /// results, or the limits before there is one.
    fn estimates(&self) -> (u64, u64) {
        if self.results == 0 {
            return (self.row.limits.fuel, self.row.limits.memory_bytes);
        }
        let n = u128::from(self.results);
        (
            u64::try_from(self.fuel_sum / n).unwrap_or(u64::MAX),
            u64::try_from(self.memory_sum / n).unwrap_or(u64::MAX),
        )
    }
}

/// An offer held for an agent.
#[derive(Clone, Debug)]
pub struct Offered {
    pub workload: Arc<WorkloadRow>,
    pub index: u32,
    pub expires_ms: i64,
    /// The mean fuel and peak memory of the workload's accepted results
    /// (the limits before any).
    pub estimated_fuel: u64,
    pub estimated_memory: u64,
    /// Estimated wall time on this agent, from its measured speed.
    pub estimated_wall_ms: Option<u64>,
}

/// What an agent weighs an offer by: an offer on the same terms as another
/// is no alternative to it.
struct Terms<'a> {
    workload: &'a WorkloadRow,
    estimated_fuel: u64,
    estimated_memory: u64,
    estimated_wall_ms: Option<u64>,
}

impl Terms<'_> {
    fn same_as(&self, offer: &Offered) -> bool {
        let (mine, theirs) = (self.workload, offer.workload.as_ref());
        self.estimated_fuel == offer.estimated_fuel
            && self.estimated_memory == offer.estimated_memory
            && self.estimated_wall_ms == offer.estimated_wall_ms
            && mine.credits_per_fuel == theirs.credits_per_fuel
            && mine.credits_per_mib_second == theirs.credits_per_mib_second
            && mine.limits == theirs.limits
            && mine.module_sha256 == theirs.module_sha256
    }
}

/// An agent asking for work.
#[derive(Clone, Copy, Debug)]
pub struct WorkRequest<'a> {
    pub agent: &'a str,
    /// Free slots: the agent's fair turn.
    pub capacity: usize,
    /// Alternatives offered on top.
    pub extra: usize,
    pub free_memory: u64,
    pub now_ms: i64,
    pub expires_ms: i64,
    /// The agent's measured speed, if known.
    pub fuel_per_ms: Option<f64>,
    /// The agent was caught disagreeing and has not rebuilt trust since:
    /// it gets no task whose single result would be accepted unchecked.
    pub suspect: bool,
}

/// The scheduling state of all running workloads.
#[derive(Debug, Default)]
pub struct Scheduler {
    workloads: HashMap<String, WorkloadQueue>,
    order: FairQueue,
    /// Offers held for agents, with their expiry.
    offers: Offers,
    /// Agent id → replica group (its owner or address, when replicas are
    /// kept apart by those); agents not here are their own group.
    groups: HashMap<String, String>,
    /// Agents whose stored record shows no disagreeing result, so they are
    /// never suspect: their record need not be read at every request.
    /// Emptied whenever a disagreement is recorded.
    clean_agents: HashSet<String>,
    /// Bumped whenever `clean_agents` is emptied, so a record read before a
    /// disagreement was recorded cannot mark its agent clean after it.
    clean_epoch: u64,
    /// Wakes requests for work waiting on an empty queue: all of them for a
    /// new workload, one per task that becomes ready again.
    work_ready: Arc<Notify>,
}

impl Scheduler {
    /// What waiting requests for work wait on: notified wherever a task
    /// joins a ready queue (a new workload, a run that ended without a
    /// result, a replica more).
    pub fn work_ready(&self) -> Arc<Notify> {
        Arc::clone(&self.work_ready)
    }

    /// Puts an agent in a replica group: no two replicas of a task go to
    /// agents of one group.
    pub fn set_group(&mut self, agent: &str, group: String) {
        self.groups.insert(agent.to_owned(), group);
    }

    /// The replica group of an agent.
    fn group(&self, agent: &str) -> String {
        self.groups
            .get(agent)
            .cloned()
            .unwrap_or_else(|| agent.to_owned())
    }

    /// Adds a running workload with its pending tasks and their progress.
    pub fn add_workload(&mut self, row: Arc<WorkloadRow>, pending: Vec<PendingTask>) {
        let mut queue = WorkloadQueue {
            row: Arc::clone(&row),
            tasks: HashMap::with_capacity(pending.len()),
            ready: VecDeque::new(),
            results: 0,
            fuel_sum: 0,
            memory_sum: 0,
        };
        for pending in pending {
            let mode = if pending.solo_agent.is_some() {
                Mode::Solo
            } else if pending.progress.active == 0 && pending.progress.best_agreement == 0 {
                fresh_mode(&queue.row)
            } else {
                Mode::Replicated
            };
            let task = TaskProgress {
                in_flight: pending.progress.active,
                agents: pending.agents.iter().map(|a| self.group(a)).collect(),
                tried: pending.tried.iter().map(|a| self.group(a)).collect(),
                best_agreement: pending.progress.best_agreement,
                mode,
                solo_agent: pending.solo_agent,
            };
            if needs_run(&queue.row, &task) {
                queue.ready.push_back(pending.index);
            }
            queue.tasks.insert(pending.index, task);
        }
        let any_ready = !queue.ready.is_empty();
        self.order.add(&row.issuer, &row.id);
        self.workloads.insert(row.id.clone(), queue);
        if any_ready {
            self.work_ready.notify_waiters();
        }
    }

    /// Notes an accepted result of a workload, for its estimates.
    pub fn result_accepted(&mut self, workload_id: &str, fuel: u64, peak_memory: u64) {
        if let Some(queue) = self.workloads.get_mut(workload_id) {
            queue.results += 1;
            queue.fuel_sum += u128::from(fuel);
            queue.memory_sum += u128::from(peak_memory);
        }
    }

    /// Whether accepting `task` now decides its replication: true for the
    /// first run of a task under adaptive replication.
    pub fn is_undecided(&self, task: &TaskKey) -> bool {
        self.workloads
            .get(&task.0)
            .and_then(|queue| queue.tasks.get(&task.1))
            .is_some_and(|progress| progress.mode == Mode::Undecided)
    }

    /// Decides an undecided task's replication as `agent` accepts it: a
    /// solo run stands alone; otherwise the task is replicated.
    pub fn decide(&mut self, task: &TaskKey, agent: &str, solo: bool) {
        let Some(queue) = self.workloads.get_mut(&task.0) else {
            return;
        };
        let Some(progress) = queue.tasks.get_mut(&task.1) else {
            return;
        };
        if solo {
            progress.mode = Mode::Solo;
            progress.solo_agent = Some(agent.to_owned());
        } else {
            progress.mode = Mode::Replicated;
            progress.solo_agent = None;
            if needs_run(&queue.row, progress) {
                queue.ready.push_front(task.1);
                self.work_ready.notify_one();
            }
        }
    }

    /// Whether the agent is known to have no disagreeing result.
    pub fn is_clean(&self, agent: &str) -> bool {
        self.clean_agents.contains(agent)
    }

    /// The epoch to pass to [`Scheduler::mark_clean`], taken before the
    /// agent's record is read.
    pub fn clean_epoch(&self) -> u64 {
        self.clean_epoch
    }

    /// The agent's record, read since `epoch`, shows no disagreeing result.
    pub fn mark_clean(&mut self, agent: &str, epoch: u64) {
        if epoch == self.clean_epoch {
            self.clean_agents.insert(agent.to_owned());
        }
    }

    /// A disagreeing result was committed to some agents' records: every
    /// agent's record is to be read again.
    pub fn disagreement_recorded(&mut self) {
        self.clean_agents.clear();
        self.clean_epoch += 1;
    }

    /// Forgets a workload (finished or cancelled) and its offers.
    pub fn remove_workload(&mut self, workload_id: &str) {
        if let Some(queue) = self.workloads.remove(workload_id) {
            self.order.remove(&queue.row.issuer, workload_id);
        }
        self.offers.remove_workload(workload_id);
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

    /// Chooses up to `capacity` tasks for the agent that fit its free
    /// memory, fairly across issuers and their workloads, and holds them as
    /// offers until `expires_ms`.
    ///
    /// With the agent's measured speed (fuel per ms), workloads whose mean
    /// task would outlast their wall-time limit on it are not offered: the
    /// run would only time out. A suspect agent (caught disagreeing, not
    /// trusted again since) is offered only replicated work, where its
    /// result must agree with another agent's.
    ///
    /// The first `capacity` offers take the agent's fair turn; up to `extra`
    /// more are alternatives it may choose instead, and do not advance the
    /// fair order (otherwise an agent that takes the first offer would
    /// always serve the issuer an alternative skipped). No alternative is
    /// made on terms (module, rates, limits and estimates) that `capacity`
    /// offers already have: the agent could not take more of them, so it
    /// would give no choice, only more offers to send, decline and put back
    /// (with one workload, or several alike, there are none). Nor does an
    /// alternative come from an issuer's later workload while the one it
    /// serves now has given enough: an issuer's workloads keep their order.
    pub fn offer(&mut self, request: &WorkRequest<'_>) -> Vec<Offered> {
        let WorkRequest {
            agent,
            capacity,
            extra,
            free_memory,
            now_ms,
            expires_ms,
            fuel_per_ms,
            suspect,
        } = *request;
        let mut free_memory = free_memory;
        self.expire_offers(now_ms);
        let group = self.group(agent);
        let all_free_memory = free_memory;
        let mut offers = Vec::new();
        let mut fair_turn_end = None;
        self.order.start_turn();
        // Every step makes an offer or passes a workload over, and `next`
        // ends once every workload was passed over: the loop ends.
        while offers.len() < capacity + extra {
            if offers.len() == capacity && fair_turn_end.is_none() {
                // Alternatives may take the place of any offer: they fit
                // in the agent's whole free memory.
                fair_turn_end = Some(self.order.mark());
                free_memory = all_free_memory;
                self.order.start_turn();
            }
            let Some(workload_id) = self.order.next() else {
                break;
            };
            let Some(queue) = self.workloads.get_mut(&workload_id) else {
                self.order.pass();
                continue;
            };
            if queue.row.limits.memory_bytes > free_memory || (suspect && queue.row.quorum <= 1) {
                self.order.pass();
                continue;
            }
            let (estimated_fuel, estimated_memory) = queue.estimates();
            let estimated_wall_ms = fuel_per_ms
                .filter(|speed| *speed > 0.0)
                .map(|speed| (estimated_fuel as f64 / speed).ceil() as u64);
            let too_slow = queue.results > 0
                && estimated_wall_ms
                    .is_some_and(|ms| u128::from(ms) > queue.row.limits.wall_time.as_millis());
            let terms = Terms {
                workload: &queue.row,
                estimated_fuel,
                estimated_memory,
                estimated_wall_ms,
            };
            let enough_alike =
                || offers.iter().filter(|made| terms.same_as(made)).count() >= capacity;
            if too_slow {
                self.order.pass();
                continue;
            }
            if fair_turn_end.is_some() && enough_alike() {
                // Alternatives keep each issuer's order: the workload it
                // serves now has given enough, and its later ones wait.
                self.order.pass_issuer();
                continue;
            }
            match take_ready(queue, &group) {
                Some((index, more_wanted)) => {
                    if more_wanted {
                        // Another agent may take the next replica now.
                        self.work_ready.notify_one();
                    }
                    free_memory -= queue.row.limits.memory_bytes;
                    self.offers
                        .insert(agent, (workload_id.clone(), index), expires_ms);
                    offers.push(Offered {
                        workload: Arc::clone(&queue.row),
                        index,
                        expires_ms,
                        estimated_fuel,
                        estimated_memory,
                        estimated_wall_ms,
                    });
                }
                None => self.order.pass(),
            }
        }
        if let Some(mark) = fair_turn_end {
            self.order.rewind(mark);
        }
        offers
    }

    /// True if `agent` holds a live offer for the task, and the task is
    /// still pending (a finished task's offers are left to their agents'
    /// answers or expiry, where they change nothing).
    pub fn has_offer(&self, agent: &str, task: &TaskKey, now_ms: i64) -> bool {
        self.offers.is_live(agent, task, now_ms)
            && self
                .workloads
                .get(&task.0)
                .is_some_and(|queue| queue.tasks.contains_key(&task.1))
    }

    /// An accepted offer became a lease (it stays in flight).
    pub fn offer_accepted(&mut self, agent: &str, task: &TaskKey) {
        self.offers.remove(agent, task);
    }

    /// The agent answered its offers: those it did not accept return to
    /// the queue now rather than when they expire.
    pub fn decline_others(&mut self, agent: &str, accepted: &[TaskKey]) {
        for task in self.offers.take_all_but(agent, accepted) {
            self.run_ended(&task, Some(agent), true);
        }
    }

    /// Returns expired offers' tasks to the queue.
    pub fn expire_offers(&mut self, now_ms: i64) {
        for (agent, task) in self.offers.take_expired(now_ms) {
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
            let group = self.groups.get(agent).map_or(agent, String::as_str);
            progress.agents.remove(group);
            if !forget_agent {
                progress.tried.insert(group.to_owned());
            }
            if progress.solo_agent.as_deref() == Some(agent) {
                // The solo run is gone: the next run decides again.
                progress.solo_agent = None;
                progress.mode = fresh_mode(&queue.row);
            }
        }
        if progress.mode == Mode::Replicated
            && progress.in_flight == 0
            && progress.best_agreement == 0
        {
            progress.mode = fresh_mode(&queue.row);
        }
        if needs_run(&queue.row, progress) {
            queue.ready.push_back(task.1);
            self.work_ready.notify_one();
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
        let group = self
            .groups
            .get(agent)
            .cloned()
            .unwrap_or_else(|| agent.to_owned());
        if ok {
            tracked.agents.insert(group.clone());
            tracked.tried.remove(&group);
        } else {
            tracked.agents.remove(&group);
            tracked.tried.insert(group);
        }
        if tracked.solo_agent.as_deref() == Some(agent) {
            tracked.solo_agent = None;
            tracked.mode = if ok {
                // A solo result that did not settle the task (it cannot
                // happen: a solo OK run stands) would need replicas.
                Mode::Replicated
            } else {
                fresh_mode(&queue.row)
            };
        }
        tracked.best_agreement = progress.best_agreement;
        if tracked.best_agreement > 0 {
            tracked.mode = Mode::Replicated;
        }
        if needs_run(&queue.row, tracked) {
            queue.ready.push_back(task.1);
            self.work_ready.notify_one();
        }
    }

    /// The task is done or failed. Returns true when it was the last
    /// pending task of its workload.
    pub fn task_finished(&mut self, task: &TaskKey) -> bool {
        let Some(queue) = self.workloads.get_mut(&task.0) else {
            return false;
        };
        queue.tasks.remove(&task.1);
        queue.tasks.is_empty()
    }
}

/// The next ready task of `queue` that an agent of replica group `agent`
/// may run, marked in flight: one the group has not tried if there is
/// such, else one it failed before; and whether it wants more replicas
/// (it stays ready for other agents).
fn take_ready(queue: &mut WorkloadQueue, agent: &str) -> Option<(u32, bool)> {
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
        if !needs_run(&queue.row, progress) {
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
    let more_wanted = needs_run(&queue.row, progress);
    if more_wanted {
        // More replicas wanted: let other agents get it soon.
        queue.ready.push_front(index);
    }
    Some((index, more_wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::workloads::test_row;

    fn workload(
        id: &str,
        credits_per_fuel: f64,
        tasks: u32,
    ) -> (Arc<WorkloadRow>, Vec<PendingTask>) {
        let row = test_row(id, credits_per_fuel, tasks);
        let pending = (0..tasks)
            .map(|index| PendingTask {
                index,
                ..PendingTask::default()
            })
            .collect();
        (Arc::new(row), pending)
    }

    /// A scheduler with these workloads, added in this order.
    fn scheduler_of(
        workloads: impl IntoIterator<Item = (Arc<WorkloadRow>, Vec<PendingTask>)>,
    ) -> Scheduler {
        let mut scheduler = Scheduler::default();
        for (row, pending) in workloads {
            scheduler.add_workload(row, pending);
        }
        scheduler
    }

    /// A scheduler with a workload of 10 tasks per `(id, credits per fuel)`.
    fn scheduler_with(workloads: &[(&str, f64)]) -> Scheduler {
        scheduler_of(
            workloads
                .iter()
                .map(|&(id, credits_per_fuel)| workload(id, credits_per_fuel, 10)),
        )
    }

    fn ask(scheduler: &mut Scheduler, agent: &str) -> Vec<(String, u32)> {
        scheduler
            .offer(&WorkRequest {
                agent,
                capacity: 2,
                extra: 2,
                free_memory: u64::MAX,
                now_ms: 0,
                expires_ms: 1_000,
                fuel_per_ms: None,
                suspect: false,
            })
            .into_iter()
            .map(|offer| (offer.workload.id.clone(), offer.index))
            .collect()
    }

    /// A scheduler with workloads of one issuer, submitted in this order:
    /// `(id, credits per fuel, tasks)`.
    fn one_issuers_scheduler(workloads: &[(&str, f64, u32)]) -> Scheduler {
        scheduler_of(workloads.iter().map(|&(id, credits_per_fuel, tasks)| {
            let (row, pending) = workload(id, credits_per_fuel, tasks);
            let row = WorkloadRow {
                issuer: "alice".to_owned(),
                ..(*row).clone()
            };
            (Arc::new(row), pending)
        }))
    }

    /// Offers as [`ask`] lists them.
    fn offers(expected: &[(&str, u32)]) -> Vec<(String, u32)> {
        expected
            .iter()
            .map(|&(id, index)| (id.to_owned(), index))
            .collect()
    }

    #[test]
    fn an_issuers_workloads_are_served_in_the_order_submitted() {
        let mut scheduler = one_issuers_scheduler(&[("w-first", 1e-6, 3), ("w-second", 1e-6, 10)]);
        let first = ask(&mut scheduler, "agent-1");
        assert_eq!(first, offers(&[("w-first", 0), ("w-first", 1)]));
        // The first workload's last ready task, then the next workload's.
        let second = ask(&mut scheduler, "agent-2");
        assert_eq!(second, offers(&[("w-first", 2), ("w-second", 0)]));
    }

    #[test]
    fn alternatives_do_not_come_from_an_issuers_later_workload() {
        // Other terms (another rate), but the same issuer, submitted later.
        let mut scheduler = one_issuers_scheduler(&[("w-first", 1e-6, 10), ("w-later", 2e-6, 10)]);
        let offered = ask(&mut scheduler, "agent-1");
        assert_eq!(offered, offers(&[("w-first", 0), ("w-first", 1)]));
    }

    #[test]
    fn alternatives_on_the_same_terms_are_not_offered() {
        let mut scheduler = scheduler_with(&[("w-a", 1e-6), ("w-b", 1e-6)]);
        let offered = ask(&mut scheduler, "agent-1");
        assert_eq!(offered.len(), 2, "the fair turn only: {offered:?}");
    }

    #[test]
    fn alternatives_do_not_advance_the_fair_order() {
        // Three issuers on three sets of terms: the fair turn serves two,
        // the alternatives the third and the first again.
        let mut scheduler = scheduler_with(&[("w-a", 1e-6), ("w-b", 2e-6), ("w-c", 3e-6)]);
        let first = ask(&mut scheduler, "agent-1");
        assert_eq!(
            first,
            offers(&[("w-a", 0), ("w-b", 0), ("w-c", 0), ("w-a", 1)])
        );
        // The next fair turn goes on after the last one, with w-c.
        let second = ask(&mut scheduler, "agent-2");
        assert_eq!(second.first(), Some(&("w-c".to_owned(), 1)), "{second:?}");
    }

    #[test]
    fn alternatives_on_other_terms_are_offered() {
        let mut scheduler = scheduler_with(&[("w-cheap", 1e-6), ("w-dear", 2e-6)]);
        let offered = ask(&mut scheduler, "agent-1");
        assert_eq!(
            offered.len(),
            4,
            "the fair turn and two alternatives: {offered:?}"
        );
        // Whichever workload the fair turn served, the agent may take both
        // slots' worth of either.
        for id in ["w-cheap", "w-dear"] {
            assert!(
                offered.iter().filter(|(w, _)| w == id).count() >= 2,
                "{offered:?}"
            );
        }
    }
}
