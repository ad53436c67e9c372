//! Test support for the integration tests in `tests/tests/`: the real
//! `wasmgrid-broker`, `wasmgrid-agent` and `wasmgrid` binaries as child
//! processes on 127.0.0.1, and gRPC clients to drive them.
//!
//! # Layout
//! - `binaries`: builds (once per test process) and locates the binaries.
//! - `processes`: [`BrokerProcess`] and [`AgentProcess`], killed on drop.
//! - `client`: gRPC clients and a submission builder.
//! - `eventually`: polling for a condition with a deadline.
//! - `http`: a plain HTTP/1.1 GET for the broker's HTTP port.
//! - `ledger_check`: `assert_ledger_consistent`, the whole credit ledger
//!   checked over gRPC (exactly once, conservation), and funding paid
//!   test workloads.
//! - `prime_counts`: π(n) for the limits the tests submit.
//! - `queries`: status, tasks, workload count, end value, as one call.
//! - `scripted_agent`: [`ScriptedAgent`], an in-process agent speaking the
//!   real protocol that can report wrong outputs or inflated fuel.

pub mod binaries;
pub mod client;
pub mod eventually;
pub mod http;
pub mod ledger_check;
pub mod prime_counts;
pub mod processes;
pub mod queries;
pub mod scripted_agent;

pub use client::{
    AdminClient, IssuerClient, Submission, TEST_ADMIN_TOKEN, admin, admin_with_token, agent_client,
    issuer, issuer_on, issuer_with_token, results, wait_until_final,
};
pub use eventually::eventually;
pub use processes::{AgentProcess, BrokerProcess};
pub use scripted_agent::{Behaviour, Reported, RunningAgent, ScriptedAgent};
