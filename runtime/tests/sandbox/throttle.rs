//! CPU throttling (`RuntimeConfig::cpu_percent`): a throttled task gives
//! the same output and fuel, and its wall-time limit counts its running
//! time only.

use std::time::Duration;

use wasmgrid_runtime::{Limits, Runtime, RuntimeConfig, Status};

use crate::{sample, text, tight_limits};

/// A range whose count takes ~60 ms here unthrottled: long enough for the
/// throttle's pauses to show in the wall time. (The range up to 3·10⁷ took
/// ~7 ms once the `primes` kernel got faster: too short, at 10 % it ended
/// within the 100 ms floor of the limit below.)
const RANGE: &str = r#"{"start":0,"end":200000000}"#;

fn runtime(cpu_percent: u8) -> Runtime {
    Runtime::new(RuntimeConfig {
        cpu_percent,
        pooling: false,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

/// The result does not depend on the throttle. (How much slower a throttled
/// task runs depends on the machine's load, so it is measured, not asserted:
/// docs/runtime.md, "CPU throttling".)
#[test]
fn a_throttled_task_gives_the_same_result_and_fuel() {
    let primes = sample("primes");
    let full = runtime(100)
        .run_blocking(&primes, RANGE.into(), &tight_limits(), 1)
        .expect("runs");
    let throttled = runtime(25)
        .run_blocking(&primes, RANGE.into(), &tight_limits(), 1)
        .expect("runs");
    assert_eq!(full.status, Status::Ok);
    assert_eq!(throttled.status, Status::Ok);
    assert_eq!(text(&throttled), text(&full));
    assert_eq!(throttled.usage.fuel_consumed, full.usage.fuel_consumed);
}

#[test]
fn the_wall_time_limit_counts_running_time_only() {
    let primes = sample("primes");
    let full = runtime(100)
        .run_blocking(&primes, RANGE.into(), &tight_limits(), 1)
        .expect("runs");
    // A limit of four times the unthrottled run: at 10 % it takes about
    // ten times as long in real time, and still ends Ok.
    let limits = Limits {
        wall_time: (full.usage.wall_time * 4).max(Duration::from_millis(100)),
        ..tight_limits()
    };
    let throttled = runtime(10)
        .run_blocking(&primes, RANGE.into(), &limits, 1)
        .expect("runs");
    assert_eq!(throttled.status, Status::Ok, "{:?}", throttled.usage);
    assert!(
        throttled.usage.wall_time > limits.wall_time,
        "{:?}",
        throttled.usage
    );

    // An endless loop still ends at its limit, throttled or not.
    let looping = runtime(50)
        .run_blocking(
            &sample("infinite-loop"),
            Vec::new(),
            &Limits {
                fuel: u64::MAX / 4,
                wall_time: Duration::from_millis(200),
                ..tight_limits()
            },
            1,
        )
        .expect("runs");
    assert_eq!(looping.status, Status::Timeout);
}
