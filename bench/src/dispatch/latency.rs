//! Latency of each RPC kind as the simulated agents and the issuer see it:
//! every call's round trip in microseconds, kept whole (a few million
//! `u32`s at most) and sorted once at the end, so percentiles are exact.

use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

/// What a latency sample measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rpc {
    Register,
    RequestWork,
    AcceptOffers,
    FetchModule,
    ExtendLease,
    ReportResult,
    /// All of a cycle's results in one call, as the real agent sends the
    /// results it has ready.
    ReportResults,
    /// One cycle of getting work: `RequestWork` sent to `AcceptOffers`
    /// answered with leases, for the cycles that got offers.
    Dispatch,
    SubmitWorkload,
    GetStatus,
}

impl Rpc {
    pub const ALL: [Rpc; 10] = [
        Rpc::Register,
        Rpc::RequestWork,
        Rpc::AcceptOffers,
        Rpc::FetchModule,
        Rpc::ExtendLease,
        Rpc::ReportResult,
        Rpc::ReportResults,
        Rpc::Dispatch,
        Rpc::SubmitWorkload,
        Rpc::GetStatus,
    ];

    fn slot(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Rpc::Register => "Register",
            Rpc::RequestWork => "RequestWork",
            Rpc::AcceptOffers => "AcceptOffers",
            Rpc::FetchModule => "FetchModule",
            Rpc::ExtendLease => "ExtendLease",
            Rpc::ReportResult => "ReportResult",
            Rpc::ReportResults => "ReportResults",
            Rpc::Dispatch => "dispatch (RequestWork→leases)",
            Rpc::SubmitWorkload => "SubmitWorkload (stream)",
            Rpc::GetStatus => "GetStatus",
        }
    }
}

impl fmt::Display for Rpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Samples per RPC kind, in microseconds.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    samples: [Vec<u32>; Rpc::ALL.len()],
}

impl Latencies {
    pub fn record(&mut self, rpc: Rpc, latency: Duration) {
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.samples[rpc.slot()].push(micros);
    }

    pub fn merge(&mut self, other: Latencies) {
        for (mine, theirs) in self.samples.iter_mut().zip(other.samples) {
            mine.extend(theirs);
        }
    }

    /// The distribution of each kind that has samples, in `Rpc::ALL` order
    /// (the samples are left sorted, and may still be merged).
    pub fn summarise(&mut self) -> Vec<LatencySummary> {
        Rpc::ALL
            .iter()
            .filter_map(|&rpc| {
                let samples = &mut self.samples[rpc.slot()];
                samples.sort_unstable();
                LatencySummary::of(rpc, samples)
            })
            .collect()
    }
}

/// Percentiles of one RPC kind.
#[derive(Clone, Copy, Debug)]
pub struct LatencySummary {
    pub rpc: Rpc,
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl LatencySummary {
    /// From sorted samples in microseconds; `None` when there are none.
    fn of(rpc: Rpc, sorted: &[u32]) -> Option<Self> {
        let max = *sorted.last()?;
        let total: u64 = sorted.iter().map(|&s| u64::from(s)).sum();
        let micros = |m: u64| Duration::from_micros(m);
        Some(LatencySummary {
            rpc,
            count: sorted.len(),
            p50: micros(u64::from(nearest_rank(sorted, 0.50))),
            p99: micros(u64::from(nearest_rank(sorted, 0.99))),
            max: micros(u64::from(max)),
            mean: micros(total / sorted.len() as u64),
        })
    }

    pub fn to_json(self) -> Value {
        json!({
            "rpc": self.rpc.name(),
            "count": self.count,
            "p50_us": self.p50.as_micros() as u64,
            "p99_us": self.p99.as_micros() as u64,
            "max_us": self.max.as_micros() as u64,
            "mean_us": self.mean.as_micros() as u64,
        })
    }
}

/// The sample at quantile `q` of `sorted` (non-empty) by nearest rank.
fn nearest_rank(sorted: &[u32], q: f64) -> u32 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The summary of `rpc` among `summaries`.
pub fn find(summaries: &[LatencySummary], rpc: Rpc) -> Option<LatencySummary> {
    summaries.iter().find(|s| s.rpc == rpc).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut latencies = Latencies::default();
        for micros in (1..=200).rev() {
            latencies.record(Rpc::ReportResult, Duration::from_micros(micros));
        }
        let summaries = latencies.summarise();
        assert_eq!(summaries.len(), 1);
        let report = summaries[0];
        assert_eq!(report.count, 200);
        assert_eq!(report.p50, Duration::from_micros(100));
        assert_eq!(report.p99, Duration::from_micros(198));
        assert_eq!(report.max, Duration::from_micros(200));
    }

    #[test]
    fn merged_samples_are_summarised_together() {
        let mut a = Latencies::default();
        a.record(Rpc::RequestWork, Duration::from_micros(10));
        let mut b = Latencies::default();
        b.record(Rpc::RequestWork, Duration::from_micros(30));
        b.record(Rpc::AcceptOffers, Duration::from_micros(5));
        a.merge(b);
        let summaries = a.summarise();
        assert_eq!(find(&summaries, Rpc::RequestWork).map(|s| s.count), Some(2));
        assert_eq!(
            find(&summaries, Rpc::AcceptOffers).map(|s| s.count),
            Some(1)
        );
        assert!(find(&summaries, Rpc::Register).is_none());
    }
}
