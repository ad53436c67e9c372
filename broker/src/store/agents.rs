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
    /// Who runs the machine, as it said at registration.
    pub owner: String,
    /// The address it registered from (without port).
    pub address: String,
}

/// An agent's record as a verifier of results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentRecord {
    /// Results that agreed with the accepted one.
    pub valid: u64,
    /// OK results that disagreed with it.
    pub invalid: u64,
    /// Agreeing results since the agent was last caught.
    pub streak: u64,
}

impl AgentRecord {
    /// valid / (valid + invalid), 0 without results.
    pub fn reputation(&self) -> f64 {
        let total = self.valid + self.invalid;
        if total == 0 {
            0.0
        } else {
            self.valid as f64 / total as f64
        }
    }

    /// Trusted for solo runs: `trust_after` agreeing results in a row since
    /// it was last caught.
    pub fn trusted(&self, trust_after: u64) -> bool {
        self.streak >= trust_after
    }
}

/// An agent with what it has done.
#[derive(Clone, Debug)]
pub struct AgentStats {
    pub agent: AgentRow,
    pub tasks_ok: u64,
    pub tasks_failed: u64,
    pub fuel_consumed: u64,
    pub busy_ms: u64,
    pub record: AgentRecord,
    /// Credits paid to the agent, in micro-credits.
    pub earned_micro: i64,
}

/// Stores a new agent with the digest of its token.
pub async fn insert(
    conn: &mut SqliteConnection,
    agent: &AgentRow,
    token_sha256: &str,
) -> BrokerResult<()> {
    sqlx::query(
        "INSERT INTO agents (id, token_sha256, name, os, arch, cores, memory_bytes, slots, version,
                             registered_ms, last_seen_ms, owner, address)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    .bind(&agent.owner)
    .bind(&agent.address)
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

/// The agent version an agent last reported (at registration, or since).
pub async fn version(conn: &mut SqliteConnection, agent_id: &str) -> BrokerResult<Option<String>> {
    let row = sqlx::query("SELECT version FROM agents WHERE id = ?")
        .bind(agent_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|row| row.get("version")))
}

/// Records the version an agent now runs (it updated itself, and kept its
/// identity).
pub async fn set_version(
    conn: &mut SqliteConnection,
    agent_id: &str,
    version: &str,
) -> BrokerResult<()> {
    sqlx::query("UPDATE agents SET version = ? WHERE id = ?")
        .bind(version)
        .bind(agent_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An agent's record, and its owner and address.
pub async fn record(
    conn: &mut SqliteConnection,
    agent_id: &str,
) -> BrokerResult<Option<(AgentRecord, String, String)>> {
    let row = sqlx::query(
        "SELECT results_valid, results_invalid, streak, owner, address FROM agents WHERE id = ?",
    )
    .bind(agent_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| (record_from(&row), row.get("owner"), row.get("address"))))
}

fn record_from(row: &sqlx::sqlite::SqliteRow) -> AgentRecord {
    AgentRecord {
        valid: row.get::<i64, _>("results_valid") as u64,
        invalid: row.get::<i64, _>("results_invalid") as u64,
        streak: row.get::<i64, _>("streak") as u64,
    }
}

/// Every agent with its statistics, from its leases: one scan of them all,
/// grouped by agent (there is no index of leases by agent, see migration
/// 0007).
pub async fn list_with_stats(conn: &mut SqliteConnection) -> BrokerResult<Vec<AgentStats>> {
    let rows = sqlx::query(
        "SELECT a.id, a.name, a.os, a.arch, a.cores, a.memory_bytes, a.slots, a.version,
                a.registered_ms, a.last_seen_ms, a.owner, a.address, a.results_valid,
                a.results_invalid, a.streak,
                (SELECT COALESCE(SUM(amount), 0) FROM ledger
                 WHERE to_account = 'agent:' || a.id AND kind = 'pay') AS earned,
                COALESCE(s.ok, 0) AS ok, COALESCE(s.failed, 0) AS failed,
                COALESCE(s.fuel, 0) AS fuel, COALESCE(s.busy, 0) AS busy
         FROM agents a LEFT JOIN (
             SELECT agent_id,
                    SUM(state = 'reported' AND status_kind = 1) AS ok,
                    SUM((state = 'reported' AND status_kind != 1) OR state = 'expired') AS failed,
                    SUM(CASE WHEN state = 'reported' THEN fuel_consumed END) AS fuel,
                    SUM(CASE WHEN state = 'reported' THEN wall_time_ms END) AS busy
             FROM leases GROUP BY agent_id) s ON s.agent_id = a.id
         ORDER BY a.registered_ms, a.id",
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
                owner: row.get("owner"),
                address: row.get("address"),
            },
            record: record_from(&row),
            earned_micro: row.get("earned"),
            tasks_ok: row.get::<i64, _>("ok") as u64,
            tasks_failed: row.get::<i64, _>("failed") as u64,
            fuel_consumed: row.get::<i64, _>("fuel") as u64,
            busy_ms: row.get::<i64, _>("busy") as u64,
        })
        .collect())
}

/// Every agent (without statistics).
pub async fn list(conn: &mut SqliteConnection) -> BrokerResult<Vec<AgentRow>> {
    let rows = sqlx::query(
        "SELECT id, name, os, arch, cores, memory_bytes, slots, version, registered_ms,
                last_seen_ms, owner, address
         FROM agents ORDER BY registered_ms, id",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| AgentRow {
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
            owner: row.get("owner"),
            address: row.get("address"),
        })
        .collect())
}
