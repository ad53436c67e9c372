//! Verification and the ledger with real processes: cheaters (in-process
//! [`ScriptedAgent`]s speaking the real protocol) next to honest
//! `wasmgrid-agent` processes, against a real broker. A wrong result is
//! never accepted nor paid, adaptive replication trusts a long record and
//! replicates a newcomer, replicas are kept apart by owner, and every
//! credit is accounted for.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use wasmgrid_proto::v1;
use wasmgrid_tests::prime_counts::{PI_OF_1E6, PI_OF_1E7};
use wasmgrid_tests::queries::{end_value, status_of, tasks_of};
use wasmgrid_tests::{
    AgentProcess, Behaviour, BrokerProcess, RunningAgent, ScriptedAgent, Submission, admin,
    eventually, issuer, results, wait_until_final,
};

/// 10^-9 credits per unit of fuel: 1000 pico-credits, so a run is paid
/// exactly `fuel / 1000` micro-credits.
const CREDITS_PER_FUEL: f64 = 1e-9;
const FUEL_PER_MICRO: u64 = 1000;
/// The broker's default fee, in basis points.
const DEFAULT_FEE_BASIS_POINTS: i64 = 500;
const MICRO_PER_CREDIT: i64 = 1_000_000;
const ISSUER: &str = "lab";
/// How long a test waits for something that takes seconds at most.
const TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

/// Grants the test issuer `credits`; returns the amount in micro-credits.
async fn grant(url: &str, credits: i64) -> i64 {
    let amount = credits * MICRO_PER_CREDIT;
    admin(url)
        .await
        .grant_credits(v1::GrantCreditsRequest {
            issuer: ISSUER.into(),
            amount_micro: amount,
            memo: "verification test".into(),
        })
        .await
        .expect("grant");
    amount
}

/// π(`limit`) in `tasks` tasks, paid, two agreeing runs per task.
fn paid_primes(limit: u64, tasks: u64, adaptive: bool) -> Submission {
    let mut submission = Submission::primes(limit, tasks);
    submission.issuer = ISSUER.into();
    submission.replicas = 2;
    submission.quorum = 2;
    submission.adaptive_replication = adaptive;
    submission.credits_per_fuel = CREDITS_PER_FUEL;
    submission
}

async fn submit(url: &str, submission: &Submission) -> String {
    submission
        .submit(&mut issuer(url).await)
        .await
        .expect("submit")
}

/// Waits for the workload; checks it is done with `expected` as its end
/// result.
async fn finish(url: &str, workload_id: &str, expected: u64, logs: impl Fn() -> String) {
    let mut client = issuer(url).await;
    let status = wait_until_final(&mut client, workload_id, TIMEOUT).await;
    assert_eq!(
        status.state,
        v1::WorkloadState::Done as i32,
        "{status:?}\n{}",
        logs()
    );
    let (_, end) = results(&mut client, workload_id).await.expect("results");
    assert_eq!(end_value(&end), expected, "the end result is exact");
}

/// What a workload's runs were paid in all.
async fn paid_of(url: &str, workload_id: &str) -> i64 {
    status_of(url, workload_id)
        .await
        .bill
        .expect("a bill")
        .paid_micro
}

/// Task outputs in task order.
async fn outputs_of(url: &str, workload_id: &str) -> Vec<Vec<u8>> {
    let (tasks, _) = results(&mut issuer(url).await, workload_id)
        .await
        .expect("results");
    tasks.into_iter().map(|task| task.output).collect()
}

async fn agents_of(url: &str) -> HashMap<String, v1::AgentInfo> {
    admin(url)
        .await
        .list_agents(v1::ListAgentsRequest {})
        .await
        .expect("agents")
        .into_inner()
        .agents
        .into_iter()
        .map(|agent| (agent.agent_id.clone(), agent))
        .collect()
}

async fn ledger_of(url: &str, workload_id: &str) -> Vec<v1::LedgerEntry> {
    issuer(url)
        .await
        .get_ledger(v1::LedgerRequest {
            issuer: ISSUER.into(),
            workload_id: workload_id.to_owned(),
            limit: 0,
        })
        .await
        .expect("ledger")
        .into_inner()
        .entries
}

fn sum_of(entries: &[v1::LedgerEntry], kind: &str) -> i64 {
    entries
        .iter()
        .filter(|entry| entry.kind == kind)
        .map(|entry| entry.amount_micro)
        .sum()
}

