//! How a task status is stored: its wire kind, exit code and message in
//! three columns, so the store and the wire agree on one encoding.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use wasmgrid_proto::{status_from_wire, status_to_wire, v1};
use wasmgrid_runtime::Status;

/// A status as column values.
#[derive(Clone, Debug)]
pub struct StoredStatus {
    pub kind: i64,
    pub code: i64,
    pub message: Option<String>,
}

impl StoredStatus {
    pub fn of(status: &Status) -> Self {
        let wire = status_to_wire(status);
        StoredStatus {
            kind: i64::from(wire.kind),
            code: i64::from(wire.exit_code),
            message: (!wire.message.is_empty()).then_some(wire.message),
        }
    }
}

/// The status in `status_kind`, `status_code`, `status_message` of a row.
pub fn status_from_columns(row: &SqliteRow) -> Option<Status> {
    let kind = row.get::<Option<i64>, _>("status_kind")?;
    let wire = v1::TaskStatus {
        kind: i32::try_from(kind).ok()?,
        exit_code: i32::try_from(row.get::<Option<i64>, _>("status_code").unwrap_or(0)).ok()?,
        message: row
            .get::<Option<String>, _>("status_message")
            .unwrap_or_default(),
    };
    status_from_wire(Some(&wire)).ok()
}
