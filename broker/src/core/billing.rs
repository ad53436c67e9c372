//! Money moving with the task life cycle, always inside the transaction of
//! the state change that causes it: escrow at submit, pay for the runs that
//! made a task's quorum, fee and refund when a workload ends. Reputation
//! moves with pay: agreeing runs extend their agent's record, disagreeing
//! ones end its streak and earn nothing.

use rusqlite::Connection;
use sqlx::SqliteConnection;

use crate::error::BrokerResult;
use crate::store::events::TaskEvent;
use crate::store::leases::{LeaseRow, RunVerdict};
use crate::store::ledger::{
    self, BROKER_ACCOUNT, EntryKind, Transfer, agent_account, escrow_account, issuer_account,
};
use crate::store::workloads::WorkloadRow;
use crate::store::writer;
use crate::store::writer::agents::ResultTally;

/// Moves a new workload's escrow from its issuer's account; fails, so the
/// submit is refused, when the issuer cannot cover it.
pub(crate) async fn escrow(
    conn: &mut SqliteConnection,
    workload: &WorkloadRow,
    now: i64,
) -> BrokerResult<()> {
    let issuer = issuer_account(&workload.issuer);
    ledger::ensure_account(conn, &issuer, "issuer", now).await?;
    let escrow = escrow_account(&workload.id);
    ledger::ensure_account(conn, &escrow, "escrow", now).await?;
    let memo = format!(
        "{} tasks × {} paid run(s) at the limits, plus {} bp fee",
        workload.task_count, workload.quorum, workload.fee_basis_points
    );
    ledger::transfer(
        conn,
        &Transfer {
            cause: format!("escrow:{}", workload.id),
            kind: EntryKind::Escrow,
            from: &issuer,
            to: &escrow,
            amount: workload.escrow_micro,
            workload_id: Some(&workload.id),
            index: None,
            lease_id: None,
            agent_id: None,
            fuel: None,
            memo: Some(&memo),
            at_ms: now,
        },
        "escrow",
    )
    .await?;
    Ok(())
}

/// What `run` of `workload` is paid when it agrees with the accepted result.
pub(crate) fn run_pay(workload: &WorkloadRow, run: &LeaseRow) -> i64 {
    // Limits bound fuel and memory, and submit checked the worst case
    // fits: an overflow here cannot happen, and would pay nothing.
    workload
        .pricing()
        .run_pay(run.fuel_consumed, run.peak_memory)
        .unwrap_or(0)
}

/// How a settled task's runs compare with its accepted result.
pub(crate) struct Verdicts<'a> {
    /// The runs that made the quorum: paid.
    pub agreeing: &'a [String],
    /// OK runs whose result differs: not paid.
    pub disagreeing: &'a [String],
    /// The run whose verdict and pay were stored with its report.
    pub stored: Option<&'a str>,
}

/// Pays the runs that made task `index`'s quorum and marks the others that
/// disagreed, noting their agents' results in `results`; on the
/// group-commit writer, within the report or expiry that settled the task.
pub(crate) fn settle_runs(
    conn: &Connection,
    workload: &WorkloadRow,
    index: u32,
    runs: &[LeaseRow],
    verdicts: &Verdicts<'_>,
    results: &mut ResultTally,
    now: i64,
) -> BrokerResult<()> {
    let Verdicts {
        agreeing,
        disagreeing,
        stored: verdict_stored,
    } = *verdicts;
    let escrow = escrow_account(&workload.id);
    for run in runs.iter().filter(|run| agreeing.contains(&run.id)) {
        let amount = run_pay(workload, run);
        let to = agent_account(&run.agent_id);
        writer::ledger::transfer(
            conn,
            &Transfer {
                cause: format!("pay:{}", run.id),
                kind: EntryKind::Pay,
                from: &escrow,
                to: &to,
                amount,
                workload_id: Some(&workload.id),
                index: Some(index),
                lease_id: Some(&run.id),
                agent_id: Some(&run.agent_id),
                fuel: Some(run.fuel_consumed),
                memo: None,
                at_ms: now,
            },
            "agent",
        )?;
        if verdict_stored != Some(run.id.as_str()) {
            writer::leases::set_verdict(conn, &run.id, RunVerdict::Agreed, amount)?;
        }
        results.add(&run.agent_id, true);
    }
    for run in runs.iter().filter(|run| disagreeing.contains(&run.id)) {
        writer::leases::set_verdict(conn, &run.id, RunVerdict::Disagreed, 0)?;
        results.add(&run.agent_id, false);
        writer::events::record(
            conn,
            TaskEvent {
                workload_id: &workload.id,
                index,
                event: "disagreed",
                lease_id: Some(&run.id),
                agent_id: Some(&run.agent_id),
                at_ms: now,
                detail: Some(format!(
                    "output or fuel ({}) differ from the accepted result: not paid",
                    run.fuel_consumed
                )),
            },
        )?;
    }
    Ok(())
}

/// Closes a finished workload's escrow: the broker's fee on what agents
/// were paid, then the rest back to the issuer. Idempotent.
pub(crate) async fn close(
    conn: &mut SqliteConnection,
    workload: &WorkloadRow,
    now: i64,
) -> BrokerResult<()> {
    let escrow = escrow_account(&workload.id);
    let held = ledger::balance(conn, &escrow).await?;
    let (_, paid, _, _) = ledger::workload_totals(conn, &workload.id).await?;
    let fee = workload.pricing().fee(paid).min(held);
    let issuer = issuer_account(&workload.issuer);
    let postings = [
        (EntryKind::Fee, BROKER_ACCOUNT, fee, "broker"),
        (EntryKind::Refund, issuer.as_str(), held - fee, "issuer"),
    ];
    for (kind, to, amount, to_kind) in postings {
        ledger::transfer(
            conn,
            &Transfer {
                cause: format!("{}:{}", kind.as_str(), workload.id),
                kind,
                from: &escrow,
                to,
                amount,
                workload_id: Some(&workload.id),
                index: None,
                lease_id: None,
                agent_id: None,
                fuel: None,
                memo: None,
                at_ms: now,
            },
            to_kind,
        )
        .await?;
    }
    Ok(())
}
