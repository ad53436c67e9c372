//! The whole flow with real processes: an issuer submits, a broker
//! distributes to several agents, they run the tasks in the sandbox and
//! report, and the end result is exact — also when agents or the broker are
//! killed on the way. The workloads that meet crashes, expiries, late or
//! retried reports are paid, and the whole ledger is checked after every
//! restart and at the end: every run that made a result is paid exactly
//! once, nothing else is, and only grants change the sum of all balances.

use std::time::Duration;

use tonic::Code;
use wasmgrid_proto::v1;
use wasmgrid_runtime::TaskModule;
use wasmgrid_tests::ledger_check::{
    CREDITS_PER_FUEL, assert_ledger_consistent, expected_pay, fund,
};
use wasmgrid_tests::prime_counts::{PI_OF_1E8, PI_OF_1E9, PI_OF_2E9};
use wasmgrid_tests::queries::{end_value, status_of, tasks_of};
use wasmgrid_tests::{
    AgentProcess, Behaviour, BrokerProcess, ScriptedAgent, Submission, admin, eventually, issuer,
    results, wait_until_final,
};

/// How long a test waits for something that takes seconds at most.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How often it looks.
const POLL: Duration = Duration::from_millis(10);

/// π(`limit`) in `tasks` tasks with `replicas` runs each, paid, its issuer
/// granted exactly the escrow it needs.
async fn paid_primes(url: &str, limit: u64, tasks: u64, replicas: u32) -> Submission {
    let mut submission = Submission::primes(limit, tasks);
    submission.replicas = replicas;
    fund(url, &mut submission).await;
    submission
}

/// Checks that `run` was paid exactly for its fuel, or not at all.
fn assert_paid(run: &v1::TaskAttempt, paid: bool) {
    let due = if paid {
        expected_pay(run.fuel_consumed, CREDITS_PER_FUEL)
    } else {
        0
    };
    assert!(!paid || due > 0, "a run that earns nothing: {run:?}");
    assert_eq!(run.paid_micro, due, "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_count_the_primes_below_ten_to_the_eight() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let url = broker.url();
    let agents = AgentProcess::start_many(&url, dir.path(), 3);
    let mut client = issuer(&url).await;
    let submission = Submission::primes(100_000_000, 30);
    let workload_id = submission.submit(&mut client).await.expect("submit");
    let status = wait_until_final(&mut client, &workload_id, Duration::from_secs(120)).await;
    assert_eq!(
        status.state,
        v1::WorkloadState::Done as i32,
        "{status:?}\n{}",
        broker.log_tail()
    );
    assert_eq!((status.done, status.total, status.failed), (30, 30, 0));
    let (tasks, end) = results(&mut client, &workload_id).await.expect("results");
    assert_eq!(end_value(&end), PI_OF_1E8);
    assert_eq!(tasks.len(), 30);
    assert!(tasks.iter().all(|t| {
        t.usage
            .as_ref()
            .is_some_and(|u| u.fuel_consumed > 0 && u.peak_memory_bytes > 0)
    }));

    // Who did what: every task ran once, and the agents' figures add up.
    let history = tasks_of(&url, &workload_id).await;
    assert!(
        history
            .iter()
            .all(|task| task.state == v1::TaskState::Done as i32)
    );
    let listed = admin(&url)
        .await
        .list_agents(v1::ListAgentsRequest {})
        .await
        .expect("agents")
        .into_inner()
        .agents;
    assert_eq!(listed.len(), 3);
    assert_eq!(listed.iter().map(|a| a.tasks_ok).sum::<u64>(), 30);
    let fuel: u64 = tasks
        .iter()
        .map(|t| t.usage.as_ref().map_or(0, |u| u.fuel_consumed))
        .sum();
    assert_eq!(listed.iter().map(|a| a.fuel_consumed).sum::<u64>(), fuel);

    // The broker compiled the reducer, which it ran, and kept it for the
    // next workload; it checked the task module without compiling it.
    let reducer = TaskModule::new(submission.reducer.clone().expect("a reducer"));
    let compiled: Vec<String> = std::fs::read_dir(broker.data_dir.join("compiled"))
        .expect("the broker's compiled modules")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(compiled.len(), 1, "{compiled:?}");
    assert!(
        compiled[0].starts_with(&reducer.hash().to_hex()) && compiled[0].ends_with(".cwasm"),
        "{compiled:?}"
    );
    drop(agents);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_of_a_killed_agent_is_reissued_after_its_lease_expires() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &["--lease-timeout", "2s"]);
    let url = broker.url();
    let mut doomed = AgentProcess::start(&url, &dir.path().join("doomed"), "doomed", 1, &[]);
    let mut client = issuer(&url).await;
    // One task of about a second: the agent is mid-task when it dies.
    let workload_id = paid_primes(&url, 1_000_000_000, 1, 1)
        .await
        .submit(&mut client)
        .await
        .expect("submit");
    wait_until_leased(&url, &workload_id, &doomed).await;
    doomed.kill9();
    let _rescuer = AgentProcess::start(&url, &dir.path().join("rescuer"), "rescuer", 1, &[]);
    let status = wait_until_final(&mut client, &workload_id, Duration::from_secs(120)).await;
    assert_eq!(status.state, v1::WorkloadState::Done as i32, "{status:?}");
    let (_, end) = results(&mut client, &workload_id).await.expect("results");
    assert_eq!(end_value(&end), PI_OF_1E9);
    let history = &tasks_of(&url, &workload_id).await[0].history;
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0].state, "expired");
    assert_eq!(history[1].state, "reported");
    assert_ne!(history[0].agent_id, history[1].agent_id);
    // The reissued run is paid, the expired one is not.
    assert_paid(&history[0], false);
    assert_paid(&history[1], true);
    assert_ledger_consistent(&url).await;
}

