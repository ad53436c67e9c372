//! Every fuzz target on stable Rust: over its seeds, the regression inputs
//! in `fuzz-targets/regressions/<target>/`, and a fixed number of
//! deterministic pseudo-random and mutated inputs. A panic on any thread, or
//! an input slower than [`SLOW`], fails the test; the input is saved and
//! printed. See `docs/fuzzing.md`.
//!
//! Environment:
//! - `WASMGRID_FUZZ_ITERATIONS=N`: generated inputs per target instead of
//!   the defaults (sized to keep the whole test under 20 s in debug).
//! - `WASMGRID_FUZZ_CORPUS=DIR`: also run every file of `DIR/<target>/`
//!   (e.g. `fuzz/corpus` after a `cargo fuzz` run, or its `artifacts`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmgrid_fuzz_targets::mutate::{self, Rng};
use wasmgrid_fuzz_targets::{TARGETS, Target, findings, seeds};

/// Generated inputs per target, by default.
const ITERATIONS: &[(&str, usize)] = &[
    ("module_loading", 4000),
    ("request_decoding", 100_000),
    ("agent_service", 15_000),
    ("issuer_service", 10_000),
    ("admin_service", 5000),
    ("submit_workload", 8000),
];

/// One input taking longer than this is a finding (a hang, or close).
const SLOW: Duration = Duration::from_secs(10);
/// One input still running after this is a hang: the input is printed and
/// saved, and the process aborts (nothing else can stop it).
const HANG: Duration = Duration::from_secs(60);
/// Failures reported per target before the rest is skipped.
const MAX_FAILURES: usize = 5;

#[test]
fn module_loading() {
    fuzz("module_loading");
}

#[test]
fn request_decoding() {
    fuzz("request_decoding");
}

#[test]
fn agent_service() {
    fuzz("agent_service");
}

#[test]
fn issuer_service() {
    fuzz("issuer_service");
}

#[test]
fn admin_service() {
    fuzz("admin_service");
}

#[test]
fn submit_workload() {
    fuzz("submit_workload");
}

#[test]
fn every_target_is_tested_and_seeded() {
    let tested: Vec<&str> = ITERATIONS.iter().map(|(name, _)| *name).collect();
    let targets: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(tested, targets);
    for name in targets {
        assert!(!seeds::for_target(name).is_empty(), "{name} has no seeds");
    }
}

/// Runs `name` over all its inputs and fails with every finding.
fn fuzz(name: &str) {
    let target = wasmgrid_fuzz_targets::target(name).expect("a known target");
    let mut seeds = seeds::for_target(name);
    seeds.extend(
        seeds::repository_files(name)
            .into_iter()
            .map(|(_, bytes)| bytes),
    );
    let mut fixed: Vec<(String, Vec<u8>)> = seeds
        .iter()
        .enumerate()
        .map(|(index, seed)| (format!("seed {index}"), seed.clone()))
        .collect();
    fixed.extend(files(
        &seeds::repository_root()
            .join("fuzz-targets/regressions")
            .join(name),
    ));
    if let Some(corpus) = std::env::var_os("WASMGRID_FUZZ_CORPUS") {
        fixed.extend(files(&PathBuf::from(corpus).join(name)));
    }
    if name == "module_loading" {
        fixed.extend(sample_task_modules());
    }
    let iterations = std::env::var("WASMGRID_FUZZ_ITERATIONS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| {
            ITERATIONS
                .iter()
                .find(|(target, _)| *target == name)
                .map_or(1000, |(_, iterations)| *iterations)
        });

    let started = Instant::now();
    let mut failures = Vec::new();
    let mut rng = Rng::from_name(name);
    let generated = (0..iterations).map(|index| {
        (
            format!("generated {index}"),
            mutate::generate(&mut rng, &seeds),
        )
    });
    let total = fixed.len() + iterations;
    for (label, input) in fixed.into_iter().chain(generated) {
        if let Some(failure) = run_one(name, target, &label, &input) {
            failures.push(failure);
            if failures.len() == MAX_FAILURES {
                break;
            }
        }
    }
    let internal = findings::take_internal();
    eprintln!(
        "{name}: {total} inputs in {:.1?}, {} failure(s), {} INTERNAL status(es)",
        started.elapsed(),
        failures.len(),
        internal.len()
    );
    for status in internal.iter().take(10) {
        eprintln!("  {status}");
    }
    if std::env::var_os("WASMGRID_FUZZ_VERBOSE").is_some() {
        // Shared by the targets that run at once: run one target alone
        // (`cargo test … -- agent_service`) for its own figures.
        for (answer, count) in findings::take_answers() {
            eprintln!("  {answer}: {count}");
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} finding(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// One input; a description of the finding, if it is one.
fn run_one(name: &str, target: Target, label: &str, input: &[u8]) -> Option<String> {
    let started = Instant::now();
    watchdog::watch(name, label, input);
    let result = catch_unwind(AssertUnwindSafe(|| target(input)));
    watchdog::done();
    let elapsed = started.elapsed();
    let panics = findings::take_panics();
    let what = if result.is_err() || !panics.is_empty() {
        format!("panicked:\n{}", panics.join("\n"))
    } else if elapsed > SLOW {
        format!("took {elapsed:.1?} (more than {SLOW:?})")
    } else {
        return None;
    };
    let saved = save(name, input);
    Some(format!(
        "{name} / {label}: {what}\ninput ({} bytes, saved to {}): {}",
        input.len(),
        saved.display(),
        shown(input)
    ))
}

/// Saves a finding's input where it can be copied to `regressions/`.
fn save(name: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fuzz-findings")
        .join(name);
    let path = dir.join(&hex::encode(Sha256::digest(input))[..16]);
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input));
    path
}

