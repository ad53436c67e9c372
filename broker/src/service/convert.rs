//! Store rows to wire messages.

use wasmgrid_proto::v1;

use crate::error::BrokerResult;
use crate::store::tasks;
use crate::store::workloads::{self, WorkloadRow, WorkloadState};

pub fn workload_state(state: WorkloadState) -> v1::WorkloadState {
    match state {
        WorkloadState::Running => v1::WorkloadState::Running,
        WorkloadState::Done => v1::WorkloadState::Done,
        WorkloadState::Failed => v1::WorkloadState::Failed,
        WorkloadState::Cancelled => v1::WorkloadState::Cancelled,
    }
}

/// The status message of a workload, with counts and failures from the store.
pub async fn workload_status(
    conn: &mut sqlx::SqliteConnection,
    workload: &WorkloadRow,
) -> BrokerResult<v1::WorkloadStatus> {
    let counts = workloads::counts(conn, &workload.id).await?;
    let failures = tasks::failures(conn, &workload.id)
        .await?
        .into_iter()
        .map(|(index, reason)| v1::TaskFailure { index, reason })
        .collect();
    Ok(v1::WorkloadStatus {
        workload_id: workload.id.clone(),
        issuer: workload.issuer.clone(),
        name: workload.name.clone(),
        state: workload_state(workload.state) as i32,
        total: workload.task_count,
        queued: counts.pending.saturating_sub(counts.running),
        running: counts.running,
        done: counts.done,
        failed: counts.failed,
        created_unix_ms: workload.created_ms,
        finished_unix_ms: workload.finished_ms.unwrap_or(0),
        error: workload.error.clone().unwrap_or_default(),
        failures,
        has_reducer: workload.reducer_sha256.is_some(),
    })
}
