//! `wasmgrid ledger`: an issuer's statement (every posting on its account
//! and the balance after them), or with `--workload` one workload's
//! statement (escrow, a line per paid task run, fee, refund) ending with its
//! totals. Amounts are signed from the statement's account: `+` arrives in
//! it, `-` leaves it.

use clap::Args;
use wasmgrid_proto::v1::{Bill, LedgerEntry, LedgerRequest, LedgerResponse, WorkloadRequest};

use crate::bill::{bill_json, bill_lines};
use crate::client::{Broker, BrokerArgs};
use crate::commands::balance::fetch_balance;
use crate::credits::{credits_text, credits_with_unit};
use crate::issuer::{IssuerArgs, issuer_account, issuer_of_account};
use crate::table::{Table, unix_ms_text};

/// Arguments of `wasmgrid ledger`.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(flatten)]
    issuer: IssuerArgs,
    /// Only this workload's postings, one line per paid task run, followed
    /// by its totals (escrowed, paid to agents, fee, refunded). The issuer
    /// defaults to the workload's.
    #[arg(long, value_name = "ID")]
    workload: Option<String>,
    /// Show only the newest N entries (the totals and balance still cover
    /// everything); 0 shows all.
    #[arg(long, value_name = "N", default_value_t = 0)]
    limit: u32,
    /// Print a JSON object instead of text: the entries, the balance and,
    /// with --workload, the bill; amounts in micro-credits and as decimal
    /// strings.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    broker: BrokerArgs,
}

/// What the statement is about.
#[derive(Debug)]
struct Statement {
    issuer: String,
    /// `issuer:NAME`, or `escrow:ID` for a workload: amounts are signed
    /// from this account.
    account: String,
    workload_id: Option<String>,
    /// The workload's bill, from its status.
    bill: Option<Bill>,
    /// Whether every entry was asked for (no `--limit`).
    complete: bool,
    ledger: LedgerResponse,
}

/// Prints the statement.
pub async fn run(args: LedgerArgs) -> anyhow::Result<bool> {
    let mut broker = Broker::connect(&args.broker).await?;
    let (issuer, bill) = match &args.workload {
        Some(id) => {
            let status = broker
                .issuer
                .get_status(WorkloadRequest {
                    workload_id: id.clone(),
                })
                .await
                .map_err(|status| broker.error(status))?
                .into_inner();
            let issuer = args.issuer.issuer.clone().unwrap_or(status.issuer);
            (issuer, Some(status.bill.unwrap_or_default()))
        }
        None => {
            // Whose statement it is: the broker knows the token's issuer.
            let balance = fetch_balance(&mut broker, &args.issuer).await?;
            (issuer_of_account(&balance.account).to_owned(), None)
        }
    };
    let ledger = broker
        .issuer
        .get_ledger(LedgerRequest {
            issuer: issuer.clone(),
            workload_id: args.workload.clone().unwrap_or_default(),
            limit: args.limit,
        })
        .await
        .map_err(|status| broker.error(status))?
        .into_inner();
    let statement = Statement {
        account: match &args.workload {
            Some(id) => escrow_account(id),
            None => issuer_account(&issuer),
        },
        issuer,
        workload_id: args.workload,
        bill,
        complete: args.limit == 0,
        ledger,
    };
    if args.json {
        println!("{}", statement_json(&statement));
    } else {
        if statement.ledger.entries.is_empty() {
            eprintln!("no ledger entries for {}", statement.account);
        }
        print!("{}", statement_text(&statement));
    }
    Ok(true)
}

/// The escrow account of a workload, e.g. `escrow:w-1`.
fn escrow_account(workload_id: &str) -> String {
    format!("escrow:{workload_id}")
}

/// `amount` with `+` when it arrives in `account`, `-` when it leaves it,
/// and no sign when it passes elsewhere.
fn signed_amount(entry: &LedgerEntry, account: &str) -> String {
    let amount = credits_text(entry.amount_micro);
    if entry.to_account == account {
        format!("+{amount}")
    } else if entry.from_account == account {
        format!("-{amount}")
    } else {
        amount
    }
}

