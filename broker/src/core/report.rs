//! Results: storing a report on its lease and settling the task from all
//! its leases, in one transaction.

use std::sync::Arc;

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use wasmgrid_runtime::Status;

use crate::config::ReplicaSeparation;
use crate::core::Broker;
use crate::core::billing;
use crate::core::group_commit::{Then, then, unchanged};
use crate::error::{BrokerError, BrokerResult};
use crate::ids::now_ms;
use crate::scheduler::verdict::{Rules, Verdict, judge};
use crate::scheduler::{Scheduler, TaskKey};
use crate::store::events::TaskEvent;
use crate::store::leases::{LeaseRow, LeaseState, Report, RunVerdict};
use crate::store::tasks::AcceptedResult;
use crate::store::workloads::WorkloadRow;
use crate::store::writer::agents::ResultTally;
use crate::store::writer::{events, leases, tasks, workloads};

/// A result as received from an agent.
#[derive(Debug)]
pub struct IncomingReport {
    pub lease_id: String,
    /// The lease's task, as the agent says (a hint: the lease id decides).
    pub task: Option<TaskKey>,
    pub status: Status,
    pub output: Vec<u8>,
    pub stderr: Vec<u8>,
    pub fuel_consumed: u64,
    pub peak_memory: u64,
    pub wall_time_ms: u64,
    pub metering_version: String,
}

impl Broker {
    /// Records a report. Idempotent: a repeated report of a lease changes
    /// nothing and answers as the first did. Returns whether it counted.
    pub async fn report(
        self: &Arc<Self>,
        agent_id: &str,
        report: IncomingReport,
    ) -> BrokerResult<bool> {
        let mut answers = self.report_all(agent_id, vec![report]).await?;
        answers
            .pop()
            .unwrap_or_else(|| Err(BrokerError::Internal("a report went unanswered".into())))
    }

    /// Records an agent's reports in one call of the group commit, each as
    /// [`Broker::report`] would (its own answer, its own refusal); the
    /// agents' records take each agent's results in one `UPDATE`. A
    /// failure of the store fails them all (the call as a whole: nothing is
    /// stored, and each may be sent again).
    pub async fn report_all(
        self: &Arc<Self>,
        agent_id: &str,
        reports: Vec<IncomingReport>,
    ) -> BrokerResult<Vec<BrokerResult<bool>>> {
        let now = now_ms();
        // Hashed here, not on the writer, which all calls share.
        let hashed: Vec<(IncomingReport, String)> = reports
            .into_iter()
            .map(|report| {
                let output_sha256 = hex::encode(Sha256::digest(&report.output));
                (report, output_sha256)
            })
            .collect();
        let speeds: Vec<(bool, u64, u64)> = hashed
            .iter()
            .map(|(report, _)| {
                (
                    report.status == Status::Ok,
                    report.fuel_consumed,
                    report.wall_time_ms,
                )
            })
            .collect();
        let agent = agent_id.to_owned();
        let separation = self.config.replica_separation;
        let outcomes = self
            .commits
            .run(move |conn| {
                let mut results = ResultTally::default();
                let mut stored = Vec::with_capacity(hashed.len());
                for (report, output_sha256) in &hashed {
                    match store_report(
                        conn,
                        &agent,
                        report,
                        output_sha256,
                        separation,
                        &mut results,
                        now,
                    ) {
                        Ok(then) => stored.push(Ok(then)),
                        // The store failed mid-way: the call as a whole.
                        Err(error @ BrokerError::Writer(_)) => return Err(error),
                        // Refused before it wrote anything: this report only.
                        Err(refused) => stored.push(Err(refused)),
                    }
                }
                results.store(conn)?;
                Ok(then(move |scheduler| {
                    stored
                        .into_iter()
                        .map(|outcome| outcome.map(|then| then(scheduler)))
                        .collect::<Vec<_>>()
                }))
            })
            .await?;
        let mut answers = Vec::with_capacity(outcomes.len());
        let mut changed = false;
        for (outcome, (ok, fuel, wall_ms)) in outcomes.into_iter().zip(speeds) {
            answers.push(outcome.map(|outcome| {
                if outcome.counted && ok {
                    self.add_speed(agent_id, fuel, wall_ms);
                }
                if let Some(workload_id) = outcome.complete {
                    self.spawn_aggregation(workload_id);
                }
                changed |= outcome.changed;
                outcome.counted
            }));
        }
        if changed {
            self.changed();
        }
        Ok(answers)
    }
}

