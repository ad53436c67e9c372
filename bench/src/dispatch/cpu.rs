//! Who used the machine's CPU during a measured window: the broker, the
//! load generator (this process: agents and issuer), and everything else.
//! On a 2-core machine the load generator competes with the broker it
//! measures, and a parallel build takes what it wants; figures mean little
//! without this split.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::dispatch::broker::{own_cpu_ticks, process_cpu_ticks, ticks_to_duration};
use crate::machine::machine_cpu_ticks;

/// Counters at one instant, in clock ticks.
#[derive(Clone, Copy, Debug)]
pub struct CpuReading {
    at: Instant,
    machine: Option<(u64, u64)>,
    bench: Option<f64>,
    broker: Option<f64>,
}

impl CpuReading {
    pub fn now(broker_pid: u32) -> Self {
        CpuReading {
            at: Instant::now(),
            machine: machine_cpu_ticks(),
            bench: own_cpu_ticks(),
            broker: process_cpu_ticks(broker_pid),
        }
    }

    /// The split of the CPU time used between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuReading) -> CpuSplit {
        let wall = self.at.saturating_duration_since(earlier.at);
        let delta = |now: Option<f64>, then: Option<f64>| now.zip(then).map(|(n, t)| n - t);
        let broker = delta(self.broker, earlier.broker);
        let bench = delta(self.bench, earlier.bench);
        let foreign_share = self
            .machine
            .zip(earlier.machine)
            .zip(broker.zip(bench))
            .and_then(|(((busy, total), (busy0, total0)), (broker, bench))| {
                let total = total.saturating_sub(total0) as f64;
                let busy = busy.saturating_sub(busy0) as f64;
                (total > 0.0).then(|| ((busy - broker - bench) / total).clamp(0.0, 1.0))
            });
        CpuSplit {
            wall,
            broker: broker.map(ticks_to_duration),
            bench: bench.map(ticks_to_duration),
            foreign_share,
        }
    }
}

/// CPU time used during a window.
#[derive(Clone, Copy, Debug)]
pub struct CpuSplit {
    pub wall: Duration,
    /// User + system time of the broker process.
    pub broker: Option<Duration>,
    /// User + system time of the load generator (this process).
    pub bench: Option<Duration>,
    /// Share (0–1) of the whole machine's CPU time other processes (and
    /// the hypervisor's steal) took.
    pub foreign_share: Option<f64>,
}

impl CpuSplit {
    /// Cores' worth of CPU a process used on average (1.0 = one core busy).
    pub fn cores(&self, used: Option<Duration>) -> Option<f64> {
        let wall = self.wall.as_secs_f64();
        used.filter(|_| wall > 0.0)
            .map(|used| used.as_secs_f64() / wall)
    }

    pub fn to_json(self) -> Value {
        json!({
            "wall_s": self.wall.as_secs_f64(),
            "broker_cpu_s": self.broker.map(|d| d.as_secs_f64()),
            "load_generator_cpu_s": self.bench.map(|d| d.as_secs_f64()),
            "foreign_cpu_share": self.foreign_share,
        })
    }
}
