//! `accounts` and `ledger`: balances and the double-entry transfers that
//! change them. Every transfer runs inside the caller's transaction, next to
//! the state change that causes it, and is keyed by a unique cause: posting
//! the same cause twice changes nothing.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::error::{BrokerError, BrokerResult};

/// The account fees are paid into.
pub const BROKER_ACCOUNT: &str = "broker";
/// The account grants come from; the only one that goes negative.
pub const MINT_ACCOUNT: &str = "mint";

/// An issuer's account id.
pub fn issuer_account(issuer: &str) -> String {
    format!("issuer:{issuer}")
}

/// An agent's account id.
pub fn agent_account(agent_id: &str) -> String {
    format!("agent:{agent_id}")
}

/// A workload's escrow account id.
pub fn escrow_account(workload_id: &str) -> String {
    format!("escrow:{workload_id}")
}

/// Why credits move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// An admin created credits for an issuer.
    Grant,
    /// Submit moved an issuer's budget into the workload's escrow.
    Escrow,
    /// An accepted result paid its agent from the escrow.
    Pay,
    /// The broker's fee, from the escrow when the workload ended.
    Fee,
    /// The unused escrow went back to the issuer.
    Refund,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Grant => "grant",
            EntryKind::Escrow => "escrow",
            EntryKind::Pay => "pay",
            EntryKind::Fee => "fee",
            EntryKind::Refund => "refund",
        }
    }
}

/// A transfer to post.
#[derive(Clone, Debug)]
pub struct Transfer<'a> {
    /// Unique key of what caused it, e.g. `pay:<lease id>`.
    pub cause: String,
    pub kind: EntryKind,
    pub from: &'a str,
    pub to: &'a str,
    /// Micro-credits, > 0.
    pub amount: i64,
    pub workload_id: Option<&'a str>,
    pub index: Option<u32>,
    pub lease_id: Option<&'a str>,
    pub agent_id: Option<&'a str>,
    pub fuel: Option<u64>,
    pub memo: Option<&'a str>,
    pub at_ms: i64,
}

impl Transfer<'_> {
    /// Whether posting it moves anything: false for zero, an error for a
    /// negative amount.
    pub(crate) fn moves_credits(&self) -> BrokerResult<bool> {
        match self.amount {
            0 => Ok(false),
            amount if amount < 0 => Err(BrokerError::invalid(format!(
                "a transfer of {amount} micro-credits is negative"
            ))),
            _ => Ok(true),
        }
    }

    /// The error when `from` holds only `have` micro-credits.
    pub(crate) fn insufficient(&self, have: i64) -> BrokerError {
        BrokerError::FailedPrecondition(format!(
            "insufficient credits: {} holds {} but {} are needed",
            self.from,
            crate::pricing::credits_text(have),
            crate::pricing::credits_text(self.amount),
        ))
    }
}

/// A posted transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub kind: String,
    pub from: String,
    pub to: String,
    pub amount: i64,
    pub workload_id: Option<String>,
    pub index: Option<u32>,
    pub lease_id: Option<String>,
    pub agent_id: Option<String>,
    pub fuel: Option<u64>,
    pub memo: Option<String>,
    pub at_ms: i64,
}

/// An account and its balance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub kind: String,
    pub balance: i64,
}

