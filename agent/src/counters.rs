//! What the agent did: counters updated as it works, and the
//! [`AgentSummary`] it returns when it stops.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by the work loop, the workers and the reporter.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) leases_accepted: AtomicU64,
    pub(crate) leases_released: AtomicU64,
    pub(crate) leases_lost: AtomicU64,
    pub(crate) tasks_run: AtomicU64,
    pub(crate) tasks_ok: AtomicU64,
    pub(crate) tasks_failed: AtomicU64,
    pub(crate) fuel_consumed: AtomicU64,
    pub(crate) reports_acknowledged: AtomicU64,
    pub(crate) reports_counted: AtomicU64,
    pub(crate) reports_dropped: AtomicU64,
    pub(crate) reports_synced: AtomicU64,
    /// When the broker last answered a request for work (Unix ms; 0: never).
    pub(crate) broker_answered_ms: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// The counters now, as a summary.
    pub(crate) fn summary(&self, agent_id: String, reports_pending: u64) -> AgentSummary {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        AgentSummary {
            agent_id,
            leases_accepted: get(&self.leases_accepted),
            leases_released: get(&self.leases_released),
            leases_lost: get(&self.leases_lost),
            tasks_run: get(&self.tasks_run),
            tasks_ok: get(&self.tasks_ok),
            tasks_failed: get(&self.tasks_failed),
            fuel_consumed: get(&self.fuel_consumed),
            reports_acknowledged: get(&self.reports_acknowledged),
            reports_counted: get(&self.reports_counted),
            reports_dropped: get(&self.reports_dropped),
            reports_synced: get(&self.reports_synced),
            reports_pending,
        }
    }
}

/// What one run of the agent did, returned by [`run`](crate::run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentSummary {
    /// The agent's id at the broker (empty if it never registered).
    pub agent_id: String,
    /// Leases the broker granted.
    pub leases_accepted: u64,
    /// Leases given back unfinished (stop, invalid limits, missing module).
    pub leases_released: u64,
    /// Leases the broker revoked or let expire while the task ran.
    pub leases_lost: u64,
    /// Tasks the sandbox ran to an outcome.
    pub tasks_run: u64,
    /// Tasks that ended with status `Ok`.
    pub tasks_ok: u64,
    /// Tasks that ended with any other status (a limit, a trap, …).
    pub tasks_failed: u64,
    /// Fuel consumed by all tasks run.
    pub fuel_consumed: u64,
    /// Reports the broker acknowledged (including ones from the outbox).
    pub reports_acknowledged: u64,
    /// Acknowledged reports that counted (the lease was still valid).
    pub reports_counted: u64,
    /// Reports the broker refused for good (unknown or foreign lease).
    pub reports_dropped: u64,
    /// Reports synced to disk in the outbox because the broker did not
    /// acknowledge them at once (a failed or slow call, or a stop).
    pub reports_synced: u64,
    /// Reports still in the outbox at exit, sent at the next start.
    pub reports_pending: u64,
}
