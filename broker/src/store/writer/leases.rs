//! `leases`, as the writer changes them: new leases, reports, verdicts,
//! extensions, expiry and revocation.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::BrokerResult;
use crate::store::columns::InOrder;
use crate::store::leases::{
    COLUMNS, LeaseRow, LeaseState, OWN_COLUMNS, Report, RunVerdict, from_row,
};
use crate::store::status_columns::StoredStatus;

/// Stores a new active lease.
pub fn insert(conn: &Connection, lease: &LeaseRow) -> BrokerResult<()> {
    conn.prepare_cached(
        "INSERT INTO leases (id, workload_id, idx, agent_id, state, started_ms, deadline_ms, solo)
         VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
    )?
    .execute(params![
        lease.id,
        lease.workload_id,
        lease.index,
        lease.agent_id,
        lease.started_ms,
        lease.deadline_ms,
        lease.solo,
    ])?;
    Ok(())
}

/// One lease, without its agent's owner and address.
pub fn get(conn: &Connection, id: &str) -> BrokerResult<Option<LeaseRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {OWN_COLUMNS} FROM leases WHERE id = ?"));
    Ok(select(conn, &SQL, params![id])?.pop())
}

/// Every lease of a task, oldest first; with each agent's owner and address
/// only when `with_agents` (replicas kept apart by those), since reading
/// them takes two lookups in `agents` per lease.
pub fn of_task(
    conn: &Connection,
    workload_id: &str,
    index: u32,
    with_agents: bool,
) -> BrokerResult<Vec<LeaseRow>> {
    fn sql(columns: &str) -> String {
        format!(
            "SELECT {columns} FROM leases WHERE workload_id = ? AND idx = ? ORDER BY started_ms, id"
        )
    }
    static WITH_AGENTS: LazyLock<String> = LazyLock::new(|| sql(COLUMNS));
    static OWN: LazyLock<String> = LazyLock::new(|| sql(OWN_COLUMNS));
    let sql = if with_agents { &WITH_AGENTS } else { &OWN };
    select(conn, sql, params![workload_id, index])
}

/// Active leases whose deadline has passed (at most 1000 at a time).
pub fn expired(conn: &Connection, now_ms: i64) -> BrokerResult<Vec<LeaseRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM leases WHERE state = 'active' AND deadline_ms < ? LIMIT 1000"
        )
    });
    select(conn, &SQL, params![now_ms])
}

/// The leases a query of lease columns returns.
fn select(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> BrokerResult<Vec<LeaseRow>> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut leases = Vec::new();
    while let Some(row) = rows.next()? {
        leases.push(from_row(&InOrder::new(row))?);
    }
    Ok(leases)
}

/// Ends an active lease in `state` (not `reported`: see [`report`]).
/// Returns false if it was not active any more.
pub fn end(conn: &Connection, id: &str, state: LeaseState, now_ms: i64) -> BrokerResult<bool> {
    let ended = conn
        .prepare_cached(
            "UPDATE leases SET state = ?, ended_ms = ? WHERE id = ? AND state = 'active'",
        )?
        .execute(params![state.as_str(), now_ms, id])?;
    Ok(ended == 1)
}

/// Revokes the active leases of one task (it finished without them);
/// returns their ids and agents.
pub fn revoke_task(
    conn: &Connection,
    workload_id: &str,
    index: u32,
    now_ms: i64,
) -> BrokerResult<Vec<(String, String)>> {
    // By the task's index: SQLite may otherwise choose the index of active
    // leases and visit every active lease of the grid for each finished task.
    let mut statement = conn.prepare_cached(
        "UPDATE leases INDEXED BY leases_by_task SET state = 'revoked', ended_ms = ?
         WHERE workload_id = ? AND idx = ? AND state = 'active'
         RETURNING id, agent_id",
    )?;
    let revoked = statement
        .query_map(params![now_ms, workload_id, index], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(revoked)
}

/// Pushes an active lease's deadline; false if it is not active.
pub fn extend(conn: &Connection, id: &str, deadline_ms: i64) -> BrokerResult<bool> {
    let extended = conn
        .prepare_cached("UPDATE leases SET deadline_ms = ? WHERE id = ? AND state = 'active'")?
        .execute(params![deadline_ms, id])?;
    Ok(extended == 1)
}

/// Records a report on a lease. `counted` is whether the lease was active.
/// With `accepted` (the run's verdict and pay), the report makes its task's
/// result: its output goes into the task only, not into the lease as well
/// (its hash stays; [`unaccept`] puts it back).
pub fn report(
    conn: &Connection,
    id: &str,
    report: &Report<'_>,
    counted: bool,
    accepted: Option<(RunVerdict, i64)>,
    now_ms: i64,
) -> BrokerResult<()> {
    let status = StoredStatus::of(report.status);
    let (verdict, paid, output) = match accepted {
        Some((verdict, paid)) => (Some(verdict.as_str()), paid, None),
        None => (None, 0, Some(report.output)),
    };
    // A late report (the lease is no longer active) keeps the lease's state
    // and is stored for the record only.
    conn.prepare_cached(
        "UPDATE leases SET state = CASE WHEN ? THEN 'reported' ELSE state END,
             ended_ms = COALESCE(ended_ms, ?), counted = ?, status_kind = ?,
             status_code = ?, status_message = ?, output_sha256 = ?, output = ?, stderr = ?,
             fuel_consumed = ?, peak_memory = ?, wall_time_ms = ?, metering_version = ?,
             verdict = ?, paid_micro = ?
         WHERE id = ?",
    )?
    .execute(params![
        counted,
        now_ms,
        i64::from(counted),
        status.kind,
        status.code,
        status.message,
        report.output_sha256,
        output,
        report.stderr,
        report.fuel_consumed as i64,
        report.peak_memory as i64,
        report.wall_time_ms as i64,
        report.metering_version,
        verdict,
        paid,
        id,
    ])?;
    Ok(())
}

/// Undoes [`report`]'s `accepted` when the task turned out settled already:
/// no verdict, no pay, the output kept in the lease.
pub fn unaccept(conn: &Connection, id: &str, output: &[u8]) -> BrokerResult<()> {
    conn.prepare_cached(
        "UPDATE leases SET verdict = NULL, paid_micro = 0, output = ? WHERE id = ?",
    )?
    .execute(params![output, id])?;
    Ok(())
}

/// The output stored with a reported lease.
pub fn output(conn: &Connection, id: &str) -> BrokerResult<Vec<u8>> {
    let output: Option<Vec<u8>> = conn
        .prepare_cached("SELECT COALESCE(output, x'') FROM leases WHERE id = ?")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    Ok(output.unwrap_or_default())
}

/// Records how a reported run compared with the accepted result, and what
/// it was paid.
pub fn set_verdict(
    conn: &Connection,
    id: &str,
    verdict: RunVerdict,
    paid_micro: i64,
) -> BrokerResult<()> {
    conn.prepare_cached("UPDATE leases SET verdict = ?, paid_micro = ? WHERE id = ?")?
        .execute(params![verdict.as_str(), paid_micro, id])?;
    Ok(())
}
