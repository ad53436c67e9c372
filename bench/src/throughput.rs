//! Throughput of trivial tasks: N client threads each run `echo` back to
//! back for a fixed time on a runtime with N task threads, for N from 1 to
//! the machine's cores. The figure is the whole per-task cost (hand-off,
//! store, instantiation, teardown) as tasks per second, and how it scales.

use std::num::NonZeroUsize;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use wasmgrid_runtime::{Limits, Runtime, RuntimeConfig, TaskModule};

use crate::tasks;

/// Tasks per second at one level of concurrency.
#[derive(Clone, Copy, Debug)]
pub struct ThroughputPoint {
    /// Client threads, and the runtime's `max_concurrent_tasks`.
    pub threads: usize,
    pub tasks: u64,
    pub elapsed: Duration,
}

impl ThroughputPoint {
    pub fn tasks_per_second(&self) -> f64 {
        self.tasks as f64 / self.elapsed.as_secs_f64()
    }

    pub fn to_json(self) -> Value {
        json!({
            "threads": self.threads,
            "tasks": self.tasks,
            "elapsed_ns": crate::stats::nanos(self.elapsed),
            "tasks_per_second": self.tasks_per_second(),
        })
    }
}

/// Measures every level of concurrency from 1 to `max_threads`.
pub fn measure_all(max_threads: usize, duration: Duration) -> Result<Vec<ThroughputPoint>> {
    let module = tasks::load("echo")?;
    (1..=max_threads)
        .map(|threads| measure(&module, threads, duration))
        .collect()
}

fn measure(module: &TaskModule, threads: usize, duration: Duration) -> Result<ThroughputPoint> {
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_tasks: NonZeroUsize::new(threads).context("at least one thread")?,
        ..RuntimeConfig::default()
    })
    .context("start runtime")?;
    let limits = Limits::default();
    tasks::run(&runtime, module, &[], &limits).context("echo warm-up")?;

    let started = Instant::now();
    let deadline = started + duration;
    let counts: Vec<Result<u64>> = thread::scope(|scope| {
        let clients: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| client(&runtime, module, &limits, deadline)))
            .collect();
        clients
            .into_iter()
            .map(|client| {
                client
                    .join()
                    .map_err(|_| anyhow!("client thread panicked"))?
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let tasks = counts.into_iter().sum::<Result<u64>>()?;
    Ok(ThroughputPoint {
        threads,
        tasks,
        elapsed,
    })
}

/// One client: runs `echo` until `deadline`, returns how many it ran.
fn client(
    runtime: &Runtime,
    module: &TaskModule,
    limits: &Limits,
    deadline: Instant,
) -> Result<u64> {
    let mut done = 0;
    while Instant::now() < deadline {
        tasks::run(runtime, module, &[], limits)?;
        done += 1;
    }
    Ok(done)
}
