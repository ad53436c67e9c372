//! The offers held for agents: by agent (an agent's answer touches only its
//! own), with a lower bound on the earliest expiry, so that the expiry check
//! every request makes costs nothing until an offer may have expired.

use std::collections::HashMap;

use super::TaskKey;

/// Offers by agent and task, with their expiry (Unix ms).
#[derive(Debug)]
pub(super) struct Offers {
    by_agent: HashMap<String, HashMap<TaskKey, i64>>,
    /// No offer expires before this (it may be earlier than the earliest:
    /// removals do not raise it; the next sweep makes it exact).
    next_expiry: i64,
}

impl Default for Offers {
    fn default() -> Self {
        Offers {
            by_agent: HashMap::new(),
            next_expiry: i64::MAX,
        }
    }
}

impl Offers {
    /// Holds `task` for `agent` until `expires_ms`.
    pub(super) fn insert(&mut self, agent: &str, task: TaskKey, expires_ms: i64) {
        self.next_expiry = self.next_expiry.min(expires_ms);
        match self.by_agent.get_mut(agent) {
            Some(held) => {
                held.insert(task, expires_ms);
            }
            None => {
                self.by_agent
                    .insert(agent.to_owned(), HashMap::from([(task, expires_ms)]));
            }
        }
    }

    /// True if `agent` holds an offer of `task` that has not expired.
    pub(super) fn is_live(&self, agent: &str, task: &TaskKey, now_ms: i64) -> bool {
        self.by_agent
            .get(agent)
            .and_then(|held| held.get(task))
            .is_some_and(|&expires| expires >= now_ms)
    }

    /// Drops `agent`'s offer of `task`; true if it held one.
    pub(super) fn remove(&mut self, agent: &str, task: &TaskKey) -> bool {
        let Some(held) = self.by_agent.get_mut(agent) else {
            return false;
        };
        let removed = held.remove(task).is_some();
        if held.is_empty() {
            self.by_agent.remove(agent);
        }
        removed
    }

    /// Drops and returns every offer `agent` holds but for those in `keep`.
    pub(super) fn take_all_but(&mut self, agent: &str, keep: &[TaskKey]) -> Vec<TaskKey> {
        let Some(held) = self.by_agent.remove(agent) else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        let mut kept = HashMap::new();
        for (task, expires) in held {
            if keep.contains(&task) {
                kept.insert(task, expires);
            } else {
                taken.push(task);
            }
        }
        if !kept.is_empty() {
            self.by_agent.insert(agent.to_owned(), kept);
        }
        taken
    }

    /// Drops and returns the offers expired at `now_ms`: a sweep of every
    /// offer, made only once the earliest may have expired.
    pub(super) fn take_expired(&mut self, now_ms: i64) -> Vec<(String, TaskKey)> {
        if now_ms <= self.next_expiry {
            return Vec::new();
        }
        let mut expired = Vec::new();
        let mut next_expiry = i64::MAX;
        self.by_agent.retain(|agent, held| {
            held.retain(|task, &mut expires| {
                if expires < now_ms {
                    expired.push((agent.clone(), task.clone()));
                    false
                } else {
                    next_expiry = next_expiry.min(expires);
                    true
                }
            });
            !held.is_empty()
        });
        self.next_expiry = next_expiry;
        expired
    }

    /// Drops every offer of a workload's tasks.
    pub(super) fn remove_workload(&mut self, workload_id: &str) {
        self.by_agent.retain(|_, held| {
            held.retain(|(workload, _), _| workload != workload_id);
            !held.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(index: u32) -> TaskKey {
        ("w".to_owned(), index)
    }

    #[test]
    fn offers_expire_only_after_their_time_and_sweeps_find_every_one() {
        let mut offers = Offers::default();
        offers.insert("a", task(0), 100);
        offers.insert("b", task(1), 200);
        offers.insert("a", task(2), 300);
        assert!(offers.take_expired(100).is_empty());
        assert!(offers.is_live("a", &task(0), 100));
        assert!(!offers.is_live("a", &task(0), 101));
        assert_eq!(offers.take_expired(101), vec![("a".to_owned(), task(0))]);
        // A removed offer never comes back from a sweep.
        assert!(offers.remove("b", &task(1)));
        assert!(!offers.remove("b", &task(1)));
        assert!(offers.take_expired(250).is_empty());
        assert_eq!(offers.take_expired(301), vec![("a".to_owned(), task(2))]);
        assert!(offers.by_agent.is_empty());
        assert_eq!(offers.next_expiry, i64::MAX);
    }

    #[test]
    fn an_answer_keeps_the_accepted_offers_and_returns_the_rest() {
        let mut offers = Offers::default();
        for index in 0..4 {
            offers.insert("a", task(index), 1000);
        }
        offers.insert("b", task(9), 1000);
        let mut declined = offers.take_all_but("a", &[task(1), task(3)]);
        declined.sort();
        assert_eq!(declined, vec![task(0), task(2)]);
        assert!(offers.is_live("a", &task(1), 0));
        assert!(offers.is_live("b", &task(9), 0));
        offers.remove_workload("w");
        assert!(offers.by_agent.is_empty());
    }
}
