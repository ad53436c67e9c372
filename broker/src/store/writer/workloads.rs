//! `workloads`, as the writer reads them.

use rusqlite::Connection;

use crate::error::{BrokerError, BrokerResult};
use crate::store::workloads::{COLUMNS, WorkloadRow, from_row};

/// One workload, or `NotFound`.
pub fn require(conn: &Connection, id: &str) -> BrokerResult<WorkloadRow> {
    let mut statement =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM workloads WHERE id = ?"))?;
    let mut rows = statement.query([id])?;
    match rows.next()? {
        Some(row) => from_row(row),
        None => Err(BrokerError::not_found(format!("workload {id} not found"))),
    }
}
