//! `wasmgrid`, the issuer's command-line tool.
//!
//! # Layout
//! - `main`: argument parsing and the exit-code policy.
//! - `commands::run`: `wasmgrid run`, one task in the local sandbox.
//! - `units`: parsing of sizes (`64MiB`) and fuel (`10e9`) arguments.

mod commands;
mod units;

use std::process::ExitCode;

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
}

/// Exit codes: 0 the task succeeded, 1 the task ran and failed (its status
/// says why), 2 the command itself could not be carried out.
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