/// The entries in statement order: oldest first; for a workload, per task —
/// the escrow, then the payments grouped by task (each task's runs in the
/// order they were paid), then the fee and refund.
fn statement_order(entries: &[LedgerEntry], per_task: bool) -> Vec<&LedgerEntry> {
    let mut sorted: Vec<&LedgerEntry> = entries.iter().collect();
    if per_task {
        sorted.sort_by_key(|entry| {
            let group = match entry.kind.as_str() {
                "escrow" => 0,
                "pay" => 1,
                _ => 2,
            };
            let task = if entry.has_task && group == 1 {
                entry.task_index
            } else {
                0
            };
            (group, task, entry.seq)
        });
    } else {
        sorted.sort_by_key(|entry| entry.seq);
    }
    sorted
}

/// One row per entry, in [`statement_order`].
fn entries_table(entries: &[LedgerEntry], account: &str, per_task: bool) -> Table {
    let mut table = Table::new(&[
        ">SEQ", "TIME", "KIND", "FROM", "TO", ">AMOUNT", ">TASK", "AGENT", ">FUEL", "MEMO",
    ]);
    for entry in statement_order(entries, per_task) {
        table.row(vec![
            entry.seq.to_string(),
            unix_ms_text(entry.at_unix_ms),
            entry.kind.clone(),
            entry.from_account.clone(),
            entry.to_account.clone(),
            signed_amount(entry, account),
            if entry.has_task {
                entry.task_index.to_string()
            } else {
                String::new()
            },
            entry.agent_id.clone(),
            if entry.has_task || entry.fuel > 0 {
                entry.fuel.to_string()
            } else {
                String::new()
            },
            entry.memo.clone(),
        ]);
    }
    table
}

