//! Compiled modules are cached on disk and reused by a new runtime; a
//! corrupt cache file is recompiled, never run.

use std::path::Path;

use wasmgrid_runtime::{Limits, Runtime, RuntimeConfig, Status};

use crate::{sample, text};

fn runtime_with_cache(dir: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn cached_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("cache dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    files.sort();
    files
}

fn count_primes(runtime: &Runtime) -> String {
    let outcome = runtime
        .run_blocking(
            &sample("primes"),
            br#"{"start":0,"end":100000}"#.to_vec(),
            &Limits::default(),
            1,
        )
        .expect("runs");
    assert_eq!(outcome.status, Status::Ok);
    text(&outcome)
}

#[test]
fn a_new_runtime_reuses_the_compiled_module_from_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert_eq!(count_primes(&runtime_with_cache(dir.path())), "9592");
    let files = cached_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let written = std::fs::metadata(&files[0])
        .expect("meta")
        .modified()
        .expect("mtime");

    assert_eq!(count_primes(&runtime_with_cache(dir.path())), "9592");
    let after = std::fs::metadata(&files[0])
        .expect("meta")
        .modified()
        .expect("mtime");
    assert_eq!(written, after, "a valid artifact is loaded, not rewritten");
}

#[test]
fn a_corrupt_cache_file_is_recompiled_not_trusted() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert_eq!(count_primes(&runtime_with_cache(dir.path())), "9592");
    let file = cached_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&file).expect("read");
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 64] {
        *byte ^= 0xff;
    }
    std::fs::write(&file, &bytes).expect("corrupt it");

    assert_eq!(count_primes(&runtime_with_cache(dir.path())), "9592");
    assert_ne!(std::fs::read(&file).expect("read"), bytes, "rewritten");

    std::fs::write(&file, b"short").expect("truncate it");
    assert_eq!(count_primes(&runtime_with_cache(dir.path())), "9592");
}

#[tokio::test]
async fn prepare_compiles_ahead_and_reports_invalid_modules() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = runtime_with_cache(dir.path());
    let limits = Limits::default();
    let module = sample("echo");
    assert!(!runtime.is_prepared(&module, &limits));
    runtime.prepare(&module, &limits).await.expect("valid");
    assert!(runtime.is_prepared(&module, &limits));
    let garbage = wasmgrid_runtime::TaskModule::new(b"\0asm\x01\0\0\0garbage".to_vec());
    let error = runtime
        .prepare(&garbage, &limits)
        .await
        .expect_err("invalid");
    assert!(error.to_string().starts_with("invalid module"), "{error}");
}

/// `check` (the broker's check at submit) refuses what a run refuses, with
/// the same reason, and compiles nothing: neither in memory nor on disk.
#[tokio::test]
async fn check_refuses_what_runs_refuse_without_compiling() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = runtime_with_cache(dir.path());
    let limits = crate::tight_limits();
    for name in ["primes", "sum-u64", "memory-bomb", "deep-recursion"] {
        let module = sample(name);
        runtime.check(&module, &limits).await.expect(name);
        assert!(!runtime.is_prepared(&module, &limits), "{name} compiled");
    }
    assert!(
        cached_files(dir.path()).is_empty(),
        "nothing written to disk"
    );
    for file in [
        "garbage.wasm",
        "not-a-command.wat",
        "unknown-import.wat",
        "start-section-loop.wat",
    ] {
        let module = crate::hostile_file(file);
        let Err(wasmgrid_runtime::RuntimeError::InvalidModule(checked)) =
            runtime.check(&module, &limits).await
        else {
            panic!("{file} passed the check");
        };
        let outcome = runtime
            .run(&module, Vec::new(), &limits, 1)
            .await
            .expect("the host runs it");
        assert_eq!(outcome.status, Status::InvalidModule(checked), "{file}");
    }
}
