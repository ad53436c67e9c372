//! The issuer commands' own errors, with the real binary: everything that
//! must be caught before (or instead of) talking to a broker. Runs against
//! a real broker and agents are in `ledger_commands.rs` and the workspace's
//! `tests/`.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

/// The smallest valid module header: what `submit` checks before uploading.
const WASM_HEADER: &[u8] = b"\0asm\x01\0\0\0";

fn wasmgrid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmgrid"))
        .args(args)
        .env_remove("WASMGRID_BROKER")
        .output()
        .expect("wasmgrid runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn path(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A URL where nothing listens: a port the OS handed out, then closed.
fn closed_broker_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn assert_exit_2_saying(output: &Output, expected: &str) {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    assert!(
        stderr(output).contains(expected),
        "expected '{expected}' in: {}",
        stderr(output)
    );
}

#[test]
fn submit_refuses_a_missing_module_before_contacting_a_broker() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("0"), "{}").expect("write input");
    let broker = closed_broker_url();
    let output = wasmgrid(&[
        "submit",
        "/nonexistent/task.wasm",
        "--inputs",
        path(dir.path()),
        "--broker",
        &broker,
    ]);
    assert_exit_2_saying(&output, "cannot read module /nonexistent/task.wasm");
}

#[test]
fn submit_refuses_a_module_or_reducer_that_is_not_wasm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inputs = dir.path().join("inputs.jsonl");
    std::fs::write(&inputs, "{}\n").expect("write inputs");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just text").expect("write");
    let module = dir.path().join("task.wasm");
    std::fs::write(&module, WASM_HEADER).expect("write");
    let broker = closed_broker_url();

    let output = wasmgrid(&[
        "submit",
        path(&text),
        "--inputs",
        path(&inputs),
        "--broker",
        &broker,
    ]);
    assert_exit_2_saying(&output, "is not a WebAssembly module");

    let output = wasmgrid(&[
        "submit",
        path(&module),
        "--inputs",
        path(&inputs),
        "--reducer",
        path(&text),
        "--broker",
        &broker,
    ]);
    assert_exit_2_saying(&output, "is not a WebAssembly module");
}

#[test]
fn submit_refuses_an_empty_inputs_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let module = dir.path().join("task.wasm");
    std::fs::write(&module, WASM_HEADER).expect("write");
    let inputs = dir.path().join("inputs");
    std::fs::create_dir(&inputs).expect("mkdir");
    let broker = closed_broker_url();
    let output = wasmgrid(&[
        "submit",
        path(&module),
        "--inputs",
        path(&inputs),
        "--broker",
        &broker,
    ]);
    assert_exit_2_saying(&output, "no task inputs");
}

#[test]
fn submit_refuses_limits_no_agent_could_honour() {
    let dir = tempfile::tempdir().expect("temp dir");
    let module = dir.path().join("task.wasm");
    std::fs::write(&module, WASM_HEADER).expect("write");
    let inputs = dir.path().join("inputs.jsonl");
    std::fs::write(&inputs, "{}\n").expect("write inputs");
    let broker = closed_broker_url();
    let output = wasmgrid(&[
        "submit",
        path(&module),
        "--inputs",
        path(&inputs),
        "--stack",
        "1KiB",
        "--broker",
        &broker,
    ]);
    assert_exit_2_saying(&output, "invalid limits");
}

#[test]
fn a_valid_submit_to_a_closed_port_says_the_broker_cannot_be_reached() {
    let dir = tempfile::tempdir().expect("temp dir");
    let module = dir.path().join("task.wasm");
    std::fs::write(&module, WASM_HEADER).expect("write");
    let inputs = dir.path().join("inputs.jsonl");
    std::fs::write(&inputs, "{}\n{}\n").expect("write inputs");
    let broker = closed_broker_url();
    let output = wasmgrid(&[
        "submit",
        path(&module),
        "--inputs",
        path(&inputs),
        "--broker",
        &broker,
    ]);
    assert_exit_2_saying(&output, &format!("cannot reach the broker at {broker}"));
    assert!(output.stdout.is_empty());
}

#[test]
fn every_broker_command_says_when_the_broker_cannot_be_reached() {
    let broker = closed_broker_url();
    for command in [
        &["status", "w-1"][..],
        &["status", "w-1", "--tasks"],
        &["wait", "w-1"],
        &["results", "w-1"],
        &["cancel", "w-1"],
        &["agents"],
        &["workloads"],
        &["balance", "--issuer", "alice"],
        &["ledger", "--issuer", "alice"],
        &["ledger", "--workload", "w-1"],
        &["grant", "--issuer", "alice", "10"],
    ] {
        let mut args = command.to_vec();
        args.extend(["--broker", &broker]);
        let output = wasmgrid(&args);
        assert_exit_2_saying(&output, &format!("cannot reach the broker at {broker}"));
    }
}

#[test]
fn the_broker_url_comes_from_the_environment_too() {
    let broker = closed_broker_url();
    let output = Command::new(env!("CARGO_BIN_EXE_wasmgrid"))
        .args(["status", "w-1"])
        .env("WASMGRID_BROKER", &broker)
        .output()
        .expect("wasmgrid runs");
    assert_exit_2_saying(&output, &format!("cannot reach the broker at {broker}"));
}

