//! One lease, start to end: keep the lease alive, get the module, run the
//! task in the sandbox, write the result to the outbox and hand it to the
//! reporter — or give the lease back when the task cannot run here.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;
use wasmgrid_proto::v1::{Lease, ReleaseLeaseRequest, ReportResultRequest, TaskRef};
use wasmgrid_proto::{limits_from_wire, status_to_wire, usage_to_wire};
use wasmgrid_runtime::{Limits, ModuleHash, Outcome, Runtime, RuntimeError, TaskModule};

use crate::capacity::{CapacityPool, Reservation};
use crate::client::{BrokerClient, Retry};
use crate::control::{RunningTask, RunningTasks, now_unix_ms};
use crate::counters::{Counters, add};
use crate::lease_keeper::LeaseKeeper;
use crate::module_fetch::ensure_module;
use crate::module_store::ModuleStore;
use crate::outbox::Outbox;
use crate::reporter::{Finished, ReportSender};
use crate::speed::SpeedEstimate;
use crate::stop::StopSignal;

/// How long giving a lease back may take, retries included. Releasing is a
/// courtesy that lets the broker reissue the task at once; a lease that is
/// not released still expires, so a stopping agent does not wait long for it.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// What every worker shares.
#[derive(Debug)]
pub(crate) struct WorkerContext {
    pub(crate) client: BrokerClient,
    pub(crate) runtime: Runtime,
    pub(crate) modules: Arc<ModuleStore>,
    pub(crate) outbox: Outbox,
    pub(crate) reports: ReportSender,
    pub(crate) counters: Arc<Counters>,
    /// The agent's speed, learned from the runs of every worker.
    pub(crate) speed: SpeedEstimate,
    /// The tasks running now, for `wasmgrid-agent status`.
    pub(crate) running: Arc<RunningTasks>,
    /// The slots and memory of running tasks: a leased task (running or
    /// in the work buffer) takes its share when it starts.
    pub(crate) slots: Arc<CapacityPool>,
    /// The agent's stop: a task still in the work buffer when it begins is
    /// given back instead of started.
    pub(crate) stop: StopSignal,
}

/// Lists a task as running for as long as it lives.
struct ListedAsRunning<'a> {
    running: &'a RunningTasks,
    lease_id: String,
}

impl<'a> ListedAsRunning<'a> {
    fn new(running: &'a RunningTasks, lease: &Lease) -> Self {
        let task = lease.task.clone().unwrap_or_default();
        running.started(RunningTask {
            lease_id: lease.lease_id.clone(),
            workload_id: task.workload_id,
            index: task.index,
            started_unix_ms: now_unix_ms(),
        });
        ListedAsRunning {
            running,
            lease_id: lease.lease_id.clone(),
        }
    }
}

impl Drop for ListedAsRunning<'_> {
    fn drop(&mut self) {
        self.running.ended(&self.lease_id);
    }
}

/// Works on `lease` until its result is handed to the reporter or the lease
/// is given back. `release` turning true means: stop now, give it back.
pub(crate) async fn work_on(
    ctx: Arc<WorkerContext>,
    mut lease: Lease,
    reservation: Reservation,
    release: watch::Receiver<bool>,
) {
    let task = lease.task.clone().unwrap_or_default();
    let span = tracing::info_span!(
        "lease",
        lease = %lease.lease_id,
        workload = %task.workload_id,
        task = task.index
    );
    async move {
        // Given back with the report (the reporter may ask for work for it
        // in the same call), or when the lease is given up.
        let reservation = Some(reservation);
        let keeper = LeaseKeeper::spawn(
            ctx.client.clone(),
            lease.lease_id.clone(),
            lease.lease_ms,
            lease.deadline_unix_ms,
        );
        let prepared = tokio::select! {
            prepared = prepare(&ctx, &lease) => prepared,
            _ = keeper.lost() => {
                add(&ctx.counters.leases_lost, 1);
                tracing::warn!("the lease ended before its task could start");
                return;
            }
            () = released(release.clone()) => {
                release_lease(&ctx, &lease.lease_id, "the agent is stopping").await;
                return;
            }
        };
        let (module, limits) = match prepared {
            Ok(prepared) => prepared,
            Err(reason) => {
                tracing::warn!(%reason, "cannot run the task here");
                release_lease(&ctx, &lease.lease_id, &reason).await;
                return;
            }
        };
        // A task from the work buffer waits here for a slot and its memory.
        // Biased: a task whose slot is free starts even while a stop begins,
        // as it did before it had to wait; one still waiting is given back.
        let slot = tokio::select! {
            biased;
            slot = ctx.slots.acquire(limits.memory_bytes) => slot,
            _ = keeper.lost() => {
                add(&ctx.counters.leases_lost, 1);
                tracing::warn!("the lease ended before a slot was free for its task");
                return;
            }
            () = ctx.stop.stopping() => {
                release_lease(&ctx, &lease.lease_id, "the agent is stopping").await;
                return;
            }
        };
        let _listed = ListedAsRunning::new(&ctx.running, &lease);
        let input = std::mem::take(&mut lease.input);
        tracing::info!(fuel = limits.fuel, memory_bytes = limits.memory_bytes, "task started");
        let outcome = tokio::select! {
            outcome = ctx.runtime.run(&module, input, &limits, lease.seed) => outcome,
            () = released(release) => {
                release_lease(&ctx, &lease.lease_id, "the agent stopped before the task finished").await;
                return;
            }
        };
        // The next task may start while this one's result is kept and sent.
        drop(slot);
        match outcome {
            Ok(outcome) => {
                let lost = keeper.lost_reason();
                drop(keeper);
                finish(&ctx, lease.lease_id, lease.task, outcome, lost, reservation).await;
            }
            Err(RuntimeError::InvalidLimits(why)) => {
                let reason = format!("invalid limits: {why}");
                tracing::warn!(%reason, "the sandbox refused the task's limits");
                release_lease(&ctx, &lease.lease_id, &reason).await;
            }
            Err(error) => {
                let reason = format!("the agent could not run the task: {error}");
                tracing::error!(%reason, "sandbox failure");
                release_lease(&ctx, &lease.lease_id, &reason).await;
            }
        }
    }
    .instrument(span)
    .await;
}

