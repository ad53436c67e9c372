//! `tasks`, as the writer reads and settles them.

use rusqlite::{Connection, OptionalExtension, params};
use wasmgrid_runtime::Status;

use crate::error::BrokerResult;
use crate::store::status_columns::StoredStatus;
use crate::store::tasks::AcceptedResult;

/// A task's input, while the task is pending.
pub fn pending_input(
    conn: &Connection,
    workload_id: &str,
    index: u32,
) -> BrokerResult<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached(
            "SELECT input FROM tasks WHERE workload_id = ? AND idx = ? AND state = 'pending'",
        )?
        .query_row(params![workload_id, index], |row| row.get(0))
        .optional()?)
}

/// True while the task is pending (neither done, failed nor cancelled).
pub fn is_pending(conn: &Connection, workload_id: &str, index: u32) -> BrokerResult<bool> {
    let state: Option<String> = conn
        .prepare_cached("SELECT state FROM tasks WHERE workload_id = ? AND idx = ?")?
        .query_row(params![workload_id, index], |row| row.get(0))
        .optional()?;
    Ok(state.as_deref() == Some("pending"))
}

/// Marks a pending task done with its accepted result.
pub fn mark_done(
    conn: &Connection,
    workload_id: &str,
    index: u32,
    result: &AcceptedResult<'_>,
    now_ms: i64,
) -> BrokerResult<bool> {
    let status = StoredStatus::of(result.status);
    let done = conn
        .prepare_cached(
            "UPDATE tasks SET state = 'done', output = ?, status_kind = ?, status_code = ?,
                 status_message = ?, fuel_consumed = ?, peak_memory = ?, wall_time_ms = ?,
                 finished_ms = ?
             WHERE workload_id = ? AND idx = ? AND state = 'pending'",
        )?
        .execute(params![
            result.output,
            status.kind,
            status.code,
            status.message,
            result.fuel_consumed as i64,
            result.peak_memory as i64,
            result.wall_time_ms as i64,
            now_ms,
            workload_id,
            index,
        ])?;
    Ok(done == 1)
}

/// Marks a pending task failed, with the reasons of its attempts.
pub fn mark_failed(
    conn: &Connection,
    workload_id: &str,
    index: u32,
    last_status: Option<&Status>,
    error: &str,
    now_ms: i64,
) -> BrokerResult<bool> {
    let status = last_status.map(StoredStatus::of);
    let failed = conn
        .prepare_cached(
            "UPDATE tasks SET state = 'failed', status_kind = ?, status_code = ?,
                 status_message = ?, error = ?, finished_ms = ?
             WHERE workload_id = ? AND idx = ? AND state = 'pending'",
        )?
        .execute(params![
            status.as_ref().map(|s| s.kind),
            status.as_ref().map(|s| s.code),
            status.as_ref().and_then(|s| s.message.clone()),
            error,
            now_ms,
            workload_id,
            index,
        ])?;
    Ok(failed == 1)
}
