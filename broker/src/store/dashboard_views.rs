//! Reads only the web dashboard makes: an issuer's workloads, the agents
//! that worked for an issuer, and task completions over time.

use sqlx::{Row, SqliteConnection};

use crate::error::BrokerResult;
use crate::store::workloads::{self, WorkloadRow};

/// The workloads of `issuer` (every workload when `None`), newest first.
pub async fn workloads_of(
    conn: &mut SqliteConnection,
    issuer: Option<&str>,
) -> BrokerResult<Vec<WorkloadRow>> {
    match issuer {
        Some(issuer) => workloads::list_of_issuer(conn, issuer).await,
        None => workloads::list(conn, false).await,
    }
}

/// The ids of the agents that ran at least one task of `issuer`'s workloads.
pub async fn agents_working_for(
    conn: &mut SqliteConnection,
    issuer: &str,
) -> BrokerResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT l.agent_id AS agent_id FROM leases l
         JOIN workloads w ON w.id = l.workload_id
         WHERE w.issuer = ?",
    )
    .bind(issuer)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(|row| row.get("agent_id")).collect())
}

/// Tasks finished (`done`) per bucket of `bucket_ms` from `since_ms` on, of
/// `issuer`'s workloads (all when `None`): `(bucket start ms, count)`, only
/// buckets with completions, oldest first.
pub async fn completions(
    conn: &mut SqliteConnection,
    issuer: Option<&str>,
    since_ms: i64,
    bucket_ms: i64,
) -> BrokerResult<Vec<(i64, u64)>> {
    let bucket_ms = bucket_ms.max(1);
    let rows = sqlx::query(
        "SELECT (t.finished_ms / ?1) * ?1 AS bucket, COUNT(*) AS n FROM tasks t
         JOIN workloads w ON w.id = t.workload_id
         WHERE t.state = 'done' AND t.finished_ms >= ?2 AND (?3 IS NULL OR w.issuer = ?3)
         GROUP BY bucket ORDER BY bucket",
    )
    .bind(bucket_ms)
    .bind(since_ms)
    .bind(issuer)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let n: i64 = row.get("n");
            (row.get("bucket"), u64::try_from(n).unwrap_or(0))
        })
        .collect())
}
