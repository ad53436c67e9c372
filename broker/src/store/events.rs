//! `task_events`: the transitions of a task off its common path, with
//! agent and time: `reported-late`, `expired`, `released`, `revoked`,
//! `disagreed`, `failed`, `cancelled`.
//!
//! The common path is recorded by the rows it writes anyway, not repeated
//! here (three rows and their index per task were a tenth of the writer's
//! time, docs/performance.md): a dispatch by its lease row (`started_ms`,
//! agent, `solo`), a counted report by the same row (`ended_ms`, status,
//! fuel), a task done by its task row (`finished_ms`) and the accepted
//! lease (`verdict`). [`crate::store::stats`] counts those rows as the
//! `leased`, `reported` and `done` events.

use sqlx::SqliteConnection;

use crate::error::BrokerResult;

/// One transition.
#[derive(Debug)]
pub struct TaskEvent<'a> {
    pub workload_id: &'a str,
    pub index: u32,
    /// `reported-late`, `expired`, `released`, `revoked`, `disagreed`,
    /// `failed`, `cancelled`.
    pub event: &'a str,
    pub lease_id: Option<&'a str>,
    pub agent_id: Option<&'a str>,
    pub at_ms: i64,
    pub detail: Option<String>,
}

/// Records a transition.
pub async fn record(conn: &mut SqliteConnection, event: TaskEvent<'_>) -> BrokerResult<()> {
    sqlx::query(
        "INSERT INTO task_events (workload_id, idx, event, lease_id, agent_id, at_ms, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(event.workload_id)
    .bind(i64::from(event.index))
    .bind(event.event)
    .bind(event.lease_id)
    .bind(event.agent_id)
    .bind(event.at_ms)
    .bind(event.detail)
    .execute(conn)
    .await?;
    Ok(())
}
