//! Every hostile or broken module ends in its status; the host survives and
//! keeps running tasks afterwards.

use std::time::Duration;

use wasmgrid_runtime::{Limits, Status, TaskModule};

use crate::{hostile_file, run, sample, text, tight_limits};

fn assert_host_still_works() {
    let outcome = run(&sample("echo"), "still alive", &Limits::default());
    assert_eq!(text(&outcome), "still alive");
}

#[test]
fn infinite_loop_runs_out_of_fuel_exactly_at_the_limit() {
    let limits = Limits {
        fuel: 50_000_000,
        ..tight_limits()
    };
    let outcome = run(&sample("infinite-loop"), "", &limits);
    assert_eq!(outcome.status, Status::OutOfFuel);
    assert_eq!(outcome.usage.fuel_consumed, 50_000_000);
    assert_host_still_works();
}

#[test]
fn infinite_loop_without_enough_fuel_limit_hits_the_wall_clock() {
    let limits = Limits {
        fuel: wasmgrid_runtime::MAX_FUEL,
        wall_time: Duration::from_millis(300),
        ..tight_limits()
    };
    let outcome = run(&sample("infinite-loop"), "", &limits);
    assert_eq!(outcome.status, Status::Timeout);
    assert!(outcome.usage.wall_time >= Duration::from_millis(300));
    assert!(
        outcome.usage.wall_time < Duration::from_secs(5),
        "{:?}",
        outcome.usage
    );
    assert_host_still_works();
}

/// Without metering (a benchmark-only mode) the task yields at epoch ticks
/// instead of fuel slices; the wall-time limit must hold there too.
#[test]
fn an_unmetered_infinite_loop_still_hits_the_wall_clock() {
    let runtime = wasmgrid_runtime::Runtime::new(wasmgrid_runtime::RuntimeConfig {
        fuel_metering: false,
        pooling: false,
        ..wasmgrid_runtime::RuntimeConfig::default()
    })
    .expect("runtime starts");
    let limits = Limits {
        wall_time: Duration::from_millis(300),
        ..tight_limits()
    };
    let outcome = runtime
        .run_blocking(&sample("infinite-loop"), Vec::new(), &limits, 1)
        .expect("runs");
    assert_eq!(outcome.status, Status::Timeout);
    assert_eq!(outcome.usage.fuel_consumed, 0);
    assert!(outcome.usage.wall_time >= Duration::from_millis(300));
    assert!(
        outcome.usage.wall_time < Duration::from_secs(5),
        "{:?}",
        outcome.usage
    );
}

#[test]
fn work_hidden_in_host_calls_is_charged_fuel() {
    let limits = Limits {
        fuel: 100_000_000,
        ..tight_limits()
    };
    let outcome = run(&sample("hostcall-loop"), "", &limits);
    assert_eq!(outcome.status, Status::OutOfFuel);
    assert_eq!(outcome.usage.fuel_consumed, 100_000_000);
}

#[test]
fn memory_bomb_stops_at_the_cap() {
    let outcome = run(&sample("memory-bomb"), "", &tight_limits());
    assert_eq!(outcome.status, Status::MemoryLimit);
    assert!(
        outcome.usage.peak_memory_bytes <= 64 << 20,
        "{:?}",
        outcome.usage
    );
    assert!(
        outcome.usage.peak_memory_bytes > 32 << 20,
        "{:?}",
        outcome.usage
    );
    assert_host_still_works();
}

