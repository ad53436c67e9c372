//! `workloads`: what an issuer submitted, its state and its end result.

use std::time::Duration;

use crate::store::columns::Columns;
use sqlx::{Row, SqliteConnection};
use wasmgrid_runtime::Limits;

use crate::error::{BrokerError, BrokerResult};
use crate::pricing::Pricing;

/// A workload's life: running until every task is done or failed, then done
/// (end result built) or failed; or cancelled by its issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadState {
    Running,
    Done,
    Failed,
    Cancelled,
}

impl WorkloadState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadState::Running => "running",
            WorkloadState::Done => "done",
            WorkloadState::Failed => "failed",
            WorkloadState::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> BrokerResult<Self> {
        Ok(match text {
            "running" => WorkloadState::Running,
            "done" => WorkloadState::Done,
            "failed" => WorkloadState::Failed,
            "cancelled" => WorkloadState::Cancelled,
            other => {
                return Err(BrokerError::FailedPrecondition(format!(
                    "store holds unknown workload state {other:?}"
                )));
            }
        })
    }

    /// True once the workload can no longer change.
    pub fn is_final(self) -> bool {
        self != WorkloadState::Running
    }
}

/// A workload as stored (without its tasks).
#[derive(Clone, Debug)]
pub struct WorkloadRow {
    pub id: String,
    pub issuer: String,
    pub name: String,
    pub module_sha256: String,
    pub reducer_sha256: Option<String>,
    pub limits: Limits,
    /// Runs dispatched at once per task.
    pub replicas: u32,
    /// Agreeing results a task needs (≤ replicas).
    pub quorum: u32,
    /// Adaptive replication: trusted agents' runs may stand alone.
    pub adaptive: bool,
    pub max_attempts: u32,
    pub credits_per_fuel: f64,
    pub credits_per_mib_second: f64,
    /// The broker's fee, fixed at submit.
    pub fee_basis_points: u32,
    /// What submit escrowed, in micro-credits.
    pub escrow_micro: i64,
    pub task_count: u32,
    pub state: WorkloadState,
    pub error: Option<String>,
    pub reduced: bool,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
}

impl WorkloadRow {
    /// The workload's prices as integers. Rates were checked at submit.
    pub fn pricing(&self) -> Pricing {
        Pricing::from_rates(
            self.credits_per_fuel,
            self.credits_per_mib_second,
            self.fee_basis_points,
        )
        .unwrap_or_default()
    }
}

/// A running workload `id` of `tasks` tasks, for tests: one replica,
/// default limits, module `ab…`, issuer `issuer of {id}`.
#[cfg(test)]
pub(crate) fn test_row(id: &str, credits_per_fuel: f64, tasks: u32) -> WorkloadRow {
    WorkloadRow {
        id: id.to_owned(),
        issuer: format!("issuer of {id}"),
        name: id.to_owned(),
        module_sha256: "ab".repeat(32),
        reducer_sha256: None,
        limits: Limits::default(),
        replicas: 1,
        quorum: 1,
        adaptive: false,
        max_attempts: 3,
        credits_per_fuel,
        credits_per_mib_second: 0.0,
        fee_basis_points: 0,
        escrow_micro: 0,
        task_count: tasks,
        state: WorkloadState::Running,
        error: None,
        reduced: false,
        created_ms: 0,
        finished_ms: None,
    }
}

/// How far a workload's tasks are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskCounts {
    pub pending: u32,
    pub running: u32,
    pub done: u32,
    pub failed: u32,
    pub cancelled: u32,
}

pub(crate) const COLUMNS: &str =
    "id, issuer, name, module_sha256, reducer_sha256, memory_bytes, fuel, wall_time_ms,
     max_output_bytes, max_stack_bytes, replicas, quorum, adaptive, max_attempts, credits_per_fuel,
     credits_per_mib_second, fee_basis_points, escrow_micro, task_count,
     state, error, reduced, created_ms, finished_ms";

/// A workload from a row of [`COLUMNS`], of the pool or of the writer.
pub(crate) fn from_row(row: &impl Columns) -> BrokerResult<WorkloadRow> {
    Ok(WorkloadRow {
        id: row.text("id")?,
        issuer: row.text("issuer")?,
        name: row.text("name")?,
        module_sha256: row.text("module_sha256")?,
        reducer_sha256: row.text_or_null("reducer_sha256")?,
        limits: Limits {
            memory_bytes: row.int("memory_bytes")? as u64,
            fuel: row.int("fuel")? as u64,
            wall_time: Duration::from_millis(row.int("wall_time_ms")? as u64),
            max_output_bytes: row.int("max_output_bytes")? as u64,
            max_stack_bytes: row.int("max_stack_bytes")? as usize,
        },
        replicas: row.int("replicas")? as u32,
        quorum: row.int("quorum")? as u32,
        adaptive: row.int("adaptive")? != 0,
        max_attempts: row.int("max_attempts")? as u32,
        credits_per_fuel: row.real("credits_per_fuel")?,
        credits_per_mib_second: row.real("credits_per_mib_second")?,
        fee_basis_points: row.int("fee_basis_points")? as u32,
        escrow_micro: row.int("escrow_micro")?,
        task_count: row.int("task_count")? as u32,
        state: WorkloadState::parse(&row.text("state")?)?,
        error: row.text_or_null("error")?,
        reduced: row.int("reduced")? != 0,
        created_ms: row.int("created_ms")?,
        finished_ms: row.int_or_null("finished_ms")?,
    })
}

