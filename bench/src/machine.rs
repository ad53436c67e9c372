//! What the figures were measured on: CPU, cores, load, and how much of
//! the machine other processes took during each phase. Benchmarks on a
//! shared machine are only meaningful next to that.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::stats::minutes;

/// The machine and the moment of a run.
#[derive(Clone, Debug)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`, or "unknown".
    pub cpu_model: String,
    /// `std::thread::available_parallelism`, what `nproc` prints.
    pub cores: usize,
    /// The first three fields of `/proc/loadavg` (1, 5, 15 minutes).
    pub load_average: String,
    /// The runtime's fuel rules, which name the wasmtime version.
    pub metering_version: &'static str,
}

impl Machine {
    /// Reads the machine's description now.
    pub fn describe() -> Self {
        Machine {
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".to_owned()),
            cores: cores(),
            load_average: load_average(),
            metering_version: wasmgrid_runtime::METERING_VERSION,
        }
    }

    /// The first lines of every mode's tables: "wasmgrid BENCHMARK
    /// benchmark", ` (--quick)`, how long the whole run took when given, and
    /// the machine.
    pub fn render_header(
        &self,
        out: &mut String,
        benchmark: &str,
        quick: bool,
        took: Option<Duration>,
    ) {
        let _ = writeln!(
            out,
            "wasmgrid {benchmark} benchmark{}{}",
            if quick { " (--quick)" } else { "" },
            took.map_or_else(String::new, |took| format!(
                " ({} in all)",
                minutes(took.as_secs_f64())
            ))
        );
        let _ = writeln!(
            out,
            "cpu: {} | cores: {} | load avg at end: {}",
            self.cpu_model, self.cores, self.load_average
        );
    }

    pub fn to_json(&self) -> Value {
        json!({
            "cpu_model": self.cpu_model,
            "cores": self.cores,
            "load_average": self.load_average,
            "metering_version": self.metering_version,
        })
    }
}

/// Cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1/5/15-minute load averages, or "unknown" off Linux.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

/// Writes the machine's dirty pages out (`sync`) and waits for the disk,
/// so that a round does not share it with the writeback of what was
/// written before (a build just made, the bench's copies of the binaries,
/// over 100 MB for the broker, an earlier round's files): the kernel
/// writes dirty pages back some 30 s late, and a platform round's synced
/// commits would wait behind them, where a native round, which writes
/// nothing, would not. Warns and goes on if `sync` cannot run; off Unix it
/// does nothing.
pub fn write_back_dirty_pages() {
    if cfg!(unix)
        && let Err(error) = std::process::Command::new("sync").status()
    {
        eprintln!("warning: cannot run sync ({error}): rounds may share the disk with writeback");
    }
}

/// Busy and total CPU time of the whole machine since boot, all cores, in
/// the kernel's clock ticks (the `cpu` line of `/proc/stat`); `None` off
/// Linux. Steal counts as busy: the hypervisor gave the time to others.
pub fn machine_cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest is in user).
    let field = |index: usize| fields.get(index).copied().unwrap_or(0);
    let idle = field(3) + field(4);
    let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
    Some((busy, busy + idle))
}

/// CPU time counters of the whole machine and of this process (with its
/// waited-for children, the guest build), in the kernel's clock ticks.
#[derive(Clone, Copy, Debug)]
pub struct CpuSnapshot {
    machine_busy: u64,
    machine_total: u64,
    own: u64,
}

impl CpuSnapshot {
    /// The counters now, or `None` off Linux.
    pub fn now() -> Option<Self> {
        let (busy, total) = machine_cpu_ticks()?;
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the parenthesised command name: utime is the 12th,
        // then stime, cutime, cstime.
        let after_name = own_stat.rsplit_once(')')?.1;
        let own: u64 = after_name
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(str::parse::<u64>)
            .sum::<Result<_, _>>()
            .ok()?;
        Some(CpuSnapshot {
            machine_busy: busy,
            machine_total: total,
            own,
        })
    }

    /// Share (0–1) of the machine's CPU time that other processes, and the
    /// hypervisor's steal, took since `earlier`: how disturbed the figures
    /// measured in between may be.
    pub fn foreign_share_since(&self, earlier: &CpuSnapshot) -> f64 {
        let total = self.machine_total.saturating_sub(earlier.machine_total);
        let busy = self.machine_busy.saturating_sub(earlier.machine_busy);
        let own = self.own.saturating_sub(earlier.own);
        if total == 0 {
            return 0.0;
        }
        busy.saturating_sub(own) as f64 / total as f64
    }
}

/// How much of the machine other processes took during each phase.
#[derive(Clone, Debug, Default)]
pub struct Phases {
    /// Phase name and foreign CPU share (0–1), when the OS tells.
    pub foreign_share: Vec<(&'static str, Option<f64>)>,
}

impl Phases {
    /// Records the foreign share of the phase that began at `before` and
    /// returns the snapshot that begins the next one.
    pub fn record(
        &mut self,
        phase: &'static str,
        before: Option<CpuSnapshot>,
    ) -> Option<CpuSnapshot> {
        let now = CpuSnapshot::now();
        let share = before
            .zip(now)
            .map(|(before, now)| now.foreign_share_since(&before));
        self.foreign_share.push((phase, share));
        now
    }

    pub fn render(&self) -> String {
        self.foreign_share
            .iter()
            .map(|(phase, share)| match share {
                Some(share) => format!("{phase} {:.0} %", share * 100.0),
                None => format!("{phase} unknown"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn to_json(&self) -> Value {
        self.foreign_share
            .iter()
            .map(|(phase, share)| json!({ "phase": phase, "foreign_cpu_share": share }))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_the_benchmark_and_the_machine() {
        let machine = Machine {
            cpu_model: "Some CPU".to_owned(),
            cores: 2,
            load_average: "0.10 0.20 0.30".to_owned(),
            metering_version: "fuel v1",
        };
        let mut out = String::new();
        machine.render_header(&mut out, "runtime", false, None);
        machine.render_header(
            &mut out,
            "broker dispatch",
            true,
            Some(Duration::from_secs(300)),
        );
        assert_eq!(
            out,
            "wasmgrid runtime benchmark\n\
             cpu: Some CPU | cores: 2 | load avg at end: 0.10 0.20 0.30\n\
             wasmgrid broker dispatch benchmark (--quick) (5.0 min in all)\n\
             cpu: Some CPU | cores: 2 | load avg at end: 0.10 0.20 0.30\n"
        );
    }
}