async fn wait_until_leased(url: &str, workload_id: &str, agent: &AgentProcess) {
    eventually(
        TIMEOUT,
        POLL,
        "the task was never leased",
        || agent.log_tail(),
        || async { !tasks_of(url, workload_id).await[0].history.is_empty() },
    )
    .await;
}

/// A grid of one agent must still finish: after its lease expired, the task
/// goes back to the same agent when no other takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_only_agent_gets_its_expired_task_again_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &["--lease-timeout", "1s"]);
    let url = broker.url();
    let state_dir = dir.path().join("only");
    let mut agent = AgentProcess::start(&url, &state_dir, "only", 1, &[]);
    let mut client = issuer(&url).await;
    let workload_id = paid_primes(&url, 1_000_000_000, 1, 1)
        .await
        .submit(&mut client)
        .await
        .expect("submit");
    wait_until_leased(&url, &workload_id, &agent).await;
    agent.kill9();
    let _same = AgentProcess::start(&url, &state_dir, "only", 1, &[]);
    let status = wait_until_final(&mut client, &workload_id, Duration::from_secs(120)).await;
    assert_eq!(status.state, v1::WorkloadState::Done as i32, "{status:?}");
    let (_, end) = results(&mut client, &workload_id).await.expect("results");
    assert_eq!(end_value(&end), PI_OF_1E9);
    let history = &tasks_of(&url, &workload_id).await[0].history;
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(
        (history[0].state.as_str(), history[1].state.as_str()),
        ("expired", "reported")
    );
    assert_eq!(
        history[0].agent_id, history[1].agent_id,
        "the same agent, registered once"
    );
    assert_paid(&history[0], false);
    assert_paid(&history[1], true);
    assert_ledger_consistent(&url).await;
}

