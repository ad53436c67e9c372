//! How `wasmgrid-agent earnings` shows an [`EarningsReport`]: credits with
//! six decimals, a summary and a table of the latest payments for people,
//! or one JSON object for scripts.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use wasmgrid_proto::v1::LedgerEntry;

use crate::earnings::EarningsReport;

/// Micro-credits in a credit.
const MICRO_PER_CREDIT: u64 = 1_000_000;

/// `micro` micro-credits as credits with six decimals, e.g. `-1.500000`.
pub fn format_credits(micro: i64) -> String {
    let sign = if micro < 0 { "-" } else { "" };
    let magnitude = micro.unsigned_abs();
    format!(
        "{sign}{}.{:06}",
        magnitude / MICRO_PER_CREDIT,
        magnitude % MICRO_PER_CREDIT
    )
}

impl EarningsReport {
    /// The agent's id: the broker's word, else the saved identity's.
    fn shown_agent_id(&self) -> &str {
        if self.earnings.agent_id.is_empty() {
            &self.agent_id
        } else {
            &self.earnings.agent_id
        }
    }

    /// An entry's amount as it changed the agent's balance: negative when
    /// it left the agent's account.
    fn signed_amount(&self, entry: &LedgerEntry) -> i64 {
        let account = format!("agent:{}", self.shown_agent_id());
        if entry.from_account == account && entry.to_account != account {
            entry.amount_micro.saturating_neg()
        } else {
            entry.amount_micro
        }
    }

