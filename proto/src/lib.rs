//! The wasmgrid gRPC contract: `.proto` files under `proto/wasmgrid/v1/`,
//! compiled by `build.rs`, plus the message size limits and conversions
//! between wire types and the runtime's types.
//!
//! # Layout
//! - [`v1`]: the generated messages, clients and servers of `wasmgrid.v1`.
//! - `limits`: message size limits and their reasons.
//! - `convert`: `Limits`, `Usage`, `Status` to and from the wire.
//! - [`submission`]: a workload as its `SubmitWorkload` request stream.
//! - [`endpoint`](mod@endpoint): reaching a broker, over TLS or not.
//! - [`bearer`]: sending an API token with every call.
//! - [`agent_build`]: agent versions on the wire, and the file names of the
//!   agent builds a broker hosts.

pub mod agent_build;
pub mod bearer;
mod convert;
pub mod endpoint;
mod limits;
pub mod submission;

pub use agent_build::{
    AGENT_VERSION_HEADER, AgentBuildName, AgentVersion, REQUIRED_AGENT_VERSION_HEADER,
};
pub use bearer::Bearer;
pub use convert::{
    ConversionError, limits_from_wire, limits_to_wire, status_from_wire, status_to_wire,
    usage_from_wire, usage_to_wire,
};
pub use endpoint::{EndpointError, endpoint};
pub use limits::{
    MAX_MESSAGE_BYTES, MAX_OUTPUT_BYTES, MAX_REPORTS_PER_CALL, MODULE_CHUNK_BYTES,
    REPORT_BATCH_BYTES,
};

/// The `wasmgrid.v1` package.
#[allow(
    missing_docs,
    clippy::all,
    clippy::unwrap_used,
    reason = "generated code"
)]
pub mod v1 {
    tonic::include_proto!("wasmgrid.v1");
}
