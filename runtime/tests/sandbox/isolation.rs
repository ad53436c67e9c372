//! Nothing of one task is visible to the next: memory starts zeroed even
//! when the previous task on the same thread and memory slot filled it.

use wasmgrid_runtime::{Limits, Runtime, RuntimeConfig, Status};

use crate::{sample, text};

fn probe(runtime: &Runtime, mode: &str, pages: u32) -> String {
    let input = format!(r#"{{"mode":"{mode}","pages":{pages}}}"#);
    let outcome = runtime
        .run_blocking(
            &sample("memory-probe"),
            input.into_bytes(),
            &Limits::default(),
            1,
        )
        .expect("runs");
    assert_eq!(
        outcome.status,
        Status::Ok,
        "stderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    text(&outcome)
}

fn assert_no_leak(runtime: &Runtime) {
    for round in 0..5 {
        let pages = 16 + round * 40;
        assert_eq!(probe(runtime, "fill", pages), "filled");
        assert_eq!(
            probe(runtime, "check", pages + 8),
            r#"{"nonzero":0}"#,
            "round {round}"
        );
    }
}

/// One task thread and one pool slot: every task reuses the slot the
/// previous one dirtied.
#[test]
fn memory_is_zeroed_between_tasks_in_a_recycled_pool_slot() {
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_tasks: std::num::NonZeroUsize::MIN,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    assert_no_leak(&runtime);
}

#[test]
fn memory_is_zeroed_between_tasks_without_pooling() {
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_tasks: std::num::NonZeroUsize::MIN,
        pooling: false,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    assert_no_leak(&runtime);
}
