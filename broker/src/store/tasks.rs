//! `tasks`: one row per input of a workload, with its accepted result.

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use wasmgrid_runtime::Status;

use crate::error::BrokerResult;
use crate::store::status_columns::{StoredStatus, status_from_columns};

/// Rows per INSERT statement when storing a workload's inputs (SQLite
/// allows 32766 bound parameters; 3 per row).
const INSERT_BATCH: usize = 1000;

/// Stores the inputs of a new workload as pending tasks.
pub async fn insert_all(
    conn: &mut SqliteConnection,
    workload_id: &str,
    inputs: &[Vec<u8>],
) -> BrokerResult<()> {
    for (batch_index, batch) in inputs.chunks(INSERT_BATCH).enumerate() {
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO tasks (workload_id, idx, input, state) ");
        query.push_values(batch.iter().enumerate(), |mut row, (i, input)| {
            row.push_bind(workload_id)
                .push_bind((batch_index * INSERT_BATCH + i) as i64)
                .push_bind(input.as_slice())
                .push_bind("pending");
        });
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// A task's input.
pub async fn input(
    conn: &mut SqliteConnection,
    workload_id: &str,
    index: u32,
) -> BrokerResult<Option<Vec<u8>>> {
    let row = sqlx::query("SELECT input FROM tasks WHERE workload_id = ? AND idx = ?")
        .bind(workload_id)
        .bind(i64::from(index))
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|row| row.get("input")))
}

/// True while the task is pending (neither done, failed nor cancelled).
pub async fn is_pending(
    conn: &mut SqliteConnection,
    workload_id: &str,
    index: u32,
) -> BrokerResult<bool> {
    let row = sqlx::query("SELECT state FROM tasks WHERE workload_id = ? AND idx = ?")
        .bind(workload_id)
        .bind(i64::from(index))
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some_and(|row| row.get::<&str, _>("state") == "pending"))
}

/// The accepted result of a task.
#[derive(Clone, Debug)]
pub struct AcceptedResult<'a> {
    pub output: &'a [u8],
    pub status: &'a Status,
    pub fuel_consumed: u64,
    pub peak_memory: u64,
    pub wall_time_ms: u64,
}

/// Marks a pending task done with its accepted result.
pub async fn mark_done(
    conn: &mut SqliteConnection,
    workload_id: &str,
    index: u32,
    result: &AcceptedResult<'_>,
    now_ms: i64,
) -> BrokerResult<bool> {
    let status = StoredStatus::of(result.status);
    let done = sqlx::query(
        "UPDATE tasks SET state = 'done', output = ?, status_kind = ?, status_code = ?, status_message = ?,
             fuel_consumed = ?, peak_memory = ?, wall_time_ms = ?, finished_ms = ?
         WHERE workload_id = ? AND idx = ? AND state = 'pending'",
    )
    .bind(result.output)
    .bind(status.kind)
    .bind(status.code)
    .bind(status.message)
    .bind(result.fuel_consumed as i64)
    .bind(result.peak_memory as i64)
    .bind(result.wall_time_ms as i64)
    .bind(now_ms)
    .bind(workload_id)
    .bind(i64::from(index))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a pending task failed, with the reasons of its attempts.
pub async fn mark_failed(
    conn: &mut SqliteConnection,
    workload_id: &str,
    index: u32,
    last_status: Option<&Status>,
    error: &str,
    now_ms: i64,
) -> BrokerResult<bool> {
    let status = last_status.map(StoredStatus::of);
    let failed = sqlx::query(
        "UPDATE tasks SET state = 'failed', status_kind = ?, status_code = ?, status_message = ?,
             error = ?, finished_ms = ?
         WHERE workload_id = ? AND idx = ? AND state = 'pending'",
    )
    .bind(status.as_ref().map(|s| s.kind))
    .bind(status.as_ref().map(|s| s.code))
    .bind(status.as_ref().and_then(|s| s.message.clone()))
    .bind(error)
    .bind(now_ms)
    .bind(workload_id)
    .bind(i64::from(index))
    .execute(conn)
    .await?;
    Ok(failed.rows_affected() == 1)
}

/// Cancels every pending task of a workload; returns their indices.
pub async fn cancel_pending(
    conn: &mut SqliteConnection,
    workload_id: &str,
    now_ms: i64,
) -> BrokerResult<Vec<u32>> {
    let rows = sqlx::query(
        "UPDATE tasks SET state = 'cancelled', finished_ms = ? WHERE workload_id = ? AND state = 'pending'
         RETURNING idx",
    )
    .bind(now_ms)
    .bind(workload_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| row.get::<i64, _>("idx") as u32)
        .collect())
}

