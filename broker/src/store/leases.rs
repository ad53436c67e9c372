//! `leases`: one row per run of a task on an agent, with its report.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use wasmgrid_runtime::Status;

use crate::error::{BrokerError, BrokerResult};
use crate::store::status_columns::{StoredStatus, status_from_columns};

/// A lease's life: active until reported, expired (deadline passed),
/// released (given back by the agent) or revoked (workload cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    Active,
    Reported,
    Expired,
    Released,
    Revoked,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Active => "active",
            LeaseState::Reported => "reported",
            LeaseState::Expired => "expired",
            LeaseState::Released => "released",
            LeaseState::Revoked => "revoked",
        }
    }

    fn parse(text: &str) -> BrokerResult<Self> {
        Ok(match text {
            "active" => LeaseState::Active,
            "reported" => LeaseState::Reported,
            "expired" => LeaseState::Expired,
            "released" => LeaseState::Released,
            "revoked" => LeaseState::Revoked,
            other => {
                return Err(BrokerError::FailedPrecondition(format!(
                    "store holds unknown lease state {other:?}"
                )));
            }
        })
    }
}

/// A lease as stored (without output and stderr).
#[derive(Clone, Debug)]
pub struct LeaseRow {
    pub id: String,
    pub workload_id: String,
    pub index: u32,
    pub agent_id: String,
    pub state: LeaseState,
    pub started_ms: i64,
    pub deadline_ms: i64,
    pub ended_ms: Option<i64>,
    pub counted: bool,
    pub status: Option<Status>,
    pub output_sha256: Option<String>,
    pub fuel_consumed: u64,
    pub peak_memory: u64,
    pub wall_time_ms: u64,
    /// Dispatched alone to a trusted agent (adaptive replication).
    pub solo: bool,
    /// Whether the run agreed with the task's accepted result.
    pub verdict: Option<RunVerdict>,
    /// What the run was paid, in micro-credits.
    pub paid_micro: i64,
    /// The owner and address of the lease's agent, for replica separation.
    pub agent_owner: String,
    pub agent_address: String,
}

/// How a run compared with its task's accepted result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunVerdict {
    /// Part of the quorum that made the result.
    Agreed,
    /// An OK result that differs from the accepted one.
    Disagreed,
}

impl RunVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            RunVerdict::Agreed => "agreed",
            RunVerdict::Disagreed => "disagreed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "agreed" => Some(RunVerdict::Agreed),
            "disagreed" => Some(RunVerdict::Disagreed),
            _ => None,
        }
    }
}

const COLUMNS: &str =
    "id, workload_id, idx, agent_id, state, started_ms, deadline_ms, ended_ms, counted,
     status_kind, status_code, status_message, output_sha256, fuel_consumed, peak_memory, wall_time_ms,
     solo, verdict, paid_micro,
     (SELECT owner FROM agents a WHERE a.id = leases.agent_id) AS agent_owner,
     (SELECT address FROM agents a WHERE a.id = leases.agent_id) AS agent_address";

fn from_row(row: &SqliteRow) -> BrokerResult<LeaseRow> {
    Ok(LeaseRow {
        id: row.get("id"),
        workload_id: row.get("workload_id"),
        index: row.get::<i64, _>("idx") as u32,
        agent_id: row.get("agent_id"),
        state: LeaseState::parse(row.get::<&str, _>("state"))?,
        started_ms: row.get("started_ms"),
        deadline_ms: row.get("deadline_ms"),
        ended_ms: row.get("ended_ms"),
        counted: row.get::<i64, _>("counted") != 0,
        status: status_from_columns(row),
        output_sha256: row.get("output_sha256"),
        fuel_consumed: row.get::<Option<i64>, _>("fuel_consumed").unwrap_or(0) as u64,
        peak_memory: row.get::<Option<i64>, _>("peak_memory").unwrap_or(0) as u64,
        wall_time_ms: row.get::<Option<i64>, _>("wall_time_ms").unwrap_or(0) as u64,
        solo: row.get::<i64, _>("solo") != 0,
        verdict: row
            .get::<Option<&str>, _>("verdict")
            .and_then(RunVerdict::parse),
        paid_micro: row.get("paid_micro"),
        agent_owner: row
            .get::<Option<String>, _>("agent_owner")
            .unwrap_or_default(),
        agent_address: row
            .get::<Option<String>, _>("agent_address")
            .unwrap_or_default(),
    })
}

