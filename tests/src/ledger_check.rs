//! The whole credit ledger checked from outside, over gRPC only
//! (`AdminService.ListAccounts`, `ListWorkloads`, `ListAgents`,
//! `IssuerService.GetLedger` and `ListTasks`): what the issue "exactly once"
//! asks of a broker after crashes, retries, duplicated and late reports and
//! reissued tasks — nothing paid twice, no payment lost, and the sum of all
//! balances changed by admin grants only.
//!
//! [`assert_ledger_consistent`] reads a consistent snapshot (every read is
//! bracketed by two identical account listings, so a grid that is still
//! working is checked too) and panics with every violation found:
//!
//! - totals: `held == granted == −mint`, and `held` is the sum of every
//!   balance but the mint's; no other balance is negative;
//! - per workload: its postings (escrow, pay, fee, refund) add up to the
//!   bill in its status, run between the right accounts, and leave its
//!   escrow account holding exactly the rest; a final workload (done, failed
//!   or cancelled) is closed out — its close-out shares the transaction of
//!   its final state — with an empty escrow, the fee
//!   `floor(paid × fee_bp / 10000)` and the rest refunded; a running one has
//!   neither fee nor refund;
//! - per run: at most one pay per lease id (over the whole ledger), paid to
//!   the run's agent, for the run's fuel, exactly `floor(fuel × pico / 10^6)`
//!   with `pico = round(credits_per_fuel × 10^12)` (no memory price in these
//!   tests), and equal to the run's `paid_micro`; only runs with the verdict
//!   `agreed` are paid;
//! - per task: at most `quorum` paid runs, only done tasks have paid runs,
//!   and a done task of a paid workload has exactly `quorum` agreeing runs,
//!   each paid (no payment lost);
//! - per account: an agent holds exactly the pays to it (and `ListAgents`
//!   says it earned that), the broker exactly the fees, an issuer exactly
//!   `grants − escrows + refunds` (and its escrows and refunds are those of
//!   its workloads).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use wasmgrid_proto::v1;

use crate::client::{AdminClient, IssuerClient, Submission, admin};

/// The broker's default fee: 5 %.
pub const DEFAULT_FEE_BASIS_POINTS: i64 = 500;
/// The rate the ledger tests pay: 10^-9 credits (1000 pico-credits) per unit
/// of fuel, so a run earns `fuel / 1000` micro-credits.
pub const CREDITS_PER_FUEL: f64 = 1e-9;
pub const MICRO_PER_CREDIT: i64 = 1_000_000;
const BASIS_POINTS: i64 = 10_000;
const PICO_PER_MICRO: u128 = 1_000_000;
/// Snapshots tried before giving up on a ledger that never stands still.
const SNAPSHOT_ATTEMPTS: usize = 200;

/// A rate in integer pico-credits, as the broker stores it.
pub fn pico(rate: f64) -> u64 {
    (rate * 1e12).round() as u64
}

/// What a run of `fuel` earns at `rate` credits per unit of fuel, in
/// micro-credits (rounded down).
pub fn expected_pay(fuel: u64, rate: f64) -> i64 {
    i64::try_from(u128::from(fuel) * u128::from(pico(rate)) / PICO_PER_MICRO)
        .expect("a pay fits in i64")
}

/// The broker's fee on `paid` at `fee_basis_points` (rounded down).
pub fn expected_fee(paid: i64, fee_basis_points: i64) -> i64 {
    paid * fee_basis_points / BASIS_POINTS
}

/// The escrow a submission needs at the default fee: every task paid
/// `quorum` times at its fuel limit, plus the fee on that.
pub fn escrow_needed(submission: &Submission) -> i64 {
    let quorum = if submission.quorum == 0 {
        submission.replicas.max(1)
    } else {
        submission.quorum
    };
    let runs = submission.inputs.len() as i64 * i64::from(quorum);
    let paid = runs * expected_pay(submission.limits.fuel, submission.credits_per_fuel);
    paid + expected_fee(paid, DEFAULT_FEE_BASIS_POINTS)
}

/// Creates `amount_micro` on `issuer`'s account (`GrantCredits`).
pub async fn grant(url: &str, issuer: &str, amount_micro: i64) {
    admin(url)
        .await
        .grant_credits(v1::GrantCreditsRequest {
            issuer: issuer.to_owned(),
            amount_micro,
            memo: "ledger test".to_owned(),
        })
        .await
        .unwrap_or_else(|status| panic!("grant of {amount_micro} to {issuer}: {status}"));
}

