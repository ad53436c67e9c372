//! `wasmgrid status`: one snapshot of a workload, and with `--tasks` every
//! task's history.

use std::time::Duration;

use clap::Args;
use wasmgrid_proto::v1::{
    TaskAttempt, TaskInfo, TaskState, TaskStatusKind, WorkloadRequest, WorkloadStatus,
};

use crate::bill::bill_summary;
use crate::client::{Broker, BrokerArgs};
use crate::credits::credits_text;
use crate::progress::{counts_text, draw_once, failure_lines, state_name};
use crate::table::{Table, between, duration_text, unix_ms_text};

/// Failed tasks listed at most; `--tasks` shows them all.
const FAILURES_SHOWN: usize = 50;

/// Arguments of `wasmgrid status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The workload id, as printed by `wasmgrid submit`.
    id: String,
    /// Also list every task and its runs: state, agreeing results, attempts,
    /// and per run the agent, outcome, wall time, fuel, credits paid and
    /// verdict.
    #[arg(long)]
    tasks: bool,
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Prints the status; `Ok(true)` whatever the workload's state (it is
/// `wait` that turns the state into an exit code).
pub async fn run(args: StatusArgs) -> anyhow::Result<bool> {
    let mut broker = Broker::connect(&args.broker).await?;
    let request = WorkloadRequest {
        workload_id: args.id.clone(),
    };
    let status = broker
        .issuer
        .get_status(request.clone())
        .await
        .map_err(|status| broker.error(status))?
        .into_inner();
    print!("{}", status_text(&status));
    draw_once(&status);
    if args.tasks {
        let tasks = broker
            .issuer
            .list_tasks(request)
            .await
            .map_err(|status| broker.error(status))?
            .into_inner()
            .tasks;
        print!("{}", tasks_table(&tasks).render());
    }
    Ok(true)
}

/// The status as labelled lines.
pub fn status_text(status: &WorkloadStatus) -> String {
    let mut lines = vec![
        format!("workload  {}", status.workload_id),
        format!("name      {}", status.name),
        format!("issuer    {}", status.issuer),
        format!("state     {}", state_name(status.state)),
        format!("tasks     {}", counts_text(status)),
        format!(
            "reducer   {}",
            if status.has_reducer { "yes" } else { "no" }
        ),
        format!("replicas  {}", replication_text(status)),
        format!("price     {}", price_text(status)),
        format!(
            "bill      {}",
            bill_summary(&status.bill.unwrap_or_default())
        ),
        format!("created   {}", unix_ms_text(status.created_unix_ms)),
    ];
    if status.finished_unix_ms > 0 {
        let took = between(status.created_unix_ms, status.finished_unix_ms)
            .map(|took| format!(" (after {})", duration_text(took)))
            .unwrap_or_default();
        lines.push(format!(
            "finished  {}{took}",
            unix_ms_text(status.finished_unix_ms)
        ));
    }
    if !status.error.is_empty() {
        lines.push(format!("error     {}", status.error));
    }
    lines.extend(failure_lines(status, FAILURES_SHOWN));
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// `2, quorum 2 (all)`, with `, adaptive` when adaptive replication is on.
fn replication_text(status: &WorkloadStatus) -> String {
    let quorum = if status.quorum == 0 || status.quorum == status.replicas {
        format!("quorum {} (all)", status.replicas)
    } else {
        format!("quorum {}", status.quorum)
    };
    let adaptive = if status.adaptive_replication {
        ", adaptive"
    } else {
        ""
    };
    format!("{}, {quorum}{adaptive}", status.replicas)
}

/// `0.000000001 credits per fuel`, and the memory price when there is one.
fn price_text(status: &WorkloadStatus) -> String {
    let mut text = format!("{} credits per fuel", status.credits_per_fuel);
    if status.credits_per_mib_second > 0.0 {
        text.push_str(&format!(
            ", {} per MiB-second",
            status.credits_per_mib_second
        ));
    }
    text
}

fn task_state_name(state: i32) -> &'static str {
    match TaskState::try_from(state) {
        Ok(TaskState::Queued) => "queued",
        Ok(TaskState::Leased) => "running",
        Ok(TaskState::Done) => "done",
        Ok(TaskState::Failed) => "failed",
        Ok(TaskState::Cancelled) => "cancelled",
        Ok(TaskState::Unspecified) | Err(_) => "unknown",
    }
}

