//! `wasmgrid run` as a user runs it: the real binary on real sample tasks.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn wasmgrid(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmgrid"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wasmgrid starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wasmgrid finishes")
}

fn sample(name: &str) -> String {
    wasmgrid_sample_tasks::wasm(name).display().to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn runs_primes_from_an_input_file_and_reports_usage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("range.json");
    std::fs::write(&input, r#"{"start":0,"end":1000000}"#).expect("write input");
    let output = wasmgrid(
        &[
            "run",
            &sample("primes"),
            "--input",
            input.to_str().expect("utf-8"),
        ],
        b"",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "78498");
    let report = stderr(&output);
    assert!(report.contains("status       ok"), "{report}");
    assert!(report.contains("fuel "), "{report}");
    assert!(report.contains("peak memory"), "{report}");
}

#[test]
fn reads_stdin_and_prints_a_json_report() {
    let output = wasmgrid(
        &["run", &sample("echo"), "--json", "--seed", "9"],
        b"hello grid",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(output.stdout, b"hello grid");
    let report: serde_json::Value = serde_json::from_str(stderr(&output).trim()).expect("json");
    assert_eq!(report["ok"], true);
    assert_eq!(report["output_bytes"], 10);
    assert!(report["fuel_consumed"].as_u64().expect("fuel") > 0);
}

#[test]
fn a_task_that_runs_out_of_fuel_exits_with_one_and_says_so() {
    let output = wasmgrid(&["run", &sample("infinite-loop"), "--fuel", "1e7"], b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("out of fuel"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_flag() {
    let output = wasmgrid(&["run", &sample("memory-bomb"), "--memory", "32MiB"], b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("memory limit exceeded"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_module_is_a_clear_error() {
    let output = wasmgrid(&["run", "/nonexistent/task.wasm"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot read module /nonexistent/task.wasm"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_file_that_is_not_wasm_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just text").expect("write");
    let output = wasmgrid(&["run", text.to_str().expect("utf-8")], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("is not a WebAssembly module"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn garbage_after_the_wasm_header_is_an_invalid_module() {
    let garbage = wasmgrid_sample_tasks::hostile_file("garbage.wasm");
    let output = wasmgrid(&["run", garbage.to_str().expect("utf-8")], b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("invalid module"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bad_size_and_duration_syntax_are_clear_errors() {
    let output = wasmgrid(&["run", &sample("echo"), "--memory", "12XB"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("invalid size '12XB'"),
        "{}",
        stderr(&output)
    );
    let output = wasmgrid(&["run", &sample("echo"), "--timeout", "soon"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--timeout"), "{}", stderr(&output));
}

#[test]
fn limits_the_sandbox_cannot_honour_are_refused() {
    let output = wasmgrid(&["run", &sample("echo"), "--stack", "1KiB"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("invalid limits"),
        "{}",
        stderr(&output)
    );
}
