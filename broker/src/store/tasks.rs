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
        "UPDATE tasks INDEXED BY tasks_unfinished SET state = 'cancelled', finished_ms = ?
         WHERE workload_id = ? AND state <> 'done' AND state = 'pending'
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
        "SELECT idx FROM tasks INDEXED BY tasks_unfinished
         WHERE workload_id = ? AND state <> 'done' AND state = 'pending' ORDER BY idx",
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
        "SELECT idx, COALESCE(error, '') AS error FROM tasks INDEXED BY tasks_unfinished
         WHERE workload_id = ? AND state <> 'done' AND state = 'failed' ORDER BY idx LIMIT 1000",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, modules, stats, workloads};

    /// Only the tasks that are not done are indexed (`tasks_unfinished`):
    /// the queries that look tasks up by state must still find them, and the
    /// counts must still give the done ones, derived from the workload's size.
    #[tokio::test]
    async fn tasks_by_state_are_found_and_counted_through_the_unfinished_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).await.expect("store");
        let mut conn = store.conn().await.expect("connection");
        for (id, tasks) in [("w", 7), ("other", 2)] {
            let row = workloads::test_row(id, 0.0, tasks);
            modules::insert(&mut conn, &row.module_sha256, b"\0", 0)
                .await
                .expect("a module");
            workloads::insert(&mut conn, &row)
                .await
                .expect("a workload");
        }
        let inputs: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i]).collect();
        insert_all(&mut conn, "w", &inputs).await.expect("tasks");
        insert_all(&mut conn, "other", &inputs[..2])
            .await
            .expect("tasks");
        sqlx::query(
            "UPDATE tasks SET state = 'done' WHERE workload_id = 'w' AND idx IN (0, 2, 3);
             UPDATE tasks SET state = 'failed', error = 'it broke' WHERE workload_id = 'w' AND idx = 5;
             UPDATE tasks SET state = 'done' WHERE workload_id = 'other';",
        )
        .execute(&mut *conn)
        .await
        .expect("some tasks finished");

        assert_eq!(pending(&mut conn, "w").await.expect("pending"), [1, 4, 6]);
        assert_eq!(
            failures(&mut conn, "w").await.expect("failures"),
            [(5, "it broke".to_owned())]
        );
        let counts = workloads::counts(&mut conn, "w").await.expect("counts");
        assert_eq!(
            counts,
            workloads::TaskCounts {
                pending: 3,
                running: 0,
                done: 3,
                failed: 1,
                cancelled: 0
            }
        );

        assert_eq!(
            cancel_pending(&mut conn, "w", 1).await.expect("cancelled"),
            [1, 4, 6]
        );
        assert!(pending(&mut conn, "w").await.expect("pending").is_empty());
        let counts = workloads::counts(&mut conn, "w").await.expect("counts");
        assert_eq!((counts.done, counts.failed, counts.cancelled), (3, 1, 3));

        let stats = stats::read(&mut conn, 0).await.expect("stats");
        let mut by_state = stats.tasks_by_state.clone();
        by_state.sort();
        assert_eq!(
            by_state,
            [
                ("cancelled".to_owned(), 3),
                ("done".to_owned(), 5),
                ("failed".to_owned(), 1)
            ]
        );
        assert!(
            stats.events_by_kind.contains(&("done".to_owned(), 5)),
            "{:?}",
            stats.events_by_kind
        );
    }
}