fn agreeing(task: &v1::TaskInfo) -> Vec<&v1::TaskAttempt> {
    task.history
        .iter()
        .filter(|run| run.verdict == "agreed")
        .collect()
}

/// What an agreeing run of `fuel` earns.
fn pay_for(fuel: u64) -> i64 {
    (fuel / FUEL_PER_MICRO) as i64
}

/// Checks one finished workload's postings against its tasks and the
/// broker's default fee: every agreeing run paid exactly once for its fuel,
/// nobody else paid, the fee on what was paid, the rest refunded, the
/// escrow empty. Returns (paid, fee).
async fn check_workload_bill(url: &str, workload_id: &str) -> (i64, i64) {
    let tasks = tasks_of(url, workload_id).await;
    let entries = ledger_of(url, workload_id).await;
    let pays: Vec<&v1::LedgerEntry> = entries.iter().filter(|e| e.kind == "pay").collect();
    let agreeing_runs: Vec<&v1::TaskAttempt> = tasks.iter().flat_map(agreeing).collect();
    assert_eq!(pays.len(), agreeing_runs.len(), "one pay per agreeing run");
    for run in &agreeing_runs {
        let pay: Vec<_> = pays.iter().filter(|p| p.lease_id == run.lease_id).collect();
        assert_eq!(pay.len(), 1, "run {} paid once: {pays:?}", run.lease_id);
        assert_eq!(pay[0].amount_micro, run.paid_micro);
        assert_eq!(pay[0].amount_micro, pay_for(run.fuel_consumed));
        assert_eq!(pay[0].to_account, format!("agent:{}", run.agent_id));
        assert_eq!(pay[0].from_account, format!("escrow:{workload_id}"));
    }
    for task in &tasks {
        let paid: i64 = task.history.iter().map(|run| run.paid_micro).sum();
        assert_eq!(task.paid_micro, paid, "task {}", task.index);
        for run in task.history.iter().filter(|run| run.verdict != "agreed") {
            assert_eq!(run.paid_micro, 0, "only agreeing runs are paid: {run:?}");
        }
    }
    let escrowed = sum_of(&entries, "escrow");
    let paid = sum_of(&entries, "pay");
    let fee = sum_of(&entries, "fee");
    let refunded = sum_of(&entries, "refund");
    assert_eq!(
        fee,
        paid * DEFAULT_FEE_BASIS_POINTS / 10_000,
        "5 % of {paid}"
    );
    assert_eq!(
        escrowed,
        paid + fee + refunded,
        "the escrow is spent or refunded"
    );
    let bill = status_of(url, workload_id).await.bill.expect("a bill");
    assert_eq!(
        (
            bill.escrowed_micro,
            bill.paid_micro,
            bill.fee_micro,
            bill.refunded_micro
        ),
        (escrowed, paid, fee, refunded)
    );
    (paid, fee)
}

/// The ledger as a whole, once every workload has ended: nothing created
/// but the grant, every escrow empty, the issuer charged exactly what the
/// agents and the broker received.
async fn check_conservation(url: &str, granted: i64, workloads: &[&str]) {
    let mut paid = 0;
    let mut fees = 0;
    for workload_id in workloads {
        let (p, f) = check_workload_bill(url, workload_id).await;
        paid += p;
        fees += f;
    }
    let accounts = admin(url)
        .await
        .list_accounts(v1::ListAccountsRequest {})
        .await
        .expect("accounts")
        .into_inner();
    assert_eq!(accounts.granted_micro, granted, "{accounts:?}");
    assert_eq!(accounts.held_micro, granted, "{accounts:?}");
    let balance = |id: &str| {
        accounts
            .accounts
            .iter()
            .find(|account| account.id == id)
            .map_or(0, |account| account.balance_micro)
    };
    for workload_id in workloads {
        assert_eq!(balance(&format!("escrow:{workload_id}")), 0, "{accounts:?}");
    }
    assert!(
        accounts
            .accounts
            .iter()
            .filter(|account| account.kind == "escrow")
            .all(|account| account.balance_micro == 0),
        "{accounts:?}"
    );
    assert_eq!(balance(&format!("issuer:{ISSUER}")), granted - paid - fees);
    assert_eq!(balance("broker"), fees);
    let agents_hold: i64 = accounts
        .accounts
        .iter()
        .filter(|account| account.kind == "agent")
        .map(|account| account.balance_micro)
        .sum();
    assert_eq!(agents_hold, paid);
    let balance = issuer(url)
        .await
        .get_balance(v1::BalanceRequest {
            issuer: ISSUER.into(),
        })
        .await
        .expect("balance")
        .into_inner();
    assert_eq!(
        (balance.balance_micro, balance.escrowed_micro),
        (granted - paid - fees, 0)
    );
}

