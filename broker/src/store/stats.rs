//! Counts across tables for `/metrics`: tasks and workloads by state, task
//! events by kind, active and disagreeing runs, agents. Read at each scrape,
//! so the figures are the store's own, and survive restarts.

use sqlx::{Row, SqliteConnection};

use crate::error::BrokerResult;

/// What the store holds now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Tasks by state (`pending`, `done`, `failed`, `cancelled`).
    pub tasks_by_state: Vec<(String, u64)>,
    /// Workloads by state.
    pub workloads_by_state: Vec<(String, u64)>,
    /// Every task event since the store was made, by kind (`leased`,
    /// `reported`, `expired`, `released`, `revoked`, `done`, `failed`, …).
    pub events_by_kind: Vec<(String, u64)>,
    /// Runs leased now.
    pub active_leases: u64,
    /// Runs whose result disagreed with the accepted one.
    pub disagreeing_runs: u64,
    /// Agents ever registered.
    pub agents: u64,
    /// Agents heard from since the given time.
    pub agents_seen: u64,
}

/// The done tasks as a `key, n` row: every task less those that are not
/// done, since only those are indexed (`tasks_unfinished`); one statement
/// with its caller's, so one snapshot of both.
macro_rules! done_tasks {
    () => {
        "SELECT 'done' AS key,
             (SELECT COALESCE(SUM(task_count), 0) FROM workloads)
                 - (SELECT COUNT(*) FROM tasks WHERE state <> 'done') AS n"
    };
}

/// The counts, with agents "seen" when heard from at or after `seen_since_ms`.
pub async fn read(conn: &mut SqliteConnection, seen_since_ms: i64) -> BrokerResult<StoreStats> {
    Ok(StoreStats {
        tasks_by_state: grouped(
            conn,
            concat!(
                "SELECT state AS key, COUNT(*) AS n FROM tasks WHERE state <> 'done' GROUP BY state
                 UNION ALL
                 SELECT key, n FROM (",
                done_tasks!(),
                ") WHERE n > 0"
            ),
        )
        .await?,
        workloads_by_state: grouped(
            conn,
            "SELECT state AS key, COUNT(*) AS n FROM workloads GROUP BY state",
        )
        .await?,
        events_by_kind: grouped(
            conn,
            // The common path's events are the rows it wrote
            // (`store::events`); the rest are in `task_events`.
            concat!(
                "SELECT 'leased' AS key, COUNT(*) AS n FROM leases
                 UNION ALL
                 SELECT 'reported' AS key, COUNT(*) AS n FROM leases
                     WHERE counted = 1 AND status_kind IS NOT NULL
                 UNION ALL ",
                done_tasks!(),
                " UNION ALL
                 SELECT event AS key, COUNT(*) AS n FROM task_events GROUP BY event"
            ),
        )
        .await?,
        active_leases: count(
            conn,
            "SELECT COUNT(*) AS n FROM leases WHERE state = 'active'",
        )
        .await?,
        disagreeing_runs: count(
            conn,
            "SELECT COUNT(*) AS n FROM leases WHERE verdict = 'disagreed'",
        )
        .await?,
        agents: count(conn, "SELECT COUNT(*) AS n FROM agents").await?,
        agents_seen: {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM agents WHERE last_seen_ms >= ?")
                .bind(seen_since_ms)
                .fetch_one(&mut *conn)
                .await?;
            u64::try_from(row.get::<i64, _>("n")).unwrap_or(0)
        },
    })
}

async fn grouped(
    conn: &mut SqliteConnection,
    sql: &'static str,
) -> BrokerResult<Vec<(String, u64)>> {
    let rows = sqlx::query(sql).fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let n: i64 = row.get("n");
            (row.get("key"), u64::try_from(n).unwrap_or(0))
        })
        .collect())
}

async fn count(conn: &mut SqliteConnection, sql: &'static str) -> BrokerResult<u64> {
    let row = sqlx::query(sql).fetch_one(&mut *conn).await?;
    Ok(u64::try_from(row.get::<i64, _>("n")).unwrap_or(0))
}
