//! Judging a task from its leases: done when `replicas` reports agree on the
//! output hash and the fuel used; failed after `max_attempts` failed runs
//! (non-OK reports and expired leases) or when agreement has become
//! impossible; otherwise still pending.

use std::collections::HashMap;

use wasmgrid_runtime::Status;

use crate::store::leases::{LeaseRow, LeaseState};

/// Where a task stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Enough reports agree; the lease whose output is the result.
    Done { lease_id: String },
    /// The task cannot succeed any more.
    Failed {
        reason: String,
        last_status: Option<Status>,
    },
    /// More runs may be needed.
    Pending(Progress),
}

/// A pending task's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Size of the largest group of agreeing OK reports.
    pub best_agreement: u32,
    /// Failed runs so far.
    pub failures: u32,
    /// Active leases.
    pub active: u32,
}

/// Judges a task from all its leases.
pub fn judge(leases: &[LeaseRow], replicas: u32, max_attempts: u32) -> Verdict {
    let counted_reports = || {
        leases
            .iter()
            .filter(|lease| lease.state == LeaseState::Reported && lease.counted)
    };
    let mut groups: HashMap<(&str, u64), Vec<&LeaseRow>> = HashMap::new();
    for lease in counted_reports().filter(|lease| lease.status == Some(Status::Ok)) {
        let key = (
            lease.output_sha256.as_deref().unwrap_or(""),
            lease.fuel_consumed,
        );
        groups.entry(key).or_default().push(lease);
    }
    if let Some(group) = groups.values().find(|group| group.len() as u32 >= replicas) {
        return Verdict::Done {
            lease_id: group[0].id.clone(),
        };
    }
    let failed_reports: Vec<&LeaseRow> = counted_reports()
        .filter(|lease| lease.status != Some(Status::Ok))
        .collect();
    let expired = leases
        .iter()
        .filter(|lease| lease.state == LeaseState::Expired)
        .count() as u32;
    let failures = failed_reports.len() as u32 + expired;
    let ok_reports: u32 = groups.values().map(|group| group.len() as u32).sum();
    let best_agreement = groups
        .values()
        .map(|group| group.len() as u32)
        .max()
        .unwrap_or(0);
    let last_status = failed_reports.last().and_then(|lease| lease.status.clone());
    if failures >= max_attempts {
        let mut reasons: Vec<String> = failed_reports
            .iter()
            .map(|lease| {
                let status = lease
                    .status
                    .as_ref()
                    .map_or_else(|| "no status".to_owned(), Status::to_string);
                format!("{status} on {}", lease.agent_id)
            })
            .collect();
        if expired > 0 {
            reasons.push(format!("{expired} lease(s) expired"));
        }
        return Verdict::Failed {
            reason: format!("failed {failures} time(s): {}", reasons.join("; ")),
            last_status,
        };
    }
    // Disagreeing OK reports count against the attempts too: beyond
    // `replicas + max_attempts` runs, no quorum is coming.
    if ok_reports >= replicas + max_attempts {
        return Verdict::Failed {
            reason: format!("no {replicas} of {ok_reports} results agree"),
            last_status: None,
        };
    }
    Verdict::Pending(Progress {
        best_agreement,
        failures,
        active: leases
            .iter()
            .filter(|lease| lease.state == LeaseState::Active)
            .count() as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(
        id: &str,
        agent: &str,
        state: LeaseState,
        status: Option<Status>,
        hash: &str,
        fuel: u64,
    ) -> LeaseRow {
        LeaseRow {
            id: id.into(),
            workload_id: "w".into(),
            index: 0,
            agent_id: agent.into(),
            state,
            started_ms: 0,
            deadline_ms: 0,
            ended_ms: None,
            counted: true,
            status,
            output_sha256: Some(hash.into()),
            fuel_consumed: fuel,
            peak_memory: 0,
            wall_time_ms: 0,
        }
    }

    #[test]
    fn one_ok_report_is_enough_without_replication() {
        let leases = [lease(
            "l1",
            "a",
            LeaseState::Reported,
            Some(Status::Ok),
            "h",
            10,
        )];
        assert_eq!(
            judge(&leases, 1, 3),
            Verdict::Done {
                lease_id: "l1".into()
            }
        );
    }

    #[test]
    fn replicas_must_agree_on_output_and_fuel() {
        let disagree = [
            lease("l1", "a", LeaseState::Reported, Some(Status::Ok), "h", 10),
            lease("l2", "b", LeaseState::Reported, Some(Status::Ok), "h", 11),
        ];
        assert!(matches!(judge(&disagree, 2, 3), Verdict::Pending(p) if p.best_agreement == 1));
        let mut agree = disagree.to_vec();
        agree.push(lease(
            "l3",
            "c",
            LeaseState::Reported,
            Some(Status::Ok),
            "h",
            10,
        ));
        assert_eq!(
            judge(&agree, 2, 3),
            Verdict::Done {
                lease_id: "l1".into()
            }
        );
    }

    #[test]
    fn failures_and_expiries_fail_the_task_at_max_attempts() {
        let leases = [
            lease(
                "l1",
                "a",
                LeaseState::Reported,
                Some(Status::ExitCode(2)),
                "",
                0,
            ),
            lease("l2", "b", LeaseState::Expired, None, "", 0),
        ];
        assert!(matches!(judge(&leases, 1, 3), Verdict::Pending(p) if p.failures == 2));
        let mut more = leases.to_vec();
        more.push(lease(
            "l3",
            "c",
            LeaseState::Reported,
            Some(Status::Trap("x".into())),
            "",
            0,
        ));
        let Verdict::Failed {
            reason,
            last_status,
        } = judge(&more, 1, 3)
        else {
            panic!("should fail");
        };
        assert!(reason.contains("exit code 2 on a"), "{reason}");
        assert!(reason.contains("1 lease(s) expired"), "{reason}");
        assert_eq!(last_status, Some(Status::Trap("x".into())));
    }

    #[test]
    fn uncounted_and_released_leases_do_not_count() {
        let mut late = lease("l1", "a", LeaseState::Expired, Some(Status::Ok), "h", 1);
        late.counted = false;
        let released = lease("l2", "b", LeaseState::Released, None, "", 0);
        assert!(matches!(judge(&[late, released], 1, 3), Verdict::Pending(p) if p.failures == 1));
    }
}
