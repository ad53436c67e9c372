//! Fuzz targets for wasmgrid, as plain functions over `&[u8]`.
//!
//! Each target feeds arbitrary bytes to the real code and must never panic,
//! abort or hang, whatever the bytes: errors are fine, a panic anywhere in
//! the process (the calling thread, a sandbox task thread, a tokio task the
//! broker spawned) is a finding. Two drivers call them:
//!
//! - `fuzz/` (outside the workspace): one `cargo +nightly fuzz run <target>`
//!   per target, coverage-guided by libFuzzer.
//! - `tests/targets.rs`: on stable Rust in `cargo test`, every target over
//!   its seeds, the regression inputs in `regressions/<target>/`, and a few
//!   thousand deterministic pseudo-random and mutated inputs.
//!
//! See `docs/fuzzing.md` for the commands and what each target covers.
//!
//! # Targets
//! - [`module_loading`]: module bytes → `TaskModule`, `Runtime::prepare`
//!   and, if it compiles, a run under small limits (twice: the run must be
//!   deterministic and within its limits).
//! - [`request_decoding`]: the bytes decoded as every request message of
//!   the three services, each through the wire conversions the broker uses.
//! - [`agent_service`], [`issuer_service`], [`admin_service`]: a selector
//!   byte picks an RPC, the rest is its request message; if it decodes, it
//!   is handled by the real gRPC service of an in-process broker.
//! - [`submit_workload`]: the `SubmitWorkload` client stream, as a gRPC
//!   request body (raw, or with sizes and sha256s fixed up so that inputs
//!   get past the integrity checks to validation, compilation and storage).
//!
//! # Layout
//! - `module`: the module-loading target and its shared `Runtime`.
//! - `decoding`: decoding and conversion checks shared by the targets.
//! - `fixture`: the in-process broker, its agent, issuer and workload.
//! - `services`: the service and submit targets.
//! - [`findings`]: catches panics on every thread of the process.
//! - [`seeds`]: the seed inputs of every target.
//! - [`mutate`]: deterministic pseudo-random and mutated inputs.

mod decoding;
pub mod findings;
mod fixture;
mod module;
pub mod mutate;
pub mod seeds;
mod services;

pub use decoding::request_decoding;
pub use module::module_loading;
pub use services::{admin_service, agent_service, issuer_service, submit_workload};

/// A fuzz target.
pub type Target = fn(&[u8]);

/// Every target, by the name `cargo fuzz` knows it by.
pub const TARGETS: &[(&str, Target)] = &[
    ("module_loading", module_loading),
    ("request_decoding", request_decoding),
    ("agent_service", agent_service),
    ("issuer_service", issuer_service),
    ("admin_service", admin_service),
    ("submit_workload", submit_workload),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .map(|(_, function)| *function)
}
