//! Credits with the real binaries: `grant`, `submit` against the issuer's
//! balance, and `balance`, `ledger`, `status` and `agents` showing where
//! every micro-credit went — escrow at submit, a payment per agreeing run,
//! the broker's fee and the refund of the rest.

mod grid;

use grid::{Grid, arg, sample, stderr, stdout};
use serde_json::Value;

/// The price in these tests: 1e-6 credits per unit of fuel makes a run's
/// pay in micro-credits equal to its fuel, so the ledger can be checked
/// against the fuel the agents reported.
const RATE: &str = "1e-6";

/// The fuel limit: 10 credits per run at [`RATE`]; a `primes` range of
/// 250,000 numbers needs about 3.5 million.
const FUEL: &str = "10e6";

fn micro(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{value} is not an integer"))
}

fn entries<'a>(statement: &'a Value, kind: &str) -> Vec<&'a Value> {
    statement["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|entry| entry["kind"] == kind)
        .collect()
}

/// `lines` JSON lines in a file, as `submit --inputs` reads them.
fn jsonl(grid: &Grid, name: &str, lines: &[String]) -> String {
    let path = grid.dir().join(name);
    std::fs::write(&path, lines.join("\n")).expect("write inputs");
    arg(&path).to_owned()
}

#[test]
fn a_submit_the_balance_cannot_cover_is_refused_and_changes_nothing() {
    let grid = Grid::start(0);
    let granted = grid.ok(&["grant", "--issuer", "poor", "1.5", "--memo", "too little"]);
    assert_eq!(
        granted,
        "granted 1.500000 credits to issuer poor\nbalance 1.500000 credits\n"
    );
    let inputs = jsonl(&grid, "inputs.jsonl", &["a".into(), "b".into()]);
    let echo = sample("echo");
    for issuer in ["poor", "nobody"] {
        // Two tasks at 10 credits each at most, plus the fee: above 1.5.
        let output = grid.wasmgrid(&[
            "submit",
            &echo,
            "--inputs",
            &inputs,
            "--issuer",
            issuer,
            "--fuel",
            FUEL,
            "--credits-per-fuel",
            RATE,
        ]);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{message}");
        assert!(stdout(&output).is_empty(), "no workload id is printed");
        assert!(
            message.contains("error: the broker refused the workload: insufficient credits"),
            "{message}"
        );
        assert!(message.contains(&format!("issuer {issuer}")), "{message}");
        assert!(
            message.contains(&format!("wasmgrid grant --issuer {issuer} AMOUNT")),
            "{message}"
        );
    }
    let balance = grid.json(&["balance", "--issuer", "poor"]);
    assert_eq!(micro(&balance["balance_micro"]), 1_500_000);
    assert_eq!(micro(&balance["escrowed_micro"]), 0);
    let statement = grid.json(&["ledger", "--issuer", "poor"]);
    let all = statement["entries"].as_array().expect("entries");
    assert_eq!(all.len(), 1, "only the grant: {statement}");
    assert_eq!(all[0]["kind"], "grant");
    assert_eq!(all[0]["memo"], "too little");
    assert_eq!(micro(&all[0]["amount_micro"]), 1_500_000);
    let nobody = grid.json(&["balance", "--issuer", "nobody"]);
    assert_eq!(micro(&nobody["balance_micro"]), 0);
    let listing = grid.wasmgrid(&["workloads"]);
    assert!(
        stderr(&listing).contains("no workloads"),
        "{}",
        stdout(&listing)
    );
}

