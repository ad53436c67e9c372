//! The wasmgrid broker: takes workloads from issuers, offers their tasks to
//! volunteer agents, leases, reissues, verifies by replication, aggregates
//! and returns the end result. gRPC (tonic) in front, SQLite behind.
//!
//! # Layout
//! - `server`: [`serve`] a broker on a listener, with lease expiry.
//! - `core`: [`Broker`], every operation as a store transaction plus a
//!   scheduler update.
//! - `scheduler`: in-memory queues, fairness, offers, and task verdicts.
//! - `store`: the SQLite store, one module per table.
//! - `service`: the gRPC services (agent, issuer, admin).
//! - `config`: [`BrokerConfig`]; `error`: [`BrokerError`] and its gRPC codes;
//!   `ids`: ids, tokens, seeds and time.
//! - `tls`: the TLS identity (the operator's, or a generated development CA).
//! - `private_file`: secrets written for the broker's user only.
//! - `http`: the HTTP port; `metrics`: what `/metrics` shows; `dashboard`:
//!   the web dashboard at `/` and its JSON API.
//! - `agent_dist`: the agent builds the broker hosts (`--agent-dist`);
//!   `downloads`: their HTTP routes (`/downloads`, `/install.sh`);
//!   `install_script`: the script volunteers read, then run.

pub mod agent_dist;
pub mod config;
pub mod core;
pub mod dashboard;
pub mod downloads;
pub mod error;
pub mod http;
pub mod ids;
pub mod install_script;
pub mod metrics;
pub mod pricing;
pub mod private_file;
pub mod scheduler;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;

pub use config::BrokerConfig;
pub use core::Broker;
pub use error::BrokerError;
pub use server::serve;

/// The file in the data dir where a running broker writes its address.
pub const ADDRESS_FILE: &str = "broker.addr";
