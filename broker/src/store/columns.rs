//! [`Columns`]: reading a result row by column name, the same way from the
//! sqlx pool's rows and from the writer's rusqlite rows, so each table's
//! row type is decoded by one function.

use crate::error::{BrokerError, BrokerResult};

/// A result row whose columns can be read by name.
pub trait Columns {
    fn int_or_null(&self, name: &str) -> BrokerResult<Option<i64>>;
    fn text_or_null(&self, name: &str) -> BrokerResult<Option<String>>;
    fn real(&self, name: &str) -> BrokerResult<f64>;

    fn int(&self, name: &str) -> BrokerResult<i64> {
        self.int_or_null(name)?.ok_or_else(|| null(name))
    }

    fn text(&self, name: &str) -> BrokerResult<String> {
        self.text_or_null(name)?.ok_or_else(|| null(name))
    }
}

fn null(name: &str) -> BrokerError {
    BrokerError::FailedPrecondition(format!("store holds NULL in column {name}"))
}

impl Columns for sqlx::sqlite::SqliteRow {
    fn int_or_null(&self, name: &str) -> BrokerResult<Option<i64>> {
        Ok(sqlx::Row::try_get(self, name)?)
    }

    fn text_or_null(&self, name: &str) -> BrokerResult<Option<String>> {
        Ok(sqlx::Row::try_get(self, name)?)
    }

    fn real(&self, name: &str) -> BrokerResult<f64> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn int_or_null(&self, name: &str) -> BrokerResult<Option<i64>> {
        Ok(self.get(name)?)
    }

    fn text_or_null(&self, name: &str) -> BrokerResult<Option<String>> {
        Ok(self.get(name)?)
    }

    fn real(&self, name: &str) -> BrokerResult<f64> {
        Ok(self.get(name)?)
    }
}
