//! `task_events`, as the writer records them.

use rusqlite::{Connection, params};

use crate::error::BrokerResult;
use crate::store::events::TaskEvent;

/// Records a transition.
pub fn record(conn: &Connection, event: TaskEvent<'_>) -> BrokerResult<()> {
    conn.prepare_cached(
        "INSERT INTO task_events (workload_id, idx, event, lease_id, agent_id, at_ms, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        event.workload_id,
        event.index,
        event.event,
        event.lease_id,
        event.agent_id,
        event.at_ms,
        event.detail,
    ])?;
    Ok(())
}