/// An agent that hangs past its lease and then reports: the task is still
/// open, so the late result counts instead of being computed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_report_on_an_open_task_counts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &["--lease-timeout", "1s"]);
    let url = broker.url();
    let agent = AgentProcess::start(&url, &dir.path().join("sleepy"), "sleepy", 1, &[]);
    let mut client = issuer(&url).await;
    let workload_id = paid_primes(&url, 1_000_000_000, 1, 1)
        .await
        .submit(&mut client)
        .await
        .expect("submit");
    agent.wait_until_compiled().await;
    agent.freeze();
    eventually(
        TIMEOUT,
        POLL,
        "the lease never expired",
        || broker.log_tail(),
        || async { tasks_of(&url, &workload_id).await[0].history[0].state == "expired" },
    )
    .await;
    agent.thaw();
    let status = wait_until_final(&mut client, &workload_id, Duration::from_secs(120)).await;
    assert_eq!(
        status.state,
        v1::WorkloadState::Done as i32,
        "{status:?}\n{}",
        agent.log_tail()
    );
    let (_, end) = results(&mut client, &workload_id).await.expect("results");
    assert_eq!(end_value(&end), PI_OF_1E9);
    // The agent may have asked for work (and been offered the reopened task
    // again) before its late report arrived: that second run is revoked
    // once the late report settles the task.
    let history = &tasks_of(&url, &workload_id).await[0].history;
    assert_eq!(history[0].state, "reported", "{history:?}");
    assert!(
        history[1..].iter().all(|run| run.state == "revoked"),
        "{history:?}"
    );
    // The late run is paid once; a revoked one is not paid.
    assert_paid(&history[0], true);
    for run in &history[1..] {
        assert_paid(run, false);
    }
    assert_ledger_consistent(&url).await;
}

/// A result finished while the broker is down is kept in the agent's outbox
/// and delivered once the broker is back; it is not computed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_finished_while_the_broker_is_down_is_delivered_after_its_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut broker = BrokerProcess::start(&dir.path().join("broker"), &["--lease-timeout", "60s"]);
    let url = broker.url();
    let agent = AgentProcess::start(&url, &dir.path().join("agent"), "agent", 1, &[]);
    let mut client = issuer(&url).await;
    let workload_id = paid_primes(&url, 1_000_000_000, 1, 1)
        .await
        .submit(&mut client)
        .await
        .expect("submit");
    // Once the agent has the module, the task runs (about a second): kill
    // the broker then, so the result is finished while it is away.
    agent.wait_until_compiled().await;
    broker.kill9();
    eventually(
        TIMEOUT,
        POLL,
        "no result was kept in the outbox",
        || agent.log_tail(),
        || async { agent.kept_results() > 0 },
    )
    .await;
    broker.restart();
    // Right after the restart, with the result perhaps on its way.
    assert_ledger_consistent(&url).await;
    let mut client = issuer(&url).await;
    let status = wait_until_final(&mut client, &workload_id, Duration::from_secs(60)).await;
    assert_eq!(
        status.state,
        v1::WorkloadState::Done as i32,
        "{status:?}\n{}",
        agent.log_tail()
    );
    let (_, end) = results(&mut client, &workload_id).await.expect("results");
    assert_eq!(end_value(&end), PI_OF_1E9);
    let history = &tasks_of(&url, &workload_id).await[0].history;
    assert_eq!(history.len(), 1, "computed once: {history:?}");
    assert_eq!(history[0].state, "reported");
    assert_paid(&history[0], true);
    eventually(
        TIMEOUT,
        POLL,
        "the outbox was not emptied after the ack",
        || agent.log_tail(),
        || async { agent.kept_results() == 0 },
    )
    .await;
    assert_ledger_consistent(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_workload_restarts_and_finishes_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut broker = BrokerProcess::start(&dir.path().join("broker"), &["--lease-timeout", "3s"]);
    let url = broker.url();
    let _agents = AgentProcess::start_many(&url, dir.path(), 2);
    let mut client = issuer(&url).await;
    let workload_id = paid_primes(&url, 1_000_000_000, 40, 1)
        .await
        .submit(&mut client)
        .await
        .expect("submit");
    // Kill it twice at different points of the workload.
    for done_before_kill in [3, 15] {
        eventually(
            TIMEOUT,
            POLL,
            "tasks were not done",
            || broker.log_tail(),
            || {
                let mut client = client.clone();
                let workload_id = workload_id.clone();
                async move {
                    let status = client
                        .get_status(v1::WorkloadRequest { workload_id })
                        .await
                        .expect("status")
                        .into_inner();
                    status.done >= done_before_kill
                }
            },
        )
        .await;
        broker.restart();
        assert_ledger_consistent(&url).await;
        client = issuer(&url).await;
    }
    let status = wait_until_final(&mut client, &workload_id, Duration::from_secs(180)).await;
    assert_eq!(
        status.state,
        v1::WorkloadState::Done as i32,
        "{status:?}\n{}",
        broker.log_tail()
    );
    let (tasks, end) = results(&mut client, &workload_id).await.expect("results");
    assert_eq!(end_value(&end), PI_OF_1E9);
    assert_eq!(tasks.len(), 40);
    // Each task was accepted once: exactly one counted report per task.
    for task in tasks_of(&url, &workload_id).await {
        let reported = task
            .history
            .iter()
            .filter(|run| run.state == "reported")
            .count();
        assert_eq!(reported, 1, "task {} ran {:?}", task.index, task.history);
        for run in &task.history {
            assert_paid(run, run.state == "reported");
        }
    }
    let summary = assert_ledger_consistent(&url).await;
    assert_eq!(summary.pays, 40, "one pay per task");
}

