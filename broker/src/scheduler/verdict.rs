//! Judging a task from its leases: done when `quorum` reports agree on the
//! output hash and the fuel used (and the peak memory, when memory is
//! priced), or when the OK report of a run dispatched alone to a trusted
//! agent stands; failed after `max_attempts` failed runs (non-OK reports and
//! expired leases) or when agreement has become impossible; otherwise still
//! pending.

use std::collections::HashMap;

use wasmgrid_runtime::Status;

use crate::config::ReplicaSeparation;
use crate::store::leases::{LeaseRow, LeaseState};

/// Where a task stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Enough reports agree.
    Done {
        /// The lease whose output is the result.
        lease_id: String,
        /// The runs that made the quorum, oldest first: the ones paid.
        agreeing: Vec<String>,
        /// OK runs whose result differs from the accepted one.
        disagreeing: Vec<String>,
        /// The accepted result's fuel and peak memory.
        fuel: u64,
        peak_memory: u64,
    },
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

/// What a task's results must satisfy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Agreeing OK reports needed.
    pub quorum: u32,
    /// Failed runs after which the task fails.
    pub max_attempts: u32,
    /// Replicas must also agree on peak memory (memory is priced).
    pub compare_memory: bool,
    /// What agreeing runs must not share to count apart.
    pub separation: ReplicaSeparation,
}

/// The replica group of a run's agent: runs of one group count once
/// towards a quorum, however many agree (an agent retried on a task it let
/// expire cannot agree with itself).
fn replica_group(lease: &LeaseRow, separation: ReplicaSeparation) -> String {
    match separation {
        ReplicaSeparation::Owner if !lease.agent_owner.is_empty() => {
            format!("owner:{}", lease.agent_owner)
        }
        ReplicaSeparation::Address if !lease.agent_address.is_empty() => {
            format!("address:{}", lease.agent_address)
        }
        _ => format!("agent:{}", lease.agent_id),
    }
}

