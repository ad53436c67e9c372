//! Fair order of service: round robin over issuers, and within an issuer
//! round robin over its running workloads. One issuer's huge workload gets
//! the same share of offers as another issuer's small one, so it cannot
//! starve it.

use std::collections::{HashMap, VecDeque};

#[derive(Clone, Debug, Default)]
pub struct FairQueue {
    issuers: VecDeque<String>,
    workloads: HashMap<String, VecDeque<String>>,
    total: usize,
}

impl FairQueue {
    pub fn add(&mut self, issuer: &str, workload_id: &str) {
        let queue = self.workloads.entry(issuer.to_owned()).or_default();
        if queue.is_empty() {
            self.issuers.push_back(issuer.to_owned());
        }
        queue.push_back(workload_id.to_owned());
        self.total += 1;
    }

    pub fn remove(&mut self, issuer: &str, workload_id: &str) {
        let Some(queue) = self.workloads.get_mut(issuer) else {
            return;
        };
        let before = queue.len();
        queue.retain(|id| id != workload_id);
        self.total -= before - queue.len();
        if queue.is_empty() {
            self.workloads.remove(issuer);
            self.issuers.retain(|name| name != issuer);
        }
    }

    /// Number of workloads.
    pub fn len(&self) -> usize {
        self.total
    }

    /// The next workload to serve: the next issuer's next workload.
    pub fn next(&mut self) -> Option<String> {
        let issuer = self.issuers.pop_front()?;
        self.issuers.push_back(issuer.clone());
        let queue = self.workloads.get_mut(&issuer)?;
        let workload = queue.pop_front()?;
        queue.push_back(workload.clone());
        Some(workload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_alternate_whatever_their_workload_count() {
        let mut queue = FairQueue::default();
        for w in ["a1", "a2", "a3"] {
            queue.add("alice", w);
        }
        queue.add("bob", "b1");
        let served: Vec<String> = (0..6).filter_map(|_| queue.next()).collect();
        assert_eq!(served, ["a1", "b1", "a2", "b1", "a3", "b1"]);
        queue.remove("bob", "b1");
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.next().as_deref(), Some("a1"));
    }
}
