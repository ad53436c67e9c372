//! The figures of one run: printed as tables, and as JSON for `--json`.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::machine::{Machine, Phases};
use crate::overhead::KernelFigures;
use crate::start::{self, StartFigures};
use crate::stats::{Summary, human};
use crate::targets::{MAX_FUEL_SLOWDOWN, MAX_START_MEDIAN_MICROS, verdict};
use crate::throughput::ThroughputPoint;

/// How much was measured: the `--quick` switch sets smaller counts.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub quick: bool,
    /// Timed runs per kernel and configuration, after one warm-up.
    pub repetitions: usize,
    /// Trivial tasks per allocator in the start measurement.
    pub start_iterations: usize,
    /// How long each throughput level runs.
    pub throughput_duration: Duration,
}

impl Plan {
    fn to_json(self) -> Value {
        json!({
            "quick": self.quick,
            "repetitions": self.repetitions,
            "start_iterations": self.start_iterations,
            "throughput_duration_ns": crate::stats::nanos(self.throughput_duration),
        })
    }
}

/// Everything one `runtime` benchmark run measured.
#[derive(Clone, Debug)]
pub struct Report {
    pub machine: Machine,
    pub plan: Plan,
    pub kernels: Vec<KernelFigures>,
    pub start: Vec<StartFigures>,
    /// Round trip of an empty job through a thread: the hand-off alone.
    pub handoff: Summary,
    pub throughput: Vec<ThroughputPoint>,
    pub phases: Phases,
}

impl Report {
    /// The tables, as printed on stdout.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_header(&mut out);
        self.render_kernels(&mut out);
        self.render_start(&mut out);
        self.render_throughput(&mut out);
        self.render_targets(&mut out);
        out
    }

    fn render_header(&self, out: &mut String) {
        let m = &self.machine;
        m.render_header(out, "runtime", self.plan.quick, None);
        let _ = writeln!(out, "metering: {}", m.metering_version);
        let _ = writeln!(
            out,
            "machine CPU taken by other processes: {} (figures are reliable when these are near 0)",
            self.phases.render()
        );
    }

    fn render_kernels(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n1. Kernels: median of {} runs after 1 warm-up; sandbox = Usage::wall_time, trip = around run_blocking; ratios use sandbox time",
            self.plan.repetitions
        );
        let _ = writeln!(
            out,
            "{:<11} {:>10} | {:>10} {:>10} | {:>10} {:>10} | {:>10} {:>6} | {:>10}",
            "task",
            "native",
            "fuel sbox",
            "fuel trip",
            "nofuel sbox",
            "nofuel trip",
            "fuel/nat",
            "≤1.30",
            "nofuel/nat"
        );
        for k in &self.kernels {
            let _ = writeln!(
                out,
                "{:<11} {:>10} | {:>10} {:>10} | {:>10} {:>10} | {:>10.3} {:>6} | {:>10.3}",
                k.task,
                human(k.native.median),
                human(k.metered.sandbox.median),
                human(k.metered.round_trip.median),
                human(k.unmetered.sandbox.median),
                human(k.unmetered.round_trip.median),
                k.metered_ratio(),
                verdict(k.metered_ratio(), MAX_FUEL_SLOWDOWN),
                k.unmetered_ratio(),
            );
        }
        for k in &self.kernels {
            let _ = writeln!(
                out,
                "  {:<10} {}; native min/max {}/{}; fuel {} ({:.2} Gfuel/s)",
                k.task,
                k.workload,
                human(k.native.min),
                human(k.native.max),
                k.fuel_consumed,
                k.fuel_consumed as f64 / k.metered.sandbox.median.as_secs_f64() / 1e9,
            );
        }
    }

    fn render_start(&self, out: &mut String) {
        let Some(first) = self.start.first() else {
            return;
        };
        let _ = writeln!(
            out,
            "\n2. Sandbox start: `echo` with empty input, cached module, max_concurrent_tasks = 1, {} runs",
            first.sandbox.samples
        );
        let _ = writeln!(
            out,
            "{:<10} | {:>10} {:>10} | {:>10} {:>10} | {:>6}",
            "allocator", "sbox p50", "sbox p99", "trip p50", "trip p99", "≤50µs"
        );
        for s in &self.start {
            let _ = writeln!(
                out,
                "{:<10} | {:>10} {:>10} | {:>10} {:>10} | {:>6}",
                if s.pooling { "pooling" } else { "on-demand" },
                human(s.sandbox.median),
                human(s.sandbox.p99),
                human(s.round_trip.median),
                human(s.round_trip.p99),
                verdict(start::median_micros(s), MAX_START_MEDIAN_MICROS),
            );
        }
        let _ = writeln!(
            out,
            "{:<10} | {:>10} {:>10} | {:>10} {:>10} |   (empty job through one thread, no sandbox)",
            "hand-off",
            "-",
            "-",
            human(self.handoff.median),
            human(self.handoff.p99),
        );
    }

    fn render_throughput(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n3. Throughput: N client threads running `echo` back to back for {} on a runtime with max_concurrent_tasks = N",
            human(self.plan.throughput_duration)
        );
        let _ = writeln!(
            out,
            "{:>7} | {:>8} {:>11} {:>13}",
            "threads", "tasks", "tasks/s", "thread·time/task"
        );
        for t in &self.throughput {
            let per_task = t.elapsed.mul_f64(t.threads as f64)
                / u32::try_from(t.tasks.max(1)).unwrap_or(u32::MAX);
            let _ = writeln!(
                out,
                "{:>7} | {:>8} {:>11.0} {:>13}",
                t.threads,
                t.tasks,
                t.tasks_per_second(),
                human(per_task),
            );
        }
    }

    fn render_targets(&self, out: &mut String) {
        let _ = writeln!(out, "\n4. Targets");
        for k in &self.kernels {
            let _ = writeln!(
                out,
                "  {} {:<10} wasm-with-fuel/native {:.3} (target ≤ {MAX_FUEL_SLOWDOWN:.2})",
                verdict(k.metered_ratio(), MAX_FUEL_SLOWDOWN),
                k.task,
                k.metered_ratio(),
            );
        }
        for s in self.start.iter().filter(|s| s.pooling) {
            let _ = writeln!(
                out,
                "  {} sandbox start median {:.1} µs (target ≤ {MAX_START_MEDIAN_MICROS:.0} µs)",
                verdict(start::median_micros(s), MAX_START_MEDIAN_MICROS),
                start::median_micros(s),
            );
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "machine": self.machine.to_json(),
            "plan": self.plan.to_json(),
            "kernels": self.kernels.iter().map(KernelFigures::to_json).collect::<Vec<_>>(),
            "sandbox_start": self.start.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
            "handoff_round_trip": self.handoff.to_json(),
            "foreign_cpu_share_by_phase": self.phases.to_json(),
            "throughput": self.throughput.iter().map(|t| t.to_json()).collect::<Vec<_>>(),
            "targets": {
                "max_fuel_slowdown": MAX_FUEL_SLOWDOWN,
                "max_start_median_us": MAX_START_MEDIAN_MICROS,
                "kernels": self.kernels.iter().map(|k| json!({
                    "task": k.task,
                    "ratio": k.metered_ratio(),
                    "pass": k.metered_ratio() <= MAX_FUEL_SLOWDOWN,
                })).collect::<Vec<_>>(),
                "sandbox_start": self.start.iter().filter(|s| s.pooling).map(|s| json!({
                    "median_us": start::median_micros(s),
                    "pass": start::median_micros(s) <= MAX_START_MEDIAN_MICROS,
                })).collect::<Vec<_>>(),
            },
        })
    }
}
