//! Bad input of every kind gets a clear gRPC status and changes nothing:
//! a non-wasm module, an empty input set, unknown ids, a result for a lease
//! the agent does not hold, a truncated submit stream, wrong tokens — and
//! no repeated, retried or late report pays twice or loses a payment.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tonic::Code;
use wasmgrid_proto::v1::{self, TaskRef};
use wasmgrid_tests::client::{AgentClient, register_request};
use wasmgrid_tests::ledger_check::{
    CREDITS_PER_FUEL, assert_ledger_consistent, escrow_needed, expected_pay, fund,
};
use wasmgrid_tests::queries::{tasks_of, workload_count};
use wasmgrid_tests::{BrokerProcess, Submission, agent_client, eventually, issuer};

/// The fuel the hand-written reports claim: 2000 micro-credits at
/// [`CREDITS_PER_FUEL`].
const FUEL: u64 = 2_000_000;
/// How long a test waits for something that takes seconds at most.
const TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// A broker of its own and a funded `echo` workload submitted to it.
struct EchoBroker {
    dir: tempfile::TempDir,
    broker: BrokerProcess,
    url: String,
    workload_id: String,
    submission: Submission,
}

/// Starts a broker with `args` in a temp dir and submits a funded `echo`
/// workload of `inputs` tasks.
async fn echo_broker(args: &[&str], inputs: usize) -> EchoBroker {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), args);
    let url = broker.url();
    let mut submission = echo_submission(inputs);
    fund(&url, &mut submission).await;
    let workload_id = submission
        .submit(&mut issuer(&url).await)
        .await
        .expect("submit");
    EchoBroker {
        dir,
        broker,
        url,
        workload_id,
        submission,
    }
}

fn echo_submission(inputs: usize) -> Submission {
    let inputs = (0..inputs)
        .map(|i| format!("input {i}").into_bytes())
        .collect();
    Submission::new(wasmgrid_sample_tasks::read_wasm("echo"), inputs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submissions_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let url = broker.url();
    let mut client = issuer(&url).await;

    let mut not_wasm = echo_submission(2);
    not_wasm.module = b"#!/bin/sh\necho not wasm\n".to_vec();
    let error = not_wasm.submit(&mut client).await.expect_err("refused");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error
            .message()
            .contains("module is not a runnable wasmgrid task"),
        "{}",
        error.message()
    );

    let mut not_a_command = echo_submission(1);
    not_a_command.module =
        std::fs::read(wasmgrid_sample_tasks::hostile_file("garbage.wasm")).expect("garbage");
    let error = not_a_command
        .submit(&mut client)
        .await
        .expect_err("refused");
    assert_eq!(error.code(), Code::InvalidArgument);

    let error = echo_submission(0)
        .submit(&mut client)
        .await
        .expect_err("refused");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("at least one task input"),
        "{}",
        error.message()
    );

    let mut too_much_memory = echo_submission(1);
    too_much_memory.limits.memory_bytes = 1 << 40;
    let error = too_much_memory
        .submit(&mut client)
        .await
        .expect_err("refused");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(error.message().contains("memory"), "{}", error.message());

    // A stream that stops before its end marker, as a crashed client's would.
    let mut messages = echo_submission(3).messages();
    messages.pop();
    let error = client
        .submit_workload(tokio_stream::iter(messages))
        .await
        .expect_err("refused");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("ended before its end marker"),
        "{}",
        error.message()
    );

    // A module that is not what its header's sha256 says.
    let mut messages = echo_submission(1).messages();
    if let Some(v1::submit_workload_request::Part::ModuleChunk(chunk)) = &mut messages[1].part {
        chunk[10] ^= 0xff;
    }
    let error = client
        .submit_workload(tokio_stream::iter(messages))
        .await
        .expect_err("refused");
    assert!(
        error.message().contains("does not match its sha256"),
        "{}",
        error.message()
    );

    // An end marker that disagrees with the inputs sent.
    let mut messages = echo_submission(2).messages();
    if let Some(v1::submit_workload_request::Part::End(end)) =
        &mut messages.last_mut().expect("end").part
    {
        end.task_count = 5;
    }
    let error = client
        .submit_workload(tokio_stream::iter(messages))
        .await
        .expect_err("refused");
    assert!(
        error.message().contains("end marker says 5 tasks"),
        "{}",
        error.message()
    );

    assert_eq!(workload_count(&url).await, 0, "nothing was stored");
    // And a good one still goes through.
    echo_submission(2)
        .submit(&mut client)
        .await
        .expect("accepted");
    assert_eq!(workload_count(&url).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_workload_ids_are_not_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let mut client = issuer(&broker.url()).await;
    let request = || v1::WorkloadRequest {
        workload_id: "w-doesnotexist".into(),
    };
    let status = client.get_status(request()).await.expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status
            .message()
            .contains("workload w-doesnotexist not found")
    );
    assert_eq!(
        client.cancel(request()).await.expect_err("unknown").code(),
        Code::NotFound
    );
    assert_eq!(
        client
            .fetch_results(request())
            .await
            .expect_err("unknown")
            .code(),
        Code::NotFound
    );
    assert_eq!(
        client
            .list_tasks(request())
            .await
            .expect_err("unknown")
            .code(),
        Code::NotFound
    );
    assert_eq!(
        client
            .watch_progress(request())
            .await
            .expect_err("unknown")
            .code(),
        Code::NotFound
    );
}