fn shown(input: &[u8]) -> String {
    const SHOWN: usize = 512;
    let hex = hex::encode(&input[..input.len().min(SHOWN)]);
    if input.len() > SHOWN {
        format!("{hex}…")
    } else {
        hex
    }
}

/// Every file of `dir`, sorted, labelled by its path; none if it is absent.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    paths.retain(|path| path.is_file() && !is_note(path));
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| Some((path.display().to_string(), std::fs::read(&path).ok()?)))
        .collect()
}

/// Notes beside regression inputs (`README.md`) are not inputs.
fn is_note(path: &Path) -> bool {
    path.extension().is_some_and(|extension| extension == "md")
}

/// The built sample tasks (`./dev.sh` builds them before the tests; absent
/// otherwise), run as they are.
fn sample_task_modules() -> Vec<(String, Vec<u8>)> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                seeds::repository_root().join(dir)
            }
        })
        .unwrap_or_else(|| seeds::repository_root().join("target"));
    let mut modules = files(&target_dir.join("wasm32-wasip1/release"));
    modules.retain(|(path, _)| path.ends_with(".wasm"));
    modules
}

/// Aborts the process on an input that hangs, after saying which.
mod watchdog {
    use std::sync::{Mutex, Once, PoisonError};
    use std::thread::ThreadId;
    use std::time::Instant;

    use super::{HANG, save, shown};

    struct Running {
        thread: ThreadId,
        target: String,
        label: String,
        input: Vec<u8>,
        since: Instant,
    }

    static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());
    static STARTED: Once = Once::new();

    pub(super) fn watch(target: &str, label: &str, input: &[u8]) {
        STARTED.call_once(|| {
            std::thread::spawn(|| {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    let running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(hung) = running.iter().find(|run| run.since.elapsed() > HANG) {
                        let saved = save(&hung.target, &hung.input);
                        eprintln!(
                            "{} / {}: still running after {HANG:?}: a hang. Input ({} bytes, \
                             saved to {}): {}",
                            hung.target,
                            hung.label,
                            hung.input.len(),
                            saved.display(),
                            shown(&hung.input)
                        );
                        std::process::abort();
                    }
                }
            });
        });
        RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Running {
                thread: std::thread::current().id(),
                target: target.to_owned(),
                label: label.to_owned(),
                input: input.to_vec(),
                since: Instant::now(),
            });
    }

    pub(super) fn done() {
        let me = std::thread::current().id();
        RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|run| run.thread != me);
    }
}
