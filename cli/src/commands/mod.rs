//! One module per `wasmgrid` subcommand.

pub mod agents;
pub mod balance;
pub mod cancel;
pub mod demo;
pub mod grant;
pub mod ledger;
pub mod results;
pub mod run;
pub mod status;
pub mod submit;
pub mod wait;
pub mod workloads;
