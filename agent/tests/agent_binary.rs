//! The `wasmgrid-agent` binary as a volunteer runs it, against the fake
//! broker: the flags reach the broker (`--owner`, `--min-rate`), and
//! `wasmgrid-agent earnings` shows what the agent earned, or says clearly why
//! it cannot.

mod fake_broker;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use fake_broker::{Call, FakeBroker};
use wasmgrid_agent::Identity;
use wasmgrid_proto::v1::Limits;

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

fn limits() -> Limits {
    Limits {
        memory_bytes: 16 << 20,
        fuel: 1_000_000_000_000,
        wall_time_ms: 10_000,
        max_output_bytes: 1 << 20,
        max_stack_bytes: 1 << 20,
    }
}

/// The binary, without the variables a developer's shell may set for it.
fn agent_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmgrid-agent"));
    for variable in ["WASMGRID_BROKER", "WASMGRID_OWNER", "XDG_STATE_HOME"] {
        command.env_remove(variable);
    }
    command.env("RUST_LOG", "info");
    command
}

/// A running agent process, killed when dropped (also when a test fails).
struct AgentProcess {
    child: Child,
    log: PathBuf,
}

impl AgentProcess {
    fn start(args: &[&str], log: PathBuf) -> Self {
        let log_file = File::create(&log).expect("log file");
        let child = agent_command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start wasmgrid-agent");
        AgentProcess { child, log }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- agent log ---\n{log}");
        }
    }
}

/// Runs `wasmgrid-agent earnings ARGS` to completion (off the runtime, which
/// serves the fake broker meanwhile).
async fn earnings(args: &[&str]) -> Output {
    let mut command = agent_command();
    command.arg("earnings").args(args);
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("run wasmgrid-agent earnings")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn path(dir: &Path) -> &str {
    dir.to_str().expect("UTF-8 temp path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_declines_below_min_rate_and_shows_its_earnings() {
    let broker = FakeBroker::start().await;
    broker.add_workload("cheap", &wasm(), &[b"cheap"], limits());
    broker.add_workload("dear", &wasm(), &[b"dear"], limits());
    broker.shared.update(|s| {
        for task in &mut s.queue {
            task.credits_per_fuel = if task.task.workload_id == "dear" {
                3e-6
            } else {
                1e-6
            };
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let state_dir = dir.path().join("state");
    let url = broker.url();
    let agent = AgentProcess::start(
        &[
            "--broker",
            &url,
            "--state-dir",
            path(&state_dir),
            "--name",
            "binary-agent",
            "--owner",
            "alice@example.org",
            "--memory",
            "64MiB",
            "--slots",
            "2",
            "--min-rate",
            "2e-6",
        ],
        dir.path().join("agent.log"),
    );
    broker
        .shared
        .wait_for("the dear report and a decline", |s| {
            s.reports.len() == 1 && s.calls.contains(&Call::AcceptOffers(Vec::new()))
        })
        .await;
    drop(agent);

    let (amount, fuel) = {
        let state_now = broker.shared.lock();
        assert_eq!(state_now.registrations.len(), 1);
        assert_eq!(state_now.registrations[0].owner, "alice@example.org");
        assert_eq!(state_now.registrations[0].name, "binary-agent");
        assert_eq!(state_now.reports[0].output, b"dear");
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
        assert_eq!(accepted, ["dear"], "the cheap offer is never taken");
        assert_eq!(state_now.ledger.len(), 1);
        (state_now.ledger[0].amount_micro, state_now.ledger[0].fuel)
    };
    assert!(amount > 0);
    let credits = format!("{}.{:06}", amount / 1_000_000, amount % 1_000_000);

    let output = earnings(&["--state-dir", path(&state_dir)]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("agent       agent-1\n"), "{text}");
    assert!(text.contains(&format!("broker      {url}\n")), "{text}");
    assert!(
        text.contains(&format!("balance     {credits} credits\n")),
        "{text}"
    );
    assert!(text.contains("results     1 valid, 0 invalid\n"), "{text}");
    assert!(text.contains("reputation  1.000\n"), "{text}");
    assert!(text.contains("trusted     no\n"), "{text}");
    let row = text
        .lines()
        .find(|line| line.contains(" pay "))
        .unwrap_or_else(|| panic!("a payment row: {text}"));
    assert!(row.contains(&format!(" {credits}  dear ")), "{row}");
    assert!(row.contains(&format!(" {fuel}  lease-")), "{row}");

    let output = earnings(&["--state-dir", path(&state_dir), "--json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("earnings --json prints JSON");
    assert_eq!(json["agent_id"], "agent-1");
    assert_eq!(json["balance_micro"], amount);
    assert_eq!(json["balance"], credits);
    assert_eq!(json["results_valid"], 1);
    assert_eq!(json["recent"][0]["workload_id"], "dear");
    assert_eq!(json["recent"][0]["fuel"], fuel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earnings_explains_why_it_cannot_answer() {
    let dir = tempfile::tempdir().expect("tempdir");

    // No identity yet.
    let output = earnings(&["--state-dir", path(dir.path())]).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("this agent has not registered yet; start it once with --broker"),
        "{}",
        stderr(&output)
    );

    // A broker that does not know the token.
    let broker = FakeBroker::start().await;
    Identity {
        broker: broker.url(),
        agent_id: "agent-gone".into(),
        token: "forgotten".into(),
    }
    .save(dir.path())
    .expect("save identity");
    let output = earnings(&["--state-dir", path(dir.path())]).await;
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "the broker at {} does not know this agent (agent-gone)",
            broker.url()
        )),
        "{message}"
    );

    // A broker that is not there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let output = earnings(&[
        "--state-dir",
        path(dir.path()),
        "--broker",
        &addr.to_string(),
    ])
    .await;
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(&format!("cannot reach the broker at http://{addr}")),
        "{message}"
    );

    // A token the broker knows.
    broker.shared.update(|s| {
        s.tokens.insert("forgotten".into());
        s.trusted = true;
    });
    let output = earnings(&["--state-dir", path(dir.path())]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("balance     0.000000 credits\n"), "{text}");
    assert!(text.contains("trusted     yes\n"), "{text}");
    assert!(text.ends_with("no payments yet\n"), "{text}");
}

fn wasm() -> Vec<u8> {
    wat::parse_str(ECHO_WAT).expect("valid wat")
}