/// How one run ended, in a word or two: `running` while its lease is
/// active, the task's status once reported (`ok`, `exit 3`, `out of fuel`,
/// `trap`, …; the trap message is in the workload's failures), else the
/// lease's end (`expired`, `released`, `revoked`).
fn run_outcome(attempt: &TaskAttempt) -> String {
    match attempt.state.as_str() {
        "active" => "running".to_owned(),
        "reported" => {
            let Some(status) = &attempt.status else {
                return "reported".to_owned();
            };
            match TaskStatusKind::try_from(status.kind) {
                Ok(TaskStatusKind::Ok) => "ok".to_owned(),
                Ok(TaskStatusKind::ExitCode) => format!("exit {}", status.exit_code),
                Ok(TaskStatusKind::OutOfFuel) => "out of fuel".to_owned(),
                Ok(TaskStatusKind::MemoryLimit) => "memory limit".to_owned(),
                Ok(TaskStatusKind::Timeout) => "timeout".to_owned(),
                Ok(TaskStatusKind::OutputLimit) => "output limit".to_owned(),
                Ok(TaskStatusKind::Trap) => "trap".to_owned(),
                Ok(TaskStatusKind::InvalidModule) => "invalid module".to_owned(),
                Ok(TaskStatusKind::Unspecified) | Err(_) => "reported".to_owned(),
            }
        }
        "" => "-".to_owned(),
        other => other.to_owned(),
    }
}

/// A run's duration: the wall time the agent measured once it reported
/// (`<1ms` for a quicker run: the wire counts whole milliseconds); before
/// that, how long the lease was held (`…` while it runs).
fn run_duration(attempt: &TaskAttempt) -> String {
    if attempt.state == "reported" {
        return match attempt.wall_time_ms {
            0 => "<1ms".to_owned(),
            ms => duration_text(Duration::from_millis(ms)),
        };
    }
    match between(attempt.started_unix_ms, attempt.ended_unix_ms) {
        Some(held) => duration_text(held),
        None => "…".to_owned(),
    }
}

/// `agreed/needed`, e.g. `2/2`; the count alone when the broker did not say
/// how many are needed.
fn agreement(task: &TaskInfo) -> String {
    let agreed = task
        .history
        .iter()
        .filter(|attempt| attempt.verdict == "agreed")
        .count();
    if task.quorum > 0 {
        format!("{agreed}/{}", task.quorum)
    } else {
        agreed.to_string()
    }
}