/// Makes `submission` paid at [`CREDITS_PER_FUEL`] and grants its issuer
/// exactly the escrow it needs; returns that amount.
pub async fn fund(url: &str, submission: &mut Submission) -> i64 {
    submission.credits_per_fuel = CREDITS_PER_FUEL;
    let needed = escrow_needed(submission);
    grant(url, &submission.issuer, needed).await;
    needed
}

/// Micro-credits as credits, e.g. `12.500000`.
pub fn credits(micro: i64) -> String {
    let sign = if micro < 0 { "-" } else { "" };
    let abs = micro.unsigned_abs();
    let per = MICRO_PER_CREDIT as u64;
    format!("{sign}{}.{:06}", abs / per, abs % per)
}

/// One workload as read: status, postings, tasks.
#[derive(Clone, Debug)]
struct WorkloadView {
    status: v1::WorkloadStatus,
    entries: Vec<v1::LedgerEntry>,
    tasks: Vec<v1::TaskInfo>,
}

/// Everything read for one check.
#[derive(Clone, Debug)]
struct Snapshot {
    accounts: v1::ListAccountsResponse,
    workloads: Vec<WorkloadView>,
    /// Issuer → its statement.
    statements: BTreeMap<String, v1::LedgerResponse>,
    agents: Vec<v1::AgentInfo>,
}

/// The totals of a consistent ledger, in micro-credits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerSummary {
    pub granted: i64,
    pub issuers: i64,
    pub escrow: i64,
    pub agents: i64,
    pub broker: i64,
    /// Pay entries (one per paid lease).
    pub pays: usize,
    pub paid: i64,
    pub workloads: usize,
    pub final_workloads: usize,
}

impl fmt::Display for LedgerSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ledger consistent: granted {} = issuers {} + escrow {} + agents {} + broker {}; \
             {} pays ({}) over {} workloads ({} final)",
            credits(self.granted),
            credits(self.issuers),
            credits(self.escrow),
            credits(self.agents),
            credits(self.broker),
            self.pays,
            credits(self.paid),
            self.workloads,
            self.final_workloads,
        )
    }
}

/// Checks the whole ledger of the broker at `url` at the default fee (5 %);
/// panics with every violation. Prints and returns the totals.
pub async fn assert_ledger_consistent(url: &str) -> LedgerSummary {
    assert_ledger_consistent_with_fee(url, DEFAULT_FEE_BASIS_POINTS).await
}

/// [`assert_ledger_consistent`] for a broker run with another fee.
pub async fn assert_ledger_consistent_with_fee(url: &str, fee_basis_points: i64) -> LedgerSummary {
    let started = Instant::now();
    let (snapshot, attempts) = snapshot(url).await;
    let mut problems = Vec::new();
    let summary = check(&snapshot, fee_basis_points, &mut problems);
    assert!(
        problems.is_empty(),
        "the ledger is inconsistent ({} problem(s)):\n- {}\naccounts: {:?}",
        problems.len(),
        problems.join("\n- "),
        snapshot.accounts,
    );
    println!(
        "{summary} [read in {attempts} attempt(s), {:?}]",
        started.elapsed()
    );
    summary
}

/// The two services the check reads, over one connection.
#[derive(Clone, Debug)]
struct Clients {
    issuer: IssuerClient,
    admin: AdminClient,
}

impl Clients {
    async fn connect(url: &str) -> Clients {
        Clients {
            issuer: crate::client::issuer(url).await,
            admin: crate::client::admin(url).await,
        }
    }

    async fn list_accounts(&mut self) -> v1::ListAccountsResponse {
        self.admin
            .list_accounts(v1::ListAccountsRequest {})
            .await
            .expect("ListAccounts")
            .into_inner()
    }
}