async fn register(url: &str, name: &str) -> String {
    let mut client = agent_client(url, "").await;
    client
        .register(register_request(name))
        .await
        .expect("register")
        .into_inner()
        .token
}

/// A newly registered agent `name`, signed in with its token.
async fn new_agent(url: &str, name: &str) -> AgentClient {
    agent_client(url, &register(url, name).await).await
}

fn ok_report(lease_id: &str, output: &[u8]) -> v1::ReportResultRequest {
    ok_report_with_fuel(lease_id, output, FUEL)
}

fn ok_report_with_fuel(lease_id: &str, output: &[u8], fuel: u64) -> v1::ReportResultRequest {
    v1::ReportResultRequest {
        lease_id: lease_id.into(),
        status: Some(v1::TaskStatus {
            kind: v1::TaskStatusKind::Ok as i32,
            exit_code: 0,
            message: String::new(),
        }),
        output: output.to_vec(),
        stderr: Vec::new(),
        task: None,
        usage: Some(v1::Usage {
            fuel_consumed: fuel,
            peak_memory_bytes: 65536,
            wall_time_ms: 1,
            output_bytes: output.len() as u64,
            metering_version: wasmgrid_runtime::METERING_VERSION.into(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_touch_only_their_own_leases_and_reports_are_idempotent() {
    let EchoBroker {
        dir: _dir,
        broker: _broker,
        url,
        workload_id,
        ..
    } = echo_broker(&[], 1).await;

    let mut alice = new_agent(&url, "alice").await;
    let mut mallory = new_agent(&url, "mallory").await;
    let mut stranger = agent_client(&url, "not-a-token").await;

    let error = stranger
        .request_work(v1::RequestWorkRequest {
            capacity: 1,
            free_memory_bytes: 1 << 30,
        })
        .await
        .expect_err("unknown token");
    assert_eq!(error.code(), Code::Unauthenticated);

    let offers = ask_for_work(&mut alice, 4).await.offers;
    assert_eq!(offers.len(), 1);
    let task = offers[0].task.clone().expect("task");
    // Mallory cannot take Alice's offer.
    let taken = mallory
        .accept_offers(v1::AcceptOffersRequest {
            tasks: vec![task.clone()],
        })
        .await
        .expect("answer")
        .into_inner();
    assert!(taken.leases.is_empty());
    assert_eq!(taken.rejected, vec![task.clone()]);
    let lease = alice
        .accept_offers(v1::AcceptOffersRequest {
            tasks: vec![task.clone()],
        })
        .await
        .expect("lease")
        .into_inner()
        .leases
        .remove(0);
    assert_eq!(lease.input, b"input 0");

    // Mallory cannot report, extend or release it, nor fetch its module.
    let error = mallory
        .report_result(ok_report(&lease.lease_id, b"forged"))
        .await
        .expect_err("not hers");
    assert_eq!(error.code(), Code::PermissionDenied);
    assert!(error.message().contains("belongs to another agent"));
    let error = mallory
        .extend_lease(v1::ExtendLeaseRequest {
            lease_id: lease.lease_id.clone(),
        })
        .await
        .expect_err("not hers");
    assert_eq!(error.code(), Code::PermissionDenied);
    let error = mallory
        .fetch_module(v1::FetchModuleRequest {
            sha256: lease.module_sha256.clone(),
        })
        .await
        .expect_err("not hers");
    assert_eq!(error.code(), Code::PermissionDenied);
    let error = mallory
        .release_lease(v1::ReleaseLeaseRequest {
            lease_id: lease.lease_id.clone(),
            reason: "not mine to give".into(),
        })
        .await
        .expect_err("not hers");
    assert_eq!(error.code(), Code::PermissionDenied);
    let error = mallory
        .report_result(ok_report("l-unknown", b"x"))
        .await
        .expect_err("unknown");
    assert_eq!(error.code(), Code::NotFound);

    // Alice fetches the module, extends and reports; a repeat changes nothing.
    let mut module = Vec::new();
    let mut chunks = alice
        .fetch_module(v1::FetchModuleRequest {
            sha256: lease.module_sha256.clone(),
        })
        .await
        .expect("module")
        .into_inner();
    while let Some(chunk) = chunks.message().await.expect("chunk") {
        module.extend_from_slice(&chunk.data);
    }
    assert_eq!(module, wasmgrid_sample_tasks::read_wasm("echo"));
    alice
        .extend_lease(v1::ExtendLeaseRequest {
            lease_id: lease.lease_id.clone(),
        })
        .await
        .expect("extend");
    let first = alice
        .report_result(ok_report(&lease.lease_id, b"input 0"))
        .await
        .expect("report");
    assert!(first.into_inner().counted);
    let again = alice
        .report_result(ok_report_with_fuel(
            &lease.lease_id,
            b"something else",
            3 * FUEL,
        ))
        .await
        .expect("report");
    assert!(
        again.into_inner().counted,
        "a repeated report answers as the first"
    );

    let mut client = issuer(&url).await;
    let status = wasmgrid_tests::wait_until_final(
        &mut client,
        &workload_id,
        std::time::Duration::from_secs(30),
    )
    .await;
    assert_eq!(status.state, v1::WorkloadState::Done as i32);
    let (tasks, end) = wasmgrid_tests::results(&mut client, &workload_id)
        .await
        .expect("results");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].output, b"input 0", "the first report stands");
    assert!(!end.reduced);
    let history = client
        .list_tasks(v1::WorkloadRequest {
            workload_id: workload_id.clone(),
        })
        .await
        .expect("tasks")
        .into_inner()
        .tasks;
    assert_eq!(history[0].history.len(), 1);
    assert_eq!(history[0].history[0].state, "reported");
    // Paid once, for the first report's fuel; Mallory's forgery paid nothing.
    assert_eq!(
        history[0].history[0].paid_micro,
        expected_pay(FUEL, CREDITS_PER_FUEL)
    );
    let summary = assert_ledger_consistent(&url).await;
    assert_eq!(
        (summary.pays, summary.paid),
        (1, expected_pay(FUEL, CREDITS_PER_FUEL))
    );

    // A finished lease cannot be extended or released.
    let error = alice
        .extend_lease(v1::ExtendLeaseRequest {
            lease_id: lease.lease_id.clone(),
        })
        .await
        .expect_err("over");
    assert_eq!(error.code(), Code::FailedPrecondition);
    let unused = TaskRef {
        workload_id,
        index: 7,
    };
    let answer = alice
        .accept_offers(v1::AcceptOffersRequest {
            tasks: vec![unused.clone()],
        })
        .await
        .expect("answer")
        .into_inner();
    assert_eq!(answer.rejected, vec![unused]);
}

/// Asks for work until task `index` of `workload_id` is offered, and leases
/// it alone (the other offers are declined, back to the queue at once).
async fn lease_task(agent: &mut AgentClient, workload_id: &str, index: u32) -> v1::Lease {
    let wanted = TaskRef {
        workload_id: workload_id.to_owned(),
        index,
    };
    let started = Instant::now();
    loop {
        let offers = ask_for_work(agent, 8).await.offers;
        let offered = offers
            .iter()
            .any(|offer| offer.task.as_ref() == Some(&wanted));
        let tasks = if offered {
            vec![wanted.clone()]
        } else {
            Vec::new()
        };
        let mut leases = agent
            .accept_offers(v1::AcceptOffersRequest { tasks })
            .await
            .expect("accept")
            .into_inner()
            .leases;
        if let Some(lease) = leases.pop() {
            return lease;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "task {index} of {workload_id} was never offered (last offers: {offers:?})"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Reports `lease` OK with its input as output and `fuel`; returns whether
/// it counted.
async fn report(agent: &mut AgentClient, lease: &v1::Lease, fuel: u64) -> bool {
    agent
        .report_result(ok_report_with_fuel(&lease.lease_id, &lease.input, fuel))
        .await
        .unwrap_or_else(|status| panic!("report of {}: {status}", lease.lease_id))
        .into_inner()
        .counted
}

async fn runs_of(url: &str, workload_id: &str) -> HashMap<String, v1::TaskAttempt> {
    tasks_of(url, workload_id)
        .await
        .into_iter()
        .flat_map(|task| task.history)
        .map(|run| (run.lease_id.clone(), run))
        .collect()
}

async fn wait_until_expired(url: &str, workload_id: &str, lease: &v1::Lease) {
    eventually(
        TIMEOUT,
        POLL,
        &format!("lease {} never expired", lease.lease_id),
        String::new,
        || async { runs_of(url, workload_id).await[&lease.lease_id].state == "expired" },
    )
    .await;
}

/// What the ledger paid each lease of a workload.
async fn pays_of(url: &str, issuer_name: &str, workload_id: &str) -> HashMap<String, i64> {
    let entries = issuer(url)
        .await
        .get_ledger(v1::LedgerRequest {
            issuer: issuer_name.to_owned(),
            workload_id: workload_id.to_owned(),
            limit: 0,
        })
        .await
        .expect("ledger")
        .into_inner()
        .entries;
    let mut pays = HashMap::new();
    for entry in entries.into_iter().filter(|entry| entry.kind == "pay") {
        let previous = pays.insert(entry.lease_id.clone(), entry.amount_micro);
        assert!(previous.is_none(), "lease {} paid twice", entry.lease_id);
    }
    pays
}

/// The issue's "a retried or duplicated report, a broker crash between any
/// two steps, a reissued task — none pays twice or loses a payment", one
/// case per task of a paid workload, with hand-driven agents so every case
/// happens for sure; the whole ledger is checked after each broker restart
/// and at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_duplicated_and_late_reports_are_paid_exactly_once() {
    let EchoBroker {
        dir: _dir,
        mut broker,
        url,
        workload_id,
        submission,
    } = echo_broker(&["--lease-timeout", "1s"], 4).await;
    let (alice_token, bob_token) = (register(&url, "alice").await, register(&url, "bob").await);
    let mut alice = agent_client(&url, &alice_token).await;
    let pay = expected_pay(FUEL, CREDITS_PER_FUEL);

    // Task 0: reported, then the broker crashes (as if before its answer
    // reached the agent), and the agent retries the report — with another
    // fuel figure, which must not change what is paid.
    let retried = lease_task(&mut alice, &workload_id, 0).await;
    assert!(report(&mut alice, &retried, FUEL).await);
    broker.restart();
    assert_ledger_consistent(&url).await;
    let mut alice = agent_client(&url, &alice_token).await;
    assert!(
        report(&mut alice, &retried, 5 * FUEL).await,
        "a retried report answers as the first"
    );

    // Task 1: leased, the broker crashes before the report; the report
    // reaches the restarted broker (on a lease still active, or expired on
    // an open task: it counts either way), and is then duplicated.
    let across = lease_task(&mut alice, &workload_id, 1).await;
    broker.restart();
    assert_ledger_consistent(&url).await;
    let mut alice = agent_client(&url, &alice_token).await;
    let mut bob = agent_client(&url, &bob_token).await;
    assert!(report(&mut alice, &across, FUEL).await);
    assert!(report(&mut alice, &across, FUEL).await, "a duplicate");

    // Task 2: Alice lets her lease expire, the task is reissued to Bob, who
    // reports; Alice's late report comes after the task is done: recorded,
    // not counted, not paid.
    let expired = lease_task(&mut alice, &workload_id, 2).await;
    wait_until_expired(&url, &workload_id, &expired).await;
    let reissued = lease_task(&mut bob, &workload_id, 2).await;
    assert!(report(&mut bob, &reissued, FUEL).await);
    assert!(
        !report(&mut alice, &expired, FUEL).await,
        "a late report on a done task does not count"
    );

    // Task 3: Alice lets her lease expire and reports late while the task
    // is still open: it counts, is paid once, and a duplicate changes
    // nothing.
    let late = lease_task(&mut alice, &workload_id, 3).await;
    wait_until_expired(&url, &workload_id, &late).await;
    assert!(
        report(&mut alice, &late, FUEL).await,
        "late on an open task"
    );
    assert!(report(&mut alice, &late, FUEL).await, "a duplicate");

    let mut client = issuer(&url).await;
    let status = wasmgrid_tests::wait_until_final(&mut client, &workload_id, TIMEOUT).await;
    assert_eq!(
        status.state,
        v1::WorkloadState::Done as i32,
        "{status:?}\n{}",
        broker.log_tail()
    );
    let pays = pays_of(&url, &submission.issuer, &workload_id).await;
    let expected: HashMap<String, i64> = [&retried, &across, &reissued, &late]
        .iter()
        .map(|lease| (lease.lease_id.clone(), pay))
        .collect();
    assert_eq!(pays, expected, "one pay per task, for the counted run");
    let runs = runs_of(&url, &workload_id).await;
    assert_eq!(runs[&expired.lease_id].state, "expired");
    assert_eq!(runs[&expired.lease_id].paid_micro, 0);
    assert_eq!(
        runs[&retried.lease_id].fuel_consumed, FUEL,
        "the first report stands"
    );

    // A paid workload cancelled while a run is out: the report after the
    // cancel does not count, and the whole escrow goes back.
    let mut cancelled = echo_submission(1);
    fund(&url, &mut cancelled).await;
    let cancelled_id = cancelled.submit(&mut client).await.expect("submit");
    let orphan = lease_task(&mut alice, &cancelled_id, 0).await;
    client
        .cancel(v1::WorkloadRequest {
            workload_id: cancelled_id.clone(),
        })
        .await
        .expect("cancel");
    assert!(
        !report(&mut alice, &orphan, FUEL).await,
        "a report on a cancelled workload does not count"
    );
    assert!(
        pays_of(&url, &cancelled.issuer, &cancelled_id)
            .await
            .is_empty()
    );

    let summary = assert_ledger_consistent(&url).await;
    assert_eq!((summary.pays, summary.paid), (4, 4 * pay));
    assert_eq!(summary.final_workloads, 2);
}

/// A run cannot consume more fuel than its limit, so a report claiming more
/// is a forgery. Paid, it would take credits escrowed for the workload's
/// other runs (the escrow covers each paid run at its limit, no more), and
/// a later honest run could not be paid in full. It must be refused and
/// change nothing; the task is then paid once, for an honest report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_claiming_more_fuel_than_its_limit_is_refused_and_paid_nothing() {
    let EchoBroker {
        dir: _dir,
        broker: _broker,
        url,
        workload_id,
        submission,
    } = echo_broker(&[], 2).await;
    let mut mallory = new_agent(&url, "mallory").await;
    let mut alice = new_agent(&url, "alice").await;
    let forged = lease_task(&mut mallory, &workload_id, 0).await;
    let claimed = 2 * submission.limits.fuel;
    let answer = mallory
        .report_result(ok_report_with_fuel(
            &forged.lease_id,
            &forged.input,
            claimed,
        ))
        .await;
    let ledger = assert_ledger_consistent(&url).await;
    let error = answer.expect_err(&format!(
        "a report of {claimed} fuel, twice the limit of {}, was accepted ({} paid for it; \
         escrowed for both tasks: {})",
        submission.limits.fuel,
        ledger.paid,
        escrow_needed(&submission)
    ));
    assert_eq!(error.code(), Code::InvalidArgument, "{error}");
    assert_eq!(ledger.pays, 0, "{ledger:?}");

    // The honest reports of both tasks are paid, once each.
    assert!(report(&mut mallory, &forged, FUEL).await);
    let honest = lease_task(&mut alice, &workload_id, 1).await;
    assert!(report(&mut alice, &honest, FUEL).await);
    let mut client = issuer(&url).await;
    let status = wasmgrid_tests::wait_until_final(&mut client, &workload_id, TIMEOUT).await;
    assert_eq!(status.state, v1::WorkloadState::Done as i32, "{status:?}");
    let summary = assert_ledger_consistent(&url).await;
    assert_eq!(
        (summary.pays, summary.paid),
        (2, 2 * expected_pay(FUEL, CREDITS_PER_FUEL))
    );
}

/// Messages above the 64 MiB limit, and connections that stop halfway
/// through a frame or speak no HTTP/2 at all: each is refused or dropped
/// with nothing stored, and the broker goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_and_broken_connections_change_nothing() {
    use tokio::io::AsyncWriteExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let url = broker.url();

    // A client that would send anything: one input batch of 65 MiB.
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut unlimited = v1::issuer_service_client::IssuerServiceClient::with_interceptor(
        channel,
        wasmgrid_proto::Bearer::new(wasmgrid_tests::TEST_ADMIN_TOKEN).expect("token"),
    )
    .max_encoding_message_size(usize::MAX);
    let mut messages = echo_submission(1).messages();
    let end = messages.pop().expect("end marker");
    messages.push(v1::SubmitWorkloadRequest {
        part: Some(v1::submit_workload_request::Part::Inputs(v1::TaskInputs {
            inputs: vec![vec![7; 65 << 20]],
        })),
    });
    messages.push(end);
    let error = unlimited
        .submit_workload(tokio_stream::iter(messages))
        .await
        .expect_err("too large");
    assert!(
        matches!(
            error.code(),
            Code::InvalidArgument | Code::OutOfRange | Code::ResourceExhausted
        ),
        "{error:?}"
    );
    assert!(error.message().contains("too large"), "{error:?}");

    // Raw connections: the HTTP/2 preface and half a frame, then gone;
    // plain garbage; a connection opened and closed at once.
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let half_frame = [
        0x00, 0x40, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0xde, 0xad,
    ];
    let inputs: [&[u8]; 3] = [
        &[preface.as_slice(), &half_frame].concat(),
        b"GET / HTTP/1.1\r\n\r\n\xff\xfe",
        b"",
    ];
    for bytes in inputs {
        let mut socket = tokio::net::TcpStream::connect(broker.addr)
            .await
            .expect("connect");
        socket.write_all(bytes).await.expect("write");
        drop(socket);
    }

    // Nothing stored, and the broker still answers.
    assert_eq!(workload_count(&url).await, 0, "nothing was stored");
    echo_submission(1)
        .submit(&mut issuer(&url).await)
        .await
        .expect("a good submit goes through");
    assert_eq!(workload_count(&url).await, 1);
    assert!(
        !broker.log_tail().contains("panicked"),
        "{}",
        broker.log_tail()
    );
}

/// `ReportResults` answers each report as `ReportResult` would, in order:
/// good ones count, a repeat is acknowledged again and pays nothing more,
/// another agent's lease, an unknown lease and a malformed report are each
/// refused with their own code without holding up the others; more than
/// `MAX_REPORTS_PER_CALL` reports are refused as a whole, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_reports_are_answered_one_by_one() {
    let EchoBroker {
        dir: _dir,
        broker: _broker,
        url,
        workload_id,
        ..
    } = echo_broker(&[], 3).await;
    let mut alice = new_agent(&url, "alice").await;
    let mut bob = new_agent(&url, "bob").await;
    let offers = ask_for_work(&mut alice, 2).await.offers;
    let tasks: Vec<TaskRef> = offers
        .iter()
        .filter_map(|o| o.task.clone())
        .take(2)
        .collect();
    let leases = alice
        .accept_offers(v1::AcceptOffersRequest { tasks })
        .await
        .expect("leases")
        .into_inner()
        .leases;
    assert_eq!(leases.len(), 2);
    let bobs = ask_for_work(&mut bob, 1).await.offers;
    let bobs_lease = bob
        .accept_offers(v1::AcceptOffersRequest {
            tasks: bobs.iter().filter_map(|o| o.task.clone()).take(1).collect(),
        })
        .await
        .expect("lease")
        .into_inner()
        .leases
        .remove(0);

    let too_many = alice
        .report_results(v1::ReportResultsRequest {
            reports: (0..=wasmgrid_proto::MAX_REPORTS_PER_CALL)
                .map(|_| ok_report(&leases[0].lease_id, &leases[0].input))
                .collect(),
            work: None,
        })
        .await
        .expect_err("too many");
    assert_eq!(too_many.code(), Code::InvalidArgument);

    let mut malformed = ok_report(&leases[1].lease_id, &leases[1].input);
    malformed.usage = None;
    let outcomes = alice
        .report_results(v1::ReportResultsRequest {
            reports: vec![
                ok_report(&leases[0].lease_id, &leases[0].input),
                ok_report(&bobs_lease.lease_id, &bobs_lease.input),
                ok_report("l-unknown", b"x"),
                malformed,
                ok_report(&leases[0].lease_id, &leases[0].input),
                ok_report(&leases[1].lease_id, &leases[1].input),
            ],
            work: None,
        })
        .await
        .expect("answered")
        .into_inner()
        .outcomes;
    let codes: Vec<Code> = outcomes.iter().map(|o| Code::from(o.code)).collect();
    assert_eq!(
        codes,
        vec![
            Code::Ok,
            Code::PermissionDenied,
            Code::NotFound,
            Code::InvalidArgument,
            Code::Ok,
            Code::Ok,
        ],
        "{outcomes:?}"
    );
    assert!(outcomes[0].counted && outcomes[5].counted, "{outcomes:?}");
    // The repeat, in the same call, is acknowledged as the first report was.
    assert!(outcomes[4].counted, "{outcomes:?}");

    // Bob's own report still counts; each run is paid once.
    let bobs_report = bob
        .report_result(ok_report(&bobs_lease.lease_id, &bobs_lease.input))
        .await
        .expect("bob reports")
        .into_inner();
    assert!(bobs_report.counted);
    let tasks = tasks_of(&url, &workload_id).await;
    let done = tasks
        .iter()
        .filter(|task| task.state == v1::TaskState::Done as i32)
        .count();
    assert_eq!(done, 3, "{tasks:?}");
    for task in &tasks {
        assert_eq!(task.history.len(), 1, "{task:?}");
    }
    assert_ledger_consistent(&url).await;
}

/// Asks for up to `capacity` tasks with 1 GiB free.
async fn ask_for_work(agent: &mut AgentClient, capacity: u32) -> v1::RequestWorkResponse {
    agent
        .request_work(v1::RequestWorkRequest {
            capacity,
            free_memory_bytes: 1 << 30,
        })
        .await
        .expect("an answer")
        .into_inner()
}

/// A request for work that finds none is held (`--work-wait`) and answered
/// as soon as a workload arrives, with offers; a request whose wait ran out
/// may ask again at once; without a wait the broker answers at once and
/// says when to ask again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_agent_is_answered_as_soon_as_work_arrives() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A wait far longer than the test: only the submit can end it early.
    let broker = BrokerProcess::start(&dir.path().join("held"), &["--work-wait", "300s"]);
    let url = broker.url();
    let mut agent = new_agent(&url, "idle").await;
    let asked = tokio::spawn(async move { ask_for_work(&mut agent, 4).await });
    // Time for the request to reach the broker and find the queue empty.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!asked.is_finished(), "a request with no work waits");
    echo_submission(3)
        .submit(&mut issuer(&url).await)
        .await
        .expect("submit");
    let answer = tokio::time::timeout(TIMEOUT, asked)
        .await
        .expect("answered when the workload arrived, not when the wait ran out")
        .expect("the request task");
    assert_eq!(answer.offers.len(), 3, "every task of the new workload");

    let broker = BrokerProcess::start(&dir.path().join("short"), &["--work-wait", "200ms"]);
    let url = broker.url();
    let mut agent = new_agent(&url, "idle").await;
    let started = Instant::now();
    let answer = ask_for_work(&mut agent, 4).await;
    assert!(answer.offers.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "held for the wait"
    );
    assert_eq!(answer.retry_after_ms, 0, "it waited already");

    let broker = BrokerProcess::start(&dir.path().join("polled"), &["--work-wait", "0s"]);
    let url = broker.url();
    let mut agent = new_agent(&url, "idle").await;
    let answer = ask_for_work(&mut agent, 4).await;
    assert!(answer.offers.is_empty());
    assert_eq!(
        answer.retry_after_ms, 250,
        "ask again in a quarter of a second"
    );
}

/// Reports and work in one `ReportResults` call: `ReportResultsRequest.work`
/// is answered after the reports are stored, so it offers the tasks left;
/// a report refused on its own does not keep the work from being answered;
/// with no work left the answer comes at once (not held, however long the
/// broker's `--work-wait`) and says to ask again with `RequestWork`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_asked_with_reports_is_answered_after_them() {
    let EchoBroker {
        dir: _dir,
        broker: _broker,
        url,
        workload_id,
        ..
    } = echo_broker(&["--work-wait", "300s"], 3).await;
    let mut agent = new_agent(&url, "merged").await;
    let first = ask_for_work(&mut agent, 1).await.offers;
    let lease = agent
        .accept_offers(v1::AcceptOffersRequest {
            tasks: first
                .iter()
                .filter_map(|o| o.task.clone())
                .take(1)
                .collect(),
        })
        .await
        .expect("lease")
        .into_inner()
        .leases
        .remove(0);
    let work = Some(v1::RequestWorkRequest {
        capacity: 2,
        free_memory_bytes: 1 << 30,
    });

    let answer = agent
        .report_results(v1::ReportResultsRequest {
            reports: vec![
                ok_report(&lease.lease_id, &lease.input),
                ok_report("l-unknown", b"x"),
            ],
            work,
        })
        .await
        .expect("answered")
        .into_inner();
    let codes: Vec<Code> = answer.outcomes.iter().map(|o| Code::from(o.code)).collect();
    assert_eq!(codes, vec![Code::Ok, Code::NotFound], "{answer:?}");
    let offered: Vec<TaskRef> = answer
        .work
        .expect("the work asked for is answered")
        .offers
        .iter()
        .filter_map(|o| o.task.clone())
        .collect();
    let reported = lease.task.clone().expect("the lease's task");
    assert_eq!(offered.len(), 2, "the two tasks left: {offered:?}");
    assert!(!offered.contains(&reported), "not the task just reported");

    let leases = agent
        .accept_offers(v1::AcceptOffersRequest { tasks: offered })
        .await
        .expect("leases")
        .into_inner()
        .leases;
    assert_eq!(leases.len(), 2);
    let started = Instant::now();
    let answer = agent
        .report_results(v1::ReportResultsRequest {
            reports: leases
                .iter()
                .map(|lease| ok_report(&lease.lease_id, &lease.input))
                .collect(),
            work,
        })
        .await
        .expect("answered")
        .into_inner();
    assert!(
        answer.outcomes.iter().all(|o| o.code == 0 && o.counted),
        "{answer:?}"
    );
    let work = answer.work.expect("answered");
    assert!(work.offers.is_empty(), "nothing is left: {work:?}");
    assert_eq!(work.retry_after_ms, 0, "ask again, with RequestWork");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "not held for the broker's work wait"
    );
    let tasks = tasks_of(&url, &workload_id).await;
    assert!(
        tasks
            .iter()
            .all(|task| task.state == v1::TaskState::Done as i32 && task.history.len() == 1),
        "{tasks:?}"
    );
    assert_ledger_consistent(&url).await;
}

