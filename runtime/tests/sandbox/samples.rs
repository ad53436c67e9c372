//! Every sample task gives its known answer, the same as its native twin.

use wasmgrid_kernels::mandelbrot::{MandelbrotTile, render};
use wasmgrid_runtime::{Limits, Status};

use crate::{run, sample, text};

#[test]
fn primes_counts_pi_of_ten_to_the_six() {
    let outcome = run(
        &sample("primes"),
        r#"{"start":0,"end":1000000}"#,
        &Limits::default(),
    );
    assert_eq!(
        outcome.status,
        Status::Ok,
        "stderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    assert_eq!(text(&outcome), "78498");
    assert!(
        outcome.usage.fuel_consumed > 1_000_000,
        "{:?}",
        outcome.usage
    );
    assert!(outcome.usage.peak_memory_bytes > 0);
}

#[test]
fn primes_ranges_sum_to_pi_of_ten_to_the_seven() {
    let module = sample("primes");
    let bounds = [
        0u64, 1, 2, 3, 1_000, 999_983, 5_000_000, 7_777_777, 10_000_000,
    ];
    let total: u64 = bounds
        .windows(2)
        .map(|w| {
            let input = format!(r#"{{"start":{},"end":{}}}"#, w[0], w[1]);
            let outcome = run(&module, input, &Limits::default());
            assert_eq!(outcome.status, Status::Ok);
            text(&outcome).parse::<u64>().expect("a count")
        })
        .sum();
    assert_eq!(total, 664_579);
}

/// The wasm build counts a segment's flags with SIMD where the native twin
/// counts words: every tail length of a vector, a loop trip and a fold
/// block, at three heights, must give the twin's count.
#[test]
fn primes_counts_every_range_as_its_native_twin() {
    let module = sample("primes");
    // A range's odd candidates, one flag each, are about half its length:
    // 16, 17, 64, 65, 128, 4 032 and 4 033 flags straddle a vector, a loop
    // trip and a fold block; 32 769 and 100 001 span whole 32 KiB segments
    // and a tail.
    let lengths = [
        1u64, 2, 31, 33, 127, 129, 255, 8_063, 8_065, 65_537, 200_001,
    ];
    for start in [0u64, 1_000_000_007, 9_999_000_000] {
        for length in lengths {
            let (start, end) = (start, start + length);
            let input = format!(r#"{{"start":{start},"end":{end}}}"#);
            let outcome = run(&module, input, &Limits::default());
            assert_eq!(outcome.status, Status::Ok, "[{start}, {end})");
            assert_eq!(
                text(&outcome).parse::<u64>().expect("a count"),
                wasmgrid_kernels::primes::count_primes(start, end),
                "[{start}, {end})"
            );
        }
    }
}

#[test]
fn nqueens_counts_q8_whole_and_q12_by_prefixes() {
    let module = sample("nqueens");
    let outcome = run(&module, r#"{"n":8,"prefix":[]}"#, &Limits::default());
    assert_eq!(text(&outcome), "92");
    let q12: u64 = wasmgrid_kernels::nqueens::prefixes(12, 1)
        .iter()
        .map(|prefix| {
            let input = format!(r#"{{"n":12,"prefix":{prefix:?}}}"#);
            let outcome = run(&module, input, &Limits::default());
            assert_eq!(outcome.status, Status::Ok);
            text(&outcome).parse::<u64>().expect("a count")
        })
        .sum();
    assert_eq!(q12, 14_200);
}

#[test]
fn nqueens_rejects_a_conflicting_prefix_with_an_exit_code() {
    let outcome = run(
        &sample("nqueens"),
        r#"{"n":8,"prefix":[0,0]}"#,
        &Limits::default(),
    );
    assert!(
        matches!(outcome.status, Status::ExitCode(code) if code != 0),
        "{:?}",
        outcome.status
    );
    assert!(!outcome.stderr.is_empty());
}

#[test]
fn mandelbrot_tile_is_byte_identical_to_native() {
    let tile = MandelbrotTile {
        width: 256,
        height: 256,
        x0: -2.0,
        y0: -1.5,
        x1: 1.0,
        y1: 1.5,
        tile_x: 64,
        tile_y: 96,
        tile_w: 128,
        tile_h: 64,
        max_iter: 500,
    };
    let input = serde_json::to_vec(&tile).expect("json");
    let outcome = run(&sample("mandelbrot"), input, &Limits::default());
    assert_eq!(outcome.status, Status::Ok);
    let native = render(&tile).expect("valid tile");
    assert_eq!(outcome.output.len(), 128 * 64);
    assert_eq!(outcome.output, native);
}

#[test]
fn sum_reducer_adds_framed_outputs() {
    let outputs = ["78498", "586081", "0"];
    let input = wasmgrid_sdk::frames::encode(&outputs);
    let outcome = run(&sample("sum-u64"), input, &Limits::default());
    assert_eq!(outcome.status, Status::Ok);
    assert_eq!(text(&outcome), "664579");
}

#[test]
fn sum_reducer_fails_cleanly_on_truncated_frames() {
    let mut input = wasmgrid_sdk::frames::encode(&["1", "2"]);
    input.pop();
    let outcome = run(&sample("sum-u64"), input, &Limits::default());
    assert!(
        matches!(outcome.status, Status::ExitCode(_)),
        "{:?}",
        outcome.status
    );
}

#[test]
fn echo_returns_a_mebibyte_of_input_and_bills_the_bytes() {
    let input: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let outcome = run(&sample("echo"), input.clone(), &Limits::default());
    assert_eq!(outcome.status, Status::Ok);
    assert_eq!(outcome.output, input);
    assert_eq!(outcome.usage.output_bytes, 1 << 20);
    // Reading and writing are charged per byte on top of the wasm work.
    assert!(
        outcome.usage.fuel_consumed >= 2 << 20,
        "{:?}",
        outcome.usage
    );
}

#[test]
fn output_cap_is_exact() {
    let limits = Limits {
        max_output_bytes: 1000,
        ..Limits::default()
    };
    let at_cap = run(&sample("echo"), vec![7u8; 1000], &limits);
    assert_eq!(at_cap.status, Status::Ok);
    assert_eq!(at_cap.output.len(), 1000);
    let over = run(&sample("echo"), vec![7u8; 1001], &limits);
    assert_eq!(over.status, Status::OutputLimit);
    assert!(over.output.len() <= 1000);
}

#[test]
fn exit_codes_are_reported() {
    let module = sample("exit-code");
    assert_eq!(run(&module, "0", &Limits::default()).status, Status::Ok);
    assert_eq!(
        run(&module, "3", &Limits::default()).status,
        Status::ExitCode(3)
    );
    assert_eq!(
        run(&module, "-1", &Limits::default()).status,
        Status::ExitCode(-1)
    );
}
