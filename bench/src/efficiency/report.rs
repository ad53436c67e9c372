//! The figures of one `efficiency` run: printed as tables, and as JSON for
//! `--json`.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};
use wasmgrid_runtime::Limits;

use crate::efficiency::native::NativeRun;
use crate::efficiency::platform::PlatformRun;
use crate::efficiency::{EfficiencyPlan, Expected, TASK_MEMORY_MIB};
use crate::machine::Machine;
use crate::stats::{Summary, human, nanos};
use crate::targets::{self, MAX_PLATFORM_SLOWDOWN, Target};

/// Everything one `efficiency` run measured.
#[derive(Clone, Debug)]
pub struct EfficiencyReport {
    pub machine: Machine,
    pub plan: EfficiencyPlan,
    /// Numbers per task (the widest range).
    pub width: u64,
    pub limits: Limits,
    pub expected: Expected,
    /// In the order run: native 1, native 2, …
    pub natives: Vec<NativeRun>,
    pub platforms: Vec<PlatformRun>,
    pub took: Duration,
    /// The commit of the broker and agent sources.
    pub source: String,
}

impl EfficiencyReport {
    fn native_median(&self) -> Option<Summary> {
        let walls: Vec<Duration> = self.natives.iter().map(|run| run.wall).collect();
        Summary::of(&walls).ok()
    }

    fn platform_median(&self) -> Option<Summary> {
        let walls: Vec<Duration> = self.platforms.iter().map(|run| run.wall).collect();
        Summary::of(&walls).ok()
    }

    /// Median platform wall time over median native wall time.
    pub fn ratio(&self) -> Option<f64> {
        let native = self.native_median()?.median.as_secs_f64();
        let platform = self.platform_median()?.median.as_secs_f64();
        (native > 0.0).then(|| platform / native)
    }

    /// The platform round whose wall time is the median (the lower middle
    /// one for an even count), for the breakdown.
    fn median_platform(&self) -> Option<&PlatformRun> {
        let mut rounds: Vec<&PlatformRun> = self.platforms.iter().collect();
        rounds.sort_by_key(|run| run.wall);
        rounds.get(rounds.len().saturating_sub(1) / 2).copied()
    }

    fn native_compute_median(&self) -> Option<Duration> {
        let computes: Vec<Duration> = self.natives.iter().map(|run| run.compute).collect();
        Summary::of(&computes).ok().map(|s| s.median)
    }