#[test]
fn escrow_payments_fee_and_refund_add_up_in_balance_ledger_status_and_agents() {
    let grid = Grid::start(2);
    let granted = grid.json(&["grant", "--issuer", "alice", "100", "--memo", "budget"]);
    assert_eq!(micro(&granted["balance_micro"]), 100_000_000);
    let ranges: Vec<String> = (0..4)
        .map(|i| format!(r#"{{"start":{},"end":{}}}"#, i * 250_000, (i + 1) * 250_000))
        .collect();
    let inputs = jsonl(&grid, "ranges.jsonl", &ranges);
    let output = grid.wasmgrid(&[
        "submit",
        &sample("primes"),
        "--inputs",
        &inputs,
        "--reducer",
        &sample("sum-u64"),
        "--issuer",
        "alice",
        "--replicas",
        "2",
        "--fuel",
        FUEL,
        "--credits-per-fuel",
        RATE,
    ]);
    assert!(
        output.status.success(),
        "{}\n{}",
        stderr(&output),
        grid.logs()
    );
    assert!(
        stderr(&output).contains("escrowed ") && stderr(&output).contains("from issuer alice"),
        "{}",
        stderr(&output)
    );
    let id = stdout(&output).trim().to_owned();
    grid.ok(&["wait", &id]);
    assert_eq!(grid.ok(&["results", &id]).trim(), "78498");

    // The workload's statement: one escrow, a payment per agreeing run, the
    // fee, the refund; the bill says the same.
    let statement = grid.json(&["ledger", "--workload", &id]);
    assert_eq!(statement["issuer"], "alice", "the workload's issuer");
    let bill = &statement["bill"];
    let (escrowed, paid, fee, refunded) = (
        micro(&bill["escrowed_micro"]),
        micro(&bill["paid_micro"]),
        micro(&bill["fee_micro"]),
        micro(&bill["refunded_micro"]),
    );
    // 4 tasks × 2 runs at 10 credits at most, plus the default 5% fee.
    assert_eq!(escrowed, 84_000_000, "{statement}");
    assert_eq!(micro(&bill["held_micro"]), 0, "{statement}");
    let escrow = entries(&statement, "escrow");
    assert_eq!(escrow.len(), 1, "{statement}");
    assert_eq!(micro(&escrow[0]["amount_micro"]), escrowed);
    assert_eq!(escrow[0]["from"], "issuer:alice");
    let pays = entries(&statement, "pay");
    assert_eq!(pays.len(), 8, "4 tasks × 2 agreeing runs: {statement}");
    let mut paid_runs: Vec<(i64, String)> = Vec::new();
    for pay in &pays {
        let fuel = pay["fuel"].as_i64().expect("fuel");
        assert!(fuel > 1_000_000, "{pay}");
        assert_eq!(
            micro(&pay["amount_micro"]),
            fuel,
            "fuel × 1e-6 credits: {pay}"
        );
        let agent = pay["agent_id"].as_str().expect("agent").to_owned();
        assert_eq!(pay["to"], format!("agent:{agent}"));
        paid_runs.push((pay["task_index"].as_i64().expect("task index"), agent));
    }
    paid_runs.sort();
    paid_runs.dedup();
    assert_eq!(
        paid_runs.len(),
        8,
        "each task paid once per agent: {statement}"
    );
    assert_eq!(
        pays.iter()
            .map(|pay| micro(&pay["amount_micro"]))
            .sum::<i64>(),
        paid
    );
    let fees = entries(&statement, "fee");
    assert_eq!(fees.len(), 1, "{statement}");
    assert_eq!(micro(&fees[0]["amount_micro"]), fee);
    assert_eq!(fee, paid * 5 / 100, "5% of what agents were paid");
    let refunds = entries(&statement, "refund");
    assert_eq!(refunds.len(), 1, "{statement}");
    assert_eq!(micro(&refunds[0]["amount_micro"]), refunded);
    assert_eq!(refunded, escrowed - paid - fee);

    // The issuer's balance and statement.
    let balance = grid.json(&["balance", "--issuer", "alice"]);
    assert_eq!(micro(&balance["balance_micro"]), 100_000_000 - paid - fee);
    assert_eq!(micro(&balance["escrowed_micro"]), 0);
    let account = grid.json(&["ledger", "--issuer", "alice"]);
    let kinds: Vec<&str> = account["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["grant", "escrow", "refund"], "{account}");
    assert_eq!(micro(&account["balance_micro"]), 100_000_000 - paid - fee);
    let newest = grid.json(&["ledger", "--issuer", "alice", "--limit", "1"]);
    assert_eq!(entries(&newest, "refund").len(), 1, "{newest}");
    assert_eq!(newest["entries"].as_array().map(Vec::len), Some(1));

    // The same in text.
    let text = grid.ok(&["ledger", "--workload", &id]);
    assert!(
        text.contains("paid to agents") && text.contains("(8 runs)"),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .is_some_and(|line| line.starts_with("balance") && line.ends_with("(issuer alice)")),
        "{text}"
    );
    let status = grid.ok(&["status", &id]);
    assert!(status.contains("replicas  2, quorum 2 (all)"), "{status}");
    assert!(
        status.contains(&format!(
            "bill      escrowed 84.000000, paid {}",
            credits(paid)
        )),
        "{status}"
    );
    let tasks = grid.ok(&["status", &id, "--tasks"]);
    assert_eq!(tasks.matches("agreed").count(), 8, "{tasks}");
    assert!(tasks.contains("2/2"), "{tasks}");

    // What the agents earned is what the workload paid.
    let agents = grid.json(&["agents"]);
    let agents = agents.as_array().expect("agents");
    assert_eq!(agents.len(), 2);
    assert_eq!(
        agents
            .iter()
            .map(|agent| micro(&agent["earned_micro"]))
            .sum::<i64>(),
        paid
    );
    assert!(
        agents
            .iter()
            .all(|agent| agent["results_valid"].as_u64() == Some(4)),
        "each agent ran every task once: {agents:?}"
    );
    let table = grid.ok(&["agents"]);
    assert!(
        table.contains("EARNED") && table.contains("REPUTATION"),
        "{table}"
    );
}

/// Micro-credits as `wasmgrid` shows them.
fn credits(micro: i64) -> String {
    format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000)
}

#[test]
fn quorum_adaptive_replication_and_memory_price_reach_the_broker() {
    let grid = Grid::start(0);
    let inputs = jsonl(&grid, "inputs.jsonl", &["a".into()]);
    grid.ok(&["grant", "--issuer", "carol", "1000"]);
    let id = grid.ok(&[
        "submit",
        &sample("echo"),
        "--inputs",
        &inputs,
        "--issuer",
        "carol",
        "--replicas",
        "3",
        "--quorum",
        "2",
        "--adaptive",
        "--credits-per-mib-second",
        "0.001",
    ]);
    let status = grid.ok(&["status", id.trim()]);
    assert!(
        status.contains("replicas  3, quorum 2, adaptive"),
        "{status}"
    );
    assert!(status.contains("0.001 per MiB-second"), "{status}");
    assert!(status.contains(", held "), "no agent ran it yet: {status}");
    let balance = grid.json(&["balance", "--issuer", "carol"]);
    let escrowed = micro(&balance["escrowed_micro"]);
    assert!(escrowed > 0, "{balance}");
    assert_eq!(micro(&balance["balance_micro"]), 1_000_000_000 - escrowed);
}
