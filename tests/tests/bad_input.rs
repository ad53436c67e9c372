//! Bad input of every kind gets a clear gRPC status and changes nothing:
//! a non-wasm module, an empty input set, unknown ids, a result for a lease
//! the agent does not hold, a truncated submit stream, wrong tokens.

use tonic::Code;
use wasmgrid_proto::v1::{self, TaskRef};
use wasmgrid_tests::{BrokerProcess, Submission, admin, agent_client, issuer};

async fn workload_count(url: &str) -> usize {
    admin(url)
        .await
        .list_workloads(v1::ListWorkloadsRequest {})
        .await
        .expect("list")
        .into_inner()
        .workloads
        .len()
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
        .register(v1::RegisterRequest {
            name: name.into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            cores: 1,
            memory_bytes: 1 << 30,
            slots: 1,
            version: "test".into(),
            owner: String::new(),
        })
        .await
        .expect("register")
        .into_inner()
        .token
}

fn ok_report(lease_id: &str, output: &[u8]) -> v1::ReportResultRequest {
    v1::ReportResultRequest {
        lease_id: lease_id.into(),
        status: Some(v1::TaskStatus {
            kind: v1::TaskStatusKind::Ok as i32,
            exit_code: 0,
            message: String::new(),
        }),
        output: output.to_vec(),
        stderr: Vec::new(),
        usage: Some(v1::Usage {
            fuel_consumed: 1000,
            peak_memory_bytes: 65536,
            wall_time_ms: 1,
            output_bytes: output.len() as u64,
            metering_version: wasmgrid_runtime::METERING_VERSION.into(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_touch_only_their_own_leases_and_reports_are_idempotent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let url = broker.url();
    let workload_id = echo_submission(1)
        .submit(&mut issuer(&url).await)
        .await
        .expect("submit");

    let (alice, mallory) = (
        register(&url, "alice").await,
        register(&url, "mallory").await,
    );
    let mut alice = agent_client(&url, &alice).await;
    let mut mallory = agent_client(&url, &mallory).await;
    let mut stranger = agent_client(&url, "not-a-token").await;

    let error = stranger
        .request_work(v1::RequestWorkRequest {
            capacity: 1,
            free_memory_bytes: 1 << 30,
        })
        .await
        .expect_err("unknown token");
    assert_eq!(error.code(), Code::Unauthenticated);

    let offers = alice
        .request_work(v1::RequestWorkRequest {
            capacity: 4,
            free_memory_bytes: 1 << 30,
        })
        .await
        .expect("offers")
        .into_inner()
        .offers;
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

    // Mallory cannot report, extend, release it, nor fetch its module.
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
        .report_result(ok_report(&lease.lease_id, b"something else"))
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
