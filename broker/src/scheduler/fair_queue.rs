//! Fair order of service: round robin over issuers, and within an issuer
//! its running workloads in the order they were submitted. One issuer's
//! huge workload gets the same share of offers as another issuer's small
//! one, so it cannot starve it.
//!
//! Within an issuer, first come first served (as HTCondor serves one
//! user's jobs): the issuer's first workload is done first instead of all
//! of them together at the end, and the store's writes of a batch stay in
//! one region of the task tables instead of one per workload (10⁶ tasks
//! queued as ten workloads served in turn wrote 2.5 KiB per task, as one
//! workload 1.6–1.7; docs/performance.md, fourth and fifth sessions). A
//! workload with nothing for the asking agent (no ready task, limits that
//! do not fit it) is passed over for the rest of that agent's turn
//! ([`FairQueue::pass`]), so the issuer's next workload serves it instead.

use std::collections::{HashMap, VecDeque};

#[derive(Clone, Debug, Default)]
pub struct FairQueue {
    issuers: VecDeque<String>,
    workloads: HashMap<String, IssuerQueue>,
    /// The issuer of the workload [`FairQueue::next`] returned last.
    last: Option<String>,
    /// Issuers [`FairQueue::next`] has moved to the back so far: where the
    /// round robin stands.
    rotations: u64,
}

/// Where the round robin over issuers stood ([`FairQueue::mark`]).
#[derive(Clone, Copy, Debug)]
pub struct Mark(u64);

/// One issuer's running workloads.
#[derive(Clone, Debug, Default)]
struct IssuerQueue {
    /// In the order they were submitted.
    workloads: VecDeque<String>,
    /// How many of the first ones were passed over this turn.
    passed: usize,
}

impl FairQueue {
    pub fn add(&mut self, issuer: &str, workload_id: &str) {
        let queue = self.workloads.entry(issuer.to_owned()).or_default();
        if queue.workloads.is_empty() {
            self.issuers.push_back(issuer.to_owned());
        }
        queue.workloads.push_back(workload_id.to_owned());
    }

    pub fn remove(&mut self, issuer: &str, workload_id: &str) {
        let Some(queue) = self.workloads.get_mut(issuer) else {
            return;
        };
        let Some(position) = queue.workloads.iter().position(|id| id == workload_id) else {
            return;
        };
        queue.workloads.remove(position);
        if position < queue.passed {
            queue.passed -= 1;
        }
        if queue.workloads.is_empty() {
            self.workloads.remove(issuer);
            self.issuers.retain(|name| name != issuer);
        }
    }

