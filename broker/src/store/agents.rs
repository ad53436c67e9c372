//! `agents`: registered volunteer machines and their statistics.

use sqlx::{Row, SqliteConnection};

use crate::error::BrokerResult;

/// A registered agent.
#[derive(Clone, Debug)]
pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub os: String,
    pub arch: String,
    pub cores: u32,
    pub memory_bytes: u64,
    pub slots: u32,
    pub version: String,
    pub registered_ms: i64,
    pub last_seen_ms: i64,
}

/// An agent with what it has done.
#[derive(Clone, Debug)]
pub struct AgentStats {
    pub agent: AgentRow,
    pub tasks_ok: u64,
    pub tasks_failed: u64,
    pub fuel_consumed: u64,
    pub busy_ms: u64,
}

/// Stores a new agent with the digest of its token.
pub async fn insert(
    conn: &mut SqliteConnection,
    agent: &AgentRow,
    token_sha256: &str,
) -> BrokerResult<()> {
    sqlx::query(
        "INSERT INTO agents (id, token_sha256, name, os, arch, cores, memory_bytes, slots, version,
                             registered_ms, last_seen_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&agent.id)
    .bind(token_sha256)
    .bind(&agent.name)
    .bind(&agent.os)
    .bind(&agent.arch)
    .bind(i64::from(agent.cores))
    .bind(agent.memory_bytes as i64)
    .bind(i64::from(agent.slots))
    .bind(&agent.version)
    .bind(agent.registered_ms)
    .bind(agent.last_seen_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// The agent id a token digest belongs to.
pub async fn by_token(
    conn: &mut SqliteConnection,
    token_sha256: &str,
) -> BrokerResult<Option<String>> {
    let row = sqlx::query("SELECT id FROM agents WHERE token_sha256 = ?")
        .bind(token_sha256)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|row| row.get("id")))
}

/// Notes that the agent was heard from.
pub async fn touch(conn: &mut SqliteConnection, agent_id: &str, now_ms: i64) -> BrokerResult<()> {
    sqlx::query("UPDATE agents SET last_seen_ms = ? WHERE id = ?")
        .bind(now_ms)
        .bind(agent_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every agent with its statistics, from its leases.
pub async fn list_with_stats(conn: &mut SqliteConnection) -> BrokerResult<Vec<AgentStats>> {
    let rows = sqlx::query(
        "SELECT a.id, a.name, a.os, a.arch, a.cores, a.memory_bytes, a.slots, a.version,
                a.registered_ms, a.last_seen_ms,
                COALESCE(SUM(CASE WHEN l.state = 'reported' AND l.status_kind = 1 THEN 1 ELSE 0 END), 0) AS ok,
                COALESCE(SUM(CASE WHEN (l.state = 'reported' AND l.status_kind != 1) OR l.state = 'expired'
                                  THEN 1 ELSE 0 END), 0) AS failed,
                COALESCE(SUM(CASE WHEN l.state = 'reported' THEN l.fuel_consumed ELSE 0 END), 0) AS fuel,
                COALESCE(SUM(CASE WHEN l.state = 'reported' THEN l.wall_time_ms ELSE 0 END), 0) AS busy
         FROM agents a LEFT JOIN leases l ON l.agent_id = a.id
         GROUP BY a.id ORDER BY a.registered_ms, a.id",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| AgentStats {
            agent: AgentRow {
                id: row.get("id"),
                name: row.get("name"),
                os: row.get("os"),
                arch: row.get("arch"),
                cores: row.get::<i64, _>("cores") as u32,
                memory_bytes: row.get::<i64, _>("memory_bytes") as u64,
                slots: row.get::<i64, _>("slots") as u32,
                version: row.get("version"),
                registered_ms: row.get("registered_ms"),
                last_seen_ms: row.get("last_seen_ms"),
            },
            tasks_ok: row.get::<i64, _>("ok") as u64,
            tasks_failed: row.get::<i64, _>("failed") as u64,
            fuel_consumed: row.get::<i64, _>("fuel") as u64,
            busy_ms: row.get::<i64, _>("busy") as u64,
        })
        .collect())
}
