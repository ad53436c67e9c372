//! A workload's bill (`wasmgrid_proto::v1::Bill`) as people read it: what
//! was escrowed, paid to agents, taken as the broker's fee and refunded,
//! and what escrow still holds — shared by `status`, `ledger` and `demo`.

use wasmgrid_proto::v1::Bill;

use crate::credits::{credits_text, credits_with_unit};

/// What escrow still holds: escrowed − paid − fee − refunded.
pub fn held_micro(bill: &Bill) -> i64 {
    bill.escrowed_micro
        .saturating_sub(bill.paid_micro)
        .saturating_sub(bill.fee_micro)
        .saturating_sub(bill.refunded_micro)
}

/// The bill as aligned labelled lines, e.g. `paid to agents   3.000000
/// credits (3 runs)`; `still held` only when escrow holds anything.
pub fn bill_lines(bill: &Bill, runs_paid: Option<usize>) -> Vec<String> {
    let runs = runs_paid.map_or_else(String::new, |runs| {
        format!(" ({runs} run{})", if runs == 1 { "" } else { "s" })
    });
    let held = held_micro(bill);
    let amounts = [
        bill.escrowed_micro,
        bill.paid_micro,
        bill.fee_micro,
        bill.refunded_micro,
        held,
    ]
    .map(credits_text);
    let width = amounts.iter().map(String::len).max().unwrap_or(0);
    let mut lines = vec![
        format!("escrowed        {:>width$} credits", amounts[0]),
        format!("paid to agents  {:>width$} credits{runs}", amounts[1]),
        format!("broker fee      {:>width$} credits", amounts[2]),
        format!("refunded        {:>width$} credits", amounts[3]),
    ];
    if held != 0 {
        lines.push(format!("still held      {:>width$} credits", amounts[4]));
    }
    lines
}

/// The bill on one line: `escrowed 12.000000, paid 3.000000, fee 0.150000,
/// refunded 8.850000 credits`, with `, held N credits` while escrow holds
/// anything.
pub fn bill_summary(bill: &Bill) -> String {
    let mut text = format!(
        "escrowed {}, paid {}, fee {}, refunded {}",
        credits_text(bill.escrowed_micro),
        credits_text(bill.paid_micro),
        credits_text(bill.fee_micro),
        credits_text(bill.refunded_micro),
    );
    match held_micro(bill) {
        0 => text.push_str(" credits"),
        held => text.push_str(&format!(", held {}", credits_with_unit(held))),
    }
    text
}

/// The bill in micro-credits, for `--json`.
pub fn bill_json(bill: &Bill) -> serde_json::Value {
    serde_json::json!({
        "escrowed_micro": bill.escrowed_micro,
        "paid_micro": bill.paid_micro,
        "fee_micro": bill.fee_micro,
        "refunded_micro": bill.refunded_micro,
        "held_micro": held_micro(bill),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLED: Bill = Bill {
        escrowed_micro: 12_000_000,
        paid_micro: 3_000_000,
        fee_micro: 150_000,
        refunded_micro: 8_850_000,
    };

    const RUNNING: Bill = Bill {
        escrowed_micro: 10_000_000,
        paid_micro: 1_000_000,
        fee_micro: 0,
        refunded_micro: 0,
    };

    #[test]
    fn a_settled_bill_holds_nothing() {
        assert_eq!(held_micro(&SETTLED), 0);
        assert_eq!(
            bill_lines(&SETTLED, Some(3)),
            [
                "escrowed        12.000000 credits",
                "paid to agents   3.000000 credits (3 runs)",
                "broker fee       0.150000 credits",
                "refunded         8.850000 credits",
            ]
        );
        assert_eq!(
            bill_summary(&SETTLED),
            "escrowed 12.000000, paid 3.000000, fee 0.150000, refunded 8.850000 credits"
        );
        assert_eq!(bill_json(&SETTLED)["fee_micro"], 150_000);
    }

    #[test]
    fn a_running_workloads_bill_shows_what_escrow_still_holds() {
        assert_eq!(
            bill_lines(&RUNNING, None),
            [
                "escrowed        10.000000 credits",
                "paid to agents   1.000000 credits",
                "broker fee       0.000000 credits",
                "refunded         0.000000 credits",
                "still held       9.000000 credits",
            ]
        );
        assert_eq!(
            bill_summary(&RUNNING),
            "escrowed 10.000000, paid 1.000000, fee 0.000000, refunded 0.000000, held 9.000000 credits"
        );
        assert_eq!(bill_json(&RUNNING)["held_micro"], 9_000_000);
    }
}
