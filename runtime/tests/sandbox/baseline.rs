//! The baseline compiler (Winch), as the broker runs reducers with it: the
//! same outputs and statuses as Cranelift, for sample tasks and hostile
//! modules alike, under fuel rules of its own that its outcomes name; and a
//! module Winch cannot compile runs on Cranelift instead.

use std::sync::OnceLock;

use wasmgrid_kernels::mandelbrot::MandelbrotTile;
use wasmgrid_runtime::{
    BASELINE_METERING_VERSION, Compiler, Limits, METERING_VERSION, Outcome, Runtime, RuntimeConfig,
    Status, TaskModule,
};

use crate::{hostile_file, run, sample, text, tight_limits};

fn baseline_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            compiler: Compiler::Baseline,
            ..RuntimeConfig::default()
        })
        .expect("runtime starts")
    })
}

fn run_baseline(module: &TaskModule, input: impl Into<Vec<u8>>, limits: &Limits) -> Outcome {
    baseline_runtime()
        .run_blocking(module, input.into(), limits, 1)
        .expect("the host runs the task")
}

/// Winch compiles for x86-64 only; elsewhere the runtime falls back to
/// Cranelift, and every outcome says so.
fn expected_baseline_version() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        BASELINE_METERING_VERSION
    } else {
        METERING_VERSION
    }
}

