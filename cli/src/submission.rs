//! Sending a workload to the broker; the stream itself is built by
//! [`wasmgrid_proto::submission`], shared with the tests.

pub use wasmgrid_proto::submission::Workload;
use wasmgrid_proto::v1::SubmitWorkloadResponse;

use crate::client::Broker;

/// Sends the workload; the broker answers with its id once it is stored.
pub async fn submit(
    broker: &mut Broker,
    workload: Workload,
) -> anyhow::Result<SubmitWorkloadResponse> {
    let requests = workload.into_requests()?;
    let response = broker
        .issuer
        .submit_workload(tokio_stream::iter(requests))
        .await
        .map_err(|status| broker.error(status))?;
    Ok(response.into_inner())
}