/// The cheater's record, pay and every run it reported that counted.
async fn check_caught(url: &str, cheater: RunningAgent, workloads: &[&str]) {
    let reports = cheater.reports();
    let mut agent = cheater.stop().await;
    let counted: Vec<_> = reports.iter().filter(|run| run.counted).collect();
    assert!(!counted.is_empty(), "{} never reported", agent.name);
    let mut runs = HashMap::new();
    for workload_id in workloads {
        for task in tasks_of(url, workload_id).await {
            for run in task.history {
                runs.insert(run.lease_id.clone(), run);
            }
        }
    }
    for report in &counted {
        let run = runs
            .get(&report.lease_id)
            .unwrap_or_else(|| panic!("run {} is not listed", report.lease_id));
        assert_eq!(run.state, "reported");
        assert_eq!(
            (run.verdict.as_str(), run.paid_micro),
            ("disagreed", 0),
            "{} ({:?}): {run:?}",
            agent.name,
            report
        );
        assert_eq!(run.fuel_consumed, report.reported_fuel);
    }
    let info = &agents_of(url).await[&agent.id];
    assert_eq!(
        (info.results_valid, info.results_invalid),
        (0, counted.len() as u64),
        "{info:?}"
    );
    assert!(info.reputation < 1.0, "{info:?}");
    assert!(!info.trusted, "{info:?}");
    assert_eq!(info.earned_micro, 0, "{info:?}");
    let earnings = agent.earnings().await;
    assert_eq!(earnings.balance_micro, 0, "{earnings:?}");
    assert!(earnings.recent.is_empty(), "{earnings:?}");
    assert!(!earnings.trusted, "{earnings:?}");
    for workload_id in workloads {
        let to_cheater: Vec<_> = ledger_of(url, workload_id)
            .await
            .into_iter()
            .filter(|entry| {
                entry.agent_id == agent.id || entry.to_account == format!("agent:{}", agent.id)
            })
            .collect();
        assert!(to_cheater.is_empty(), "{to_cheater:?}");
    }
}

/// Two honest agents, a liar and a bill padder: every task is settled by
/// the two honest runs, the cheaters' runs are marked and unpaid, and the
/// credits add up to the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cheater_is_never_paid_and_the_result_stays_exact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let url = broker.url();
    let granted = grant(&url, 10_000).await;
    let liar = ScriptedAgent::register(&url, "liar", "mallory")
        .await
        .spawn(Behaviour::WrongOutput);
    let padder = ScriptedAgent::register(&url, "padder", "mallory")
        .await
        .spawn(Behaviour::InflatedFuel);
    let submission = paid_primes(10_000_000, 20, false);
    let workload_id = submit(&url, &submission).await;
    // The cheaters go first: alone, they cannot settle a single task.
    eventually(
        TIMEOUT,
        POLL,
        "the cheaters did not report",
        || broker.log_tail(),
        || async { liar.reports().len() >= 3 && padder.reports().len() >= 3 },
    )
    .await;
    assert_eq!(status_of(&url, &workload_id).await.done, 0);
    let honest = AgentProcess::start_many(&url, dir.path(), 2);
    finish(&url, &workload_id, PI_OF_1E7, || broker.log_tail()).await;
    assert!(liar.is_running() && padder.is_running());

    // The padder reported the true output with twice the true fuel.
    for run in padder.reports() {
        assert_eq!(run.reported_fuel, 2 * run.true_fuel, "{run:?}");
    }
    let cheaters: HashSet<String> = [liar.id.clone(), padder.id.clone()].into();
    let agents = agents_of(&url).await;
    let honest_ids: HashSet<String> = agents
        .keys()
        .filter(|id| !cheaters.contains(*id))
        .cloned()
        .collect();
    assert_eq!(honest_ids.len(), 2, "{agents:?}");
    let tasks = tasks_of(&url, &workload_id).await;
    for task in &tasks {
        assert_eq!(task.state, v1::TaskState::Done as i32, "{task:?}");
        assert_eq!(task.quorum, 2, "{task:?}");
        let pair: HashSet<String> = agreeing(task)
            .iter()
            .map(|run| run.agent_id.clone())
            .collect();
        assert_eq!(pair, honest_ids, "the honest agents agree: {task:?}");
        for run in agreeing(task) {
            assert_eq!(run.fuel_consumed, task.fuel_consumed, "{task:?}");
        }
    }
    for report in liar.reports().iter().chain(&padder.reports()) {
        let task = &tasks[report.index as usize];
        assert_eq!(
            report.true_fuel, task.fuel_consumed,
            "fuel is the same on every machine"
        );
    }
    check_caught(&url, liar, &[&workload_id]).await;
    check_caught(&url, padder, &[&workload_id]).await;
    let agents = agents_of(&url).await;
    for id in &honest_ids {
        let info = &agents[id];
        assert_eq!(
            (info.results_valid, info.results_invalid),
            (20, 0),
            "{info:?}"
        );
        assert!(info.earned_micro > 0, "{info:?}");
        assert_eq!(info.reputation, 1.0, "{info:?}");
    }
    check_conservation(&url, granted, &[&workload_id]).await;
    drop(honest);
}