#[test]
fn demo_says_what_to_build_when_binaries_or_modules_are_missing() {
    let bin_dir = tempfile::tempdir().expect("temp dir");
    let output = wasmgrid(&["demo", "--bin-dir", path(bin_dir.path())]);
    assert_exit_2_saying(&output, "cannot find wasmgrid-broker");
    assert!(stderr(&output).contains("cargo build -p wasmgrid-broker"));

    for name in ["wasmgrid-broker", "wasmgrid-agent"] {
        let file = bin_dir
            .path()
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        std::fs::write(file, "").expect("write");
    }
    let tasks_dir = tempfile::tempdir().expect("temp dir");
    let output = wasmgrid(&[
        "demo",
        "--bin-dir",
        path(bin_dir.path()),
        "--tasks-dir",
        path(tasks_dir.path()),
    ]);
    assert_exit_2_saying(&output, "cannot find primes.wasm");
    assert!(stderr(&output).contains("cargo sample-tasks"));
}

#[test]
fn help_explains_every_submit_flag() {
    let output = wasmgrid(&["submit", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--inputs",
        "--reducer",
        "--memory",
        "--fuel",
        "--timeout",
        "--max-output",
        "--stack",
        "--replicas",
        "--max-attempts",
        "--name",
        "--issuer",
        "--credits-per-fuel",
        "--quorum",
        "--adaptive",
        "--credits-per-mib-second",
        "--broker",
        "WASMGRID_BROKER",
        "WASMGRID_ISSUER",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn help_explains_the_credit_commands() {
    for (command, flags) in [
        (
            &["balance", "--help"][..],
            &["--issuer", "--json", "--broker", "WASMGRID_ISSUER"][..],
        ),
        (
            &["ledger", "--help"],
            &["--issuer", "--workload", "--limit", "--json", "--broker"],
        ),
        (
            &["grant", "--help"],
            &[
                "--issuer",
                "<AMOUNT>",
                "--memo",
                "--json",
                "at most 6",
                "--broker",
            ],
        ),
        (&["agents", "--help"], &["--wide", "--json"]),
        (&["--help"], &["balance", "ledger", "grant"]),
    ] {
        let output = wasmgrid(command);
        assert!(output.status.success(), "{command:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        for flag in flags {
            assert!(
                help.contains(flag),
                "{flag} missing from {command:?}:\n{help}"
            );
        }
    }
}

#[test]
fn grant_refuses_bad_amounts_before_contacting_a_broker() {
    let broker = closed_broker_url();
    for (amount, expected) in [
        ("-5", "cannot be negative"),
        ("-0.5", "cannot be negative"),
        ("0", "above zero"),
        ("0.000000", "above zero"),
        ("1.0000001", "at most 6 decimals"),
        ("12.5 credits", "not a credit amount"),
        ("1e6", "not a credit amount"),
        ("abc", "not a credit amount"),
        ("", "not a credit amount"),
        ("9223372036855", "too large"),
    ] {
        let output = wasmgrid(&["grant", "--issuer", "alice", amount, "--broker", &broker]);
        assert_exit_2_saying(&output, expected);
        assert!(
            !stderr(&output).contains("cannot reach the broker"),
            "'{amount}' was sent: {}",
            stderr(&output)
        );
    }
    let output = wasmgrid(&["grant", "1", "--broker", &broker]);
    assert_exit_2_saying(&output, "--issuer");
    // A valid amount gets as far as the (closed) broker.
    let output = wasmgrid(&[
        "grant", "--issuer", "alice", "0.000001", "--broker", &broker,
    ]);
    assert_exit_2_saying(&output, "cannot reach the broker");
}

#[test]
fn submit_checks_quorum_and_adaptive_against_replicas() {
    let dir = tempfile::tempdir().expect("temp dir");
    let module = dir.path().join("task.wasm");
    std::fs::write(&module, WASM_HEADER).expect("write");
    let inputs = dir.path().join("inputs.jsonl");
    std::fs::write(&inputs, "{}\n").expect("write inputs");
    let broker = closed_broker_url();
    let submit = |extra: &[&str]| {
        let mut args = vec![
            "submit",
            path(&module),
            "--inputs",
            path(&inputs),
            "--broker",
            &broker,
        ];
        args.extend(extra);
        wasmgrid(&args)
    };
    assert_exit_2_saying(
        &submit(&["--replicas", "2", "--quorum", "3"]),
        "--quorum 3 is above --replicas 2",
    );
    assert_exit_2_saying(&submit(&["--quorum", "0"]), "--quorum");
    assert_exit_2_saying(&submit(&["--adaptive"]), "--adaptive needs --replicas 2");
    assert_exit_2_saying(&submit(&["--credits-per-mib-second=-1"]), "invalid rate");
    assert_exit_2_saying(
        &submit(&["--replicas", "3", "--quorum", "2", "--adaptive"]),
        "cannot reach the broker",
    );
}