/// The task a report names is a hint: the lease id decides. A report naming
/// another task, or a task that does not exist, is found by its lease and
/// counts; naming its own task, another agent's lease is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_a_report_names_does_not_decide_its_lease() {
    let EchoBroker {
        dir: _dir,
        broker: _broker,
        url,
        workload_id,
        ..
    } = echo_broker(&[], 3).await;
    let mut alice = new_agent(&url, "alice").await;
    let mut mallory = new_agent(&url, "mallory").await;
    let mut leases = Vec::new();
    for index in 0..3 {
        leases.push(lease_task(&mut alice, &workload_id, index).await);
    }
    let naming = |lease: &v1::Lease, task: Option<TaskRef>| v1::ReportResultRequest {
        task,
        ..ok_report(&lease.lease_id, &lease.input)
    };

    let stolen = mallory
        .report_result(naming(&leases[0], leases[0].task.clone()))
        .await
        .expect_err("another agent's lease");
    assert_eq!(stolen.code(), Code::PermissionDenied);
    let elsewhere = alice
        .report_result(naming(&leases[0], leases[1].task.clone()))
        .await
        .expect("found by its lease")
        .into_inner();
    assert!(elsewhere.counted);
    let nowhere = TaskRef {
        workload_id: "w-unknown".into(),
        index: 7,
    };
    let unknown = alice
        .report_result(naming(&leases[1], Some(nowhere)))
        .await
        .expect("found by its lease")
        .into_inner();
    assert!(unknown.counted);
    let own = alice
        .report_result(naming(&leases[2], leases[2].task.clone()))
        .await
        .expect("its own task")
        .into_inner();
    assert!(own.counted);
    // The repeat, naming its task, is acknowledged as the first was.
    let again = alice
        .report_result(naming(&leases[2], leases[2].task.clone()))
        .await
        .expect("a repeat")
        .into_inner();
    assert!(again.counted);

    let tasks = tasks_of(&url, &workload_id).await;
    assert!(
        tasks
            .iter()
            .all(|task| task.state == v1::TaskState::Done as i32 && task.history.len() == 1),
        "{tasks:?}"
    );
    assert_ledger_consistent(&url).await;
}
