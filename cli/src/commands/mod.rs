//! One module per `wasmgrid` subcommand.

pub mod agents;
pub mod cancel;
pub mod demo;
pub mod results;
pub mod run;
pub mod status;
pub mod submit;
pub mod wait;
pub mod workloads;
