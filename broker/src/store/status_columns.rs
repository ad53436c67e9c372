//! How a task status is stored: its wire kind, exit code and message in
//! three columns, so the store and the wire agree on one encoding.

use wasmgrid_proto::{status_from_wire, status_to_wire, v1};
use wasmgrid_runtime::Status;

use crate::error::BrokerResult;
use crate::store::columns::Columns;

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

/// The status in `status_kind`, `status_code`, `status_message` of a row
/// (`None` for a row without one, or with one this build cannot read).
pub fn status_from_columns(row: &impl Columns) -> BrokerResult<Option<Status>> {
    let Some(kind) = row.int_or_null("status_kind")? else {
        return Ok(None);
    };
    let code = row.int_or_null("status_code")?.unwrap_or(0);
    let (Ok(kind), Ok(exit_code)) = (i32::try_from(kind), i32::try_from(code)) else {
        return Ok(None);
    };
    let wire = v1::TaskStatus {
        kind,
        exit_code,
        message: row.text_or_null("status_message")?.unwrap_or_default(),
    };
    Ok(status_from_wire(Some(&wire)).ok())
}