/// What storing a report led to.
struct ReportOutcome {
    counted: bool,
    /// The workload whose last pending task it finished.
    complete: Option<String>,
    /// Whether the store changed (false for a repeated report).
    changed: bool,
}

/// Stores a report on its lease and settles its task, on the group commit's
/// connection; the scheduler learns the verdict once it is committed.
fn store_report(
    conn: &Connection,
    agent_id: &str,
    report: &IncomingReport,
    output_sha256: &str,
    separation: ReplicaSeparation,
    results: &mut ResultTally,
    now: i64,
) -> BrokerResult<Then<ReportOutcome>> {
    let (mut lease, task_leases) = reported_lease(conn, agent_id, report, separation)?;
    if lease.status.is_some() {
        // Already reported: the first report stands.
        return Ok(unchanged(ReportOutcome {
            counted: lease.counted,
            complete: None,
            changed: false,
        }));
    }
    let workload = workloads::require(conn, &lease.workload_id)?;
    // Escrow covers each run up to its limits: a run cannot have used
    // more, so a report claiming more is false, and would drain the
    // escrow of other runs (with one replica, nothing else catches it).
    if report.fuel_consumed > workload.limits.fuel {
        return Err(BrokerError::invalid(format!(
            "reported fuel {} exceeds the task's fuel limit of {}",
            report.fuel_consumed, workload.limits.fuel
        )));
    }
    if report.peak_memory > workload.limits.memory_bytes {
        return Err(BrokerError::invalid(format!(
            "reported peak memory of {} bytes exceeds the task's limit of {}",
            report.peak_memory, workload.limits.memory_bytes
        )));
    }
    if report.output.len() as u64 > workload.limits.max_output_bytes {
        return Err(BrokerError::invalid(format!(
            "output of {} bytes exceeds the workload's cap of {}",
            report.output.len(),
            workload.limits.max_output_bytes
        )));
    }
    // A report on an expired lease still counts while its task is open:
    // the work is done, and redoing it elsewhere would only cost more. (The
    // task's state is read only then: an active lease counts anyway.)
    let was_active = lease.state == LeaseState::Active;
    let counted = was_active
        || (lease.state == LeaseState::Expired
            && !workload.state.is_final()
            && tasks::is_pending(conn, &lease.workload_id, lease.index)?);
    let stored = Report {
        status: &report.status,
        output: &report.output,
        output_sha256,
        stderr: &report.stderr,
        fuel_consumed: report.fuel_consumed,
        peak_memory: report.peak_memory,
        wall_time_ms: report.wall_time_ms,
        metering_version: &report.metering_version,
    };
    lease.add_report(&stored, counted, now);
    // The task's leases as they stand with this report, without reading
    // them again.
    let task_leases = task_leases.map(|mut all| {
        if let Some(stale) = all.iter_mut().find(|other| other.id == lease.id) {
            *stale = lease.clone();
        }
        all
    });
    // When this report makes the task's result, its run's verdict and pay
    // go in with the report, and its output only into the task (once).
    let accepted = match &task_leases {
        Some(all) if counted => accepted_run(all, &lease, &workload, separation),
        _ => None,
    };
    leases::report(conn, &lease.id, &stored, counted, accepted, now)?;
    if !counted {
        // A counted report is recorded by its lease row alone.
        events::record(
            conn,
            TaskEvent {
                workload_id: &lease.workload_id,
                index: lease.index,
                event: "reported-late",
                lease_id: Some(&lease.id),
                agent_id: Some(agent_id),
                at_ms: now,
                detail: Some(format!("{} fuel={}", report.status, report.fuel_consumed)),
            },
        )?;
    }
    let verdict = if counted {
        let reported = ReportedOutput {
            lease_id: &lease.id,
            output: &report.output,
            task_leases,
            verdict_stored: accepted.is_some(),
        };
        let verdict = settle_task(
            conn,
            &workload,
            lease.index,
            separation,
            Some(reported),
            results,
            now,
        )?;
        if accepted.is_some() && verdict.is_none() {
            // The task was settled already (its result was not this one):
            // the run keeps its output and has no verdict, as any report
            // stored on a settled task.
            leases::unaccept(conn, &lease.id, &report.output)?;
        }
        verdict
    } else {
        None
    };
    let ok = report.status == Status::Ok;
    let agent_id = agent_id.to_owned();
    Ok(then(move |scheduler| {
        let mut complete = None;
        if counted {
            let task = (lease.workload_id, lease.index);
            let run = ReportedRun {
                agent: &agent_id,
                ok,
                was_in_flight: was_active,
            };
            if apply_verdict(scheduler, &task, Some(&run), verdict.as_ref()) {
                complete = Some(task.0);
            }
        }
        ReportOutcome {
            counted,
            complete,
            changed: true,
        }
    }))
}