/// When `a_broker_killed_five_times_pays_every_replica_exactly_once` kills
/// the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KillAt {
    /// Runs are leased and running.
    Leased,
    /// At least this many tasks are done.
    Done(u32),
    /// As soon as it is back: while it recovers and the agents reconnect
    /// to deliver what they finished while it was away.
    RightAfterRestart,
}

/// The "a broker crash between any two steps": SIGKILL five times at
/// different moments while three real agents work on a paid workload with
/// two replicas per task, each time restarted on the same data dir: with
/// runs leased and none reported, a quarter done, right after a restart
/// (while it recovers and agents deliver what they kept), two thirds done,
/// and with every task done (racing the close-out). Agents whose report
/// was committed but not answered retry it. The whole ledger is checked
/// after each restart (but the one killed at once) while the grid works,
/// and at the end: the result is exact, every task was paid for exactly its
/// two agreeing runs, and no lease was paid twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_five_times_pays_every_replica_exactly_once() {
    const TASKS: u32 = 16;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut broker = BrokerProcess::start(&dir.path().join("broker"), &["--lease-timeout", "3s"]);
    let url = broker.url();
    let submission = paid_primes(&url, 2_000_000_000, TASKS.into(), 2).await;
    let workload_id = submission
        .submit(&mut issuer(&url).await)
        .await
        .expect("submit");
    let agents = AgentProcess::start_many(&url, dir.path(), 3);
    let moments = [
        KillAt::Leased,
        KillAt::Done(TASKS / 4),
        KillAt::RightAfterRestart,
        KillAt::Done(TASKS * 2 / 3),
        KillAt::Done(TASKS),
    ];
    for (i, moment) in moments.iter().enumerate() {
        let reached = |status: &v1::WorkloadStatus| match moment {
            KillAt::Leased => status.running > 0,
            KillAt::Done(done) => status.done >= *done,
            KillAt::RightAfterRestart => true,
        };
        eventually(
            TIMEOUT,
            POLL,
            &format!("the workload never reached {moment:?}"),
            || broker.log_tail(),
            || async { reached(&status_of(&url, &workload_id).await) },
        )
        .await;
        let status = status_of(&url, &workload_id).await;
        println!(
            "kill {} at {moment:?}: {} of {TASKS} done, {} running",
            i + 1,
            status.done,
            status.running
        );
        broker.restart();
        if moments.get(i + 1) != Some(&KillAt::RightAfterRestart) {
            assert_ledger_consistent(&url).await;
        }
    }
    let mut client = issuer(&url).await;
    let status = wait_until_final(&mut client, &workload_id, TIMEOUT).await;
    assert_eq!(
        status.state,
        v1::WorkloadState::Done as i32,
        "{status:?}\n{}\n{}",
        broker.log_tail(),
        agents[0].log_tail()
    );
    let (_, end) = results(&mut client, &workload_id).await.expect("results");
    assert_eq!(end_value(&end), PI_OF_2E9);

    let summary = assert_ledger_consistent(&url).await;
    let mut due = 0;
    for task in tasks_of(&url, &workload_id).await {
        assert_eq!(task.state, v1::TaskState::Done as i32, "{task:?}");
        assert_eq!(task.quorum, 2, "{task:?}");
        let agreeing: Vec<&v1::TaskAttempt> = task
            .history
            .iter()
            .filter(|run| run.verdict == "agreed")
            .collect();
        assert_eq!(agreeing.len(), 2, "two agreeing runs: {task:?}");
        assert_ne!(agreeing[0].agent_id, agreeing[1].agent_id, "{task:?}");
        for run in &task.history {
            assert_paid(run, run.verdict == "agreed");
        }
        due += 2 * expected_pay(task.fuel_consumed, CREDITS_PER_FUEL);
    }
    let pays: Vec<v1::LedgerEntry> = client
        .get_ledger(v1::LedgerRequest {
            issuer: submission.issuer.clone(),
            workload_id: workload_id.clone(),
            limit: 0,
        })
        .await
        .expect("ledger")
        .into_inner()
        .entries
        .into_iter()
        .filter(|entry| entry.kind == "pay")
        .collect();
    let leases: std::collections::HashSet<&str> =
        pays.iter().map(|pay| pay.lease_id.as_str()).collect();
    assert_eq!(leases.len(), pays.len(), "a lease paid twice: {pays:?}");
    assert_eq!(pays.len(), 2 * TASKS as usize, "{pays:?}");
    assert_eq!((summary.pays, summary.paid), (pays.len(), due));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_issuers_share_the_agents_fairly_and_cancel_stops_a_workload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let url = broker.url();
    let mut client = issuer(&url).await;
    // Alice's big workload is queued first; Bob's small one must not wait for it.
    let mut big = Submission::primes(400_000_000, 80);
    big.issuer = "alice".into();
    let mut small = Submission::primes(100_000_000, 4);
    small.issuer = "bob".into();
    let mut doomed = Submission::primes(1_000_000_000, 50);
    doomed.issuer = "carol".into();
    // All three are paid: a cancelled workload gets its whole escrow back.
    for submission in [&mut big, &mut small, &mut doomed] {
        fund(&url, submission).await;
    }
    let big_id = big.submit(&mut client).await.expect("submit");
    let small_id = small.submit(&mut client).await.expect("submit");
    let doomed_id = doomed.submit(&mut client).await.expect("submit");
    let cancelled = client
        .cancel(v1::WorkloadRequest {
            workload_id: doomed_id.clone(),
        })
        .await
        .expect("cancel")
        .into_inner();
    assert_eq!(cancelled.state, v1::WorkloadState::Cancelled as i32);
    let again = client
        .cancel(v1::WorkloadRequest {
            workload_id: doomed_id.clone(),
        })
        .await
        .expect_err("already cancelled");
    assert_eq!(again.code(), Code::FailedPrecondition);

    let _agents = AgentProcess::start_many(&url, dir.path(), 2);
    let small_status = wait_until_final(&mut client, &small_id, Duration::from_secs(120)).await;
    let big_status = wait_until_final(&mut client, &big_id, Duration::from_secs(180)).await;
    assert_eq!(small_status.state, v1::WorkloadState::Done as i32);
    assert_eq!(big_status.state, v1::WorkloadState::Done as i32);
    assert!(
        small_status.finished_unix_ms < big_status.finished_unix_ms,
        "the small workload finished first"
    );
    let (_, small_end) = results(&mut client, &small_id).await.expect("results");
    assert_eq!(end_value(&small_end), PI_OF_1E8);
    let (_, big_end) = results(&mut client, &big_id).await.expect("results");
    assert_eq!(end_value(&big_end), 21_336_326, "π(4·10^8)");

    let doomed_tasks = tasks_of(&url, &doomed_id).await;
    assert!(
        doomed_tasks
            .iter()
            .all(|t| t.state == v1::TaskState::Cancelled as i32 && t.history.is_empty())
    );
    let (doomed_results, doomed_end) = results(&mut client, &doomed_id)
        .await
        .expect("results of a cancelled workload");
    assert_eq!(doomed_results.len(), 50);
    assert!(!doomed_end.reduced);
    let bill = client
        .get_status(v1::WorkloadRequest {
            workload_id: doomed_id.clone(),
        })
        .await
        .expect("status")
        .into_inner()
        .bill
        .expect("a bill");
    assert!(bill.escrowed_micro > 0, "{bill:?}");
    assert_eq!(
        (bill.paid_micro, bill.fee_micro, bill.refunded_micro),
        (0, 0, bill.escrowed_micro),
        "nothing ran: everything refunded"
    );
    let summary = assert_ledger_consistent(&url).await;
    assert_eq!(summary.pays, 80 + 4, "one pay per task that ran");
}

