//! Crashes at points nobody chose: the broker SIGKILLed two dozen times at
//! pseudo-random moments of four paid, replicated workloads (the seed is
//! printed, so a failure can be replayed with `WASMGRID_CRASH_SEED`), and an
//! agent killed while its report is on the wire, unanswered, then restarted
//! with the result still in its outbox; a broker away for seconds, which the
//! agents wait out. Each ends with the exact result and the whole ledger
//! checked: every agreeing run paid exactly once, nothing
//! else paid, and only grants change the sum of all balances.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use wasmgrid_proto::v1;
use wasmgrid_tests::ledger_check::{
    CREDITS_PER_FUEL, assert_ledger_consistent, expected_pay, fund,
};
use wasmgrid_tests::prime_counts::{PI_OF_1E9, PI_OF_2E9};
use wasmgrid_tests::queries::{end_value, status_of, tasks_of};
use wasmgrid_tests::{
    AgentProcess, BrokerProcess, Submission, eventually, issuer, results, wait_until_final,
};

const TIMEOUT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(10);
/// How many times the broker is killed.
const KILLS: usize = 24;

/// Checks that every task has exactly its `quorum` agreeing runs, each paid
/// exactly for its fuel, and no other run paid; returns what was due.
async fn check_pay(url: &str, workload_id: &str, quorum: usize) -> i64 {
    let mut due = 0;
    for task in tasks_of(url, workload_id).await {
        assert_eq!(task.state, v1::TaskState::Done as i32, "{task:?}");
        let agreeing = task
            .history
            .iter()
            .filter(|run| run.verdict == "agreed")
            .count();
        assert_eq!(agreeing, quorum, "{task:?}");
        for run in &task.history {
            let expected = if run.verdict == "agreed" {
                expected_pay(run.fuel_consumed, CREDITS_PER_FUEL)
            } else {
                0
            };
            assert_eq!(run.paid_micro, expected, "task {}: {run:?}", task.index);
        }
        due += quorum as i64 * expected_pay(task.fuel_consumed, CREDITS_PER_FUEL);
    }
    due
}