#[test]
fn initial_memory_above_the_cap_is_a_memory_limit() {
    // 2 GiB of initial memory against a 64 MiB cap.
    let module = TaskModule::new(
        wat::parse_str(r#"(module (memory 32768) (func (export "_start")))"#).expect("wat"),
    );
    assert_eq!(
        run(&module, "", &tight_limits()).status,
        Status::MemoryLimit
    );
}

#[test]
fn table_bomb_stops_at_the_table_cap() {
    let outcome = run(&hostile_file("table-bomb.wat"), "", &tight_limits());
    assert_eq!(outcome.status, Status::MemoryLimit);
}

/// Rust keeps its own stack in linear memory, with a guard: deep Rust
/// recursion ends there (an out-of-bounds access) before the wasm stack.
#[test]
fn deep_rust_recursion_traps_cleanly() {
    let outcome = run(&sample("deep-recursion"), "", &tight_limits());
    assert!(
        matches!(&outcome.status, Status::Trap(msg) if msg.contains("stack") || msg.contains("out of bounds")),
        "{:?}",
        outcome.status
    );
    assert_host_still_works();
}

/// Recursion on the wasm stack itself hits the engine's stack cap, for the
/// smallest and the largest stack class.
#[test]
fn native_stack_overflow_traps_with_stack_exhausted() {
    for max_stack_bytes in [
        wasmgrid_runtime::MIN_STACK_BYTES,
        wasmgrid_runtime::MAX_STACK_BYTES,
    ] {
        let limits = Limits {
            max_stack_bytes,
            ..tight_limits()
        };
        let outcome = run(&hostile_file("native-stack-overflow.wat"), "", &limits);
        assert_eq!(
            outcome.status,
            Status::Trap("call stack exhausted".into()),
            "{max_stack_bytes}"
        );
    }
    assert_host_still_works();
}

#[test]
fn huge_output_stops_at_the_output_cap() {
    let outcome = run(&sample("huge-output"), "", &tight_limits());
    assert_eq!(outcome.status, Status::OutputLimit);
    assert!(outcome.output.len() <= 1 << 20);
}

#[test]
fn unreachable_is_a_trap() {
    let outcome = run(&sample("trap"), "", &tight_limits());
    assert!(
        matches!(&outcome.status, Status::Trap(msg) if msg.contains("unreachable")),
        "{:?}",
        outcome.status
    );
}

#[test]
fn a_rust_panic_is_a_trap_with_its_message_on_stderr() {
    let outcome = run(&sample("panic"), "", &tight_limits());
    assert!(
        matches!(outcome.status, Status::Trap(_)),
        "{:?}",
        outcome.status
    );
    assert!(String::from_utf8_lossy(&outcome.stderr).contains("panicked"));
}

#[test]
fn garbage_bytes_are_an_invalid_module() {
    let outcome = run(&hostile_file("garbage.wasm"), "", &tight_limits());
    assert!(
        matches!(outcome.status, Status::InvalidModule(_)),
        "{:?}",
        outcome.status
    );
    let empty = run(&TaskModule::new(Vec::new()), "", &tight_limits());
    assert!(matches!(empty.status, Status::InvalidModule(_)));
    assert_host_still_works();
}

#[test]
fn a_module_that_is_not_a_command_is_invalid() {
    let outcome = run(&hostile_file("not-a-command.wat"), "", &tight_limits());
    assert!(
        matches!(&outcome.status, Status::InvalidModule(msg) if msg.contains("_start")),
        "{:?}",
        outcome.status
    );
}

#[test]
fn an_import_we_do_not_provide_is_invalid() {
    let outcome = run(&hostile_file("unknown-import.wat"), "", &tight_limits());
    assert!(
        matches!(&outcome.status, Status::InvalidModule(msg) if msg.contains("launch_missiles")),
        "{:?}",
        outcome.status
    );
}

#[test]
fn a_start_function_is_refused_before_it_runs() {
    let outcome = run(&hostile_file("start-section-loop.wat"), "", &tight_limits());
    assert!(
        matches!(&outcome.status, Status::InvalidModule(msg) if msg.contains("start function")),
        "{:?}",
        outcome.status
    );
    assert!(outcome.usage.wall_time < Duration::from_secs(1));
}

#[test]
fn files_sockets_env_and_args_are_all_out_of_reach() {
    let outcome = run(&sample("escape-attempts"), "", &tight_limits());
    assert_eq!(
        outcome.status,
        Status::Ok,
        "stderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&outcome.output).expect("json report");
    let attempts = report.as_object().expect("an object");
    assert!(attempts.len() >= 8, "{report}");
    for (attempt, result) in attempts {
        match attempt.as_str() {
            "args" => assert_eq!(result, &serde_json::json!(["task"])),
            "env_count" => assert_eq!(result, &serde_json::json!(0)),
            _ => assert!(
                result.as_str().is_some_and(|r| r.starts_with("error")),
                "{attempt} succeeded: {result}"
            ),
        }
    }
}
