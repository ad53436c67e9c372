//! `wasmgrid cancel`: stop a workload; queued tasks are dropped and running
//! ones are revoked.

use clap::Args;
use wasmgrid_proto::v1::WorkloadRequest;

use crate::client::{Broker, BrokerArgs};
use crate::progress::state_name;

/// Arguments of `wasmgrid cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The workload id, as printed by `wasmgrid submit`.
    id: String,
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Cancels the workload and prints its state afterwards, e.g. `cancelled`.
/// The broker refuses to cancel a workload that has already ended.
pub async fn run(args: CancelArgs) -> anyhow::Result<bool> {
    let mut broker = Broker::connect(&args.broker).await?;
    let response = broker
        .issuer
        .cancel(WorkloadRequest {
            workload_id: args.id,
        })
        .await
        .map_err(|status| broker.error(status))?
        .into_inner();
    println!("{}", state_name(response.state));
    Ok(true)
}
