//! One-line reads of a broker's state that many tests make, as the admin.

use wasmgrid_proto::v1;

use crate::client::{admin, issuer};

/// A workload's status.
pub async fn status_of(url: &str, workload_id: &str) -> v1::WorkloadStatus {
    issuer(url)
        .await
        .get_status(v1::WorkloadRequest {
            workload_id: workload_id.to_owned(),
        })
        .await
        .expect("status")
        .into_inner()
}

/// A workload's tasks, each with its runs.
pub async fn tasks_of(url: &str, workload_id: &str) -> Vec<v1::TaskInfo> {
    issuer(url)
        .await
        .list_tasks(v1::WorkloadRequest {
            workload_id: workload_id.to_owned(),
        })
        .await
        .expect("tasks")
        .into_inner()
        .tasks
}

/// How many workloads the broker stores.
pub async fn workload_count(url: &str) -> usize {
    admin(url)
        .await
        .list_workloads(v1::ListWorkloadsRequest {})
        .await
        .expect("list")
        .into_inner()
        .workloads
        .len()
}

/// The number a reducer such as `sum-u64` wrote as the end result.
pub fn end_value(end: &v1::EndResult) -> u64 {
    assert!(end.reduced, "the reducer ran");
    String::from_utf8_lossy(&end.output)
        .parse()
        .expect("a count")
}