/// Indices of the pending tasks of a workload.
pub async fn pending(conn: &mut SqliteConnection, workload_id: &str) -> BrokerResult<Vec<u32>> {
    let rows = sqlx::query(
        "SELECT idx FROM tasks WHERE workload_id = ? AND state = 'pending' ORDER BY idx",
    )
    .bind(workload_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| row.get::<i64, _>("idx") as u32)
        .collect())
}

/// A finished task, as returned to the issuer.
#[derive(Clone, Debug)]
pub struct TaskResultRow {
    pub index: u32,
    pub state: String,
    pub status: Option<Status>,
    pub output: Vec<u8>,
    pub error: Option<String>,
    pub fuel_consumed: u64,
    pub peak_memory: u64,
    pub wall_time_ms: u64,
}

/// A page of task results in index order, from `from` on.
pub async fn results_page(
    conn: &mut SqliteConnection,
    workload_id: &str,
    from: u32,
    limit: u32,
) -> BrokerResult<Vec<TaskResultRow>> {
    let rows = sqlx::query(
        "SELECT idx, state, output, status_kind, status_code, status_message, error,
                fuel_consumed, peak_memory, wall_time_ms
         FROM tasks WHERE workload_id = ? AND idx >= ? ORDER BY idx LIMIT ?",
    )
    .bind(workload_id)
    .bind(i64::from(from))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| TaskResultRow {
            index: row.get::<i64, _>("idx") as u32,
            state: row.get("state"),
            status: status_from_columns(row),
            output: row.get::<Option<Vec<u8>>, _>("output").unwrap_or_default(),
            error: row.get("error"),
            fuel_consumed: row.get::<Option<i64>, _>("fuel_consumed").unwrap_or(0) as u64,
            peak_memory: row.get::<Option<i64>, _>("peak_memory").unwrap_or(0) as u64,
            wall_time_ms: row.get::<Option<i64>, _>("wall_time_ms").unwrap_or(0) as u64,
        })
        .collect())
}

/// The failed tasks of a workload with their reasons.
pub async fn failures(
    conn: &mut SqliteConnection,
    workload_id: &str,
) -> BrokerResult<Vec<(u32, String)>> {
    let rows = sqlx::query(
        "SELECT idx, COALESCE(error, '') AS error FROM tasks WHERE workload_id = ? AND state = 'failed'
         ORDER BY idx LIMIT 1000",
    )
    .bind(workload_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get::<i64, _>("idx") as u32, row.get("error")))
        .collect())
}

/// The outputs of all tasks of a workload in order (for the reducer).
pub async fn outputs(conn: &mut SqliteConnection, workload_id: &str) -> BrokerResult<Vec<Vec<u8>>> {
    let rows = sqlx::query(
        "SELECT COALESCE(output, x'') AS output FROM tasks WHERE workload_id = ? ORDER BY idx",
    )
    .bind(workload_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(|row| row.get("output")).collect())
}

/// The states of all tasks of a workload, in order.
pub async fn states(
    conn: &mut SqliteConnection,
    workload_id: &str,
) -> BrokerResult<Vec<(u32, String)>> {
    let rows = sqlx::query("SELECT idx, state FROM tasks WHERE workload_id = ? ORDER BY idx")
        .bind(workload_id)
        .fetch_all(conn)
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get::<i64, _>("idx") as u32, row.get("state")))
        .collect())
}
