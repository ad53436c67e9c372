//! [`Columns`]: reading a result row by column name, the same way from the
//! sqlx pool's rows and from the writer's rusqlite rows ([`InOrder`]), so
//! each table's row type is decoded by one function.

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

/// A row of the writer's rusqlite connection, read by name.
///
/// rusqlite finds a column by name by asking SQLite for every column's name
/// in turn, which was a tenth of the writer's time reading leases. Each
/// `from_row` reads the columns in the order its query lists them, so this
/// first tries the column after the one read last, and searches them all
/// only when that is not the one asked for.
pub(crate) struct InOrder<'a, 'stmt> {
    row: &'a rusqlite::Row<'stmt>,
    next: std::cell::Cell<usize>,
}

impl<'a, 'stmt> InOrder<'a, 'stmt> {
    pub(crate) fn new(row: &'a rusqlite::Row<'stmt>) -> Self {
        InOrder {
            row,
            next: std::cell::Cell::new(0),
        }
    }

    fn index(&self, name: &str) -> BrokerResult<usize> {
        let statement = self.row.as_ref();
        let guess = self.next.get();
        let index = match statement.column_name(guess) {
            Ok(found) if found == name => guess,
            _ => statement.column_index(name)?,
        };
        self.next.set(index + 1);
        Ok(index)
    }
}

impl Columns for InOrder<'_, '_> {
    fn int_or_null(&self, name: &str) -> BrokerResult<Option<i64>> {
        Ok(self.row.get(self.index(name)?)?)
    }

    fn text_or_null(&self, name: &str) -> BrokerResult<Option<String>> {
        Ok(self.row.get(self.index(name)?)?)
    }

    fn real(&self, name: &str) -> BrokerResult<f64> {
        Ok(self.row.get(self.index(name)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_found_in_order_out_of_order_and_not_at_all() {
        let conn = rusqlite::Connection::open_in_memory().expect("test setup");
        let mut statement = conn
            .prepare("SELECT 1 AS a, 'two' AS b, NULL AS c, 4.5 AS d")
            .expect("test setup");
        let mut rows = statement.query([]).expect("test setup");
        let row = rows.next().expect("test setup").expect("one row");
        let row = InOrder::new(row);
        assert_eq!(row.int("a").expect("a is 1"), 1);
        assert_eq!(row.text("b").expect("b is text"), "two");
        assert_eq!(row.int_or_null("c").expect("c is NULL"), None);
        assert_eq!(row.real("d").expect("d is real"), 4.5);
        // Out of order, after the last column, and again.
        assert_eq!(row.text("b").expect("b is text"), "two");
        assert_eq!(row.int("a").expect("a is 1"), 1);
        assert_eq!(row.int("a").expect("a is 1"), 1);
        assert!(row.int("c").is_err(), "NULL is not an integer");
        assert!(row.int("missing").is_err());
    }
}
