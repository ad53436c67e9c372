//! Many tasks at once from many async callers: all correct, and limits are
//! checked before anything runs.

use wasmgrid_runtime::{Limits, Runtime, RuntimeConfig, RuntimeError, Status};

use crate::{sample, shared_runtime, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_on_four_threads_all_finish_correctly() {
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_tasks: std::num::NonZeroUsize::new(4).expect("4"),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let module = sample("primes");
    let handles: Vec<_> = (0..64u64)
        .map(|i| {
            let (runtime, module) = (runtime.clone(), module.clone());
            tokio::spawn(async move {
                let input = format!(r#"{{"start":{},"end":{}}}"#, i * 100_000, (i + 1) * 100_000);
                runtime
                    .run(&module, input.into_bytes(), &Limits::default(), i)
                    .await
            })
        })
        .collect();
    let mut total = 0u64;
    for handle in handles {
        let outcome = handle.await.expect("joins").expect("runs");
        assert_eq!(outcome.status, Status::Ok);
        total += text(&outcome).parse::<u64>().expect("count");
    }
    assert_eq!(total, wasmgrid_kernels::primes::count_primes(0, 6_400_000));
}

#[test]
fn limits_the_runtime_cannot_honour_are_refused_up_front() {
    let runtime = shared_runtime();
    let module = sample("echo");
    let too_much_memory = Limits {
        memory_bytes: runtime.config().max_memory_bytes + 1,
        ..Limits::default()
    };
    let tiny_stack = Limits {
        max_stack_bytes: 1024,
        ..Limits::default()
    };
    let too_much_fuel = Limits {
        fuel: u64::MAX,
        ..Limits::default()
    };
    for limits in [too_much_memory, tiny_stack, too_much_fuel] {
        let error = runtime
            .run_blocking(&module, Vec::new(), &limits, 1)
            .expect_err("refused");
        assert!(matches!(error, RuntimeError::InvalidLimits(_)), "{error}");
    }
}
