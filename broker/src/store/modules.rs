//! `modules`: task and reducer modules, once per sha256.

use sqlx::{Row, SqliteConnection};

use crate::error::BrokerResult;

/// Stores a module unless one with the same hash is there already.
pub async fn insert(
    conn: &mut SqliteConnection,
    sha256: &str,
    bytes: &[u8],
    now_ms: i64,
) -> BrokerResult<()> {
    sqlx::query(
        "INSERT INTO modules (sha256, bytes, size, created_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(bytes)
    .bind(bytes.len() as i64)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// A module's bytes.
pub async fn get(conn: &mut SqliteConnection, sha256: &str) -> BrokerResult<Option<Vec<u8>>> {
    let row = sqlx::query("SELECT bytes FROM modules WHERE sha256 = ?")
        .bind(sha256)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|row| row.get::<Vec<u8>, _>("bytes")))
}
