//! The same module, input and seed give the same output and the same fuel,
//! run after run, on fresh runtimes and concurrently.

use wasmgrid_runtime::{Limits, Runtime, RuntimeConfig, Status};

use crate::{run, sample, shared_runtime};

#[test]
fn primes_output_and_fuel_are_identical_across_many_runs() {
    let module = sample("primes");
    let input = r#"{"start":1000000000,"end":1000100000}"#;
    let first = run(&module, input, &Limits::default());
    assert_eq!(first.status, Status::Ok);
    for _ in 0..30 {
        let again = run(&module, input, &Limits::default());
        assert_eq!(again.output, first.output);
        assert_eq!(again.usage.fuel_consumed, first.usage.fuel_consumed);
    }
}

#[test]
fn clocks_and_randomness_are_fixed_by_the_seed() {
    let module = sample("entropy");
    let runtime = shared_runtime();
    let limits = Limits::default();
    let by_seed = |seed| {
        runtime
            .run_blocking(&module, Vec::new(), &limits, seed)
            .expect("runs")
    };
    let first = by_seed(7);
    assert_eq!(
        first.status,
        Status::Ok,
        "stderr: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    for _ in 0..30 {
        let again = by_seed(7);
        assert_eq!(again.output, first.output);
        assert_eq!(again.usage.fuel_consumed, first.usage.fuel_consumed);
    }
    assert_ne!(by_seed(8).output, first.output, "the seed must matter");
}

#[test]
fn a_fresh_runtime_without_pooling_meters_the_same_fuel() {
    let module = sample("nqueens");
    let input = r#"{"n":10,"prefix":[1]}"#;
    let pooled = run(&module, input, &Limits::default());
    let on_demand = Runtime::new(RuntimeConfig {
        pooling: false,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
    .run_blocking(&module, input.as_bytes().to_vec(), &Limits::default(), 1)
    .expect("runs");
    assert_eq!(on_demand.output, pooled.output);
    assert_eq!(on_demand.usage.fuel_consumed, pooled.usage.fuel_consumed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_meter_the_same_fuel() {
    let module = sample("nqueens");
    let input = br#"{"n":9,"prefix":[2]}"#.to_vec();
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (runtime, module, input) =
                (shared_runtime().clone(), module.clone(), input.clone());
            tokio::spawn(async move { runtime.run(&module, input, &Limits::default(), 3).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for handle in handles {
        outcomes.push(handle.await.expect("joins").expect("runs"));
    }
    let first = &outcomes[0];
    assert_eq!(first.status, Status::Ok);
    for outcome in &outcomes {
        assert_eq!(outcome.output, first.output);
        assert_eq!(outcome.usage.fuel_consumed, first.usage.fuel_consumed);
    }
}
