//! `wasmgrid workloads`: the operator's list of every workload on a broker.

use clap::Args;
use wasmgrid_proto::v1::ListWorkloadsRequest;

use crate::client::{Broker, BrokerArgs};
use crate::progress::state_name;
use crate::table::{Table, unix_ms_text};

/// Arguments of `wasmgrid workloads`.
#[derive(Debug, Args)]
pub struct WorkloadsArgs {
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Prints one row per workload, oldest first.
pub async fn run(args: WorkloadsArgs) -> anyhow::Result<bool> {
    let mut broker = Broker::connect(&args.broker).await?;
    let mut workloads = broker
        .admin
        .list_workloads(ListWorkloadsRequest {})
        .await
        .map_err(|status| broker.error(status))?
        .into_inner()
        .workloads;
    if workloads.is_empty() {
        eprintln!("no workloads on {}", broker.url());
        return Ok(true);
    }
    workloads.sort_by_key(|workload| workload.created_unix_ms);
    let mut table = Table::new(&[
        "ID", "NAME", "ISSUER", "STATE", ">DONE", ">TOTAL", ">RUNNING", ">QUEUED", ">FAILED",
        "CREATED",
    ]);
    for workload in &workloads {
        table.row(vec![
            workload.workload_id.clone(),
            workload.name.clone(),
            workload.issuer.clone(),
            state_name(workload.state).to_owned(),
            workload.done.to_string(),
            workload.total.to_string(),
            workload.running.to_string(),
            workload.queued.to_string(),
            workload.failed.to_string(),
            unix_ms_text(workload.created_unix_ms),
        ]);
    }
    print!("{}", table.render());
    Ok(true)
}