/// The seed of the kill moments: `WASMGRID_CRASH_SEED`, or the clock.
fn seed() -> u64 {
    std::env::var("WASMGRID_CRASH_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

/// SIGKILL at [`KILLS`] random moments, each 0–700 ms after the broker was
/// last (re)started: during recovery, while agents reconnect and deliver
/// what they kept, mid-dispatch, mid-report, while a reducer runs, while a
/// workload closes out. [`WORKLOADS`] workloads keep the grid busy for
/// longer than the kills last. The whole ledger is checked at the end
/// (`assert_ledger_consistent` waits for a quiet grid, which would let the
/// work finish between kills; the property test in
/// `broker/tests/ledger_properties.rs` checks it after every step).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_at_two_dozen_random_moments_finishes_exactly() {
    // Sixteen times π(2·10⁹), longer than the kills and restarts take
    // (~10 s): four times π(10⁹) were enough before the primes kernel and
    // the sandbox got faster (2026-12), then ten, until the kernel got
    // faster again and the work ended after 10 of the 24 kills; ten times
    // π(2·10⁹) still ended after 14 in one run of two.
    const WORKLOADS: usize = 16;
    const TASKS: u64 = 24;
    let seed = seed();
    println!("WASMGRID_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut broker = BrokerProcess::start(&dir.path().join("broker"), &["--lease-timeout", "3s"]);
    let url = broker.url();
    let mut workload_ids = Vec::new();
    for _ in 0..WORKLOADS {
        let mut submission = Submission::primes(2_000_000_000, TASKS);
        submission.replicas = 2;
        fund(&url, &mut submission).await;
        workload_ids.push(
            submission
                .submit(&mut issuer(&url).await)
                .await
                .expect("submit"),
        );
    }
    let agents = AgentProcess::start_many(&url, dir.path(), 3);
    let started = Instant::now();
    let mut killed_while_running = 0;
    for kill in 1..=KILLS {
        let after = Duration::from_millis(rng.random_range(0..700));
        std::thread::sleep(after);
        let mut done = 0;
        for workload_id in &workload_ids {
            done += status_of(&url, workload_id).await.done;
        }
        if done < (WORKLOADS as u64 * TASKS) as u32 {
            killed_while_running += 1;
        }
        broker.restart();
        if kill % 3 == 0 {
            println!(
                "kill {kill} ({after:?} after the previous start, {:.1} s in): {done} of {} tasks done",
                started.elapsed().as_secs_f64(),
                WORKLOADS as u64 * TASKS
            );
        }
    }
    println!("{killed_while_running} of {KILLS} kills while tasks were unfinished");
    assert!(
        killed_while_running >= KILLS / 2,
        "seed {seed}: only {killed_while_running} kills hit running work"
    );
    let mut client = issuer(&url).await;
    let mut due = 0;
    for workload_id in &workload_ids {
        let status = wait_until_final(&mut client, workload_id, TIMEOUT).await;
        assert_eq!(
            status.state,
            v1::WorkloadState::Done as i32,
            "seed {seed}: {status:?}\n{}\n{}",
            broker.log_tail(),
            agents[0].log_tail()
        );
        let (_, end) = results(&mut client, workload_id).await.expect("results");
        assert_eq!(end_value(&end), PI_OF_2E9, "seed {seed}");
        due += check_pay(&url, workload_id, 2).await;
    }
    let summary = assert_ledger_consistent(&url).await;
    assert_eq!(
        (summary.pays, summary.paid),
        (WORKLOADS * TASKS as usize * 2, due),
        "seed {seed}"
    );
}

/// The broker is frozen (SIGSTOP) while the agent finishes its task: the
/// report goes out and is never answered. The agent is killed then, its
/// result still in its outbox; the broker is thawed (and may or may not
/// have read the report from the dead connection) and a new agent process
/// on the same state dir resends it. The result counts once, is paid once,
/// and the task was computed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_with_its_report_unanswered_resends_it_and_is_paid_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &["--lease-timeout", "60s"]);
    let url = broker.url();
    let state_dir = dir.path().join("agent");
    let mut agent = AgentProcess::start(&url, &state_dir, "agent", 1, &[]);
    let mut submission = Submission::primes(1_000_000_000, 1);
    fund(&url, &mut submission).await;
    let mut client = issuer(&url).await;
    let workload_id = submission.submit(&mut client).await.expect("submit");
    // Once the agent has compiled the module, the task runs (about a
    // second) with nothing more to fetch: freeze the broker then.
    agent.wait_until_compiled().await;
    broker.freeze();
    eventually(
        TIMEOUT,
        POLL,
        "the finished result never reached the outbox",
        || agent.log_tail(),
        || async { agent.kept_results() > 0 },
    )
    .await;
    // Give the report time to be written to the socket, then crash.
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent.kill9();
    broker.thaw();
    assert_eq!(
        agent.kept_results(),
        1,
        "the unanswered result is still kept"
    );
    let agent = AgentProcess::start(&url, &state_dir, "agent", 1, &[]);
    let status = wait_until_final(&mut client, &workload_id, TIMEOUT).await;
    assert_eq!(
        status.state,
        v1::WorkloadState::Done as i32,
        "{status:?}\n{}",
        agent.log_tail()
    );
    let (_, end) = results(&mut client, &workload_id).await.expect("results");
    assert_eq!(end_value(&end), PI_OF_1E9);
    let tasks = tasks_of(&url, &workload_id).await;
    assert_eq!(
        tasks[0].history.len(),
        1,
        "computed once: {:?}",
        tasks[0].history
    );
    let due = check_pay(&url, &workload_id, 1).await;
    let summary = assert_ledger_consistent(&url).await;
    assert_eq!((summary.pays, summary.paid), (1, due));
    eventually(
        TIMEOUT,
        POLL,
        "the outbox was not emptied after the ack",
        || agent.log_tail(),
        || async { agent.kept_results() == 0 },
    )
    .await;
}

/// The broker is away for five seconds (killed, restarted later on the same
/// data dir and port) while two agents work: they keep their results, back
/// off instead of exiting, and carry on when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_wait_out_a_broker_that_is_away_and_resume() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut broker = BrokerProcess::start(&dir.path().join("broker"), &["--lease-timeout", "30s"]);
    let url = broker.url();
    let mut submission = Submission::primes(1_000_000_000, 8);
    fund(&url, &mut submission).await;
    let workload_id = submission
        .submit(&mut issuer(&url).await)
        .await
        .expect("submit");
    let mut agents = AgentProcess::start_many(&url, dir.path(), 2);
    eventually(
        TIMEOUT,
        POLL,
        "no task was done",
        || agents[0].log_tail(),
        || async { status_of(&url, &workload_id).await.done >= 1 },
    )
    .await;
    broker.kill9();
    tokio::time::sleep(Duration::from_secs(5)).await;
    for agent in &mut agents {
        assert!(
            agent.is_running(),
            "{} gave up:\n{}",
            agent.name,
            agent.log_tail()
        );
    }
    broker.restart();
    let mut client = issuer(&url).await;
    let status = wait_until_final(&mut client, &workload_id, TIMEOUT).await;
    assert_eq!(
        status.state,
        v1::WorkloadState::Done as i32,
        "{status:?}\n{}",
        agents[0].log_tail()
    );
    let (_, end) = results(&mut client, &workload_id).await.expect("results");
    assert_eq!(end_value(&end), PI_OF_1E9);
    let due = check_pay(&url, &workload_id, 1).await;
    let summary = assert_ledger_consistent(&url).await;
    assert_eq!((summary.pays, summary.paid), (8, due));
}
