//! The limits a task runs under, as command-line flags shared by `run`,
//! `submit` (through `#[command(flatten)]`) and the defaults `demo` starts from.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use wasmgrid_proto::MAX_OUTPUT_BYTES;
use wasmgrid_runtime::{Limits, MAX_FUEL, MAX_STACK_BYTES, MIN_STACK_BYTES};

use crate::units::{parse_fuel, parse_size};

/// `--memory`, `--fuel`, `--timeout`, `--max-output`, `--stack`; their
/// defaults are `wasmgrid_runtime::Limits::default()`.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Cap on a task's linear memory, e.g. 64MiB.
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub memory: u64,
    /// Fuel a task may consume (wasm operators plus host I/O), e.g. 10e9.
    #[arg(long, default_value = "100e9", value_parser = parse_fuel)]
    pub fuel: u64,
    /// Wall-clock cap on a task run, e.g. 10s, 2m, 500ms.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Cap on a task's output (stdout), e.g. 16MiB.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    pub max_output: u64,
    /// Cap on the wasm call stack, between 64KiB and 8MiB.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub stack: u64,
}

impl LimitArgs {
    /// The limits as given; the runtime checks their ranges when it runs.
    pub fn to_limits(&self) -> anyhow::Result<Limits> {
        Ok(Limits {
            memory_bytes: self.memory,
            fuel: self.fuel,
            wall_time: self.timeout,
            max_output_bytes: self.max_output,
            max_stack_bytes: usize::try_from(self.stack).context("stack size too large")?,
        })
    }
}

/// Checks limits that every agent would refuse, so a workload that could
/// never run is rejected before anything is uploaded. The broker checks the
/// same again: this only makes the error come sooner.
pub fn check_grid_limits(limits: &Limits) -> anyhow::Result<()> {
    if limits.fuel > MAX_FUEL {
        bail!(
            "invalid limits: fuel {} is above the maximum {MAX_FUEL}",
            limits.fuel
        );
    }
    if !(MIN_STACK_BYTES..=MAX_STACK_BYTES).contains(&limits.max_stack_bytes) {
        bail!(
            "invalid limits: stack {} bytes is outside {MIN_STACK_BYTES}..={MAX_STACK_BYTES}",
            limits.max_stack_bytes
        );
    }
    if limits.max_output_bytes > MAX_OUTPUT_BYTES {
        bail!(
            "invalid limits: output cap {} bytes is above the maximum {MAX_OUTPUT_BYTES} (an output must fit in one message)",
            limits.max_output_bytes
        );
    }
    if limits.memory_bytes == 0 || limits.fuel == 0 || limits.wall_time.is_zero() {
        bail!("invalid limits: memory, fuel and timeout must be above zero");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        limits: LimitArgs,
    }

    #[test]
    fn flag_defaults_are_the_runtime_defaults() {
        use clap::Parser;
        let flags = Flags::try_parse_from(["wasmgrid"]).expect("defaults parse");
        assert_eq!(flags.limits.to_limits().expect("valid"), Limits::default());
    }

    #[test]
    fn default_limits_are_fine_for_the_grid() {
        check_grid_limits(&Limits::default()).expect("defaults are valid");
        let tiny_stack = Limits {
            max_stack_bytes: 1024,
            ..Limits::default()
        };
        let error = check_grid_limits(&tiny_stack).expect_err("too small");
        assert!(
            error.to_string().contains("invalid limits: stack"),
            "{error}"
        );
    }
}
