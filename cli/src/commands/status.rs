//! `wasmgrid status`: one snapshot of a workload, and with `--tasks` every
//! task's history.

use std::collections::BTreeSet;

use clap::Args;
use wasmgrid_proto::v1::{TaskInfo, TaskState, WorkloadRequest, WorkloadStatus};

use crate::client::{Broker, BrokerArgs};
use crate::progress::{counts_text, draw_once, failure_lines, state_name};
use crate::table::{Table, between, duration_text, unix_ms_text};

/// Failed tasks listed at most; `--tasks` shows them all.
const FAILURES_SHOWN: usize = 50;

/// Arguments of `wasmgrid status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The workload id, as printed by `wasmgrid submit`.
    id: String,
    /// Also list every task: state, attempts, agents, run durations, fuel.
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

/// One row per task. Agents are listed once each, in the order they worked
/// on the task; durations are one per attempt (`…` while it runs); fuel is
/// that of the last reported attempt.
pub fn tasks_table(tasks: &[TaskInfo]) -> Table {
    let mut table = Table::new(&[
        ">TASK",
        "STATE",
        ">ATTEMPTS",
        "AGENTS",
        "DURATIONS",
        ">FUEL",
    ]);
    for task in tasks {
        let mut seen = BTreeSet::new();
        let agents: Vec<&str> = task
            .history
            .iter()
            .map(|attempt| attempt.agent_id.as_str())
            .filter(|agent| seen.insert(*agent))
            .collect();
        let durations: Vec<String> = task
            .history
            .iter()
            .map(
                |attempt| match between(attempt.started_unix_ms, attempt.ended_unix_ms) {
                    Some(took) => duration_text(took),
                    None => "…".to_owned(),
                },
            )
            .collect();
        let fuel = task
            .history
            .iter()
            .rev()
            .find(|attempt| attempt.state == "reported")
            .map_or_else(
                || "-".to_owned(),
                |attempt| attempt.fuel_consumed.to_string(),
            );
        table.row(vec![
            task.index.to_string(),
            task_state_name(task.state).to_owned(),
            task.attempts.to_string(),
            or_dash(agents.join(",")),
            or_dash(durations.join(",")),
            fuel,
        ]);
    }
    table
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use wasmgrid_proto::v1::TaskAttempt;

    use super::*;

    #[test]
    fn the_task_table_shows_attempts_agents_and_fuel() {
        let attempt = |agent: &str, state: &str, started, ended, fuel| TaskAttempt {
            agent_id: agent.into(),
            state: state.into(),
            started_unix_ms: started,
            ended_unix_ms: ended,
            fuel_consumed: fuel,
            ..TaskAttempt::default()
        };
        let tasks = [
            TaskInfo {
                index: 0,
                state: TaskState::Done as i32,
                attempts: 2,
                history: vec![
                    attempt("a1", "expired", 1000, 61_000, 0),
                    attempt("a2", "reported", 61_000, 61_250, 4200),
                ],
            },
            TaskInfo {
                index: 1,
                state: TaskState::Queued as i32,
                ..TaskInfo::default()
            },
        ];
        assert_eq!(
            tasks_table(&tasks).render(),
            "TASK  STATE   ATTEMPTS  AGENTS  DURATIONS     FUEL\n\
             \u{20}  0  done           2  a1,a2   1m 00s,250ms  4200\n\
             \u{20}  1  queued         0  -       -                -\n"
        );
    }
}