fn statement_text(statement: &Statement) -> String {
    let entries = &statement.ledger.entries;
    let mut text = if entries.is_empty() {
        String::new()
    } else {
        entries_table(entries, &statement.account, statement.workload_id.is_some()).render()
    };
    text.push('\n');
    if let Some(bill) = &statement.bill {
        // The runs paid are counted from the entries only when none were
        // left out by --limit.
        let runs = statement
            .complete
            .then(|| entries.iter().filter(|entry| entry.kind == "pay").count());
        for line in bill_lines(bill, runs) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    text.push_str(&format!(
        "balance         {} (issuer {})\n",
        credits_with_unit(statement.ledger.balance_micro),
        statement.issuer
    ));
    text
}

fn entry_json(entry: &LedgerEntry) -> serde_json::Value {
    serde_json::json!({
        "seq": entry.seq,
        "at_unix_ms": entry.at_unix_ms,
        "time": unix_ms_text(entry.at_unix_ms),
        "kind": entry.kind,
        "from": entry.from_account,
        "to": entry.to_account,
        "amount_micro": entry.amount_micro,
        "amount": credits_text(entry.amount_micro),
        "workload_id": entry.workload_id,
        "task_index": entry.has_task.then_some(entry.task_index),
        "lease_id": entry.lease_id,
        "agent_id": entry.agent_id,
        "fuel": entry.fuel,
        "memo": entry.memo,
    })
}

fn statement_json(statement: &Statement) -> serde_json::Value {
    let entries = statement_order(&statement.ledger.entries, statement.workload_id.is_some());
    let mut json = serde_json::json!({
        "issuer": statement.issuer,
        "account": statement.account,
        "workload_id": statement.workload_id,
        "entries": entries.into_iter().map(entry_json).collect::<Vec<_>>(),
        "balance_micro": statement.ledger.balance_micro,
        "balance": credits_text(statement.ledger.balance_micro),
    });
    if let Some(bill) = &statement.bill {
        json["bill"] = bill_json(bill);
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, kind: &str, from: &str, to: &str, amount_micro: i64) -> LedgerEntry {
        LedgerEntry {
            seq,
            at_unix_ms: 1_735_689_600_000,
            kind: kind.into(),
            from_account: from.into(),
            to_account: to.into(),
            amount_micro,
            workload_id: "w-1".into(),
            ..LedgerEntry::default()
        }
    }

    fn pay(seq: u64, task: u32, agent: &str, fuel: u64, amount_micro: i64) -> LedgerEntry {
        LedgerEntry {
            has_task: true,
            task_index: task,
            agent_id: agent.into(),
            lease_id: format!("l-{seq}"),
            fuel,
            ..entry(
                seq,
                "pay",
                "escrow:w-1",
                &format!("agent:{agent}"),
                amount_micro,
            )
        }
    }

    #[test]
    fn an_issuer_statement_signs_amounts_from_its_account_and_ends_with_the_balance() {
        let statement = Statement {
            issuer: "alice".into(),
            account: "issuer:alice".into(),
            workload_id: None,
            bill: None,
            complete: true,
            ledger: LedgerResponse {
                entries: vec![
                    entry(3, "refund", "escrow:w-1", "issuer:alice", 7_900_000),
                    LedgerEntry {
                        memo: "welcome".into(),
                        workload_id: String::new(),
                        ..entry(1, "grant", "mint", "issuer:alice", 100_000_000)
                    },
                    entry(2, "escrow", "issuer:alice", "escrow:w-1", 10_000_000),
                ],
                balance_micro: 97_900_000,
            },
        };
        let text = statement_text(&statement);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "SEQ  TIME                  KIND    FROM          TO                 AMOUNT  TASK  AGENT  FUEL  MEMO"
        );
        assert!(
            lines[1].starts_with("  1  2025-01-01T00:00:00Z  grant   mint"),
            "{text}"
        );
        assert!(
            lines[1].contains("+100.000000") && lines[1].ends_with("welcome"),
            "{text}"
        );
        assert!(lines[2].contains(" -10.000000"), "{text}");
        assert!(lines[3].contains("  +7.900000"), "{text}");
        assert_eq!(lines[4], "");
        assert_eq!(lines[5], "balance         97.900000 credits (issuer alice)");
        let json = statement_json(&statement);
        assert_eq!(json["entries"][0]["seq"], 1);
        assert_eq!(json["entries"][0]["task_index"], serde_json::Value::Null);
        assert_eq!(json["balance_micro"], 97_900_000);
        assert!(json.get("bill").is_none());
    }

    #[test]
    fn a_workload_statement_lists_paid_runs_and_ends_with_totals() {
        let statement = Statement {
            issuer: "alice".into(),
            account: "escrow:w-1".into(),
            workload_id: Some("w-1".into()),
            bill: Some(Bill {
                escrowed_micro: 10_000_000,
                paid_micro: 3_000_000,
                fee_micro: 150_000,
                refunded_micro: 6_850_000,
            }),
            complete: true,
            ledger: LedgerResponse {
                entries: vec![
                    entry(2, "escrow", "issuer:alice", "escrow:w-1", 10_000_000),
                    pay(4, 1, "a-1", 1_000_000_000, 1_000_000),
                    pay(5, 0, "a-2", 1_000_000_000, 1_000_000),
                    pay(6, 0, "a-1", 1_000_000_000, 1_000_000),
                    entry(7, "fee", "escrow:w-1", "broker", 150_000),
                    entry(8, "refund", "escrow:w-1", "issuer:alice", 6_850_000),
                ],
                balance_micro: 96_850_000,
            },
        };
        let text = statement_text(&statement);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].contains("escrow") && lines[1].contains("+10.000000"),
            "{text}"
        );
        // Per task: task 0's runs (paid 5th and 6th) before task 1's (4th).
        let seqs: Vec<&str> = lines[1..7]
            .iter()
            .filter_map(|line| line.split_whitespace().next())
            .collect();
        assert_eq!(seqs, ["2", "5", "6", "4", "7", "8"], "{text}");
        assert!(
            lines[3].contains("-1.000000     0  a-1    1000000000"),
            "{text}"
        );
        assert!(
            lines[5].contains("fee") && lines[5].contains("-0.150000"),
            "{text}"
        );
        let tail: Vec<&str> = lines[lines.len() - 5..].to_vec();
        assert_eq!(
            tail,
            [
                "escrowed        10.000000 credits",
                "paid to agents   3.000000 credits (3 runs)",
                "broker fee       0.150000 credits",
                "refunded         6.850000 credits",
                "balance         96.850000 credits (issuer alice)",
            ]
        );
        let json = statement_json(&statement);
        assert_eq!(json["bill"]["held_micro"], 0);
        assert_eq!(json["entries"][1]["task_index"], 0);
        assert_eq!(json["entries"][1]["agent_id"], "a-2");
        assert_eq!(json["entries"][3]["task_index"], 1);
    }
}