/// `--trust-after 3 --spot-check-rate 0`: after a replicated workload, two
/// honest agents are trusted and the same workload runs once per task at
/// half the pay; a newcomer that lies is never trusted, every task it runs
/// is replicated and settled by the honest agents, and it is never paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_replication_trusts_a_long_record_and_replicates_a_caught_agent() {
    const TASKS: usize = 10;
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(
        &dir.path().join("broker"),
        &["--trust-after", "3", "--spot-check-rate", "0"],
    );
    let url = broker.url();
    let granted = grant(&url, 10_000).await;
    let honest = AgentProcess::start_many(&url, dir.path(), 2);
    let submission = paid_primes(10_000_000, TASKS as u64, true);
    let logs = || format!("{}\n{}", broker.log_tail(), honest[0].log_tail());

    // 1. Nobody is trusted yet: tasks are replicated until both agents
    // have 3 agreeing results (they agree on the same tasks).
    let first = submit(&url, &submission).await;
    finish(&url, &first, PI_OF_1E7, logs).await;
    let agents = agents_of(&url).await;
    assert_eq!(agents.len(), 2);
    for info in agents.values() {
        assert!(info.trusted, "{info:?}");
        assert!(info.results_valid >= 3, "{info:?}");
        assert_eq!(info.results_invalid, 0, "{info:?}");
    }
    let first_tasks = tasks_of(&url, &first).await;
    assert!(
        first_tasks.iter().filter(|task| task.quorum == 2).count() >= 3,
        "the first 3 tasks at least were replicated: {first_tasks:?}"
    );

    // 2. Trusted, never spot-checked: one run per task.
    let second = submit(&url, &submission).await;
    finish(&url, &second, PI_OF_1E7, logs).await;
    let second_tasks = tasks_of(&url, &second).await;
    for task in &second_tasks {
        assert_eq!(task.quorum, 1, "{task:?}");
        assert_eq!(task.history.len(), 1, "a single run: {task:?}");
        assert_eq!(task.history[0].state, "reported");
        assert_eq!(task.history[0].verdict, "agreed");
        assert_eq!(task.paid_micro, pay_for(task.fuel_consumed), "{task:?}");
    }
    let one_run_each: i64 = second_tasks
        .iter()
        .map(|task| pay_for(task.fuel_consumed))
        .sum();
    let second_paid = paid_of(&url, &second).await;
    let first_paid = paid_of(&url, &first).await;
    assert_eq!(second_paid, one_run_each);
    assert!(second_paid < first_paid, "{second_paid} < {first_paid}");
    // Same inputs, same fuel: the task figures are comparable.
    for (a, b) in first_tasks.iter().zip(&second_tasks) {
        assert_eq!(a.fuel_consumed, b.fuel_consumed);
    }

    // 3. A newcomer that lies. The honest agents are frozen while it takes
    // every task once: untrusted, it gets no solo run, so each of its runs
    // leaves its task waiting for replicas.
    for agent in &honest {
        agent.freeze();
    }
    // A request already on the wire is answered (with nothing) meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let liar = ScriptedAgent::register(&url, "newcomer", "mallory")
        .await
        .spawn(Behaviour::WrongOutput);
    let third = submit(&url, &submission).await;
    eventually(
        TIMEOUT,
        POLL,
        "the newcomer did not run every task",
        || broker.log_tail(),
        || async { liar.reports().len() >= TASKS },
    )
    .await;
    let status = status_of(&url, &third).await;
    assert_eq!(
        status.done, 0,
        "no run of the newcomer stands alone: {status:?}"
    );
    for agent in &honest {
        agent.thaw();
    }
    finish(&url, &third, PI_OF_1E7, logs).await;
    let liar_id = liar.id.clone();
    let third_tasks = tasks_of(&url, &third).await;
    for task in &third_tasks {
        assert!(
            task.history.iter().any(|run| run.agent_id == liar_id),
            "{task:?}"
        );
        assert_eq!(task.quorum, 2, "{task:?}");
        let pair: Vec<&str> = agreeing(task)
            .iter()
            .map(|run| run.agent_id.as_str())
            .collect();
        assert_eq!(pair.len(), 2, "{task:?}");
        assert!(!pair.contains(&liar_id.as_str()), "{task:?}");
    }
    assert_eq!(
        outputs_of(&url, &third).await,
        outputs_of(&url, &second).await,
        "every task ended with the honest result"
    );
    let third_paid = paid_of(&url, &third).await;
    assert_eq!(third_paid, 2 * one_run_each, "two honest runs per task");
    check_caught(&url, liar, &[&third]).await;
    let agents = agents_of(&url).await;
    assert_eq!(agents[&liar_id].results_invalid, TASKS as u64);
    for (id, info) in &agents {
        if *id != liar_id {
            assert!(info.trusted, "{info:?}");
            assert_eq!(info.results_invalid, 0, "{info:?}");
        }
    }
    check_conservation(&url, granted, &[&first, &second, &third]).await;
}

