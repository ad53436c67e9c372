//! The end result: when every task of a workload is finished, failed tasks
//! fail the workload (they are reported, never dropped); otherwise the
//! reducer, run in the broker's sandbox over the framed task outputs in task
//! order, produces the end result, or without a reducer the ordered task
//! outputs are the result.

use std::sync::Arc;

use tracing::Instrument;

use wasmgrid_proto::MAX_OUTPUT_BYTES;
use wasmgrid_runtime::{Limits, Status, TaskModule};

use crate::core::{Broker, billing};
use crate::error::{BrokerError, BrokerResult};
use crate::ids::{now_ms, task_seed};
use crate::store::workloads::{self, WorkloadState};
use crate::store::{modules, tasks};

/// Index whose seed the reducer uses: no task has it.
const REDUCER_SEED_INDEX: u32 = u32::MAX;
/// Most bytes of reducer stderr kept in the workload's error.
const STDERR_IN_ERROR: usize = 2000;

impl Broker {
    /// Builds the end result in the background, in a span under the
    /// caller's (the report that finished the last task).
    pub(crate) fn spawn_aggregation(self: &Arc<Self>, workload_id: String) {
        let broker = Arc::clone(self);
        let span = tracing::info_span!("Aggregate", workload = %workload_id);
        tokio::spawn(
            async move {
                if let Err(error) = broker.aggregate(&workload_id).await {
                    tracing::error!(workload = %workload_id, %error, "aggregation failed; retried at next start");
                }
            }
            .instrument(span),
        );
    }

    /// Finishes a workload whose tasks are all finished.
    pub async fn aggregate(&self, workload_id: &str) -> BrokerResult<()> {
        let mut conn = self.store.conn().await?;
        let workload = workloads::require(&mut conn, workload_id).await?;
        if workload.state.is_final() {
            return Ok(());
        }
        let counts = workloads::counts(&mut conn, workload_id).await?;
        if counts.pending > 0 {
            return Ok(());
        }
        let (state, error, result) = if counts.failed > 0 {
            let error = format!("{} of {} tasks failed", counts.failed, workload.task_count);
            (WorkloadState::Failed, Some(error), None)
        } else if let Some(reducer_sha) = &workload.reducer_sha256 {
            let reducer = modules::get(&mut conn, reducer_sha).await?.ok_or_else(|| {
                BrokerError::not_found(format!("reducer module {reducer_sha} missing"))
            })?;
            let outputs = tasks::outputs(&mut conn, workload_id).await?;
            drop(conn);
            let input = wasmgrid_sdk::frames::encode(&outputs);
            let limits = Limits {
                max_output_bytes: MAX_OUTPUT_BYTES,
                ..workload.limits.clone()
            };
            let seed = task_seed(workload_id, REDUCER_SEED_INDEX);
            let outcome = self
                .runtime
                .run(&TaskModule::new(reducer), input, &limits, seed)
                .await?;
            conn = self.store.conn().await?;
            match outcome.status {
                Status::Ok => (WorkloadState::Done, None, Some(outcome.output)),
                status => {
                    let stderr = String::from_utf8_lossy(&outcome.stderr);
                    let stderr: String = stderr.chars().take(STDERR_IN_ERROR).collect();
                    let error = format!("reducer failed: {status}: {}", stderr.trim());
                    (WorkloadState::Failed, Some(error), None)
                }
            }
        } else {
            (WorkloadState::Done, None, None)
        };
        drop(conn);
        let now = now_ms();
        let mut tx = self.store.write().await?;
        let finished = workloads::finish(
            &mut tx,
            workload_id,
            state,
            error.as_deref(),
            result.as_deref(),
            now,
        )
        .await?;
        if finished {
            billing::close(&mut tx, &workload, now).await?;
        }
        tx.commit().await?;
        self.scheduler.lock().await.remove_workload(workload_id);
        self.ended();
        tracing::info!(workload = %workload_id, state = state.as_str(), error = ?error, "workload finished");
        Ok(())
    }
}
