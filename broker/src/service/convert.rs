//! Store rows to wire messages.

use wasmgrid_proto::v1;

use crate::core::LedgerTotals;
use crate::error::BrokerResult;
use crate::store::ledger::{self, Entry};
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
    let (escrowed, paid, fee, refunded) = ledger::workload_totals(conn, &workload.id).await?;
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
        bill: Some(v1::Bill {
            escrowed_micro: escrowed,
            paid_micro: paid,
            fee_micro: fee,
            refunded_micro: refunded,
        }),
        replicas: workload.replicas,
        quorum: workload.quorum,
        credits_per_fuel: workload.credits_per_fuel,
        credits_per_mib_second: workload.credits_per_mib_second,
        adaptive_replication: workload.adaptive,
    })
}

/// A ledger entry on the wire.
pub fn ledger_entry(entry: Entry) -> v1::LedgerEntry {
    v1::LedgerEntry {
        seq: entry.seq as u64,
        at_unix_ms: entry.at_ms,
        kind: entry.kind,
        from_account: entry.from,
        to_account: entry.to,
        amount_micro: entry.amount,
        workload_id: entry.workload_id.unwrap_or_default(),
        has_task: entry.index.is_some(),
        task_index: entry.index.unwrap_or(0),
        lease_id: entry.lease_id.unwrap_or_default(),
        agent_id: entry.agent_id.unwrap_or_default(),
        fuel: entry.fuel.unwrap_or(0),
        memo: entry.memo.unwrap_or_default(),
    }
}

/// Every account and the ledger's totals on the wire.
pub fn accounts_list(totals: LedgerTotals) -> v1::ListAccountsResponse {
    v1::ListAccountsResponse {
        accounts: totals
            .accounts
            .into_iter()
            .map(|account| v1::Account {
                id: account.id,
                kind: account.kind,
                balance_micro: account.balance,
            })
            .collect(),
        granted_micro: totals.granted,
        held_micro: totals.held,
    }
}
