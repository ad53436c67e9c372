//! The gRPC services: thin adapters from wire messages to [`Broker`]
//! operations, and back.
//!
//! # Layout
//! - `agent`: `AgentService` (register, offers, leases, reports).
//! - `issuer`: `IssuerService` (submit, status, progress, results, cancel).
//! - `submit_stream`: reading and checking a streamed submission.
//! - `admin`: `AdminService` (agents, workloads, grants; admins only).
//! - `caller`: the bearer token of a request and who is behind it.
//! - `convert`: store rows to wire messages.
//!
//! [`Broker`]: crate::core::Broker

pub(crate) mod admin;
mod agent;
pub(crate) mod caller;
pub(crate) mod convert;
pub(crate) mod issuer;
mod submit_stream;

pub use admin::AdminApi;
pub use agent::AgentApi;
pub use issuer::IssuerApi;