/// The next status a `WatchProgress` stream sends that is not `Running`;
/// fails (with `broker`'s log) when none comes within [`TIMEOUT`].
async fn end_seen(
    progress: &mut tonic::Streaming<v1::WorkloadStatus>,
    broker: &BrokerProcess,
) -> v1::WorkloadStatus {
    let end = async {
        loop {
            let status = progress
                .message()
                .await
                .expect("the progress stream broke")
                .expect("the progress stream ended before the workload");
            if status.state != v1::WorkloadState::Running as i32 {
                return status;
            }
        }
    };
    tokio::time::timeout(TIMEOUT, end)
        .await
        .unwrap_or_else(|_| panic!("no end within {TIMEOUT:?}\n{}", broker.log_tail()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_watching_learns_of_the_end_at_once_however_long_the_progress_interval() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Updates 10¹¹ years apart: only an end sent at once arrives within the
    // test's minute. (Ten of these intervals, the wait when nothing changes,
    // are more than a `Duration` holds: the stream must not overflow.)
    let broker = BrokerProcess::start(
        &dir.path().join("broker"),
        &["--progress-interval", "100000000000years"],
    );
    let url = broker.url();
    let mut client = issuer(&url).await;
    let mut watch = async |workload_id: &str| {
        let mut progress = client
            .watch_progress(v1::WorkloadRequest {
                workload_id: workload_id.to_owned(),
            })
            .await
            .expect("watching")
            .into_inner();
        let first = progress.message().await.expect("first status");
        assert_eq!(
            first.map(|status| status.state),
            Some(v1::WorkloadState::Running as i32)
        );
        progress
    };

    // Done: the reports before the last one start the interval's wait.
    let workload_id = Submission::primes(1_000_000, 3)
        .submit(&mut issuer(&url).await)
        .await
        .expect("submit");
    let mut progress = watch(&workload_id).await;
    let agent = ScriptedAgent::register(&url, "runner", "alice")
        .await
        .spawn(Behaviour::Honest);
    let end = end_seen(&mut progress, &broker).await;
    assert_eq!(end.state, v1::WorkloadState::Done as i32, "{end:?}");
    assert_eq!((end.done, end.total), (3, 3));
    agent.stop().await;

    // Cancelled, with no agent left.
    let workload_id = Submission::primes(1_000_000, 3)
        .submit(&mut issuer(&url).await)
        .await
        .expect("submit");
    let mut progress = watch(&workload_id).await;
    issuer(&url)
        .await
        .cancel(v1::WorkloadRequest {
            workload_id: workload_id.clone(),
        })
        .await
        .expect("cancel");
    let end = end_seen(&mut progress, &broker).await;
    assert_eq!(end.state, v1::WorkloadState::Cancelled as i32, "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let mut agent = AgentProcess::start(&broker.url(), &dir.path().join("agent"), "agent", 1, &[]);
    let mut client = issuer(&broker.url()).await;
    let workload_id = Submission::primes(10_000_000, 2)
        .submit(&mut client)
        .await
        .expect("submit");
    let status = wait_until_final(&mut client, &workload_id, Duration::from_secs(60)).await;
    assert_eq!(status.state, v1::WorkloadState::Done as i32);
    assert!(
        agent.terminate(Duration::from_secs(30)),
        "clean exit:\n{}",
        agent.log_tail()
    );
}