    /// The tables, as printed on stdout.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_header(&mut out);
        self.render_rounds(&mut out);
        self.render_breakdown(&mut out);
        self.render_targets(&mut out);
        out
    }

    fn render_header(&self, out: &mut String) {
        let m = &self.machine;
        let p = &self.plan;
        m.render_header(out, "platform efficiency", p.quick, Some(self.took));
        let _ = writeln!(out, "metering: {}", m.metering_version);
        let _ = writeln!(out, "binaries: {} {}", p.binaries_origin, self.source);
        let _ = writeln!(
            out,
            "workload: primes below {} as {} `primes` tasks of {} numbers, r=1, `sum-u64` reducer, \
             paid (1e-9 credits/fuel); limits {} MiB, {:.0e} fuel, {} wall per task; expected total \
             {} ({})",
            p.limit,
            p.tasks,
            self.width,
            self.limits.memory_bytes >> 20,
            self.limits.fuel as f64,
            human(self.limits.wall_time),
            self.expected.total,
            self.expected.source
        );
        let _ = writeln!(
            out,
            "native: the `primes` kernel (release build of this bench) on {} std threads pulling \
             ranges from a shared counter",
            p.slots
        );
        let _ = writeln!(
            out,
            "platform: per round a fresh broker (127.0.0.1, plain gRPC, embedded SQLite in WAL mode \
             with acknowledged changes synced, settings as shipped) and one agent ({} slots, {} MiB, fuel \
             metering on, settings as shipped), as child processes; timed from SubmitWorkload to \
             the end result received",
            p.slots,
            TASK_MEMORY_MIB * p.slots as u64
        );
        let _ = writeln!(
            out,
            "rounds: {}, each after a `sync` (the disk quiet); medians reported. \"others\": \
             share of the machine's CPU that other processes took (figures are only comparable \
             when it is near 0)",
            self.round_order().join(", ")
        );
    }

    /// "native 1, platform 1, native 2, …", as they ran.
    fn round_order(&self) -> Vec<String> {
        let mut order = Vec::new();
        for k in 0..self.natives.len().max(self.platforms.len()) {
            if k < self.natives.len() {
                order.push(format!("native {}", k + 1));
            }
            if k < self.platforms.len() {
                order.push(format!("platform {}", k + 1));
            }
        }
        order
    }

    fn render_rounds(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n1. Rounds (busy = Σ task compute time / (threads or slots × wall); CPU = user + system seconds over the window)"
        );
        let _ = writeln!(
            out,
            "{:<11} | {:>10} {:>12} {:>6} | {:>7} {:>10} {:>10} {:>10} {:>10}",
            "round",
            "wall",
            "total",
            "others",
            "busy",
            "task time",
            "bench CPU",
            "broker CPU",
            "agent CPU"
        );
        let share = |share: Option<f64>| {
            share.map_or_else(|| "?".to_owned(), |s| format!("{:.0} %", s * 100.0))
        };
        let cpu = |cpu: Option<Duration>| cpu.map_or_else(|| "?".to_owned(), human);
        for k in 0..self.natives.len().max(self.platforms.len()) {
            if let Some(n) = self.natives.get(k) {
                let _ = writeln!(
                    out,
                    "{:<11} | {:>10} {:>12} {:>6} | {:>6.0}% {:>10} {:>10} {:>10} {:>10}",
                    format!("native {}", k + 1),
                    human(n.wall),
                    n.total,
                    share(n.foreign_share),
                    n.occupancy() * 100.0,
                    human(n.compute),
                    cpu(n.cpu),
                    "-",
                    "-",
                );
            }
            if let Some(p) = self.platforms.get(k) {
                let _ = writeln!(
                    out,
                    "{:<11} | {:>10} {:>12} {:>6} | {:>6.0}% {:>10} {:>10} {:>10} {:>10}",
                    format!("platform {}", k + 1),
                    human(p.wall),
                    p.total,
                    share(p.foreign_share),
                    p.occupancy() * 100.0,
                    human(p.sandbox),
                    cpu(p.issuer_cpu),
                    cpu(p.broker_cpu),
                    cpu(p.agent_cpu),
                );
            }
        }
        let (Some(native), Some(platform)) = (self.native_median(), self.platform_median()) else {
            return;
        };
        let _ = writeln!(
            out,
            "median      | native {} (min {}, max {}), platform {} (min {}, max {}), ratio {:.3}",
            human(native.median),
            human(native.min),
            human(native.max),
            human(platform.median),
            human(platform.min),
            human(platform.max),
            self.ratio().unwrap_or(f64::NAN),
        );
    }

    fn render_breakdown(&self, out: &mut String) {
        let Some(p) = self.median_platform() else {
            return;
        };
        let _ = writeln!(
            out,
            "\n2. Where the platform's time goes (the median platform round, {})",
            human(p.wall)
        );
        let _ = writeln!(
            out,
            "  submit stream {}; broker created → finished {}; finished seen → end result received {}; agent registered {} after its start (not timed)",
            human(p.submit),
            p.broker_span.map_or_else(|| "?".to_owned(), human),
            human(p.fetch),
            human(p.registered_in),
        );
        if let Some(native_compute) = self.native_compute_median() {
            let _ = writeln!(
                out,
                "  in the sandbox: Σ {} over {} tasks (agent's Usage::wall_time, whole ms), {:.3}× the native kernel's Σ {} (median native round): sandbox and fuel metering",
                human(p.sandbox),
                p.tasks_done,
                p.sandbox.as_secs_f64() / native_compute.as_secs_f64(),
                human(native_compute),
            );
        }
        let _ = writeln!(
            out,
            "  slots busy in the sandbox {:.0} % of {} slots × wall; the rest is dispatch, reporting, aggregation and idle slots",
            p.occupancy() * 100.0,
            p.slots,
        );
        if let Some(leases) = p.leases {
            let _ = writeln!(
                out,
                "  broker's clock (ms): created → first lease {}; last report → finished {} (reducer, aggregation)",
                human(leases.first_lease),
                human(leases.last_report_to_finished),
            );
            let _ = writeln!(
                out,
                "  {} leases held Σ {} over {} from the first lease to the last report ({:.2} open on average for {} slots: the agent's work buffer holds a lease ahead per slot, and a slot takes its next task while the last report is on its way); {} beyond the sandbox (waiting in the work buffer, accept, module fetch and compile, the report's trip and commit)",
                leases.count,
                human(leases.held),
                human(leases.span),
                leases.mean_open(),
                p.slots,
                human(leases.held.saturating_sub(p.sandbox)),
            );
        }
        let _ = writeln!(
            out,
            "  CPU in the window: agent {} ({:.2} cores), broker {} ({:.2} cores), bench (issuer) {}; fuel {:.3e} ({:.2} Gfuel/s in the sandbox); paid {:.3} credits + fee {:.3}",
            p.agent_cpu.map_or_else(|| "?".to_owned(), human),
            p.agent_cpu
                .map_or(f64::NAN, |c| c.as_secs_f64() / p.wall.as_secs_f64()),
            p.broker_cpu.map_or_else(|| "?".to_owned(), human),
            p.broker_cpu
                .map_or(f64::NAN, |c| c.as_secs_f64() / p.wall.as_secs_f64()),
            p.issuer_cpu.map_or_else(|| "?".to_owned(), human),
            p.fuel as f64,
            p.fuel as f64 / p.sandbox.as_secs_f64().max(1e-9) / 1e9,
            p.paid_micro as f64 / 1e6,
            p.fee_micro as f64 / 1e6,
        );
    }

    fn render_targets(&self, out: &mut String) {
        let Some(ratio) = self.ratio() else {
            return;
        };
        let target = Target {
            what: format!(
                "platform wall / native wall, primes below {}, {} tasks",
                self.plan.limit, self.plan.tasks
            ),
            measured: format!("{ratio:.3}"),
            target: format!("≤ {MAX_PLATFORM_SLOWDOWN:.2}"),
            ratio: ratio / MAX_PLATFORM_SLOWDOWN,
            met: Some(ratio <= MAX_PLATFORM_SLOWDOWN),
        };
        targets::render_table(out, 3, &[target]);
    }

    pub fn to_json(&self) -> Value {
        let p = &self.plan;
        json!({
            "machine": self.machine.to_json(),
            "plan": {
                "quick": p.quick,
                "limit": p.limit,
                "tasks": p.tasks,
                "rounds": p.rounds,
                "slots": p.slots,
                "binaries": p.binaries_origin,
            },
            "source": self.source,
            "took_s": self.took.as_secs_f64(),
            "task_width": self.width,
            "task_limits": {
                "memory_bytes": self.limits.memory_bytes,
                "fuel": self.limits.fuel,
                "wall_time_ns": nanos(self.limits.wall_time),
            },
            "expected_total": self.expected.total,
            "expected_from": self.expected.source,
            "native": self.natives.iter().map(|run| run.to_json()).collect::<Vec<_>>(),
            "platform": self.platforms.iter().map(PlatformRun::to_json).collect::<Vec<_>>(),
            "native_wall": self.native_median().map(Summary::to_json),
            "platform_wall": self.platform_median().map(Summary::to_json),
            "ratio": self.ratio(),
            "targets": {
                "max_platform_slowdown": MAX_PLATFORM_SLOWDOWN,
                "met": self.ratio().map(|ratio| ratio <= MAX_PLATFORM_SLOWDOWN),
            },
        })
    }
}