/// Judges a task from all its leases.
pub fn judge(leases: &[LeaseRow], rules: Rules) -> Verdict {
    let counted_reports = || {
        leases
            .iter()
            .filter(|lease| lease.state == LeaseState::Reported && lease.counted)
    };
    let mut groups: HashMap<(&str, u64, u64), Vec<&LeaseRow>> = HashMap::new();
    let ok_leases: Vec<&LeaseRow> = counted_reports()
        .filter(|lease| lease.status == Some(Status::Ok))
        .collect();
    for lease in &ok_leases {
        let key = (
            lease.output_sha256.as_deref().unwrap_or(""),
            lease.fuel_consumed,
            if rules.compare_memory {
                lease.peak_memory
            } else {
                0
            },
        );
        let group = groups.entry(key).or_default();
        let replica = replica_group(lease, rules.separation);
        if !group
            .iter()
            .any(|member| replica_group(member, rules.separation) == replica)
        {
            group.push(lease);
        }
    }
    // A solo run (a trusted agent's, not spot-checked) stands alone.
    let needed = |group: &Vec<&LeaseRow>| {
        if group.iter().any(|lease| lease.solo) {
            1
        } else {
            rules.quorum.max(1)
        }
    };
    let winner = groups
        .values()
        .filter(|group| group.len() as u32 >= needed(group))
        .min_by_key(|group| (group[0].started_ms, group[0].id.as_str()));
    if let Some(group) = winner {
        let agreeing: Vec<String> = group
            .iter()
            .take(needed(group) as usize)
            .map(|lease| lease.id.clone())
            .collect();
        let (output, fuel, memory) = (
            group[0].output_sha256.as_deref(),
            group[0].fuel_consumed,
            group[0].peak_memory,
        );
        let disagreeing = ok_leases
            .iter()
            .filter(|lease| {
                lease.output_sha256.as_deref() != output
                    || lease.fuel_consumed != fuel
                    || (rules.compare_memory && lease.peak_memory != memory)
            })
            .map(|lease| lease.id.clone())
            .collect();
        return Verdict::Done {
            lease_id: group[0].id.clone(),
            agreeing,
            disagreeing,
            fuel: group[0].fuel_consumed,
            peak_memory: group[0].peak_memory,
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
    let ok_reports = ok_leases.len() as u32;
    let best_agreement = groups
        .values()
        .map(|group| group.len() as u32)
        .max()
        .unwrap_or(0);
    let last_status = failed_reports.last().and_then(|lease| lease.status.clone());
    if failures >= rules.max_attempts {
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
    // `quorum + max_attempts` runs, no quorum is coming.
    if ok_reports >= rules.quorum + rules.max_attempts {
        return Verdict::Failed {
            reason: format!(
                "no {} of {ok_reports} results agree (results kept on the task's runs)",
                rules.quorum
            ),
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
            solo: false,
            verdict: None,
            paid_micro: 0,
            agent_owner: String::new(),
            agent_address: String::new(),
        }
    }

    fn rules(quorum: u32, max_attempts: u32) -> Rules {
        Rules {
            quorum,
            max_attempts,
            compare_memory: false,
            separation: ReplicaSeparation::Agent,
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
            judge(&leases, rules(1, 3)),
            Verdict::Done {
                lease_id: "l1".into(),
                agreeing: vec!["l1".into()],
                disagreeing: vec![],
                fuel: 10,
                peak_memory: 0,
            }
        );
    }

    #[test]
    fn replicas_must_agree_on_output_and_fuel() {
        let disagree = [
            lease("l1", "a", LeaseState::Reported, Some(Status::Ok), "h", 10),
            lease("l2", "b", LeaseState::Reported, Some(Status::Ok), "h", 11),
        ];
        assert!(
            matches!(judge(&disagree, rules(2, 3)), Verdict::Pending(p) if p.best_agreement == 1)
        );
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
            judge(&agree, rules(2, 3)),
            Verdict::Done {
                lease_id: "l1".into(),
                agreeing: vec!["l1".into(), "l3".into()],
                disagreeing: vec!["l2".into()],
                fuel: 10,
                peak_memory: 0,
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
        assert!(matches!(judge(&leases, rules(1, 3)), Verdict::Pending(p) if p.failures == 2));
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
        } = judge(&more, rules(1, 3))
        else {
            panic!("should fail");
        };
        assert!(reason.contains("exit code 2 on a"), "{reason}");
        assert!(reason.contains("1 lease(s) expired"), "{reason}");
        assert_eq!(last_status, Some(Status::Trap("x".into())));
    }

    #[test]
    fn a_solo_run_stands_alone_and_memory_is_compared_when_priced() {
        let mut solo = lease("l1", "a", LeaseState::Reported, Some(Status::Ok), "h", 10);
        solo.solo = true;
        assert!(matches!(judge(&[solo], rules(2, 3)), Verdict::Done { .. }));
        let mut first = lease("l1", "a", LeaseState::Reported, Some(Status::Ok), "h", 10);
        let mut second = lease("l2", "b", LeaseState::Reported, Some(Status::Ok), "h", 10);
        first.peak_memory = 1 << 20;
        second.peak_memory = 2 << 20;
        let leases = [first, second];
        assert!(matches!(judge(&leases, rules(2, 3)), Verdict::Done { .. }));
        let priced = Rules {
            compare_memory: true,
            ..rules(2, 3)
        };
        assert!(matches!(judge(&leases, priced), Verdict::Pending(_)));
    }

    #[test]
    fn one_agent_or_owner_cannot_agree_with_itself() {
        let leases = [
            lease("l1", "a", LeaseState::Reported, Some(Status::Ok), "h", 10),
            lease("l2", "a", LeaseState::Reported, Some(Status::Ok), "h", 10),
        ];
        assert!(
            matches!(judge(&leases, rules(2, 3)), Verdict::Pending(p) if p.best_agreement == 1)
        );
        let mut by_owner = [
            lease("l1", "a", LeaseState::Reported, Some(Status::Ok), "h", 10),
            lease("l2", "b", LeaseState::Reported, Some(Status::Ok), "h", 10),
        ];
        assert!(matches!(
            judge(&by_owner, rules(2, 3)),
            Verdict::Done { .. }
        ));
        for run in &mut by_owner {
            run.agent_owner = "alice".into();
        }
        let owner_rules = Rules {
            separation: ReplicaSeparation::Owner,
            ..rules(2, 3)
        };
        assert!(matches!(judge(&by_owner, owner_rules), Verdict::Pending(_)));
    }

    #[test]
    fn uncounted_and_released_leases_do_not_count() {
        let mut late = lease("l1", "a", LeaseState::Expired, Some(Status::Ok), "h", 1);
        late.counted = false;
        let released = lease("l2", "b", LeaseState::Released, None, "", 0);
        assert!(
            matches!(judge(&[late, released], rules(1, 3)), Verdict::Pending(p) if p.failures == 1)
        );
    }
}