/// Stores a new active lease.
pub async fn insert(conn: &mut SqliteConnection, lease: &LeaseRow) -> BrokerResult<()> {
    sqlx::query(
        "INSERT INTO leases (id, workload_id, idx, agent_id, state, started_ms, deadline_ms, solo)
         VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
    )
    .bind(&lease.id)
    .bind(&lease.workload_id)
    .bind(i64::from(lease.index))
    .bind(&lease.agent_id)
    .bind(lease.started_ms)
    .bind(lease.deadline_ms)
    .bind(i64::from(lease.solo))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records how a reported run compared with the accepted result, and what
/// it was paid.
pub async fn set_verdict(
    conn: &mut SqliteConnection,
    id: &str,
    verdict: RunVerdict,
    paid_micro: i64,
) -> BrokerResult<()> {
    sqlx::query("UPDATE leases SET verdict = ?, paid_micro = ? WHERE id = ?")
        .bind(verdict.as_str())
        .bind(paid_micro)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// One lease.
pub async fn get(conn: &mut SqliteConnection, id: &str) -> BrokerResult<Option<LeaseRow>> {
    let sql = format!("SELECT {COLUMNS} FROM leases WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every lease of a task, oldest first.
pub async fn of_task(
    conn: &mut SqliteConnection,
    workload_id: &str,
    index: u32,
) -> BrokerResult<Vec<LeaseRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM leases WHERE workload_id = ? AND idx = ? ORDER BY started_ms, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(workload_id)
        .bind(i64::from(index))
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Every lease of a workload, by task then age.
pub async fn of_workload(
    conn: &mut SqliteConnection,
    workload_id: &str,
) -> BrokerResult<Vec<LeaseRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM leases WHERE workload_id = ? ORDER BY idx, started_ms, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(workload_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Active leases whose deadline has passed.
pub async fn expired(conn: &mut SqliteConnection, now_ms: i64) -> BrokerResult<Vec<LeaseRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM leases WHERE state = 'active' AND deadline_ms < ? LIMIT 1000"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now_ms)
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Ends an active lease in `state` (not `reported`: see [`report`]).
/// Returns false if it was not active any more.
pub async fn end(
    conn: &mut SqliteConnection,
    id: &str,
    state: LeaseState,
    now_ms: i64,
) -> BrokerResult<bool> {
    let ended =
        sqlx::query("UPDATE leases SET state = ?, ended_ms = ? WHERE id = ? AND state = 'active'")
            .bind(state.as_str())
            .bind(now_ms)
            .bind(id)
            .execute(conn)
            .await?;
    Ok(ended.rows_affected() == 1)
}

/// Revokes every active lease of a workload; returns them.
pub async fn revoke_all(
    conn: &mut SqliteConnection,
    workload_id: &str,
    now_ms: i64,
) -> BrokerResult<Vec<(String, u32, String)>> {
    let rows = sqlx::query(
        "UPDATE leases SET state = 'revoked', ended_ms = ? WHERE workload_id = ? AND state = 'active'
         RETURNING id, idx, agent_id",
    )
    .bind(now_ms)
    .bind(workload_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                row.get("id"),
                row.get::<i64, _>("idx") as u32,
                row.get("agent_id"),
            )
        })
        .collect())
}

/// Revokes the active leases of one task (it finished without them);
/// returns their ids and agents.
pub async fn revoke_task(
    conn: &mut SqliteConnection,
    workload_id: &str,
    index: u32,
    now_ms: i64,
) -> BrokerResult<Vec<(String, String)>> {
    let rows = sqlx::query(
        "UPDATE leases SET state = 'revoked', ended_ms = ? WHERE workload_id = ? AND idx = ? AND state = 'active'
         RETURNING id, agent_id",
    )
    .bind(now_ms)
    .bind(workload_id)
    .bind(i64::from(index))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get("id"), row.get("agent_id")))
        .collect())
}