    /// The report for people: a summary, then the latest payments.
    pub fn to_text(&self) -> String {
        let earnings = &self.earnings;
        let mut text = String::new();
        let _ = writeln!(text, "agent       {}", self.shown_agent_id());
        let _ = writeln!(text, "broker      {}", self.broker);
        let _ = writeln!(
            text,
            "balance     {} credits",
            format_credits(earnings.balance_micro)
        );
        let _ = writeln!(
            text,
            "results     {} valid, {} invalid",
            earnings.results_valid, earnings.results_invalid
        );
        let _ = writeln!(text, "reputation  {:.3}", earnings.reputation);
        let _ = writeln!(
            text,
            "trusted     {}",
            if earnings.trusted { "yes" } else { "no" }
        );
        text.push('\n');
        if earnings.recent.is_empty() {
            text.push_str("no payments yet\n");
            return text;
        }
        text.push_str("recent payments, newest first:\n");
        let header = [
            "WHEN", "KIND", "CREDITS", "WORKLOAD", "TASK", "FUEL", "LEASE",
        ];
        let rows: Vec<[String; 7]> = earnings
            .recent
            .iter()
            .map(|entry| {
                [
                    when(entry.at_unix_ms),
                    entry.kind.clone(),
                    format_credits(self.signed_amount(entry)),
                    dash_if_empty(&entry.workload_id),
                    if entry.has_task {
                        entry.task_index.to_string()
                    } else {
                        "-".to_owned()
                    },
                    entry.fuel.to_string(),
                    dash_if_empty(&entry.lease_id),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|column| {
                rows.iter()
                    .map(|row| row[column].chars().count())
                    .chain([header[column].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        // Numbers (credits, task, fuel) are right-aligned.
        let right = [false, false, true, false, true, true, false];
        let header = header.map(str::to_owned);
        for row in std::iter::once(&header).chain(&rows) {
            let mut line = String::new();
            for (column, cell) in row.iter().enumerate() {
                let width = widths[column];
                if right[column] {
                    let _ = write!(line, "{cell:>width$}  ");
                } else {
                    let _ = write!(line, "{cell:<width$}  ");
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }

    /// The report for scripts, as one JSON object: amounts both exact
    /// (`*_micro`) and as credit strings.
    pub fn to_json(&self) -> serde_json::Value {
        let earnings = &self.earnings;
        let json = EarningsJson {
            agent_id: self.shown_agent_id(),
            broker: &self.broker,
            balance_micro: earnings.balance_micro,
            balance: format_credits(earnings.balance_micro),
            results_valid: earnings.results_valid,
            results_invalid: earnings.results_invalid,
            reputation: earnings.reputation,
            trusted: earnings.trusted,
            recent: earnings
                .recent
                .iter()
                .map(|entry| PaymentJson {
                    seq: entry.seq,
                    at_unix_ms: entry.at_unix_ms,
                    kind: &entry.kind,
                    from_account: &entry.from_account,
                    to_account: &entry.to_account,
                    amount_micro: entry.amount_micro,
                    amount: format_credits(entry.amount_micro),
                    workload_id: &entry.workload_id,
                    task_index: entry.has_task.then_some(entry.task_index),
                    lease_id: &entry.lease_id,
                    fuel: entry.fuel,
                    memo: &entry.memo,
                })
                .collect(),
        };
        serde_json::to_value(json).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Serialize)]
struct EarningsJson<'a> {
    agent_id: &'a str,
    broker: &'a str,
    balance_micro: i64,
    balance: String,
    results_valid: u64,
    results_invalid: u64,
    reputation: f64,
    trusted: bool,
    recent: Vec<PaymentJson<'a>>,
}

#[derive(Serialize)]
struct PaymentJson<'a> {
    seq: u64,
    at_unix_ms: i64,
    kind: &'a str,
    from_account: &'a str,
    to_account: &'a str,
    amount_micro: i64,
    amount: String,
    workload_id: &'a str,
    task_index: Option<u32>,
    lease_id: &'a str,
    fuel: u64,
    memo: &'a str,
}

/// A ledger time as RFC 3339 (UTC, seconds), `-` when unset.
fn when(at_unix_ms: i64) -> String {
    match u64::try_from(at_unix_ms) {
        Ok(ms) if ms > 0 => UNIX_EPOCH
            .checked_add(Duration::from_millis(ms))
            .map_or_else(
                || "-".to_owned(),
                |at| humantime::format_rfc3339_seconds(at).to_string(),
            ),
        _ => "-".to_owned(),
    }
}

fn dash_if_empty(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use wasmgrid_proto::v1::Earnings;

    use super::*;

    #[test]
    fn credits_have_six_decimals() {
        assert_eq!(format_credits(0), "0.000000");
        assert_eq!(format_credits(1), "0.000001");
        assert_eq!(format_credits(12_345_678), "12.345678");
        assert_eq!(format_credits(-1_500_000), "-1.500000");
        assert_eq!(format_credits(i64::MIN), "-9223372036854.775808");
    }

    fn report() -> EarningsReport {
        EarningsReport {
            broker: "http://b:7070".into(),
            agent_id: "agent-7".into(),
            earnings: Earnings {
                agent_id: "agent-7".into(),
                balance_micro: 2_500_000,
                results_valid: 9,
                results_invalid: 1,
                reputation: 0.9,
                trusted: true,
                recent: vec![
                    LedgerEntry {
                        seq: 12,
                        at_unix_ms: 1_700_000_000_000,
                        kind: "pay".into(),
                        from_account: "escrow:wl-1".into(),
                        to_account: "agent:agent-7".into(),
                        amount_micro: 2_000_000,
                        workload_id: "wl-1".into(),
                        has_task: true,
                        task_index: 3,
                        lease_id: "lease-9".into(),
                        agent_id: "agent-7".into(),
                        fuel: 2_000_000_000,
                        memo: String::new(),
                    },
                    LedgerEntry {
                        seq: 5,
                        kind: "fee".into(),
                        from_account: "agent:agent-7".into(),
                        to_account: "broker".into(),
                        amount_micro: 500,
                        ..LedgerEntry::default()
                    },
                ],
            },
        }
    }

    #[test]
    fn text_shows_the_summary_and_a_table() {
        let text = report().to_text();
        assert!(text.contains("agent       agent-7\n"), "{text}");
        assert!(text.contains("balance     2.500000 credits\n"), "{text}");
        assert!(text.contains("results     9 valid, 1 invalid\n"), "{text}");
        assert!(text.contains("reputation  0.900\n"), "{text}");
        assert!(text.contains("trusted     yes\n"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        let header = lines
            .iter()
            .position(|line| line.starts_with("WHEN"))
            .expect("a table header");
        let pay = lines[header + 1];
        assert!(pay.starts_with("2023-11-14T22:13:20Z  pay "), "{pay}");
        assert!(pay.contains(" 2.000000  wl-1 "), "{pay}");
        assert!(pay.ends_with("2000000000  lease-9"), "{pay}");
        let fee = lines[header + 2];
        assert!(fee.starts_with("-  "), "{fee}");
        assert!(fee.contains(" -0.000500  -"), "{fee}");
        // Columns line up.
        assert_eq!(lines[header].find("WORKLOAD"), pay.find("wl-1"));
        assert_eq!(lines[header].find("LEASE"), pay.find("lease-9"));
    }

    #[test]
    fn no_payments_say_so() {
        let mut report = report();
        report.earnings.recent.clear();
        report.earnings.trusted = false;
        let text = report.to_text();
        assert!(text.contains("trusted     no\n"), "{text}");
        assert!(text.ends_with("no payments yet\n"), "{text}");
    }

    #[test]
    fn json_keeps_exact_amounts() {
        let json = report().to_json();
        assert_eq!(json["agent_id"], "agent-7");
        assert_eq!(json["balance_micro"], 2_500_000);
        assert_eq!(json["balance"], "2.500000");
        assert_eq!(json["results_valid"], 9);
        assert_eq!(json["trusted"], true);
        assert_eq!(json["recent"][0]["task_index"], 3);
        assert_eq!(json["recent"][0]["amount"], "2.000000");
        assert!(json["recent"][1]["task_index"].is_null());
    }
}