/// Reads everything between two identical account listings: every posting
/// changes balances (amounts are > 0, agents' and the broker's only grow,
/// a new escrow adds an account), so nothing was posted meanwhile.
async fn snapshot(url: &str) -> (Snapshot, usize) {
    let mut clients = Clients::connect(url).await;
    let mut last_change = None;
    for attempt in 1..=SNAPSHOT_ATTEMPTS {
        let before = clients.list_accounts().await;
        let snapshot = read(&mut clients, before.clone()).await;
        let after = clients.list_accounts().await;
        if after == before {
            return (snapshot, attempt);
        }
        last_change = Some((before, after));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the ledger never stood still long enough to be read: {last_change:?}");
}

async fn read(clients: &mut Clients, accounts: v1::ListAccountsResponse) -> Snapshot {
    let Clients {
        issuer: issuer_client,
        admin: admin_client,
    } = clients;
    let statuses = admin_client
        .list_workloads(v1::ListWorkloadsRequest {})
        .await
        .expect("ListWorkloads")
        .into_inner()
        .workloads;
    let mut workloads = Vec::new();
    for status in statuses {
        let entries = issuer_client
            .get_ledger(v1::LedgerRequest {
                issuer: status.issuer.clone(),
                workload_id: status.workload_id.clone(),
                limit: 0,
            })
            .await
            .unwrap_or_else(|e| panic!("GetLedger of workload {}: {e}", status.workload_id))
            .into_inner()
            .entries;
        let tasks = issuer_client
            .list_tasks(v1::WorkloadRequest {
                workload_id: status.workload_id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("ListTasks of workload {}: {e}", status.workload_id))
            .into_inner()
            .tasks;
        workloads.push(WorkloadView {
            status,
            entries,
            tasks,
        });
    }
    let mut issuers: BTreeSet<String> = workloads.iter().map(|w| w.status.issuer.clone()).collect();
    issuers.extend(
        accounts
            .accounts
            .iter()
            .filter_map(|account| account.id.strip_prefix("issuer:"))
            .map(str::to_owned),
    );
    let mut statements = BTreeMap::new();
    for name in issuers {
        let statement = issuer_client
            .get_ledger(v1::LedgerRequest {
                issuer: name.clone(),
                workload_id: String::new(),
                limit: 0,
            })
            .await
            .unwrap_or_else(|e| panic!("GetLedger of issuer {name}: {e}"))
            .into_inner();
        statements.insert(name, statement);
    }
    let agents = admin_client
        .list_agents(v1::ListAgentsRequest {})
        .await
        .expect("ListAgents")
        .into_inner()
        .agents;
    Snapshot {
        accounts,
        workloads,
        statements,
        agents,
    }
}

fn sum(entries: &[&v1::LedgerEntry]) -> i64 {
    entries.iter().map(|entry| entry.amount_micro).sum()
}

fn is_final(status: &v1::WorkloadStatus) -> bool {
    status.state != v1::WorkloadState::Running as i32
}

/// Every check; violations go to `problems`.
fn check(snapshot: &Snapshot, fee_basis_points: i64, problems: &mut Vec<String>) -> LedgerSummary {
    let mut fail = |problem: String| problems.push(problem);
    let accounts = &snapshot.accounts;
    let balances: HashMap<&str, i64> = accounts
        .accounts
        .iter()
        .map(|account| (account.id.as_str(), account.balance_micro))
        .collect();
    let balance = |id: &str| balances.get(id).copied().unwrap_or(0);

    // Totals.
    if accounts.held_micro != accounts.granted_micro {
        fail(format!(
            "held {} != granted {}",
            accounts.held_micro, accounts.granted_micro
        ));
    }
    if balance("mint") != -accounts.granted_micro {
        fail(format!(
            "the mint holds {} but {} were granted",
            balance("mint"),
            accounts.granted_micro
        ));
    }
    let held: i64 = accounts
        .accounts
        .iter()
        .filter(|account| account.id != "mint")
        .map(|account| account.balance_micro)
        .sum();
    if held != accounts.held_micro {
        fail(format!(
            "the balances but the mint's add up to {held}, the broker says {}",
            accounts.held_micro
        ));
    }
    let mut summary = LedgerSummary {
        granted: accounts.granted_micro,
        workloads: snapshot.workloads.len(),
        ..LedgerSummary::default()
    };
    for account in &accounts.accounts {
        let prefix_ok = match account.kind.as_str() {
            "mint" => account.id == "mint",
            "broker" => account.id == "broker",
            "issuer" | "agent" | "escrow" => account.id.starts_with(&format!("{}:", account.kind)),
            _ => false,
        };
        if !prefix_ok {
            fail(format!("account {account:?} has an unknown kind or id"));
        }
        if account.kind != "mint" && account.balance_micro < 0 {
            fail(format!("account {account:?} is negative"));
        }
        match account.kind.as_str() {
            "issuer" => summary.issuers += account.balance_micro,
            "escrow" => summary.escrow += account.balance_micro,
            "agent" => summary.agents += account.balance_micro,
            "broker" => summary.broker += account.balance_micro,
            _ => {}
        }
    }

    // Workloads, their runs and their postings.
    let mut paid_leases: HashMap<String, String> = HashMap::new();
    let mut pays_to: HashMap<String, i64> = HashMap::new();
    let mut fees = 0;
    let mut issuer_escrows: HashMap<&str, i64> = HashMap::new();
    let mut issuer_refunds: HashMap<&str, i64> = HashMap::new();
    let workload_ids: BTreeSet<&str> = snapshot
        .workloads
        .iter()
        .map(|w| w.status.workload_id.as_str())
        .collect();
    for view in &snapshot.workloads {
        let status = &view.status;
        let id = status.workload_id.as_str();
        let rate = status.credits_per_fuel;
        let escrow = format!("escrow:{id}");
        let issuer_account = format!("issuer:{}", status.issuer);
        let of_kind = |kind: &str| -> Vec<&v1::LedgerEntry> {
            view.entries.iter().filter(|e| e.kind == kind).collect()
        };
        let (escrows, pays, fee_entries, refunds) = (
            of_kind("escrow"),
            of_kind("pay"),
            of_kind("fee"),
            of_kind("refund"),
        );
        for entry in &view.entries {
            if entry.workload_id != id {
                fail(format!(
                    "workload {id}: a posting of another workload: {entry:?}"
                ));
            }
            if !["escrow", "pay", "fee", "refund"].contains(&entry.kind.as_str()) {
                fail(format!(
                    "workload {id}: a posting of kind {}: {entry:?}",
                    entry.kind
                ));
            }
            if entry.amount_micro <= 0 {
                fail(format!("workload {id}: a posting of no amount: {entry:?}"));
            }
        }
        let routes = [
            (&escrows, issuer_account.as_str(), escrow.as_str()),
            (&fee_entries, escrow.as_str(), "broker"),
            (&refunds, escrow.as_str(), issuer_account.as_str()),
        ];
        for (entries, from, to) in routes {
            if entries.len() > 1 {
                fail(format!("workload {id}: posted more than once: {entries:?}"));
            }
            for entry in entries {
                if entry.from_account != from || entry.to_account != to {
                    fail(format!(
                        "workload {id}: {} should go from {from} to {to}: {entry:?}",
                        entry.kind
                    ));
                }
            }
        }
        if rate > 0.0 && escrows.len() != 1 {
            fail(format!(
                "workload {id} is paid ({rate} credits/fuel) but has {} escrow postings",
                escrows.len()
            ));
        }
        if rate == 0.0 && !view.entries.is_empty() {
            fail(format!(
                "workload {id} is free but has postings: {:?}",
                view.entries
            ));
        }
        let (escrowed, paid, fee, refunded) =
            (sum(&escrows), sum(&pays), sum(&fee_entries), sum(&refunds));
        let bill = status.bill.unwrap_or_default();
        if (
            bill.escrowed_micro,
            bill.paid_micro,
            bill.fee_micro,
            bill.refunded_micro,
        ) != (escrowed, paid, fee, refunded)
        {
            fail(format!(
                "workload {id}: the bill {bill:?} does not match its postings \
                 (escrowed {escrowed}, paid {paid}, fee {fee}, refunded {refunded})"
            ));
        }
        let held = escrowed - paid - fee - refunded;
        if balance(&escrow) != held {
            fail(format!(
                "workload {id}: its escrow account holds {} but escrowed {escrowed} - paid \
                 {paid} - fee {fee} - refunded {refunded} = {held}",
                balance(&escrow)
            ));
        }
        if is_final(status) {
            summary.final_workloads += 1;
            if held != 0 {
                fail(format!(
                    "workload {id} is final (state {}) but its escrow still holds {held}: \
                     not closed out",
                    status.state
                ));
            }
            let expected = expected_fee(paid, fee_basis_points);
            if fee != expected {
                fail(format!(
                    "workload {id}: fee {fee} but {fee_basis_points} bp of paid {paid} is \
                     {expected}"
                ));
            }
            if refunded != escrowed - paid - expected {
                fail(format!(
                    "workload {id}: refunded {refunded} but escrowed {escrowed} - paid {paid} - \
                     fee {expected} = {}",
                    escrowed - paid - expected
                ));
            }
        } else if fee != 0 || refunded != 0 {
            fail(format!(
                "workload {id} is running but was closed out (fee {fee}, refunded {refunded})"
            ));
        }
        *issuer_escrows.entry(status.issuer.as_str()).or_default() += escrowed;
        *issuer_refunds.entry(status.issuer.as_str()).or_default() += refunded;
        fees += fee;

        // Runs.
        let mut runs: HashMap<&str, (&v1::TaskInfo, &v1::TaskAttempt)> = HashMap::new();
        for task in &view.tasks {
            for run in &task.history {
                if runs.insert(run.lease_id.as_str(), (task, run)).is_some() {
                    fail(format!(
                        "workload {id}: lease {} listed twice",
                        run.lease_id
                    ));
                }
            }
        }
        let mut pay_of_lease: HashMap<&str, i64> = HashMap::new();
        for entry in &pays {
            summary.pays += 1;
            summary.paid += entry.amount_micro;
            *pays_to.entry(entry.to_account.clone()).or_default() += entry.amount_micro;
            if let Some(other) = paid_leases.insert(entry.lease_id.clone(), id.to_owned()) {
                fail(format!(
                    "lease {} paid twice (workloads {other} and {id}): {entry:?}",
                    entry.lease_id
                ));
            }
            if pay_of_lease
                .insert(entry.lease_id.as_str(), entry.amount_micro)
                .is_some()
            {
                fail(format!(
                    "workload {id}: lease {} paid twice",
                    entry.lease_id
                ));
            }
            if entry.from_account != escrow
                || entry.to_account != format!("agent:{}", entry.agent_id)
            {
                fail(format!(
                    "workload {id}: a pay should go from {escrow} to agent:<its agent>: {entry:?}"
                ));
            }
            let want = expected_pay(entry.fuel, rate);
            if entry.amount_micro != want {
                fail(format!(
                    "workload {id}: lease {} paid {} for {} fuel at {rate}/fuel, exactly {want} \
                     is due",
                    entry.lease_id, entry.amount_micro, entry.fuel
                ));
            }
            let Some((task, run)) = runs.get(entry.lease_id.as_str()) else {
                fail(format!(
                    "workload {id}: a pay for lease {} that is no run of it: {entry:?}",
                    entry.lease_id
                ));
                continue;
            };
            if !entry.has_task || entry.task_index != task.index {
                fail(format!(
                    "workload {id}: a pay names task {} but lease {} ran task {}",
                    entry.task_index, entry.lease_id, task.index
                ));
            }
            if entry.agent_id != run.agent_id || entry.fuel != run.fuel_consumed {
                fail(format!(
                    "workload {id}: the pay {entry:?} does not match the run {run:?}"
                ));
            }
            if run.verdict != "agreed" || run.state != "reported" {
                fail(format!(
                    "workload {id}: a run that did not make the result was paid: {run:?}"
                ));
            }
            if run.paid_micro != entry.amount_micro {
                fail(format!(
                    "workload {id}: run {} says it was paid {}, the ledger {}",
                    run.lease_id, run.paid_micro, entry.amount_micro
                ));
            }
        }

        // Tasks.
        for task in &view.tasks {
            let done = task.state == v1::TaskState::Done as i32;
            let paid_runs: Vec<&v1::TaskAttempt> = task
                .history
                .iter()
                .filter(|run| pay_of_lease.contains_key(run.lease_id.as_str()))
                .collect();
            let agreeing: Vec<&v1::TaskAttempt> = task
                .history
                .iter()
                .filter(|run| run.verdict == "agreed")
                .collect();
            let what = || format!("workload {id} task {}: {task:?}", task.index);
            if paid_runs.len() > task.quorum as usize {
                fail(format!(
                    "{} paid runs, more than its quorum {}: {}",
                    paid_runs.len(),
                    task.quorum,
                    what()
                ));
            }
            if !done && (!paid_runs.is_empty() || !agreeing.is_empty()) {
                fail(format!(
                    "a task not done has paid or agreeing runs: {}",
                    what()
                ));
            }
            if done && rate > 0.0 && agreeing.len() != task.quorum as usize {
                fail(format!(
                    "a done task has {} agreeing runs, its quorum is {}: {}",
                    agreeing.len(),
                    task.quorum,
                    what()
                ));
            }
            for run in &task.history {
                let due = if run.verdict == "agreed" {
                    expected_pay(run.fuel_consumed, rate)
                } else {
                    0
                };
                let posted = pay_of_lease
                    .get(run.lease_id.as_str())
                    .copied()
                    .unwrap_or(0);
                if posted != due {
                    fail(format!(
                        "run {} ({}) is due {due} but the ledger paid it {posted}: {}",
                        run.lease_id,
                        if run.verdict.is_empty() {
                            "no verdict"
                        } else {
                            &run.verdict
                        },
                        what()
                    ));
                }
                if run.paid_micro != posted {
                    fail(format!(
                        "run {} says it was paid {}, the ledger {posted}: {}",
                        run.lease_id,
                        run.paid_micro,
                        what()
                    ));
                }
                if run.verdict == "agreed" && run.fuel_consumed != task.fuel_consumed {
                    fail(format!(
                        "agreeing run {} used {} fuel, the result {}: {}",
                        run.lease_id,
                        run.fuel_consumed,
                        task.fuel_consumed,
                        what()
                    ));
                }
            }
            let task_paid: i64 = task.history.iter().map(|run| run.paid_micro).sum();
            if task.paid_micro != task_paid {
                fail(format!(
                    "the task says it paid {} but its runs {task_paid}: {}",
                    task.paid_micro,
                    what()
                ));
            }
        }
    }

    // Accounts against postings.
    for account in accounts.accounts.iter().filter(|a| a.kind == "escrow") {
        let workload = account.id.trim_start_matches("escrow:");
        if !workload_ids.contains(workload) {
            fail(format!("escrow account of no workload: {account:?}"));
        }
    }
    for account in accounts.accounts.iter().filter(|a| a.kind == "agent") {
        let due = pays_to.get(&account.id).copied().unwrap_or(0);
        if account.balance_micro != due {
            fail(format!(
                "{} holds {} but was paid {due}",
                account.id, account.balance_micro
            ));
        }
    }
    for (to, amount) in &pays_to {
        if !balances.contains_key(to.as_str()) {
            fail(format!("{to} was paid {amount} but has no account"));
        }
    }
    for agent in &snapshot.agents {
        let due = pays_to
            .get(&format!("agent:{}", agent.agent_id))
            .copied()
            .unwrap_or(0);
        if agent.earned_micro != due {
            fail(format!(
                "agent {} ({}) earned {} by ListAgents but was paid {due}",
                agent.agent_id, agent.name, agent.earned_micro
            ));
        }
    }
    if balance("broker") != fees {
        fail(format!(
            "the broker holds {} but took {fees} in fees",
            balance("broker")
        ));
    }
    let mut granted = 0;
    for (name, statement) in &snapshot.statements {
        let account = format!("issuer:{name}");
        let mut grants = 0;
        let mut escrows = 0;
        let mut refunds = 0;
        for entry in &statement.entries {
            match (entry.kind.as_str(), entry.from_account == account) {
                ("grant", false) if entry.from_account == "mint" && entry.to_account == account => {
                    grants += entry.amount_micro;
                }
                ("escrow", true) => escrows += entry.amount_micro,
                ("refund", false) if entry.to_account == account => {
                    refunds += entry.amount_micro;
                }
                _ => fail(format!("{account}: an unexpected posting {entry:?}")),
            }
        }
        granted += grants;
        let expected = grants - escrows + refunds;
        if balance(&account) != expected || statement.balance_micro != expected {
            fail(format!(
                "{account} holds {} (statement: {}) but grants {grants} - escrows {escrows} + \
                 refunds {refunds} = {expected}",
                balance(&account),
                statement.balance_micro
            ));
        }
        let of_workloads = (
            issuer_escrows.get(name.as_str()).copied().unwrap_or(0),
            issuer_refunds.get(name.as_str()).copied().unwrap_or(0),
        );
        if (escrows, refunds) != of_workloads {
            fail(format!(
                "{account}: escrows {escrows} and refunds {refunds} on its statement, \
                 {of_workloads:?} on its workloads"
            ));
        }
    }
    if granted != accounts.granted_micro {
        fail(format!(
            "the issuers were granted {granted} but the broker says {} were granted",
            accounts.granted_micro
        ));
    }
    summary
}
