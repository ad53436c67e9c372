//! One module per `wasmgrid` subcommand.

pub mod run;