/// Creates the account if it does not exist.
pub async fn ensure_account(
    conn: &mut SqliteConnection,
    id: &str,
    kind: &str,
    now_ms: i64,
) -> BrokerResult<()> {
    sqlx::query(
        "INSERT INTO accounts (id, kind, balance, created_ms) VALUES (?, ?, 0, ?)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(kind)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Posts a transfer: debits `from` (which must hold the amount, unless it
/// is the mint), credits `to` (created if missing, with `to_kind`). Returns
/// false, changing nothing, if a transfer with the same cause was posted
/// before. A zero amount posts nothing.
pub async fn transfer(
    conn: &mut SqliteConnection,
    transfer: &Transfer<'_>,
    to_kind: &str,
) -> BrokerResult<bool> {
    if !transfer.moves_credits()? {
        return Ok(false);
    }
    ensure_account(conn, transfer.to, to_kind, transfer.at_ms).await?;
    let inserted = sqlx::query(
        "INSERT INTO ledger (cause, kind, from_account, to_account, amount, workload_id, idx,
             lease_id, agent_id, fuel, memo, at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (cause) DO NOTHING",
    )
    .bind(&transfer.cause)
    .bind(transfer.kind.as_str())
    .bind(transfer.from)
    .bind(transfer.to)
    .bind(transfer.amount)
    .bind(transfer.workload_id)
    .bind(transfer.index.map(i64::from))
    .bind(transfer.lease_id)
    .bind(transfer.agent_id)
    .bind(transfer.fuel.map(|fuel| fuel as i64))
    .bind(transfer.memo)
    .bind(transfer.at_ms)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    let debited = sqlx::query(
        "UPDATE accounts SET balance = balance - ?1
         WHERE id = ?2 AND (kind = 'mint' OR balance >= ?1)",
    )
    .bind(transfer.amount)
    .bind(transfer.from)
    .execute(&mut *conn)
    .await?;
    if debited.rows_affected() == 0 {
        let have = balance(conn, transfer.from).await?;
        return Err(transfer.insufficient(have));
    }
    sqlx::query("UPDATE accounts SET balance = balance + ? WHERE id = ?")
        .bind(transfer.amount)
        .bind(transfer.to)
        .execute(conn)
        .await?;
    Ok(true)
}

/// An account's balance (0 for an account never used).
pub async fn balance(conn: &mut SqliteConnection, id: &str) -> BrokerResult<i64> {
    let row = sqlx::query("SELECT balance FROM accounts WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map_or(0, |row| row.get("balance")))
}

/// Every account, by id.
pub async fn accounts(conn: &mut SqliteConnection) -> BrokerResult<Vec<Account>> {
    let rows = sqlx::query("SELECT id, kind, balance FROM accounts ORDER BY id")
        .fetch_all(conn)
        .await?;
    Ok(rows
        .iter()
        .map(|row| Account {
            id: row.get("id"),
            kind: row.get("kind"),
            balance: row.get("balance"),
        })
        .collect())
}

/// Sum of the escrow accounts of an issuer's running workloads.
pub async fn escrow_held(conn: &mut SqliteConnection, issuer: &str) -> BrokerResult<i64> {
    let row = sqlx::query(
        "SELECT COALESCE(SUM(a.balance), 0) AS held FROM workloads w
         JOIN accounts a ON a.id = 'escrow:' || w.id
         WHERE w.issuer = ? AND w.state = 'running'",
    )
    .bind(issuer)
    .fetch_one(conn)
    .await?;
    Ok(row.get("held"))
}

/// Which entries to list.
#[derive(Clone, Debug, Default)]
pub struct EntryFilter<'a> {
    /// Entries moving credits into or out of this account.
    pub account: Option<&'a str>,
    pub workload_id: Option<&'a str>,
    pub kind: Option<EntryKind>,
    /// Newest `limit` entries only (0: all).
    pub limit: u32,
}

const COLUMNS: &str = "seq, kind, from_account, to_account, amount, workload_id, idx, lease_id,
     agent_id, fuel, memo, at_ms";

fn from_row(row: &SqliteRow) -> Entry {
    Entry {
        seq: row.get("seq"),
        kind: row.get("kind"),
        from: row.get("from_account"),
        to: row.get("to_account"),
        amount: row.get("amount"),
        workload_id: row.get("workload_id"),
        index: row.get::<Option<i64>, _>("idx").map(|idx| idx as u32),
        lease_id: row.get("lease_id"),
        agent_id: row.get("agent_id"),
        fuel: row.get::<Option<i64>, _>("fuel").map(|fuel| fuel as u64),
        memo: row.get("memo"),
        at_ms: row.get("at_ms"),
    }
}

/// Entries matching `filter`, oldest first.
pub async fn entries(
    conn: &mut SqliteConnection,
    filter: &EntryFilter<'_>,
) -> BrokerResult<Vec<Entry>> {
    let mut conditions = Vec::new();
    if filter.account.is_some() {
        conditions.push("(from_account = ?1 OR to_account = ?1)");
    }
    if filter.workload_id.is_some() {
        conditions.push("workload_id = ?2");
    }
    if filter.kind.is_some() {
        conditions.push("kind = ?3");
    }
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let limit = if filter.limit == 0 {
        -1
    } else {
        i64::from(filter.limit)
    };
    let sql = format!(
        "SELECT * FROM (SELECT {COLUMNS} FROM ledger {filter_sql} ORDER BY seq DESC LIMIT ?4)
         ORDER BY seq"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(filter.account)
        .bind(filter.workload_id)
        .bind(filter.kind.map(EntryKind::as_str))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Totals of a workload's postings by kind: (escrowed, paid, fee, refunded).
pub async fn workload_totals(
    conn: &mut SqliteConnection,
    workload_id: &str,
) -> BrokerResult<(i64, i64, i64, i64)> {
    let rows = sqlx::query(
        "SELECT kind, SUM(amount) AS total FROM ledger WHERE workload_id = ? GROUP BY kind",
    )
    .bind(workload_id)
    .fetch_all(conn)
    .await?;
    let mut totals = (0, 0, 0, 0);
    for row in rows {
        let total: i64 = row.get("total");
        match row.get::<&str, _>("kind") {
            "escrow" => totals.0 = total,
            "pay" => totals.1 = total,
            "fee" => totals.2 = total,
            "refund" => totals.3 = total,
            _ => {}
        }
    }
    Ok(totals)
}