/// Pushes an active lease's deadline.
pub async fn extend(conn: &mut SqliteConnection, id: &str, deadline_ms: i64) -> BrokerResult<bool> {
    let extended =
        sqlx::query("UPDATE leases SET deadline_ms = ? WHERE id = ? AND state = 'active'")
            .bind(deadline_ms)
            .bind(id)
            .execute(conn)
            .await?;
    Ok(extended.rows_affected() == 1)
}

/// A report as stored on its lease.
#[derive(Debug)]
pub struct Report<'a> {
    pub status: &'a Status,
    pub output: &'a [u8],
    pub output_sha256: &'a str,
    pub stderr: &'a [u8],
    pub fuel_consumed: u64,
    pub peak_memory: u64,
    pub wall_time_ms: u64,
    pub metering_version: &'a str,
}

/// Records a report on a lease. `counted` is whether the lease was active.
pub async fn report(
    conn: &mut SqliteConnection,
    id: &str,
    report: &Report<'_>,
    counted: bool,
    now_ms: i64,
) -> BrokerResult<()> {
    let status = StoredStatus::of(report.status);
    // A late report (the lease is no longer active) keeps the lease's state
    // and is stored for the record only.
    sqlx::query(
        "UPDATE leases SET state = CASE WHEN ? THEN 'reported' ELSE state END,
             ended_ms = COALESCE(ended_ms, ?), counted = ?, status_kind = ?,
             status_code = ?, status_message = ?, output_sha256 = ?, output = ?, stderr = ?,
             fuel_consumed = ?, peak_memory = ?, wall_time_ms = ?, metering_version = ?
         WHERE id = ?",
    )
    .bind(counted)
    .bind(now_ms)
    .bind(i64::from(counted))
    .bind(status.kind)
    .bind(status.code)
    .bind(status.message)
    .bind(report.output_sha256)
    .bind(report.output)
    .bind(report.stderr)
    .bind(report.fuel_consumed as i64)
    .bind(report.peak_memory as i64)
    .bind(report.wall_time_ms as i64)
    .bind(report.metering_version)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The output stored with a reported lease.
pub async fn output(conn: &mut SqliteConnection, id: &str) -> BrokerResult<Vec<u8>> {
    let row = sqlx::query("SELECT COALESCE(output, x'') AS output FROM leases WHERE id = ?")
        .bind(id)
        .fetch_one(conn)
        .await?;
    Ok(row.get("output"))
}

/// True if the agent holds an active lease on a task of a workload whose
/// module or reducer is `sha256`.
pub async fn agent_may_fetch(
    conn: &mut SqliteConnection,
    agent_id: &str,
    sha256: &str,
) -> BrokerResult<bool> {
    let row = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM leases l JOIN workloads w ON w.id = l.workload_id
                        WHERE l.agent_id = ? AND l.state = 'active' AND w.module_sha256 = ?) AS may",
    )
    .bind(agent_id)
    .bind(sha256)
    .fetch_one(conn)
    .await?;
    Ok(row.get::<i64, _>("may") != 0)
}

/// Per agent: fuel and wall time of its counted OK runs, for its speed.
pub async fn speeds(conn: &mut SqliteConnection) -> BrokerResult<Vec<(String, u64, u64)>> {
    let rows = sqlx::query(
        "SELECT agent_id, SUM(fuel_consumed) AS fuel, SUM(wall_time_ms) AS ms FROM leases
         WHERE state = 'reported' AND counted = 1 AND status_kind = 1 GROUP BY agent_id",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                row.get("agent_id"),
                row.get::<Option<i64>, _>("fuel").unwrap_or(0) as u64,
                row.get::<Option<i64>, _>("ms").unwrap_or(0) as u64,
            )
        })
        .collect())
}
