//! [`Watch`]: the monitor of a running phase.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::dispatch::agents::{Progress, Swarm};
use crate::dispatch::broker::BrokerProcess;
use crate::dispatch::cpu::CpuReading;

/// Watches the agents' progress: fails the phase when the broker dies or
/// nothing is reported for `plan.stall_timeout`; prints progress.
pub struct Watch {
    label: String,
    last: Progress,
    last_change: Instant,
    last_print: Instant,
    printed: Progress,
    /// CPU at the last print, for the split since.
    printed_cpu: Option<CpuReading>,
}

/// How often progress is printed.
const PRINT_EVERY: Duration = Duration::from_secs(10);
/// How often the monitor looks at the counters.
pub const POLL: Duration = Duration::from_millis(5);

impl Watch {
    pub fn new(label: String) -> Self {
        Watch {
            label,
            last: Progress::default(),
            last_change: Instant::now(),
            last_print: Instant::now(),
            printed: Progress::default(),
            printed_cpu: None,
        }
    }

    pub fn check(
        &mut self,
        broker: &mut BrokerProcess,
        swarm: &Swarm,
        stall: Duration,
    ) -> Result<()> {
        broker.check_alive()?;
        let now = swarm.progress();
        if now.reports != self.last.reports || now.requests != self.last.requests {
            if now.reports != self.last.reports {
                self.last_change = Instant::now();
            }
            self.last = now;
        }
        if self.last_change.elapsed() > stall {
            bail!(
                "{}: no report for {:?} (progress {:?}; agent errors: {:?})\nbroker log:\n{}",
                self.label,
                stall,
                now,
                swarm.errors(),
                broker.log_tail()
            );
        }
        if self.last_print.elapsed() >= PRINT_EVERY {
            let seconds = self.last_print.elapsed().as_secs_f64();
            let cpu_now = CpuReading::now(broker.pid());
            let load = self
                .printed_cpu
                .map(|earlier| {
                    let split = cpu_now.since(&earlier);
                    format!(
                        ", broker {:.2} cores, others {:.0} %",
                        split.cores(split.broker).unwrap_or(0.0),
                        split.foreign_share.unwrap_or(0.0) * 100.0
                    )
                })
                .unwrap_or_default();
            eprintln!(
                "  {}: {} reports ({:.0}/s), {} idle requests, {} errors{load}",
                self.label,
                now.reports,
                (now.reports - self.printed.reports) as f64 / seconds,
                now.idle_requests,
                now.errors
            );
            self.printed = now;
            self.printed_cpu = Some(cpu_now);
            self.last_print = Instant::now();
        }
        Ok(())
    }
}
