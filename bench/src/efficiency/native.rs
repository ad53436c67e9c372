//! The native baseline: the same tasks counted by the `primes` kernel (the
//! sample task's native twin) on every core at once, one std thread per
//! core pulling the next task from a shared counter, as an agent's slots
//! pull leases.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use serde_json::{Value, json};
use wasmgrid_kernels::primes::PrimesInput;

use crate::machine::CpuSnapshot;
use crate::stats::nanos;

/// One native run over every task.
#[derive(Clone, Copy, Debug)]
pub struct NativeRun {
    /// Threads started to the last one joined.
    pub wall: Duration,
    /// The sum of every task's count.
    pub total: u64,
    /// Time the threads spent in the kernel, summed over tasks.
    pub compute: Duration,
    pub threads: usize,
    /// Share of the machine's CPU other processes took meanwhile.
    pub foreign_share: Option<f64>,
    /// CPU time of this process (the threads) over the run.
    pub cpu: Option<Duration>,
}

impl NativeRun {
    /// Share of the threads' wall time spent in the kernel.
    pub fn occupancy(&self) -> f64 {
        self.compute.as_secs_f64() / (self.wall.as_secs_f64() * self.threads as f64)
    }

    pub fn to_json(self) -> Value {
        json!({
            "wall_ns": nanos(self.wall),
            "total": self.total,
            "compute_ns": nanos(self.compute),
            "threads": self.threads,
            "occupancy": self.occupancy(),
            "foreign_cpu_share": self.foreign_share,
            "cpu_ns": self.cpu.map(nanos),
        })
    }
}

/// Counts the primes of every range of `tasks` on `threads` threads.
pub fn run(tasks: &[PrimesInput], threads: usize) -> Result<NativeRun> {
    let threads = threads.max(1);
    let next = AtomicUsize::new(0);
    let before = CpuSnapshot::now();
    let own_before = crate::dispatch::broker::own_cpu_ticks();
    let started = Instant::now();
    let results: Vec<std::thread::Result<(u64, Duration)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut total = 0u64;
                    let mut compute = Duration::ZERO;
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(task) = tasks.get(index) else {
                            break;
                        };
                        let task_started = Instant::now();
                        total += black_box(black_box(task).count());
                        compute += task_started.elapsed();
                    }
                    (total, compute)
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join()).collect()
    });
    let wall = started.elapsed();
    let own_after = crate::dispatch::broker::own_cpu_ticks();
    let foreign_share = before
        .zip(CpuSnapshot::now())
        .map(|(before, after)| after.foreign_share_since(&before));
    let mut total = 0;
    let mut compute = Duration::ZERO;
    for result in results {
        let (count, time) = result.map_err(|_| anyhow!("a native counting thread panicked"))?;
        total += count;
        compute += time;
    }
    Ok(NativeRun {
        wall,
        total,
        compute,
        threads,
        foreign_share,
        cpu: own_before
            .zip(own_after)
            .map(|(before, after)| crate::dispatch::broker::ticks_to_duration(after - before)),
    })
}
