//! The `wasmgrid-broker` binary itself: its help, the data-dir lock, and a
//! prompt shutdown even while progress streams are open.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wasmgrid_proto::submission::Workload;
use wasmgrid_proto::v1;
use wasmgrid_proto::v1::issuer_service_client::IssuerServiceClient;

const ADMIN_TOKEN: &str = "broker-binary-test-admin-token";

fn broker(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmgrid-broker"));
    command
        .args(["--insecure", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(["--admin-token", ADMIN_TOKEN])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for the broker to write its address.
fn address(data_dir: &std::path::Path, child: &mut Child) -> String {
    let started = Instant::now();
    loop {
        if let Ok(addr) = std::fs::read_to_string(data_dir.join("broker.addr")) {
            return addr;
        }
        assert!(
            child.try_wait().expect("poll").is_none(),
            "broker exited early"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "broker did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Some(status) = child.try_wait().expect("poll") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn help_explains_the_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_wasmgrid-broker"))
        .arg("--help")
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in ["--listen", "--data-dir", "--lease-timeout", "--log-format"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_progress_interval_below_ten_milliseconds_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let refused = broker(dir.path())
        .args(["--progress-interval", "0s"])
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("the interval is at least 10ms"), "{stderr}");
    assert!(
        !dir.path().join("broker.sqlite").exists(),
        "nothing is created for a refused flag"
    );
}

#[test]
fn a_second_broker_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = broker(dir.path()).spawn().expect("starts");
    address(dir.path(), &mut first);
    let second = broker(dir.path()).output().expect("runs");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another broker is running on"), "{stderr}");
    first.kill().expect("kill");
    let _ = first.wait();
}

/// The smallest runnable task: a WASI command that does nothing.
fn noop_task() -> Vec<u8> {
    wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
        .expect("wat")
}

fn submission(module: &[u8]) -> Vec<v1::SubmitWorkloadRequest> {
    Workload {
        name: "never finishes without agents".into(),
        issuer: "tester".into(),
        module: module.to_vec(),
        reducer: None,
        inputs: vec![Vec::new()],
        limits: wasmgrid_runtime::Limits::default(),
        replicas: 1,
        max_attempts: 1,
        quorum: 0,
        adaptive_replication: false,
        credits_per_fuel: 0.0,
        credits_per_mib_second: 0.0,
    }
    .into_requests()
    .expect("fits")
}

/// The client here is frozen while the test waits (one runtime thread,
/// blocked): graceful shutdown cannot complete with it, so the broker must
/// give up after its grace period rather than hang.
#[tokio::test]
async fn sigterm_stops_the_broker_even_with_a_progress_stream_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = broker(dir.path()).spawn().expect("starts");
    let url = format!("http://{}", address(dir.path(), &mut child));
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let bearer = wasmgrid_proto::Bearer::new(ADMIN_TOKEN).expect("token");
    let mut client = IssuerServiceClient::with_interceptor(channel, bearer);
    let workload_id = client
        .submit_workload(tokio_stream::iter(submission(&noop_task())))
        .await
        .expect("submitted")
        .into_inner()
        .workload_id;
    // No agent: the workload stays running, and so does this stream.
    let mut progress = client
        .watch_progress(v1::WorkloadRequest { workload_id })
        .await
        .expect("watching")
        .into_inner();
    let first = progress
        .message()
        .await
        .expect("first status")
        .expect("a status");
    assert_eq!(first.state, v1::WorkloadState::Running as i32);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal");
    let exit = wait_exit(&mut child, Duration::from_secs(10)).expect("stopped within 10 s");
    assert!(exit.success(), "{exit}");
    let ended = progress.message().await;
    assert!(!matches!(ended, Ok(Some(_))), "the stream ended: {ended:?}");
}
