//! The agent end to end against a fake broker over real sockets: the whole
//! protocol, restarts, a broker that misbehaves or is away, and stopping.

mod fake_broker;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fake_broker::{Call, FakeBroker};
use prost::Message;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasmgrid_agent::{AgentConfig, AgentError, AgentSummary, BackoffConfig, Identity};
use wasmgrid_proto::v1::{Limits, ReportResultRequest, TaskStatus, TaskStatusKind, Usage};

/// Echoes up to 1 KiB of stdin to stdout.
const ECHO_WAT: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 1024))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"#;

/// Spins until a limit stops it.
const SPIN_WAT: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $spin (br $spin))))
"#;

fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("valid wat")
}

fn limits(wall_time_ms: u64) -> Limits {
    Limits {
        memory_bytes: 16 << 20,
        fuel: 1_000_000_000_000,
        wall_time_ms,
        max_output_bytes: 1 << 20,
        max_stack_bytes: 1 << 20,
    }
}

fn config(broker: &str, state_dir: &Path) -> AgentConfig {
    let mut config = AgentConfig::new(broker, state_dir);
    config.slots = 2;
    config.memory_bytes = 512 << 20;
    config.name = "test-agent".into();
    config.stop_timeout = Duration::from_secs(10);
    config.backoff = BackoffConfig {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(200),
    };
    config
}

/// A running agent and the handles to stop it.
struct RunningAgent {
    stop: Option<oneshot::Sender<()>>,
    force: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<AgentSummary, AgentError>>,
}

impl RunningAgent {
    fn start(config: AgentConfig) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let (force, forced) = oneshot::channel::<()>();
        let task = tokio::spawn(wasmgrid_agent::run_with_force(
            config,
            async {
                let _ = stopped.await;
            },
            async {
                let _ = forced.await;
            },
        ));
        RunningAgent {
            stop: Some(stop),
            force: Some(force),
            task,
        }
    }

    async fn stop(mut self) -> AgentSummary {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.finish().await
    }

    async fn force_stop(mut self) -> AgentSummary {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(force) = self.force.take() {
            let _ = force.send(());
        }
        self.finish().await
    }

    async fn finish(self) -> AgentSummary {
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the agent stops in time")
            .expect("the agent task does not panic")
            .expect("the agent runs")
    }
}

fn outbox_files(state_dir: &Path, extension: &str) -> usize {
    std::fs::read_dir(state_dir.join("outbox"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().extension().is_some_and(|ext| ext == extension))
                .count()
        })
        .unwrap_or(0)
}

