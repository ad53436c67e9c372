//! The wasmgrid volunteer agent: registers with a broker, asks for work,
//! takes the offers that fit its memory and slots and earn the most per
//! second of its capacity (declining the others at once), runs the tasks in
//! the sandbox, and reports results and usage. [`fetch_earnings`] asks the
//! broker what the agent has earned.
//!
//! # Brief overview
//! [`run`] takes an [`AgentConfig`] and a shutdown future and returns an
//! [`AgentSummary`] once the agent has stopped; the `wasmgrid-agent` binary
//! wires SIGINT/SIGTERM to it ([`run_with_force`] adds a second signal that
//! releases running tasks at once). Everything the agent must not lose lives
//! in its state directory:
//!
//! ```text
//! STATE/identity.json          agent id + token at the broker
//! STATE/modules/<sha256>.wasm  task modules, verified on every read
//! STATE/compiled/              compiled modules (the runtime's cache)
//! STATE/outbox/<lease>.pb      results not yet acknowledged by the broker
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), wasmgrid_agent::AgentError> {
//! use wasmgrid_agent::{AgentConfig, run};
//!
//! let mut config = AgentConfig::new("http://127.0.0.1:7070", "/tmp/agent-state");
//! config.memory_bytes = 512 << 20;
//! config.slots = 2;
//! let summary = run(config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! println!("{} tasks run, {} fuel", summary.tasks_run, summary.fuel_consumed);
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `config`: [`AgentConfig`] and its defaults; [`config_file`]: the TOML
//!   file with the same keys as the flags.
//! - `error`: [`AgentError`], why the agent cannot run.
//! - `identity`: [`Identity`], the agent id and token kept in `identity.json`.
//! - `durable_file`: write-temp-fsync-rename for state files; the same
//!   without the sync, and the sync later, for the outbox.
//! - `client`: the channel, the token interceptor, retries of transient
//!   failures; `registration`: `Register`, and registering again when the
//!   broker answers `Unauthenticated`.
//! - `backoff`: [`Backoff`], exponential with jitter.
//! - `offer_policy`: [`OfferPolicy`], the default [`BestReturn`], and the
//!   minimum rate; `speed`: the agent's fuel per second, learned from its
//!   runs, for the policy.
//! - `capacity`: free slots and memory, reserved per lease.
//! - `module_store`: modules on disk by sha256; `module_fetch`: `FetchModule`.
//! - `outbox`: results kept until acknowledged; `reporter`: sends them, and
//!   syncs them to disk when the broker does not take them at once;
//!   `work_ask`: whether the reporter asks for work with them.
//! - `lease_keeper`: `ExtendLease` while a task runs.
//! - `worker`: one lease from module to report.
//! - `work_loop`: start, then take work until asked to stop; `stop`: the stop
//!   phases, waiting for or releasing running tasks, the last deliveries.
//! - `counters`: what the agent did, and [`AgentSummary`].
//! - [`control`]: `status.json` and the `paused` marker, for `wasmgrid-agent
//!   status`, `pause` and `resume`.
//! - `earnings`: [`fetch_earnings`], `GetEarnings` with the saved identity;
//!   `earnings_view`: the report as text or JSON.
//! - `outdated`: the broker's refusal of an agent older than its minimum
//!   version, which ends the agent with [`AgentError::Outdated`].
//! - `self_update`: [`update_agent`], `wasmgrid-agent update`: the newest
//!   build from the broker, checked, in place of the program.

mod backoff;
mod capacity;
mod client;
mod config;
pub mod config_file;
pub mod control;
mod counters;
mod durable_file;
mod earnings;
mod earnings_view;
mod error;
mod identity;
mod lease_keeper;
mod module_fetch;
mod module_store;
mod offer_policy;
mod outbox;
mod outdated;
mod registration;
mod reporter;
mod self_update;
mod speed;
mod stop;
mod work_ask;
mod work_loop;
mod worker;

use std::convert::Infallible;
use std::future::Future;

pub use backoff::{Backoff, BackoffConfig, INITIAL_BACKOFF, MAX_BACKOFF};
pub use config::{
    AgentConfig, DEFAULT_MEMORY_BYTES, DEFAULT_STOP_TIMEOUT, MIN_MEMORY_BYTES, default_name,
    default_slots, default_state_dir,
};
pub use counters::AgentSummary;
pub use earnings::{EarningsError, EarningsReport, fetch_earnings};
pub use earnings_view::format_credits;
pub use error::AgentError;
pub use identity::{IDENTITY_FILE, Identity};
pub use module_store::MAX_MODULE_BYTES;
pub use offer_policy::{
    AgentProfile, BestReturn, Capacity, DEFAULT_FUEL_PER_SECOND, OfferPolicy,
    expected_credits_per_second,
};
pub use outdated::AGENT_VERSION;
pub use self_update::{
    MAX_AGENT_BUILD_BYTES, UpdateError, UpdateOutcome, UpdateRequest, update_agent,
};

use stop::{StopPhase, StopSignal};

/// Runs the agent until `shutdown` completes, then stops gracefully: no new
/// work, running tasks finish (their leases are released after
/// [`AgentConfig::stop_timeout`]), results are reported. Returns what the
/// agent did.
///
/// Errors only when the agent cannot run at all (bad configuration, unusable
/// state directory, sandbox unavailable, registration refused); a broker that
/// is away is waited for.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<AgentSummary, AgentError> {
    run_with_force(config, shutdown, std::future::pending()).await
}

/// [`run`], plus `force`: once it completes after `shutdown`, running tasks
/// are released at once and unsent results are left in the outbox (a second
/// Ctrl-C).
pub async fn run_with_force(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send,
    force: impl Future<Output = ()> + Send,
) -> Result<AgentSummary, AgentError> {
    let stop = StopSignal::new();
    let agent = work_loop::run_agent(config, stop.clone());
    let signals = async move {
        shutdown.await;
        tracing::info!("stop requested");
        stop.advance(StopPhase::Stopping);
        force.await;
        tracing::info!("forced stop requested");
        stop.advance(StopPhase::Forced);
        std::future::pending::<Infallible>().await
    };
    tokio::select! {
        summary = agent => summary,
        never = signals => match never {},
    }
}