/// The verdict and pay of `lease`'s run when, with the task's leases `all`
/// (this report included), it is the run whose output becomes the task's
/// result; `None` otherwise. `settle_task` judges the same leases the same
/// way, so it reaches the same verdict (unless the task was settled
/// already, which `leases::unaccept` undoes).
fn accepted_run(
    all: &[LeaseRow],
    lease: &LeaseRow,
    workload: &WorkloadRow,
    separation: ReplicaSeparation,
) -> Option<(RunVerdict, i64)> {
    match judge(all, rules(workload, separation)) {
        Verdict::Done {
            lease_id, agreeing, ..
        } if lease_id == lease.id && agreeing.contains(&lease.id) => {
            let pay = billing::run_pay(workload, lease);
            Some((RunVerdict::Agreed, pay))
        }
        _ => None,
    }
}

/// The reported lease, checked to belong to `agent_id`, with every lease
/// of its task when the report named its task: one read where looking up
/// the lease alone, then its task's leases to settle it, takes two. A
/// report naming another task (or none) has its lease looked up alone.
fn reported_lease(
    conn: &Connection,
    agent_id: &str,
    report: &IncomingReport,
    separation: ReplicaSeparation,
) -> BrokerResult<(LeaseRow, Option<Vec<LeaseRow>>)> {
    if let Some((workload_id, index)) = &report.task {
        let all = task_leases(conn, workload_id, *index, separation)?;
        if let Some(lease) = all.iter().find(|lease| lease.id == report.lease_id) {
            let lease = lease.clone();
            check_owner(&lease, agent_id)?;
            return Ok((lease, Some(all)));
        }
    }
    Ok((owned_lease(conn, agent_id, &report.lease_id)?, None))
}

/// Every lease of a task, with its agent's owner and address only when
/// replicas are kept apart by those.
fn task_leases(
    conn: &Connection,
    workload_id: &str,
    index: u32,
    separation: ReplicaSeparation,
) -> BrokerResult<Vec<LeaseRow>> {
    let with_agents = separation != ReplicaSeparation::Agent;
    leases::of_task(conn, workload_id, index, with_agents)
}

/// The lease, checked to belong to `agent_id`.
pub(crate) fn owned_lease(
    conn: &Connection,
    agent_id: &str,
    lease_id: &str,
) -> BrokerResult<LeaseRow> {
    let lease = leases::get(conn, lease_id)?
        .ok_or_else(|| BrokerError::not_found(format!("lease {lease_id} not found")))?;
    check_owner(&lease, agent_id)?;
    Ok(lease)
}

fn check_owner(lease: &LeaseRow, agent_id: &str) -> BrokerResult<()> {
    if lease.agent_id != agent_id {
        return Err(BrokerError::PermissionDenied(format!(
            "lease {} belongs to another agent",
            lease.id
        )));
    }
    Ok(())
}

/// What a workload's task results must satisfy.
pub(crate) fn rules(workload: &WorkloadRow, separation: ReplicaSeparation) -> Rules {
    Rules {
        quorum: workload.quorum,
        max_attempts: workload.max_attempts,
        compare_memory: workload.pricing().prices_memory(),
        separation,
    }
}

/// The output of the report being stored, which the store need not be asked
/// for again when it is the accepted one.
pub(crate) struct ReportedOutput<'a> {
    pub lease_id: &'a str,
    pub output: &'a [u8],
    /// Every lease of the task, this report included, when the caller read
    /// them in this transaction already.
    pub task_leases: Option<Vec<LeaseRow>>,
    /// The report's own verdict and pay were stored with it.
    pub verdict_stored: bool,
}

