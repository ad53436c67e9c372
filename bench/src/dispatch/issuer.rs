//! The load generator's issuer: submits the workloads through the streamed
//! `SubmitWorkload` every client uses (`wasmgrid_proto::submission`), and
//! follows them with `GetStatus`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use wasmgrid_proto::submission::Workload;
use wasmgrid_proto::v1::issuer_service_client::IssuerServiceClient;
use wasmgrid_proto::v1::{self, WorkloadStatus};
use wasmgrid_runtime::Limits;

use crate::dispatch::broker::{AdminChannel, connect_as_admin, issuer_client};
use crate::dispatch::latency::{Latencies, Rpc};

/// The issuer the bench's workloads belong to.
const ISSUER: &str = "dispatch-bench";

/// Length of every task input. One length for all makes the `echo`
/// outcome measured once (its fuel counts input bytes) true of every task.
pub const INPUT_LEN: usize = 12;

/// The input of task `n` of a phase: `n` in decimal, zero-padded.
pub fn input(n: u64) -> Vec<u8> {
    format!("{n:0width$}", width = INPUT_LEN).into_bytes()
}

/// What each task may use. The `echo` task needs little; the agents'
/// declared memory must cover `memory_bytes` per slot.
pub fn limits() -> Limits {
    Limits {
        memory_bytes: 16 << 20,
        fuel: 10_000_000,
        wall_time: Duration::from_secs(10),
        max_output_bytes: 4096,
        ..Limits::default()
    }
}

/// The issuer's client, as the admin acting for [`ISSUER`].
#[derive(Debug)]
pub struct Issuer {
    client: IssuerServiceClient<AdminChannel>,
    module: Vec<u8>,
    /// `GetStatus` and `SubmitWorkload` round trips.
    pub latencies: Latencies,
}

/// A workload as submitted.
#[derive(Clone, Debug)]
pub struct Submitted {
    pub workload_id: String,
    pub tasks: u64,
    /// From opening the stream to the broker's answer (the workload and
    /// its tasks are committed then).
    pub took: Duration,
}

impl Issuer {
    pub async fn connect(url: &str, module: Vec<u8>) -> Result<Self> {
        let (channel, bearer) = connect_as_admin(url).await?;
        Ok(Issuer {
            client: issuer_client(channel, bearer),
            module,
            latencies: Latencies::default(),
        })
    }

    /// Submits one free workload of `echo` over inputs `first..first +
    /// tasks` with `replicas` replicas (all must agree).
    pub async fn submit(
        &mut self,
        name: String,
        first: u64,
        tasks: u64,
        replicas: u32,
    ) -> Result<Submitted> {
        let requests = Workload {
            name,
            issuer: ISSUER.to_owned(),
            module: self.module.clone(),
            reducer: None,
            inputs: (first..first + tasks).map(input).collect(),
            limits: limits(),
            replicas,
            quorum: 0,
            adaptive_replication: false,
            max_attempts: 3,
            // Free: no grant, no escrow. Paid workloads add ledger postings
            // to every settled task; see docs/performance.md.
            credits_per_fuel: 0.0,
            credits_per_mib_second: 0.0,
        }
        .into_requests()
        .context("build the submission")?;
        let started = Instant::now();
        let response = self
            .client
            .submit_workload(tokio_stream::iter(requests))
            .await
            .map_err(|status| anyhow!("SubmitWorkload failed: {status}"))?
            .into_inner();
        let took = started.elapsed();
        self.latencies.record(Rpc::SubmitWorkload, took);
        Ok(Submitted {
            workload_id: response.workload_id,
            tasks: response.task_count.into(),
            took,
        })
    }

    pub async fn status(&mut self, workload_id: &str) -> Result<WorkloadStatus> {
        let started = Instant::now();
        let status = self
            .client
            .get_status(v1::WorkloadRequest {
                workload_id: workload_id.to_owned(),
            })
            .await
            .map_err(|status| anyhow!("GetStatus of {workload_id} failed: {status}"))?
            .into_inner();
        self.latencies.record(Rpc::GetStatus, started.elapsed());
        Ok(status)
    }
}

/// Whether a workload has ended (done, failed or cancelled).
pub fn is_final(status: &WorkloadStatus) -> bool {
    status.state != v1::WorkloadState::Running as i32
}
