//! `ledger` and `accounts`, as the writer posts pay.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::BrokerResult;
use crate::store::ledger::Transfer;

/// Posts a transfer, as [`crate::store::ledger::transfer`] does: debits
/// `from` (which must hold the amount, unless it is the mint), credits `to`
/// (created if missing, with `to_kind`). Returns false, changing nothing, if
/// a transfer with the same cause was posted before. A zero amount posts
/// nothing.
pub fn transfer(conn: &Connection, transfer: &Transfer<'_>, to_kind: &str) -> BrokerResult<bool> {
    if !transfer.moves_credits()? {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO accounts (id, kind, balance, created_ms) VALUES (?, ?, 0, ?)
         ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![transfer.to, to_kind, transfer.at_ms])?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO ledger (cause, kind, from_account, to_account, amount, workload_id, idx,
                 lease_id, agent_id, fuel, memo, at_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (cause) DO NOTHING",
        )?
        .execute(params![
            transfer.cause,
            transfer.kind.as_str(),
            transfer.from,
            transfer.to,
            transfer.amount,
            transfer.workload_id,
            transfer.index,
            transfer.lease_id,
            transfer.agent_id,
            transfer.fuel.map(|fuel| fuel as i64),
            transfer.memo,
            transfer.at_ms,
        ])?;
    if inserted == 0 {
        return Ok(false);
    }
    let debited = conn
        .prepare_cached(
            "UPDATE accounts SET balance = balance - ?1
             WHERE id = ?2 AND (kind = 'mint' OR balance >= ?1)",
        )?
        .execute(params![transfer.amount, transfer.from])?;
    if debited == 0 {
        let have: i64 = conn
            .prepare_cached("SELECT balance FROM accounts WHERE id = ?")?
            .query_row([transfer.from], |row| row.get(0))
            .optional()?
            .unwrap_or(0);
        return Err(transfer.insufficient(have));
    }
    conn.prepare_cached("UPDATE accounts SET balance = balance + ? WHERE id = ?")?
        .execute(params![transfer.amount, transfer.to])?;
    Ok(true)
}
