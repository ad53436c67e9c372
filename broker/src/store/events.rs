//! `task_events`: every transition of a task, with agent and time.

use sqlx::SqliteConnection;

use crate::error::BrokerResult;

/// One transition.
#[derive(Debug)]
pub struct TaskEvent<'a> {
    pub workload_id: &'a str,
    pub index: u32,
    /// `leased`, `reported`, `expired`, `released`, `revoked`, `done`,
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
