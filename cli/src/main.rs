//! `wasmgrid`, the issuer's command-line tool.
//!
//! # Layout
//! - `main`: argument parsing and the exit-code policy.
//! - `commands::run`: `wasmgrid run`, one task in the local sandbox.
//! - `commands::submit`: `wasmgrid submit`, a workload to the broker.
//! - `commands::status`, `commands::wait`: a workload's progress, once or
//!   live until it ends.
//! - `commands::results`: the end result or task outputs of a workload.
//! - `commands::cancel`: stop a workload.
//! - `commands::agents`, `commands::workloads`: the operator's listings.
//! - `commands::balance`, `commands::ledger`: an issuer's credits and its
//!   statement, of its account or of one workload.
//! - `commands::grant`: the admin's grant of credits to an issuer.
//! - `commands::demo`: a broker and agents on this machine, counting primes.
//! - `client`: `--broker`, connecting, and gRPC errors as messages.
//! - `issuer`: `--issuer` and its default.
//! - `credits`: exact decimal credits to and from micro-credits.
//! - `bill`: a workload's bill (escrowed, paid, fee, refunded) as text.
//! - `submission`: a workload as the `SubmitWorkload` request stream.
//! - `inputs`: task inputs from a directory or a `.jsonl` file.
//! - `module_file`: reading a `.wasm` file named on the command line.
//! - `limit_args`: the task limit flags shared by `run` and `submit`.
//! - `progress`: progress bars and the words for workload states.
//! - `table`: plain-text tables, times and durations.
//! - `children`: child processes stopped on every exit path (`demo`).
//! - `units`: parsing of sizes (`64MiB`), fuel (`10e9`) and rates (`1e-9`).

mod bill;
mod children;
mod client;
mod commands;
mod credits;
mod inputs;
mod issuer;
mod limit_args;
mod module_file;
mod progress;
mod submission;
mod table;
mod units;

use std::future::Future;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// wasmgrid: run WebAssembly tasks in a metered sandbox, locally or on a grid
/// of volunteer machines.
#[derive(Debug, Parser)]
#[command(name = "wasmgrid", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one task locally in the sandbox and print its output and usage.
    Run(commands::run::RunArgs),
    /// Submit a workload (a module and its task inputs) and print its id.
    Submit(commands::submit::SubmitArgs),
    /// Show a workload's state, progress and bill once; with --tasks every
    /// run of every task.
    Status(commands::status::StatusArgs),
    /// Follow a workload until it ends; exit 0 if it is done, 1 if it failed
    /// or was cancelled.
    Wait(commands::wait::WaitArgs),
    /// Print a workload's end result, or its task outputs, or write them to a
    /// directory.
    Results(commands::results::ResultsArgs),
    /// Cancel a workload and print its new state.
    Cancel(commands::cancel::CancelArgs),
    /// List the agents registered with the broker: record, reputation,
    /// earnings and speed.
    Agents(commands::agents::AgentsArgs),
    /// List every workload on the broker.
    Workloads(commands::workloads::WorkloadsArgs),
    /// Show an issuer's balance and what its running workloads hold in
    /// escrow.
    Balance(commands::balance::BalanceArgs),
    /// Show an issuer's ledger statement, or one workload's (escrow, a line
    /// per paid task run, fee, refund) with its totals.
    Ledger(commands::ledger::LedgerArgs),
    /// (admin) Grant credits to an issuer and print its new balance.
    Grant(commands::grant::GrantArgs),
    /// Start a broker and agents on this machine, grant the "demo" issuer
    /// credits, count the primes below 10^9 on the agents and show the bill.
    Demo(commands::demo::DemoArgs),
}

/// Exit codes: 0 the task or workload succeeded, 1 it ran and failed (its
/// status says why), 2 the command itself could not be carried out.
const EXIT_TASK_FAILED: u8 = 1;
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WASMGRID_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Submit(args) => block_on(commands::submit::run(args)),
        Command::Status(args) => block_on(commands::status::run(args)),
        Command::Wait(args) => block_on(commands::wait::run(args)),
        Command::Results(args) => block_on(commands::results::run(args)),
        Command::Cancel(args) => block_on(commands::cancel::run(args)),
        Command::Agents(args) => block_on(commands::agents::run(args)),
        Command::Workloads(args) => block_on(commands::workloads::run(args)),
        Command::Balance(args) => block_on(commands::balance::run(args)),
        Command::Ledger(args) => block_on(commands::ledger::run(args)),
        Command::Grant(args) => block_on(commands::grant::run(args)),
        Command::Demo(args) => block_on(commands::demo::run(args)),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_TASK_FAILED),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Runs a command that talks to the network. `run` stays outside: the
/// sandbox has its own threads and blocks on them.
fn block_on(command: impl Future<Output = anyhow::Result<bool>>) -> anyhow::Result<bool> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(command)
}