#[test]
fn sample_tasks_and_the_reducer_give_cranelifts_outputs() {
    let tile = MandelbrotTile {
        width: 64,
        height: 64,
        x0: -2.0,
        y0: -1.5,
        x1: 1.0,
        y1: 1.5,
        tile_x: 0,
        tile_y: 0,
        tile_w: 64,
        tile_h: 64,
        max_iter: 200,
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("primes", br#"{"start":0,"end":1000000}"#.to_vec()),
        ("nqueens", br#"{"n":8,"prefix":[]}"#.to_vec()),
        // Floats: NaN canonicalisation holds under Winch too.
        ("mandelbrot", serde_json::to_vec(&tile).expect("json")),
        (
            "sum-u64",
            wasmgrid_sdk::frames::encode(&["78498", "586081", "0"]),
        ),
        ("echo", (0..70_000u32).map(|i| (i % 251) as u8).collect()),
    ];
    for (name, input) in cases {
        let module = sample(name);
        let optimizing = run(&module, input.clone(), &Limits::default());
        let baseline = run_baseline(&module, input, &Limits::default());
        if name == "sum-u64" {
            assert_eq!(text(&baseline), "664579");
        }
        assert_eq!(optimizing.status, Status::Ok, "{name}: {optimizing:?}");
        assert_eq!(baseline.status, Status::Ok, "{name}: {baseline:?}");
        assert_eq!(baseline.output, optimizing.output, "{name}");
        assert_eq!(optimizing.usage.metering_version, METERING_VERSION);
        assert_eq!(
            baseline.usage.metering_version,
            expected_baseline_version(),
            "{name}"
        );
        assert!(baseline.usage.fuel_consumed > 0, "{name}");
        // The same operator costs, less for bulk memory operations.
        assert!(
            baseline.usage.fuel_consumed <= optimizing.usage.fuel_consumed,
            "{name}: {} against {}",
            baseline.usage.fuel_consumed,
            optimizing.usage.fuel_consumed
        );
    }
}

/// Randomness is seeded by the task, whatever the compiler. The virtual
/// clocks tick with fuel, so they read Winch's fuel, not Cranelift's.
#[test]
fn randomness_is_the_same_and_clocks_follow_the_compilers_fuel() {
    let module = sample("entropy");
    let optimizing = run(&module, "32", &Limits::default());
    let baseline = run_baseline(&module, "32", &Limits::default());
    let fields = |outcome: &Outcome| -> serde_json::Value {
        assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
        serde_json::from_slice(&outcome.output).expect("entropy answers JSON")
    };
    let (optimizing, baseline) = (fields(&optimizing), fields(&baseline));
    for random in ["random", "random_again"] {
        assert_eq!(baseline[random], optimizing[random], "{random}");
    }
    // Winch charges no bulk copy per byte, and the task copies its input
    // before it reads the clock: its clock reads less.
    let clock = |fields: &serde_json::Value| fields["realtime_ns"].as_u64().expect("a clock");
    assert!(
        clock(&baseline) < clock(&optimizing),
        "{baseline} against {optimizing}"
    );
}

/// Fuel under Winch's rules is deterministic too: the same run counts the
/// same fuel every time.
#[test]
fn baseline_fuel_is_deterministic() {
    let module = sample("primes");
    let input = br#"{"start":1000000,"end":1300000}"#;
    let first = run_baseline(&module, input.to_vec(), &Limits::default());
    let second = run_baseline(&module, input.to_vec(), &Limits::default());
    assert_eq!(first.status, Status::Ok);
    assert_eq!(first.usage.fuel_consumed, second.usage.fuel_consumed);
    assert_eq!(first.output, second.output);
}

/// The broker runs issuers' reducers with Winch: every hostile module ends
/// in the status it ends in under Cranelift, and the host goes on.
#[test]
fn hostile_modules_end_as_they_do_under_cranelift() {
    let fuel_capped = Limits {
        fuel: 50_000_000,
        ..tight_limits()
    };
    let cases: Vec<(&str, TaskModule, Limits)> = vec![
        (
            "infinite-loop",
            sample("infinite-loop"),
            fuel_capped.clone(),
        ),
        (
            "hostcall-loop",
            sample("hostcall-loop"),
            fuel_capped.clone(),
        ),
        ("memory-bomb", sample("memory-bomb"), tight_limits()),
        ("table-bomb", hostile_file("table-bomb.wat"), tight_limits()),
        (
            "native-stack-overflow",
            hostile_file("native-stack-overflow.wat"),
            tight_limits(),
        ),
        ("deep-recursion", sample("deep-recursion"), tight_limits()),
        ("huge-output", sample("huge-output"), tight_limits()),
        ("trap", sample("trap"), tight_limits()),
        ("panic", sample("panic"), tight_limits()),
        ("escape-attempts", sample("escape-attempts"), tight_limits()),
        (
            "start-section-loop",
            hostile_file("start-section-loop.wat"),
            tight_limits(),
        ),
        ("garbage", hostile_file("garbage.wasm"), tight_limits()),
    ];
    for (name, module, limits) in cases {
        let optimizing = run(&module, Vec::new(), &limits);
        let baseline = run_baseline(&module, Vec::new(), &limits);
        assert_eq!(baseline.status, optimizing.status, "{name}");
        assert_eq!(baseline.output, optimizing.output, "{name}");
        if name == "infinite-loop" {
            assert_eq!(baseline.usage.fuel_consumed, fuel_capped.fuel);
        }
    }
    let echo = run_baseline(&sample("echo"), "still alive", &Limits::default());
    assert_eq!(text(&echo), "still alive");
}

/// Tail calls are valid wasm that Winch does not compile: such a module is
/// compiled by Cranelift, runs, and is metered by Cranelift's rules. A
/// million calls deep, it only completes with real tail calls.
#[test]
fn a_module_winch_cannot_compile_runs_on_cranelift() {
    let module = TaskModule::new(
        wat::parse_str(
            r#"(module
                (import "wasi_snapshot_preview1" "fd_write"
                    (func $fd_write (param i32 i32 i32 i32) (result i32)))
                (memory (export "memory") 1)
                (data (i32.const 16) "tail")
                (func $countdown (param i32)
                    (if (i32.eqz (local.get 0)) (then (return)))
                    (return_call $countdown (i32.sub (local.get 0) (i32.const 1))))
                (func (export "_start")
                    (call $countdown (i32.const 1000000))
                    (i32.store (i32.const 0) (i32.const 16))
                    (i32.store (i32.const 4) (i32.const 4))
                    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        )
        .expect("wat"),
    );
    let outcome = run_baseline(&module, Vec::new(), &tight_limits());
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    assert_eq!(text(&outcome), "tail");
    assert_eq!(outcome.usage.metering_version, METERING_VERSION);
}