/// Judges a pending task from its leases and, if it is done or failed,
/// records that. Returns the verdict, or `None` if the task was no longer
/// pending.
pub(crate) fn settle_task(
    conn: &Connection,
    workload: &WorkloadRow,
    index: u32,
    separation: ReplicaSeparation,
    mut reported: Option<ReportedOutput<'_>>,
    results: &mut ResultTally,
    now: i64,
) -> BrokerResult<Option<Verdict>> {
    let all = match reported
        .as_mut()
        .and_then(|reported| reported.task_leases.take())
    {
        Some(all) => all,
        None => task_leases(conn, &workload.id, index, separation)?,
    };
    let verdict = judge(&all, rules(workload, separation));
    let changed = match &verdict {
        Verdict::Done {
            lease_id,
            agreeing,
            disagreeing,
            ..
        } => {
            let Some(winner) = all.iter().find(|lease| &lease.id == lease_id) else {
                return Ok(None);
            };
            let stored;
            let output = match &reported {
                Some(reported) if reported.lease_id == lease_id.as_str() => reported.output,
                _ => {
                    stored = leases::output(conn, lease_id)?;
                    stored.as_slice()
                }
            };
            let accepted = AcceptedResult {
                output,
                status: &Status::Ok,
                fuel_consumed: winner.fuel_consumed,
                peak_memory: winner.peak_memory,
                wall_time_ms: winner.wall_time_ms,
            };
            let done = tasks::mark_done(conn, &workload.id, index, &accepted, now)?;
            if done {
                // No `done` event: the task row holds its finish time and
                // the lease row its accepted run (`store::events`).
                let verdict_stored = reported
                    .as_ref()
                    .filter(|reported| reported.verdict_stored)
                    .map(|reported| reported.lease_id);
                let verdicts = billing::Verdicts {
                    agreeing,
                    disagreeing,
                    stored: verdict_stored,
                };
                billing::settle_runs(conn, workload, index, &all, &verdicts, results, now)?;
            }
            done
        }
        Verdict::Failed {
            reason,
            last_status,
        } => {
            let failed =
                tasks::mark_failed(conn, &workload.id, index, last_status.as_ref(), reason, now)?;
            if failed {
                record(
                    conn,
                    workload,
                    index,
                    "failed",
                    None,
                    Some(reason.clone()),
                    now,
                )?;
            }
            failed
        }
        Verdict::Pending(_) => return Ok(Some(verdict)),
    };
    // `all` was read in this transaction and no lease changed state since,
    // so it tells whether any run is still going (with one replica, mostly
    // none: the statement is then not run).
    if changed && all.iter().any(|lease| lease.state == LeaseState::Active) {
        // Runs still going on a finished task are pointless: revoke them so
        // their agents learn it at the next heartbeat and their reports do
        // not count.
        for (lease_id, agent_id) in leases::revoke_task(conn, &workload.id, index, now)? {
            events::record(
                conn,
                TaskEvent {
                    workload_id: &workload.id,
                    index,
                    event: "revoked",
                    lease_id: Some(&lease_id),
                    agent_id: Some(&agent_id),
                    at_ms: now,
                    detail: Some("the task finished without this run".into()),
                },
            )?;
        }
    }
    Ok(changed.then_some(verdict))
}

fn record(
    conn: &Connection,
    workload: &WorkloadRow,
    index: u32,
    event: &str,
    lease: Option<&LeaseRow>,
    detail: Option<String>,
    now: i64,
) -> BrokerResult<()> {
    events::record(
        conn,
        TaskEvent {
            workload_id: &workload.id,
            index,
            event,
            lease_id: lease.map(|l| l.id.as_str()),
            agent_id: lease.map(|l| l.agent_id.as_str()),
            at_ms: now,
            detail,
        },
    )
}

/// The run whose end led to a verdict.
#[derive(Debug)]
pub(crate) struct ReportedRun<'a> {
    pub agent: &'a str,
    /// Reported with status OK (an expiry is not OK).
    pub ok: bool,
    /// The run was in flight in the scheduler (false for a late report).
    pub was_in_flight: bool,
}

/// Applies a settled verdict to the scheduler after `run` of `task` ended.
/// Returns true when the workload has no pending task left.
pub(crate) fn apply_verdict(
    scheduler: &mut Scheduler,
    task: &TaskKey,
    run: Option<&ReportedRun<'_>>,
    verdict: Option<&Verdict>,
) -> bool {
    match verdict {
        Some(Verdict::Pending(progress)) => {
            if let Some(run) = run {
                scheduler.run_reported(task, run.agent, run.ok, run.was_in_flight, progress);
            }
            false
        }
        Some(Verdict::Done {
            fuel,
            peak_memory,
            disagreeing,
            ..
        }) => {
            if !disagreeing.is_empty() {
                scheduler.disagreement_recorded();
            }
            scheduler.result_accepted(&task.0, *fuel, *peak_memory);
            scheduler.task_finished(task)
        }
        Some(Verdict::Failed { .. }) => scheduler.task_finished(task),
        None => false,
    }
}