/// Stores a new workload (its tasks are inserted separately).
pub async fn insert(conn: &mut SqliteConnection, w: &WorkloadRow) -> BrokerResult<()> {
    sqlx::query(
        "INSERT INTO workloads (id, issuer, name, module_sha256, reducer_sha256, memory_bytes, fuel,
             wall_time_ms, max_output_bytes, max_stack_bytes, replicas, quorum, adaptive,
             max_attempts, credits_per_fuel, credits_per_mib_second, fee_basis_points,
             escrow_micro, task_count, state, created_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&w.id)
    .bind(&w.issuer)
    .bind(&w.name)
    .bind(&w.module_sha256)
    .bind(&w.reducer_sha256)
    .bind(w.limits.memory_bytes as i64)
    .bind(w.limits.fuel as i64)
    .bind(w.limits.wall_time.as_millis() as i64)
    .bind(w.limits.max_output_bytes as i64)
    .bind(w.limits.max_stack_bytes as i64)
    .bind(i64::from(w.replicas))
    .bind(i64::from(w.quorum))
    .bind(i64::from(w.adaptive))
    .bind(i64::from(w.max_attempts))
    .bind(w.credits_per_fuel)
    .bind(w.credits_per_mib_second)
    .bind(i64::from(w.fee_basis_points))
    .bind(w.escrow_micro)
    .bind(i64::from(w.task_count))
    .bind(w.state.as_str())
    .bind(w.created_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// One workload.
pub async fn get(conn: &mut SqliteConnection, id: &str) -> BrokerResult<Option<WorkloadRow>> {
    let sql = format!("SELECT {COLUMNS} FROM workloads WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// One workload, or `NotFound`.
pub async fn require(conn: &mut SqliteConnection, id: &str) -> BrokerResult<WorkloadRow> {
    get(conn, id)
        .await?
        .ok_or_else(|| BrokerError::not_found(format!("workload {id} not found")))
}

/// Every workload, newest first; only `running` ones with `running_only`.
pub async fn list(
    conn: &mut SqliteConnection,
    running_only: bool,
) -> BrokerResult<Vec<WorkloadRow>> {
    let filter = if running_only {
        "WHERE state = 'running'"
    } else {
        ""
    };
    let sql = format!("SELECT {COLUMNS} FROM workloads {filter} ORDER BY created_ms DESC, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// The workloads of `issuer`, newest first.
pub async fn list_of_issuer(
    conn: &mut SqliteConnection,
    issuer: &str,
) -> BrokerResult<Vec<WorkloadRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM workloads WHERE issuer = ? ORDER BY created_ms DESC, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(issuer)
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Ends a workload: its final state, error and end result. Returns false
/// if it had already ended.
pub async fn finish(
    conn: &mut SqliteConnection,
    id: &str,
    state: WorkloadState,
    error: Option<&str>,
    result: Option<&[u8]>,
    now_ms: i64,
) -> BrokerResult<bool> {
    let done = sqlx::query(
        "UPDATE workloads SET state = ?, error = ?, result = ?, reduced = ?, finished_ms = ?
         WHERE id = ? AND state = 'running'",
    )
    .bind(state.as_str())
    .bind(error)
    .bind(result)
    .bind(i64::from(result.is_some()))
    .bind(now_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The end result, when reduced.
pub async fn result(conn: &mut SqliteConnection, id: &str) -> BrokerResult<Option<Vec<u8>>> {
    let row = sqlx::query("SELECT result FROM workloads WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.and_then(|row| row.get::<Option<Vec<u8>>, _>("result")))
}

/// Task counts of a workload.
pub async fn counts(conn: &mut SqliteConnection, id: &str) -> BrokerResult<TaskCounts> {
    // Only the tasks that are not done are indexed (`tasks_unfinished`):
    // the done ones are the rest of the workload's, in the same statement
    // so in the same snapshot.
    let rows = sqlx::query(
        "SELECT state, COUNT(*) AS n FROM tasks
         WHERE workload_id = ?1 AND state <> 'done' GROUP BY state
         UNION ALL
         SELECT 'tasks' AS state, task_count AS n FROM workloads WHERE id = ?1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut counts = TaskCounts::default();
    let mut tasks = 0;
    for row in rows {
        let n = row.get::<i64, _>("n") as u32;
        match row.get::<&str, _>("state") {
            "tasks" => tasks = n,
            "pending" => counts.pending = n,
            "failed" => counts.failed = n,
            _ => counts.cancelled += n,
        }
    }
    let unfinished = counts
        .pending
        .saturating_add(counts.failed)
        .saturating_add(counts.cancelled);
    counts.done = tasks.saturating_sub(unfinished);
    // Through the index of active leases (a few per agent, grid-wide), not
    // the workload's: that one holds every lease the workload ever had,
    // and a status call at 10^6 tasks would read them all.
    let running = sqlx::query(
        "SELECT COUNT(DISTINCT l.idx) AS n FROM leases l INDEXED BY leases_active_by_deadline
         JOIN tasks t ON t.workload_id = l.workload_id AND t.idx = l.idx
         WHERE l.workload_id = ? AND l.state = 'active' AND t.state = 'pending'",
    )
    .bind(id)
    .fetch_one(conn)
    .await?;
    counts.running = running.get::<i64, _>("n") as u32;
    Ok(counts)
}