/// `--replica-separation owner`: one volunteer's two machines cannot make
/// a quorum on their own; another owner's machine completes every task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_stay_apart_by_owner() {
    const TASKS: usize = 6;
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(
        &dir.path().join("broker"),
        &["--replica-separation", "owner"],
    );
    let url = broker.url();
    let laptop = ScriptedAgent::register(&url, "alice-laptop", "alice")
        .await
        .spawn(Behaviour::Honest);
    let desktop = ScriptedAgent::register(&url, "alice-desktop", "alice")
        .await
        .spawn(Behaviour::Honest);
    let mut submission = Submission::primes(1_000_000, TASKS as u64);
    submission.replicas = 2;
    let workload_id = submit(&url, &submission).await;
    let alice_runs = || laptop.reports().len() + desktop.reports().len();
    eventually(
        TIMEOUT,
        POLL,
        "alice's agents did not run every task",
        || broker.log_tail(),
        || async { alice_runs() >= TASKS },
    )
    .await;
    // They keep asking for work; none comes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(alice_runs(), TASKS, "one run per task for one owner");
    assert_eq!(status_of(&url, &workload_id).await.done, 0);
    for task in tasks_of(&url, &workload_id).await {
        assert_ne!(task.state, v1::TaskState::Done as i32, "{task:?}");
        let reported: Vec<_> = task
            .history
            .iter()
            .filter(|run| run.state == "reported")
            .collect();
        assert_eq!(reported.len(), 1, "{task:?}");
    }

    let bob = ScriptedAgent::register(&url, "bob", "bob")
        .await
        .spawn(Behaviour::Honest);
    finish(&url, &workload_id, PI_OF_1E6, || broker.log_tail()).await;
    let owners: HashMap<String, String> = agents_of(&url)
        .await
        .into_values()
        .map(|agent| (agent.agent_id, agent.owner))
        .collect();
    assert_eq!(owners[&laptop.id], "alice");
    assert_eq!(owners[&bob.id], "bob");
    for task in tasks_of(&url, &workload_id).await {
        let pair: Vec<&str> = agreeing(&task)
            .iter()
            .map(|run| owners[&run.agent_id].as_str())
            .collect();
        assert_eq!(pair.len(), 2, "{task:?}");
        assert_ne!(pair[0], pair[1], "replicas of one owner: {task:?}");
    }
    assert_eq!(bob.reports().len(), TASKS);
    for agent in [laptop, desktop, bob] {
        agent.stop().await;
    }
}

/// Asks for work until a lease comes, or `None` after `patience`.
async fn lease_within(agent: &mut ScriptedAgent, patience: Duration) -> Option<v1::Lease> {
    let started = std::time::Instant::now();
    loop {
        match agent.take_lease().await {
            Ok(lease) => return Some(lease),
            Err(_) if started.elapsed() > patience => return None,
            Err(idle) => tokio::time::sleep(idle.max(POLL)).await,
        }
    }
}