/// One row per run of each task, the task's own columns (index, state,
/// agreeing results out of those needed, attempts) on its first run's row;
/// a task that has not run yet has one row of its own. Per run: the agent,
/// how the run ended, its wall time, its fuel, what it was paid and its
/// verdict (`agreed` with the accepted result, or `disagreed`).
pub fn tasks_table(tasks: &[TaskInfo]) -> Table {
    let mut table = Table::new(&[
        ">TASK",
        "STATE",
        ">AGREED",
        ">ATTEMPTS",
        "AGENT",
        "RUN",
        ">WALL",
        ">FUEL",
        ">PAID",
        "VERDICT",
    ]);
    for task in tasks {
        let task_cells = vec![
            task.index.to_string(),
            task_state_name(task.state).to_owned(),
            agreement(task),
            task.attempts.to_string(),
        ];
        if task.history.is_empty() {
            let mut row = task_cells;
            row.push("-".to_owned());
            table.row(row);
            continue;
        }
        for (run, attempt) in task.history.iter().enumerate() {
            let mut row = if run == 0 {
                task_cells.clone()
            } else {
                vec![String::new(); task_cells.len()]
            };
            let reported = attempt.state == "reported";
            row.extend([
                attempt.agent_id.clone(),
                run_outcome(attempt),
                run_duration(attempt),
                if reported {
                    attempt.fuel_consumed.to_string()
                } else {
                    "-".to_owned()
                },
                if reported || attempt.paid_micro != 0 {
                    credits_text(attempt.paid_micro)
                } else {
                    "-".to_owned()
                },
                attempt.verdict.clone(),
            ]);
            table.row(row);
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use wasmgrid_proto::v1::{Bill, TaskStatus, WorkloadState};

    use super::*;

    fn attempt(agent: &str, state: &str, started: i64, ended: i64) -> TaskAttempt {
        TaskAttempt {
            agent_id: agent.into(),
            state: state.into(),
            started_unix_ms: started,
            ended_unix_ms: ended,
            ..TaskAttempt::default()
        }
    }

    fn reported(agent: &str, wall_ms: u64, fuel: u64, paid: i64, verdict: &str) -> TaskAttempt {
        TaskAttempt {
            status: Some(TaskStatus {
                kind: TaskStatusKind::Ok as i32,
                ..TaskStatus::default()
            }),
            wall_time_ms: wall_ms,
            fuel_consumed: fuel,
            paid_micro: paid,
            verdict: verdict.into(),
            ..attempt(agent, "reported", 61_000, 61_300)
        }
    }

    #[test]
    fn the_task_table_has_a_row_per_run() {
        let tasks = [
            TaskInfo {
                index: 0,
                state: TaskState::Done as i32,
                attempts: 3,
                quorum: 2,
                fuel_consumed: 4200,
                paid_micro: 8,
                history: vec![
                    attempt("a1", "expired", 1000, 61_000),
                    reported("a2", 250, 4200, 4, "agreed"),
                    reported("a3", 1250, 4200, 4, "agreed"),
                ],
            },
            TaskInfo {
                index: 1,
                state: TaskState::Leased as i32,
                attempts: 1,
                quorum: 2,
                history: vec![
                    TaskAttempt {
                        status: Some(TaskStatus {
                            kind: TaskStatusKind::ExitCode as i32,
                            exit_code: 3,
                            ..TaskStatus::default()
                        }),
                        ..attempt("a1", "reported", 1000, 2000)
                    },
                    attempt("a2", "active", 2000, 0),
                ],
                ..TaskInfo::default()
            },
            TaskInfo {
                index: 2,
                state: TaskState::Queued as i32,
                quorum: 2,
                ..TaskInfo::default()
            },
        ];
        assert_eq!(
            tasks_table(&tasks).render(),
            "TASK  STATE    AGREED  ATTEMPTS  AGENT  RUN        WALL  FUEL      PAID  VERDICT\n\
             \u{20}  0  done        2/2         3  a1     expired  1m 00s     -         -\n\
             \u{20}                                a2     ok        250ms  4200  0.000004  agreed\n\
             \u{20}                                a3     ok         1.2s  4200  0.000004  agreed\n\
             \u{20}  1  running     0/2         1  a1     exit 3     <1ms     0  0.000000\n\
             \u{20}                                a2     running       …     -         -\n\
             \u{20}  2  queued      0/2         0  -\n"
        );
    }

    #[test]
    fn the_status_shows_replication_price_and_bill() {
        let status = WorkloadStatus {
            workload_id: "w-1".into(),
            name: "primes".into(),
            issuer: "alice".into(),
            state: WorkloadState::Done as i32,
            total: 4,
            done: 4,
            replicas: 3,
            quorum: 2,
            adaptive_replication: true,
            credits_per_fuel: 1e-9,
            credits_per_mib_second: 0.5,
            bill: Some(Bill {
                escrowed_micro: 12_000_000,
                paid_micro: 3_000_000,
                fee_micro: 150_000,
                refunded_micro: 8_850_000,
            }),
            ..WorkloadStatus::default()
        };
        let text = status_text(&status);
        assert!(text.contains("replicas  3, quorum 2, adaptive\n"), "{text}");
        assert!(
            text.contains("price     0.000000001 credits per fuel, 0.5 per MiB-second\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "bill      escrowed 12.000000, paid 3.000000, fee 0.150000, refunded 8.850000 credits\n"
            ),
            "{text}"
        );
        let all = WorkloadStatus {
            replicas: 2,
            quorum: 0,
            ..WorkloadStatus::default()
        };
        assert_eq!(replication_text(&all), "2, quorum 2 (all)");
    }
}
