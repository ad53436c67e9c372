//! `tasks`: one row per input of a workload, with its accepted result.

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use wasmgrid_runtime::Status;

use crate::error::BrokerResult;
use crate::store::status_columns::status_from_columns;

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

/// The accepted result of a task.
#[derive(Clone, Debug)]
pub struct AcceptedResult<'a> {
    pub output: &'a [u8],
    pub status: &'a Status,
    pub fuel_consumed: u64,
    pub peak_memory: u64,
    pub wall_time_ms: u64,
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
    rows.iter()
        .map(|row| {
            Ok(TaskResultRow {
                index: row.get::<i64, _>("idx") as u32,
                state: row.get("state"),
                status: status_from_columns(row)?,
                output: row.get::<Option<Vec<u8>>, _>("output").unwrap_or_default(),
                error: row.get("error"),
                fuel_consumed: row.get::<Option<i64>, _>("fuel_consumed").unwrap_or(0) as u64,
                peak_memory: row.get::<Option<i64>, _>("peak_memory").unwrap_or(0) as u64,
                wall_time_ms: row.get::<Option<i64>, _>("wall_time_ms").unwrap_or(0) as u64,
            })
        })
        .collect()
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