/// Gives `broker` a workload of one echo task, runs an agent until the
/// broker holds its report, and stops it; returns its summary and state
/// dir.
async fn one_echo_task_reported(broker: &FakeBroker) -> (AgentSummary, tempfile::TempDir) {
    broker.add_workload("w1", &wasm(ECHO_WAT), &[b"x"], limits(10_000));
    let state = tempfile::tempdir().expect("tempdir");
    let agent = RunningAgent::start(config(&broker.url(), state.path()));
    broker
        .shared
        .wait_for("a report", |s| s.reports.len() == 1)
        .await;
    (agent.stop().await, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_tasks_and_reports_their_results() {
    let broker = FakeBroker::start().await;
    let inputs: Vec<Vec<u8>> = (0..6).map(|i| format!("input {i}").into_bytes()).collect();
    let input_refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
    let sha256 = broker.add_workload("w1", &wasm(ECHO_WAT), &input_refs, limits(10_000));
    let state = tempfile::tempdir().expect("tempdir");

    let agent = RunningAgent::start(config(&broker.url(), state.path()));
    broker
        .shared
        .wait_for("six reports", |s| s.reports.len() == 6)
        .await;
    let summary = agent.stop().await;

    let state_now = broker.shared.lock();
    assert_eq!(state_now.registrations.len(), 1);
    assert_eq!(state_now.registrations[0].name, "test-agent");
    assert_eq!(state_now.registrations[0].slots, 2);
    assert_eq!(
        state_now.fetches, 1,
        "the module is fetched once, then cached"
    );
    let mut outputs: Vec<Vec<u8>> = state_now.reports.iter().map(|r| r.output.clone()).collect();
    outputs.sort();
    assert_eq!(outputs, inputs);
    for report in &state_now.reports {
        let status = report.status.as_ref().expect("status");
        assert_eq!(status.kind, TaskStatusKind::Ok as i32);
        let usage = report.usage.as_ref().expect("usage");
        assert!(usage.fuel_consumed > 0);
        assert!(!usage.metering_version.is_empty());
    }
    assert_eq!(summary.tasks_run, 6);
    assert_eq!(summary.tasks_ok, 6);
    assert_eq!(summary.reports_counted, 6);
    assert_eq!(summary.reports_pending, 0);
    assert_eq!(
        summary.reports_synced, 0,
        "results the broker acknowledges at once are never synced to disk"
    );
    assert!(summary.fuel_consumed > 0);
    assert_eq!(summary.agent_id, "agent-1");
    assert!(
        state
            .path()
            .join("modules")
            .join(format!("{sha256}.wasm"))
            .exists()
    );
    assert_eq!(outbox_files(state.path(), "pb"), 0);
    let identity = Identity::load(state.path())
        .expect("readable")
        .expect("saved");
    assert_eq!(identity.broker, broker.url());
    assert_eq!(identity.agent_id, "agent-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reuses_the_identity_and_resends_the_outbox_first() {
    let broker = FakeBroker::start().await;
    broker.shared.update(|s| {
        s.tokens.insert("kept-token".into());
    });
    let state = tempfile::tempdir().expect("tempdir");
    Identity {
        broker: broker.url(),
        agent_id: "agent-kept".into(),
        token: "kept-token".into(),
    }
    .save(state.path())
    .expect("save identity");
    let outbox = state.path().join("outbox");
    std::fs::create_dir_all(&outbox).expect("outbox dir");
    let pending = ReportResultRequest {
        lease_id: "old-1".into(),
        status: Some(TaskStatus {
            kind: TaskStatusKind::Ok as i32,
            ..TaskStatus::default()
        }),
        output: b"done before the restart".to_vec(),
        stderr: Vec::new(),
        task: None,
        usage: Some(Usage {
            fuel_consumed: 99,
            ..Usage::default()
        }),
    };
    std::fs::write(outbox.join("old-1.pb"), pending.encode_to_vec()).expect("write report");
    std::fs::write(outbox.join("broken.pb"), [0xff, 0xff, 0xff, 0x0f, 0x02])
        .expect("write garbage");

    let agent = RunningAgent::start(config(&broker.url(), state.path()));
    broker
        .shared
        .wait_for("the old report", |s| !s.reports.is_empty())
        .await;
    let summary = agent.stop().await;

    let state_now = broker.shared.lock();
    assert!(
        state_now.registrations.is_empty(),
        "the saved identity is reused"
    );
    assert_eq!(state_now.reports, [pending]);
    assert_eq!(summary.reports_acknowledged, 1);
    assert_eq!(summary.agent_id, "agent-kept");
    assert_eq!(outbox_files(state.path(), "pb"), 0);
    assert_eq!(
        outbox_files(state.path(), "corrupt"),
        1,
        "the corrupt report is set aside"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_again_when_the_broker_forgot_the_agent() {
    let broker = FakeBroker::start().await;
    broker.add_workload("w1", &wasm(ECHO_WAT), &[b"hello"], limits(10_000));
    let state = tempfile::tempdir().expect("tempdir");
    Identity {
        broker: broker.url(),
        agent_id: "agent-wiped".into(),
        token: "token-the-broker-forgot".into(),
    }
    .save(state.path())
    .expect("save identity");

    let agent = RunningAgent::start(config(&broker.url(), state.path()));
    broker
        .shared
        .wait_for("a report", |s| s.reports.len() == 1)
        .await;
    let summary = agent.stop().await;

    assert_eq!(broker.shared.lock().registrations.len(), 1);
    assert_eq!(summary.tasks_ok, 1);
    let identity = Identity::load(state.path())
        .expect("readable")
        .expect("saved");
    assert_eq!(identity.agent_id, "agent-1");
    assert_eq!(identity.token, "token-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reports_are_retried_until_acknowledged() {
    let broker = FakeBroker::start().await;
    broker.shared.update(|s| s.refuse_reports = 3);
    let (summary, state) = one_echo_task_reported(&broker).await;

    assert_eq!(broker.shared.lock().refuse_reports, 0);
    assert_eq!(summary.reports_acknowledged, 1);
    assert_eq!(
        summary.reports_synced, 1,
        "the refused result is synced to disk once, not at every retry"
    );
    assert_eq!(summary.reports_pending, 0);
    assert_eq!(outbox_files(state.path(), "pb"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_the_broker_is_slow_to_acknowledge_is_synced_meanwhile() {
    let broker = FakeBroker::start().await;
    broker
        .shared
        .update(|s| s.report_delay = Duration::from_millis(2500));
    let (summary, state) = one_echo_task_reported(&broker).await;

    assert_eq!(summary.reports_counted, 1);
    assert_eq!(
        summary.reports_synced, 1,
        "a result unanswered for a second is synced while the call waits"
    );
    assert_eq!(summary.reports_pending, 0);
    assert_eq!(outbox_files(state.path(), "pb"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_module_download_is_fetched_again() {
    let broker = FakeBroker::start().await;
    broker.shared.update(|s| s.corrupt_fetches = 1);
    let (summary, _state) = one_echo_task_reported(&broker).await;

    assert_eq!(broker.shared.lock().fetches, 2);
    assert_eq!(summary.tasks_ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_starts_late_is_waited_for() {
    // Find a free port, then leave it closed for a while.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let state = tempfile::tempdir().expect("tempdir");
    let agent = RunningAgent::start(config(&format!("http://{addr}"), state.path()));

    // The broker is down: the agent keeps retrying with backoff.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    let broker = FakeBroker::start_on(listener, Arc::default());
    broker.add_workload("w1", &wasm(ECHO_WAT), &[b"late"], limits(10_000));
    broker
        .shared
        .wait_for("a report", |s| s.reports.len() == 1)
        .await;
    let summary = agent.stop().await;
    assert_eq!(summary.tasks_ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_the_sandbox_refuses_release_the_lease() {
    let broker = FakeBroker::start().await;
    let mut bad = limits(10_000);
    bad.max_stack_bytes = 0;
    broker.add_workload("w1", &wasm(ECHO_WAT), &[b"x"], bad);
    let state = tempfile::tempdir().expect("tempdir");

    let agent = RunningAgent::start(config(&broker.url(), state.path()));
    broker
        .shared
        .wait_for("a release", |s| s.releases.len() == 1)
        .await;
    let summary = agent.stop().await;

    let state_now = broker.shared.lock();
    assert!(
        state_now.releases[0].reason.contains("invalid limits"),
        "{:?}",
        state_now.releases
    );
    assert!(state_now.reports.is_empty());
    assert_eq!(summary.leases_released, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_lease_is_noted_and_its_result_still_reported() {
    let broker = FakeBroker::start().await;
    broker.shared.update(|s| {
        s.revoke_on_extend = true;
        s.lease_ms = 600;
    });
    broker.add_workload("w1", &wasm(SPIN_WAT), &[b""], limits(1_500));
    let state = tempfile::tempdir().expect("tempdir");

    let agent = RunningAgent::start(config(&broker.url(), state.path()));
    broker
        .shared
        .wait_for("a report", |s| s.reports.len() == 1)
        .await;
    let summary = agent.stop().await;

    let status = broker.shared.lock().reports[0]
        .status
        .clone()
        .expect("status");
    assert_eq!(status.kind, TaskStatusKind::Timeout as i32);
    assert_eq!(summary.leases_lost, 1);
    assert_eq!(summary.tasks_failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_timeout_releases_running_tasks() {
    let broker = FakeBroker::start().await;
    broker.add_workload("w1", &wasm(SPIN_WAT), &[b""], limits(3_000));
    let state = tempfile::tempdir().expect("tempdir");
    let mut config = config(&broker.url(), state.path());
    config.stop_timeout = Duration::from_millis(200);

    let agent = RunningAgent::start(config);
    broker
        .shared
        .wait_for("the module fetch", |s| s.fetches == 1)
        .await;
    let summary = agent.stop().await;

    let state_now = broker.shared.lock();
    assert_eq!(state_now.releases.len(), 1);
    assert!(state_now.reports.is_empty());
    assert_eq!(summary.leases_released, 1);
    assert_eq!(summary.tasks_run, 0);
}

/// With one slot busy, the work buffer holds one more task, leased and kept
/// alive, and no more; at a stop both are given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_buffer_holds_one_task_ahead_of_a_busy_slot() {
    let broker = FakeBroker::start().await;
    broker.add_workload("w1", &wasm(SPIN_WAT), &[b"a", b"b", b"c"], limits(60_000));
    let state = tempfile::tempdir().expect("tempdir");
    let mut config = config(&broker.url(), state.path());
    config.slots = 1;
    config.work_buffer = Some(1);
    config.stop_timeout = Duration::from_millis(200);

    let agent = RunningAgent::start(config);
    broker
        .shared
        .wait_for("two leases", |s| s.accepted == 2)
        .await;
    // The agent asks again only when a lease ends; none does while the
    // first task spins, so the third stays with the broker.
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let state_now = broker.shared.lock();
        assert_eq!(state_now.accepted, 2);
        assert_eq!(state_now.queue.len(), 1);
    }
    let summary = agent.stop().await;

    assert_eq!(summary.leases_accepted, 2);
    assert_eq!(summary.leases_released, 2);
    assert_eq!(summary.tasks_run, 0);
    assert_eq!(broker.shared.lock().releases.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_stop_releases_running_tasks_at_once() {
    let broker = FakeBroker::start().await;
    broker.add_workload("w1", &wasm(SPIN_WAT), &[b""], limits(3_000));
    let state = tempfile::tempdir().expect("tempdir");
    let mut config = config(&broker.url(), state.path());
    config.stop_timeout = Duration::from_secs(600);

    let agent = RunningAgent::start(config);
    broker
        .shared
        .wait_for("the module fetch", |s| s.fetches == 1)
        .await;
    let summary = agent.force_stop().await;

    assert_eq!(broker.shared.lock().releases.len(), 1);
    assert_eq!(summary.leases_released, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_results_wait_in_the_outbox_for_the_next_start() {
    let broker = FakeBroker::start().await;
    broker.shared.update(|s| s.refuse_reports = u32::MAX);
    broker.add_workload("w1", &wasm(ECHO_WAT), &[b"keep me"], limits(10_000));
    let state = tempfile::tempdir().expect("tempdir");
    let mut first_config = config(&broker.url(), state.path());
    first_config.stop_timeout = Duration::from_millis(100);

    let agent = RunningAgent::start(first_config);
    broker
        .shared
        .wait_for("a refused report", |s| s.refuse_reports < u32::MAX)
        .await;
    let summary = agent.stop().await;
    assert_eq!(summary.tasks_ok, 1);
    assert_eq!(summary.reports_pending, 1);
    assert_eq!(summary.reports_synced, 1);
    assert_eq!(outbox_files(state.path(), "pb"), 1);

    broker.shared.update(|s| s.refuse_reports = 0);
    let agent = RunningAgent::start(config(&broker.url(), state.path()));
    broker
        .shared
        .wait_for("the report", |s| s.reports.len() == 1)
        .await;
    let summary = agent.stop().await;
    assert_eq!(summary.tasks_run, 0);
    assert_eq!(summary.reports_acknowledged, 1);
    assert_eq!(summary.reports_pending, 0);
    assert_eq!(broker.shared.lock().reports[0].output, b"keep me");
    assert_eq!(outbox_files(state.path(), "pb"), 0);
}

/// Every `RequestWork` that brought offers was answered by exactly one
/// `AcceptOffers` before the next `RequestWork` (save the last, which a stop
/// may have cut short).
fn assert_offers_answered_once(calls: &[Call]) {
    let last_request = calls
        .iter()
        .rposition(|call| matches!(call, Call::RequestWork(_)));
    for (at, call) in calls.iter().enumerate() {
        let Call::RequestWork(offers) = call else {
            continue;
        };
        let answers = calls[at + 1..]
            .iter()
            .take_while(|call| matches!(call, Call::AcceptOffers(_)))
            .count();
        let expected = if offers.is_empty() { 0 } else { 1 };
        assert!(
            answers == expected || (Some(at) == last_request && answers == 0),
            "call {at} ({call:?}) got {answers} answers: {calls:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_that_do_not_fit_are_declined_with_an_empty_accept() {
    let broker = FakeBroker::start().await;
    let mut too_big = limits(10_000);
    too_big.memory_bytes = 1 << 30;
    broker.add_workload("big", &wasm(ECHO_WAT), &[b"x", b"y"], too_big);
    let state = tempfile::tempdir().expect("tempdir");
    let mut config = config(&broker.url(), state.path());
    config.memory_bytes = 64 << 20;

    let agent = RunningAgent::start(config);
    broker
        .shared
        .wait_for("two declines", |s| {
            s.calls
                .iter()
                .filter(|call| **call == Call::AcceptOffers(Vec::new()))
                .count()
                >= 2
        })
        .await;
    let summary = agent.stop().await;

    assert_eq!(summary.leases_accepted, 0);
    let state_now = broker.shared.lock();
    assert_eq!(state_now.accepted, 0);
    assert_eq!(state_now.queue.len(), 2);
    assert!(
        state_now
            .calls
            .iter()
            .all(|call| !matches!(call, Call::AcceptOffers(tasks) if !tasks.is_empty())),
        "{:#?}",
        state_now.calls
    );
    assert_offers_answered_once(&state_now.calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_below_the_min_rate_are_declined_and_the_rest_taken() {
    let broker = FakeBroker::start().await;
    broker.add_workload("cheap", &wasm(ECHO_WAT), &[b"cheap"], limits(10_000));
    broker.add_workload("dear", &wasm(ECHO_WAT), &[b"dear"], limits(10_000));
    broker.shared.update(|s| {
        for task in &mut s.queue {
            if task.task.workload_id == "dear" {
                task.credits_per_fuel = 3.0;
            }
        }
    });
    let state = tempfile::tempdir().expect("tempdir");
    let mut config = config(&broker.url(), state.path());
    config.min_rate = 2.0;

    let agent = RunningAgent::start(config);
    broker
        .shared
        .wait_for("the dear report and a decline", |s| {
            s.reports.len() == 1 && s.calls.contains(&Call::AcceptOffers(Vec::new()))
        })
        .await;
    let summary = agent.stop().await;

    assert_eq!(summary.tasks_ok, 1);
    let state_now = broker.shared.lock();
    assert_eq!(state_now.reports[0].output, b"dear");
    assert_eq!(state_now.queue.len(), 1, "the cheap task is left");
    let accepted: Vec<&str> = state_now
        .calls
        .iter()
        .filter_map(|call| match call {
            Call::AcceptOffers(tasks) => Some(tasks),
            Call::RequestWork(_) => None,
        })
        .flatten()
        .map(|task| task.workload_id.as_str())
        .collect();
    assert_eq!(accepted, ["dear"]);
    assert_offers_answered_once(&state_now.calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_requires_a_newer_agent_ends_it_and_keeps_its_results() {
    let broker = FakeBroker::start().await;
    broker.shared.update(|s| {
        s.refuse_reports = u32::MAX;
        s.lease_ms = 300;
    });
    broker.add_workload("w1", &wasm(ECHO_WAT), &[b"keep me"], limits(10_000));
    broker.add_workload("w2", &wasm(SPIN_WAT), &[b""], limits(60_000));
    let state = tempfile::tempdir().expect("tempdir");
    let mut config = config(&broker.url(), state.path());
    // Not a graceful stop: the running task is given back at once.
    config.stop_timeout = Duration::from_secs(600);

    let agent = RunningAgent::start(config);
    broker
        .shared
        .wait_for("a refused report and both modules", |s| {
            s.refuse_reports < u32::MAX && s.fetches == 2
        })
        .await;
    broker
        .shared
        .update(|s| s.required_version = Some("9.0.0".into()));
    let ended = tokio::time::timeout(Duration::from_secs(60), agent.task)
        .await
        .expect("the agent stops in time")
        .expect("the agent task does not panic");

    match ended {
        Err(AgentError::Outdated { required, message }) => {
            assert_eq!(required, "9.0.0");
            assert!(message.contains(">= 9.0.0"), "{message}");
        }
        other => panic!("expected an outdated agent, got {other:?}"),
    }
    let state_now = broker.shared.lock();
    assert_eq!(
        state_now.releases.len(),
        1,
        "the spinning task is given back"
    );
    assert!(state_now.reports.is_empty());
    drop(state_now);
    assert_eq!(
        outbox_files(state.path(), "pb"),
        1,
        "the finished result waits for the updated agent"
    );
}
