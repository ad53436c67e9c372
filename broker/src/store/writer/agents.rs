//! `agents`, as the writer changes it: last-seen times and records.

use rusqlite::{Connection, params};

use crate::error::BrokerResult;

/// Notes that the agent was heard from.
pub fn touch(conn: &Connection, agent_id: &str, now_ms: i64) -> BrokerResult<()> {
    conn.prepare_cached("UPDATE agents SET last_seen_ms = ? WHERE id = ?")?
        .execute(params![now_ms, agent_id])?;
    Ok(())
}

/// Adds a verified result to an agent's record: an agreeing one extends its
/// streak, a disagreeing one ends it.
pub fn add_result(conn: &Connection, agent_id: &str, agreed: bool) -> BrokerResult<()> {
    let sql = if agreed {
        "UPDATE agents SET results_valid = results_valid + 1, streak = streak + 1 WHERE id = ?"
    } else {
        "UPDATE agents SET results_invalid = results_invalid + 1, streak = 0 WHERE id = ?"
    };
    conn.prepare_cached(sql)?.execute([agent_id])?;
    Ok(())
}