    /// Number of workloads.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.workloads
            .values()
            .map(|queue| queue.workloads.len())
            .sum()
    }

    /// Starts an agent's turn: no workload is passed over.
    pub fn start_turn(&mut self) {
        for queue in self.workloads.values_mut() {
            queue.passed = 0;
        }
        self.last = None;
    }

    /// The next workload to serve: the next issuer's first workload not
    /// passed over this turn; `None` once every workload was.
    pub fn next(&mut self) -> Option<String> {
        for _ in 0..self.issuers.len() {
            let issuer = self.issuers.pop_front()?;
            self.issuers.push_back(issuer.clone());
            self.rotations += 1;
            let candidate = self
                .workloads
                .get(&issuer)
                .and_then(|queue| queue.workloads.get(queue.passed))
                .cloned();
            if candidate.is_some() {
                self.last = Some(issuer);
                return candidate;
            }
        }
        None
    }

    /// Passes over the workload [`FairQueue::next`] returned last, for the
    /// rest of this turn: it had nothing for the agent.
    pub fn pass(&mut self) {
        if let Some(queue) = self.last_issuer() {
            queue.passed += 1;
        }
    }

    /// Passes over every workload of the issuer [`FairQueue::next`] served
    /// last, for the rest of this turn: its workload in service has given
    /// the agent all it may, and the ones after it wait their turn.
    pub fn pass_issuer(&mut self) {
        if let Some(queue) = self.last_issuer() {
            queue.passed = queue.workloads.len();
        }
    }

    /// Where the round robin stands now, to [`FairQueue::rewind`] to.
    pub fn mark(&self) -> Mark {
        Mark(self.rotations)
    }

    /// Puts the round robin back where it stood at `mark`, as if the
    /// workloads [`FairQueue::next`] returned since had not been served
    /// (an agent's alternatives do not advance the fair order). No issuer
    /// may have been added or removed since.
    pub fn rewind(&mut self, mark: Mark) {
        let since = self.rotations - mark.0;
        if let Some(len) = u64::try_from(self.issuers.len())
            .ok()
            .filter(|&len| len > 0)
        {
            // Below the length, so it fits usize.
            self.issuers.rotate_right((since % len) as usize);
        }
        self.rotations = mark.0;
        self.last = None;
    }

    fn last_issuer(&mut self) -> Option<&mut IssuerQueue> {
        self.last
            .take()
            .and_then(|issuer| self.workloads.get_mut(&issuer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue of alice's workloads, then bob's, each in the order given.
    fn queue_of(alice: &[&str], bob: &[&str]) -> FairQueue {
        let mut queue = FairQueue::default();
        for (issuer, workloads) in [("alice", alice), ("bob", bob)] {
            for workload in workloads {
                queue.add(issuer, workload);
            }
        }
        queue
    }

    #[test]
    fn issuers_alternate_whatever_their_workload_count() {
        let mut queue = queue_of(&["a1", "a2", "a3"], &["b1"]);
        let served: Vec<String> = (0..4).filter_map(|_| queue.next()).collect();
        assert_eq!(served, ["a1", "b1", "a1", "b1"]);
        queue.remove("bob", "b1");
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.next().as_deref(), Some("a1"));
    }

    #[test]
    fn an_issuers_workloads_are_served_in_order_until_passed_over() {
        let mut queue = queue_of(&["a1", "a2", "a3"], &["b1"]);
        queue.start_turn();
        assert_eq!(queue.next().as_deref(), Some("a1"));
        queue.pass();
        assert_eq!(queue.next().as_deref(), Some("b1"));
        assert_eq!(queue.next().as_deref(), Some("a2"));
        queue.pass();
        assert_eq!(queue.next().as_deref(), Some("b1"));
        queue.pass();
        assert_eq!(queue.next().as_deref(), Some("a3"));
        queue.pass();
        assert_eq!(queue.next(), None, "every workload was passed over");
        // The next agent's turn starts from each issuer's first workload,
        // with the issuer after the last one served.
        queue.start_turn();
        let served: Vec<String> = (0..2).filter_map(|_| queue.next()).collect();
        assert_eq!(served, ["b1", "a1"]);
    }

    #[test]
    fn passing_over_an_issuer_leaves_the_others() {
        let mut queue = queue_of(&["a1", "a2"], &["b1"]);
        queue.start_turn();
        assert_eq!(queue.next().as_deref(), Some("a1"));
        queue.pass_issuer();
        let served: Vec<String> = (0..2).filter_map(|_| queue.next()).collect();
        assert_eq!(served, ["b1", "b1"]);
    }

    #[test]
    fn rewinding_puts_the_round_robin_back() {
        let mut queue = queue_of(&["a1"], &["b1"]);
        queue.add("carol", "c1");
        assert_eq!(queue.next().as_deref(), Some("a1"));
        let mark = queue.mark();
        let served: Vec<String> = (0..4).filter_map(|_| queue.next()).collect();
        assert_eq!(served, ["b1", "c1", "a1", "b1"]);
        queue.rewind(mark);
        assert_eq!(queue.next().as_deref(), Some("b1"));
    }

    #[test]
    fn removing_the_workloads_passed_over_keeps_the_rest_in_line() {
        let mut queue = queue_of(&["a1", "a2", "a3"], &[]);
        queue.start_turn();
        assert_eq!(queue.next().as_deref(), Some("a1"));
        queue.pass();
        assert_eq!(queue.next().as_deref(), Some("a2"));
        queue.pass();
        queue.remove("alice", "a1");
        queue.remove("alice", "a2");
        assert_eq!(queue.next().as_deref(), Some("a3"));
        queue.remove("alice", "a3");
        assert_eq!(queue.next(), None);
        assert_eq!(queue.len(), 0);
    }
}
