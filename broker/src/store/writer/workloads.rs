//! `workloads`, as the writer reads them.
//!
//! The writer never changes a workload row, and while its transaction is
//! open no other connection can (the transaction holds SQLite's write
//! lock from its `BEGIN IMMEDIATE`). So a row read once in a batch stays
//! true until the batch ends: it is kept for the batch's other calls,
//! most of which report on runs of the same workload, and forgotten when
//! the next batch begins ([`forget_batch`], called by the group commit).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

use rusqlite::Connection;

use crate::error::{BrokerError, BrokerResult};
use crate::store::columns::InOrder;
use crate::store::workloads::{COLUMNS, WorkloadRow, from_row};

thread_local! {
    /// Workloads read in the writer thread's current batch, by id.
    static READ_IN_BATCH: RefCell<HashMap<String, WorkloadRow>> = RefCell::new(HashMap::new());
}

/// One workload, or `NotFound`.
pub fn require(conn: &Connection, id: &str) -> BrokerResult<WorkloadRow> {
    if let Some(row) = READ_IN_BATCH.with_borrow(|read| read.get(id).cloned()) {
        return Ok(row);
    }
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {COLUMNS} FROM workloads WHERE id = ?"));
    let mut statement = conn.prepare_cached(&SQL)?;
    let mut rows = statement.query([id])?;
    let row = match rows.next()? {
        Some(row) => from_row(&InOrder::new(row))?,
        None => return Err(BrokerError::not_found(format!("workload {id} not found"))),
    };
    READ_IN_BATCH.with_borrow_mut(|read| read.insert(id.to_owned(), row.clone()));
    Ok(row)
}

/// Forgets the rows read in the last batch: called before a batch's
/// transaction begins, when other connections may have changed them.
pub fn forget_batch() {
    READ_IN_BATCH.with_borrow_mut(HashMap::clear);
}