/// The task's limits and module, or why it cannot run here.
async fn prepare(ctx: &WorkerContext, lease: &Lease) -> Result<(TaskModule, Limits), String> {
    let limits = limits_from_wire(lease.limits.as_ref())
        .map_err(|error| format!("invalid limits: {error}"))?;
    let hash = ModuleHash::from_hex(&lease.module_sha256)
        .ok_or_else(|| format!("invalid module sha256 {:?}", lease.module_sha256))?;
    let module = ensure_module(&ctx.modules, &ctx.client, hash)
        .await
        .map_err(|error| error.to_string())?;
    Ok((module, limits))
}

/// Counts the outcome, writes its report to the outbox, then hands it to
/// the reporter (which syncs it to disk if the broker is slow to take it)
/// with the lease's share of the capacity, `frees`.
async fn finish(
    ctx: &WorkerContext,
    lease_id: String,
    task: Option<TaskRef>,
    outcome: Outcome,
    lost: Option<String>,
    frees: Option<Reservation>,
) {
    let counters = &ctx.counters;
    add(&counters.tasks_run, 1);
    add(
        if outcome.status.is_ok() {
            &counters.tasks_ok
        } else {
            &counters.tasks_failed
        },
        1,
    );
    add(&counters.fuel_consumed, outcome.usage.fuel_consumed);
    ctx.speed
        .record(outcome.usage.fuel_consumed, outcome.usage.wall_time);
    if lost.is_some() {
        add(&counters.leases_lost, 1);
    }
    tracing::info!(
        status = %outcome.status,
        fuel = outcome.usage.fuel_consumed,
        wall_ms = outcome.usage.wall_time.as_millis(),
        output_bytes = outcome.usage.output_bytes,
        lease_lost = lost.is_some(),
        "task finished"
    );
    let report = Arc::new(ReportResultRequest {
        lease_id,
        status: Some(status_to_wire(&outcome.status)),
        usage: Some(usage_to_wire(&outcome.usage)),
        output: outcome.output,
        stderr: outcome.stderr,
        task,
    });
    let written = {
        let outbox = ctx.outbox.clone();
        let report = Arc::clone(&report);
        tokio::task::spawn_blocking(move || outbox.put(&report)).await
    };
    match written {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot keep the result in the outbox; sending it anyway, but a crash before the broker acknowledges it loses it")
        }
        Err(error) => {
            tracing::error!(%error, "the outbox write did not complete; sending the result anyway")
        }
    }
    let report = Arc::try_unwrap(report).unwrap_or_else(|shared| (*shared).clone());
    if ctx.reports.send(Finished { report, frees }).is_err() {
        tracing::error!("the reporter is gone; the result stays in the outbox for the next start");
    }
}

/// Gives the lease back with `reason`, retrying briefly.
pub(crate) async fn release_lease(ctx: &WorkerContext, lease_id: &str, reason: &str) {
    add(&ctx.counters.leases_released, 1);
    release_with(&ctx.client, lease_id, reason).await;
}

/// Gives a lease back through `client`; failures are logged, as the lease
/// expires anyway.
pub(crate) async fn release_with(client: &BrokerClient, lease_id: &str, reason: &str) {
    let request = ReleaseLeaseRequest {
        lease_id: lease_id.to_owned(),
        reason: reason.to_owned(),
    };
    let released = client
        .call(
            "release lease",
            Retry::for_duration(RELEASE_TIMEOUT),
            |mut grpc| {
                let request = request.clone();
                async move { grpc.release_lease(request).await }
            },
        )
        .await;
    match released {
        Ok(_) => tracing::info!(lease = lease_id, reason, "lease released"),
        Err(status) => {
            tracing::warn!(lease = lease_id, reason, code = ?status.code(), detail = status.message(), "cannot release the lease; the broker will let it expire")
        }
    }
}

/// Returns once `release` turns true (never, if its sender is gone).
async fn released(mut release: watch::Receiver<bool>) {
    if release.wait_for(|release| *release).await.is_err() {
        std::future::pending::<()>().await;
    }
}