/// Replicas must be independent runs. An agent lets its lease expire,
/// takes the same task again (the retry that lets a grid of one agent
/// finish) and reports the same wrong result on both leases, the first one
/// late (a late report counts while the task is open): its two runs must
/// not make a quorum of two on their own, and it must not be paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_make_a_quorum_with_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &["--lease-timeout", "1s"]);
    let url = broker.url();
    let granted = grant(&url, 1_000).await;
    let mut liar = ScriptedAgent::register(&url, "liar", "mallory").await;
    let workload_id = submit(&url, &paid_primes(1_000_000, 1, false)).await;
    let first = lease_within(&mut liar, TIMEOUT)
        .await
        .expect("the task is offered");
    eventually(
        TIMEOUT,
        POLL,
        "the lease never expired",
        || broker.log_tail(),
        || async { tasks_of(&url, &workload_id).await[0].history[0].state == "expired" },
    )
    .await;
    // Whether the broker offers the task to the same agent again or not,
    // the liar reports what it can.
    let second = lease_within(&mut liar, Duration::from_secs(2)).await;
    let retried = second.is_some();
    if let Some(second) = second {
        liar.run_and_report(second, Behaviour::WrongOutput).await;
    }
    let late = liar.run_and_report(first, Behaviour::WrongOutput).await;
    let status = status_of(&url, &workload_id).await;
    let task = &tasks_of(&url, &workload_id).await[0];
    assert_eq!(
        status.done, 0,
        "one agent's runs made the quorum (retried on the same agent: {retried}, \
         late report counted: {}): {task:?}",
        late.counted
    );

    // Two honest agents settle it.
    let mut honest = Vec::new();
    for (name, owner) in [("h1", "alice"), ("h2", "bob")] {
        let agent = ScriptedAgent::register(&url, name, owner).await;
        honest.push(agent.spawn(Behaviour::Honest));
    }
    finish(&url, &workload_id, PI_OF_1E6, || broker.log_tail()).await;
    for agent in honest {
        agent.stop().await;
    }
    assert_eq!(
        liar.earnings().await.balance_micro,
        0,
        "the liar is not paid"
    );
    check_conservation(&url, granted, &[&workload_id]).await;
}

/// A caught cheater gets no unreplicated work: with one replica its result
/// would stand unchecked. It still gets replicated work, where it must agree
/// with another agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_cheater_is_offered_only_replicated_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let url = broker.url();
    grant(&url, 10_000).await;
    let liar = ScriptedAgent::register(&url, "liar", "mallory")
        .await
        .spawn(Behaviour::WrongOutput);
    let replicated = submit(&url, &paid_primes(1_000_000, 4, false)).await;
    eventually(
        TIMEOUT,
        POLL,
        "the liar did not report",
        || broker.log_tail(),
        || async { liar.reports().iter().any(|run| run.counted) },
    )
    .await;
    let honest: Vec<RunningAgent> = [
        ScriptedAgent::register(&url, "honest-1", "alice").await,
        ScriptedAgent::register(&url, "honest-2", "bob").await,
    ]
    .into_iter()
    .map(|agent| agent.spawn(Behaviour::Honest))
    .collect();
    finish(&url, &replicated, PI_OF_1E6, || broker.log_tail()).await;
    let mut liar = liar.stop().await;
    let mut honest: Vec<ScriptedAgent> = stop_all(honest).await;
    let info = &agents_of(&url).await[&liar.id];
    assert!(info.results_invalid > 0 && !info.trusted, "{info:?}");

    let mut single = paid_primes(1_000_000, 4, false);
    single.replicas = 1;
    single.quorum = 1;
    let single_id = submit(&url, &single).await;
    for _ in 0..5 {
        assert!(
            liar.take_lease().await.is_err(),
            "a caught agent was offered a task nobody would check"
        );
    }
    let lease = honest[0]
        .take_lease()
        .await
        .expect("an agent with a clean record gets the task");
    assert_eq!(
        lease.task.as_ref().map(|task| task.workload_id.as_str()),
        Some(single_id.as_str())
    );
    // Replicated work is still offered to the liar.
    let again = submit(&url, &paid_primes(1_000_000, 4, false)).await;
    let lease = liar
        .take_lease()
        .await
        .expect("replicated work is offered to a suspect agent");
    assert_eq!(
        lease.task.as_ref().map(|task| task.workload_id.as_str()),
        Some(again.as_str())
    );
}

async fn stop_all(agents: Vec<RunningAgent>) -> Vec<ScriptedAgent> {
    let mut stopped = Vec::new();
    for agent in agents {
        stopped.push(agent.stop().await);
    }
    stopped
}
