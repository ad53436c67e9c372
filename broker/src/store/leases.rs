//! `leases`: one row per run of a task on an agent, with its report.

use sqlx::{Row, SqliteConnection};
use wasmgrid_runtime::Status;

use crate::error::{BrokerError, BrokerResult};
use crate::store::columns::Columns;
use crate::store::status_columns::status_from_columns;

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

impl LeaseRow {
    /// The lease as [`writer::leases::report`](crate::store::writer::leases::report)
    /// leaves it in the store: reported (if `counted`; a late report keeps
    /// the state), ended, with the report's status, output hash and usage.
    pub fn add_report(&mut self, report: &Report<'_>, counted: bool, now_ms: i64) {
        if counted {
            self.state = LeaseState::Reported;
        }
        self.ended_ms = Some(self.ended_ms.unwrap_or(now_ms));
        self.counted = counted;
        self.status = Some(report.status.clone());
        self.output_sha256 = Some(report.output_sha256.to_owned());
        self.fuel_consumed = report.fuel_consumed;
        self.peak_memory = report.peak_memory;
        self.wall_time_ms = report.wall_time_ms;
    }
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

/// A lease's own columns, as [`from_row`] reads them.
macro_rules! own_columns {
    () => {
        "id, workload_id, idx, agent_id, state, started_ms, deadline_ms, ended_ms, counted,
         status_kind, status_code, status_message, output_sha256, fuel_consumed, peak_memory,
         wall_time_ms, solo, verdict, paid_micro"
    };
}

/// A lease's columns with its agent's owner and address (for replica
/// separation).
pub(crate) const COLUMNS: &str = concat!(
    own_columns!(),
    ", (SELECT owner FROM agents a WHERE a.id = leases.agent_id) AS agent_owner,
     (SELECT address FROM agents a WHERE a.id = leases.agent_id) AS agent_address"
);

/// A lease's columns without its agent's owner and address (left empty),
/// where they are not needed.
pub(crate) const OWN_COLUMNS: &str =
    concat!(own_columns!(), ", '' AS agent_owner, '' AS agent_address");

/// A lease from a row of [`COLUMNS`], of the pool or of the writer.
pub(crate) fn from_row(row: &impl Columns) -> BrokerResult<LeaseRow> {
    let count = |name| -> BrokerResult<u64> { Ok(row.int_or_null(name)?.unwrap_or(0) as u64) };
    Ok(LeaseRow {
        id: row.text("id")?,
        workload_id: row.text("workload_id")?,
        index: row.int("idx")? as u32,
        agent_id: row.text("agent_id")?,
        state: LeaseState::parse(&row.text("state")?)?,
        started_ms: row.int("started_ms")?,
        deadline_ms: row.int("deadline_ms")?,
        ended_ms: row.int_or_null("ended_ms")?,
        counted: row.int("counted")? != 0,
        status: status_from_columns(row)?,
        output_sha256: row.text_or_null("output_sha256")?,
        fuel_consumed: count("fuel_consumed")?,
        peak_memory: count("peak_memory")?,
        wall_time_ms: count("wall_time_ms")?,
        solo: row.int("solo")? != 0,
        verdict: row
            .text_or_null("verdict")?
            .as_deref()
            .and_then(RunVerdict::parse),
        paid_micro: row.int("paid_micro")?,
        agent_owner: row.text_or_null("agent_owner")?.unwrap_or_default(),
        agent_address: row.text_or_null("agent_address")?.unwrap_or_default(),
    })
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

/// True if the agent holds an active lease on a task of a workload whose
/// module is `sha256` (reducers run on the broker, never on agents).
///
/// It scans the active leases (at most the agents' slots' worth), not the
/// agent's: leases have no index by agent (migration 0007). With 4 000
/// active among 10^6 leases that is ~60 µs for a granted fetch, ~250 µs
/// for a refused one; it grows with the leases in flight, where the index
/// grew with the agent's history.
pub async fn agent_may_fetch(
    conn: &mut SqliteConnection,
    agent_id: &str,
    sha256: &str,
) -> BrokerResult<bool> {
    let row = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM leases l INDEXED BY leases_active_by_deadline JOIN workloads w ON w.id = l.workload_id
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
