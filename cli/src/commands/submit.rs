//! `wasmgrid submit`: hand a workload (a module and its task inputs) to the
//! broker and print its id.

use std::path::PathBuf;

use clap::Args;

use crate::client::{Broker, BrokerArgs};
use crate::inputs::read_inputs;
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
    /// Runs a task may take (failures, timeouts, lost agents) before it is
    /// marked failed.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
    /// A name for the workload in listings; defaults to the module's file
    /// name without extension.
    #[arg(long)]
    name: Option<String>,
    /// Who submits and pays; defaults to $USER, or "default".
    #[arg(long, env = "WASMGRID_ISSUER")]
    issuer: Option<String>,
    /// Price offered to agents, in credits per unit of fuel consumed.
    #[arg(long, default_value = "1e-9", value_parser = parse_rate)]
    credits_per_fuel: f64,
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Submits the workload and prints its id on stdout.
pub async fn run(args: SubmitArgs) -> anyhow::Result<bool> {
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
        issuer: args
            .issuer
            .filter(|issuer| !issuer.is_empty())
            .unwrap_or_else(default_issuer),
        module,
        reducer,
        inputs,
        limits,
        replicas: args.replicas,
        max_attempts: args.max_attempts,
        credits_per_fuel: args.credits_per_fuel,
    };
    let mut broker = Broker::connect(&args.broker).await?;
    let response = submit(&mut broker, workload).await?;
    eprintln!(
        "submitted {} tasks to {}",
        response.task_count,
        broker.url()
    );
    println!("{}", response.workload_id);
    Ok(true)
}

/// `$USER`, or `default` when it is unset or empty.
fn default_issuer() -> String {
    std::env::var("USER")
        .ok()
        .filter(|user| !user.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}
