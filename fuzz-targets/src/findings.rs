//! Panics anywhere in the process, and suspicious errors.
//!
//! The runtime catches a panic on its task threads (the task's caller gets
//! `TaskPanicked`), and tokio keeps a spawned task's panic in its join
//! handle: neither would reach a fuzzer. A panic hook records every panic,
//! on any thread, and each target ends with [`check`], which raises the
//! recorded ones on the calling thread. Under libFuzzer the hook that
//! `libfuzzer-sys` installed first (it aborts) still runs after ours.
//!
//! A gRPC `INTERNAL` status answered to a fuzzed request is suspicious (a
//! store or host failure provoked by a client) but not a crash: such
//! statuses are kept for [`take_internal`], and are findings only when
//! `WASMGRID_FUZZ_INTERNAL_IS_FINDING=1` is set.

use std::backtrace::Backtrace;
use std::collections::BTreeMap;
use std::sync::{Mutex, Once, OnceLock, PoisonError};

static HOOK: Once = Once::new();
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INTERNAL: Mutex<Vec<String>> = Mutex::new(Vec::new());
static ANSWERS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// Most `INTERNAL` statuses kept between two [`take_internal`] calls.
const MAX_INTERNAL_KEPT: usize = 64;

/// Installs the recording panic hook (once), in front of the current one.
pub fn install() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let report = format!(
                "thread '{}' {info}\nbacktrace:\n{}",
                thread.name().unwrap_or("<unnamed>"),
                Backtrace::force_capture()
            );
            lock(&PANICS).push(report);
            previous(info);
        }));
    });
}

/// The panics recorded since the last call, with their backtraces.
pub fn take_panics() -> Vec<String> {
    std::mem::take(&mut *lock(&PANICS))
}

/// Raises, on the calling thread, any panic recorded on another thread.
pub fn check() {
    let panics = take_panics();
    if !panics.is_empty() {
        panic!(
            "{} panic(s) on other threads during this input:\n{}",
            panics.len(),
            panics.join("\n")
        );
    }
}

/// Records an `INTERNAL` status answered by `rpc`.
pub(crate) fn internal(rpc: &str, message: &str) {
    let report = format!("{rpc}: INTERNAL: {message}");
    if internal_is_finding() {
        panic!("{report}");
    }
    let mut kept = lock(&INTERNAL);
    if kept.len() < MAX_INTERNAL_KEPT {
        kept.push(report);
    }
}

/// The `INTERNAL` statuses recorded since the last call.
pub fn take_internal() -> Vec<String> {
    std::mem::take(&mut *lock(&INTERNAL))
}

/// Counts an outcome: an RPC's answer (`"ReportResult Ok"`), how a module
/// ended (`"module: out of fuel"`).
pub(crate) fn tally(outcome: String) {
    *lock(&ANSWERS).entry(outcome).or_default() += 1;
}

/// How often each outcome happened since the last call: how deep the
/// inputs got.
pub fn take_answers() -> BTreeMap<String, u64> {
    std::mem::take(&mut *lock(&ANSWERS))
}

fn internal_is_finding() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| {
        std::env::var("WASMGRID_FUZZ_INTERNAL_IS_FINDING").is_ok_and(|value| value == "1")
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
