//! `wasmgrid submit`: hand a workload (a module and its task inputs) to the
//! broker and print its id.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use wasmgrid_proto::v1::{BalanceRequest, WorkloadRequest};

use crate::client::{Broker, BrokerArgs};
use crate::credits::credits_with_unit;
use crate::inputs::read_inputs;
use crate::issuer::IssuerArgs;
use crate::limit_args::{LimitArgs, check_grid_limits};
use crate::module_file::read_module;
use crate::submission::{Workload, submit};
use crate::units::parse_rate;

/// Arguments of `wasmgrid submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The task: a wasm32-wasip1 command module (.wasm) every task runs.
    module: PathBuf,
    /// The task inputs: a directory (each file is one task's input, in
    /// file-name order) or a .jsonl file (each non-blank line is one input).
    #[arg(long, value_name = "DIR|FILE.jsonl")]
    inputs: PathBuf,
    /// A module that combines all task outputs, in task order, into the end
    /// result (see `wasmgrid results`).
    #[arg(long, value_name = "REDUCER.wasm")]
    reducer: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Independent runs of each task on different agents; their outputs must
    /// agree for the task to count as done.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    replicas: u32,
    /// Agreeing results a task needs to be done, at most --replicas; by
    /// default all replicas must agree.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    quorum: Option<u32>,
    /// Adaptive replication (needs --replicas 2 or more): a task whose first
    /// run goes to a trusted agent is accepted on that run alone, save for
    /// random spot checks; the other replicas are not run or paid.
    #[arg(long)]
    adaptive: bool,
    /// Runs a task may take (failures, timeouts, lost agents) before it is
    /// marked failed.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
    /// A name for the workload in listings; defaults to the module's file
    /// name without extension.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    issuer: IssuerArgs,
    /// Price offered to agents, in credits per unit of fuel consumed. The
    /// broker escrows the workload's maximum cost from the issuer's balance
    /// at submit and refuses the workload if the balance is short.
    #[arg(long, default_value = "1e-9", value_name = "RATE", value_parser = parse_rate)]
    credits_per_fuel: f64,
    /// Price of memory, in credits per MiB of peak memory per second of the
    /// task's virtual clock (1 ns per unit of fuel); 0 prices fuel only.
    #[arg(long, default_value = "0", value_name = "RATE", value_parser = parse_rate)]
    credits_per_mib_second: f64,
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Submits the workload and prints its id on stdout; what was escrowed and
/// the balance left go to stderr.
pub async fn run(args: SubmitArgs) -> anyhow::Result<bool> {
    let quorum = args.quorum.unwrap_or(0);
    if quorum > args.replicas {
        bail!(
            "--quorum {quorum} is above --replicas {}: a task cannot need more agreeing results than it has runs",
            args.replicas
        );
    }
    if args.adaptive && args.replicas < 2 {
        bail!(
            "--adaptive needs --replicas 2 or more: with one replica every task already runs once"
        );
    }
    let module = read_module(&args.module, "module")?;
    let reducer = args
        .reducer
        .as_deref()
        .map(|path| read_module(path, "reducer"))
        .transpose()?;
    let inputs = read_inputs(&args.inputs)?;
    let limits = args.limits.to_limits()?;
    check_grid_limits(&limits)?;
    let name = args.name.unwrap_or_else(|| {
        args.module
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let workload = Workload {
        name,
        issuer: args.issuer.requested(),
        module,
        reducer,
        inputs,
        limits,
        replicas: args.replicas,
        max_attempts: args.max_attempts,
        credits_per_fuel: args.credits_per_fuel,
        quorum,
        adaptive_replication: args.adaptive,
        credits_per_mib_second: args.credits_per_mib_second,
    };
    let issuer = workload.issuer.clone();
    let mut broker = Broker::connect(&args.broker).await?;
    let response = submit(&mut broker, workload).await?;
    eprintln!(
        "submitted {} tasks to {}",
        response.task_count,
        broker.url()
    );
    if let Some(line) = escrow_line(&mut broker, &response.workload_id, &issuer).await {
        eprintln!("{line}");
    }
    println!("{}", response.workload_id);
    Ok(true)
}

/// `escrowed X credits from issuer NAME, balance now Y credits`, or `None`
/// if the broker does not answer: the workload is submitted either way, so
/// this line is not worth failing the command for.
async fn escrow_line(broker: &mut Broker, workload_id: &str, issuer: &str) -> Option<String> {
    let status = broker
        .issuer
        .get_status(WorkloadRequest {
            workload_id: workload_id.to_owned(),
        })
        .await
        .ok()?
        .into_inner();
    let escrowed = status.bill.map_or(0, |bill| bill.escrowed_micro);
    let balance = broker
        .issuer
        .get_balance(BalanceRequest {
            issuer: issuer.to_owned(),
        })
        .await
        .ok()?
        .into_inner();
    Some(format!(
        "escrowed {} from issuer {issuer}, balance now {}",
        credits_with_unit(escrowed),
        credits_with_unit(balance.balance_micro)
    ))
}
