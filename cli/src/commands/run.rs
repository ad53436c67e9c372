//! `wasmgrid run`: one task in the local sandbox, exactly as an agent would
//! run it, with its output on stdout and a usage report on stderr.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use wasmgrid_runtime::{Outcome, Runtime, RuntimeConfig, TaskModule};

use crate::limit_args::LimitArgs;
use crate::module_file::read_module;

/// Arguments of `wasmgrid run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The task: a wasm32-wasip1 command module (.wasm).
    module: PathBuf,
    /// File whose bytes are the task's stdin; without it, stdin is read.
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// Write the task's output here instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Seed of the task's random stream; the same seed gives the same run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the usage report as JSON (on stderr).
    #[arg(long)]
    json: bool,
    /// Keep compiled modules in this directory across runs.
    #[arg(long, env = "WASMGRID_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

/// Runs the task; `Ok(true)` when it succeeded.
pub fn run(args: RunArgs) -> anyhow::Result<bool> {
    let bytes = read_module(&args.module, "module")?;
    let input = read_input(args.input.as_ref())?;
    let limits = args.limits.to_limits()?;
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_tasks: std::num::NonZeroUsize::MIN,
        cache_dir: args.cache_dir.clone(),
        ..RuntimeConfig::default()
    })?;
    let module = TaskModule::new(bytes);
    let outcome = runtime.run_blocking(&module, input, &limits, args.seed)?;

    match &args.output {
        Some(path) => std::fs::write(path, &outcome.output)
            .with_context(|| format!("cannot write output to {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&outcome.output)?;
            stdout.flush()?;
        }
    }
    let mut stderr = std::io::stderr().lock();
    if !outcome.stderr.is_empty() {
        stderr.write_all(&outcome.stderr)?;
        if !outcome.stderr.ends_with(b"\n") {
            writeln!(stderr)?;
        }
    }
    if args.json {
        writeln!(stderr, "{}", json_report(&module, &outcome))?;
    } else {
        write!(stderr, "{}", text_report(&module, &outcome))?;
    }
    Ok(outcome.status.is_ok())
}

fn read_input(path: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    match path {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read input {}", path.display()))
        }
        None => {
            let mut input = Vec::new();
            std::io::stdin()
                .read_to_end(&mut input)
                .context("cannot read stdin")?;
            Ok(input)
        }
    }
}

fn text_report(module: &TaskModule, outcome: &Outcome) -> String {
    let usage = &outcome.usage;
    format!(
        "\n-- wasmgrid run --\nstatus       {}\nfuel         {}\npeak memory  {}\nwall time    {:.3?}\noutput       {} bytes\nmodule       sha256:{}\nmetering     {}\n",
        outcome.status,
        usage.fuel_consumed,
        bytesize::ByteSize(usage.peak_memory_bytes).display().iec(),
        usage.wall_time,
        usage.output_bytes,
        module.hash(),
        usage.metering_version,
    )
}

fn json_report(module: &TaskModule, outcome: &Outcome) -> serde_json::Value {
    let usage = &outcome.usage;
    serde_json::json!({
        "status": outcome.status.to_string(),
        "ok": outcome.status.is_ok(),
        "fuel_consumed": usage.fuel_consumed,
        "peak_memory_bytes": usage.peak_memory_bytes,
        "wall_time_ms": usage.wall_time.as_secs_f64() * 1000.0,
        "output_bytes": usage.output_bytes,
        "module_sha256": module.hash().to_hex(),
        "metering_version": usage.metering_version,
    })
}
