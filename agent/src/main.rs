//! `wasmgrid-agent`: the volunteer daemon. Parses flags, sets up logging,
//! turns SIGINT/SIGTERM into a graceful stop (a second one forces it), and
//! runs [`wasmgrid_agent::run_with_force`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bytesize::ByteSize;
use clap::Parser;
use tokio::sync::oneshot;
use tracing_subscriber::EnvFilter;
use wasmgrid_agent::{AgentConfig, AgentSummary, default_name, default_slots, default_state_dir};

/// Run tasks for a wasmgrid broker on this machine, in a WebAssembly sandbox.
///
/// The agent registers once (its identity is kept in the state directory),
/// then keeps asking the broker for work that fits the memory and slots given
/// here, runs it, and reports results and the resources used, for which this
/// machine earns credits. Stop it with Ctrl-C or SIGTERM: it takes no new
/// work and lets running tasks finish; a second signal stops it at once.
#[derive(Debug, Parser)]
#[command(name = "wasmgrid-agent", version)]
struct Args {
    /// URL of the broker to work for, e.g. http://127.0.0.1:7070 (a bare
    /// host:port means http://). The broker hands out tasks and pays for them.
    #[arg(long, env = "WASMGRID_BROKER", value_name = "URL")]
    broker: String,

    /// Memory all running tasks may use together (e.g. 512MiB, 2GiB). Each
    /// task declares its memory cap; the agent only accepts tasks that fit in
    /// what is left, so this machine never swaps because of them.
    #[arg(long, default_value = "512MiB", value_parser = parse_size, value_name = "SIZE")]
    memory: u64,

    /// Tasks run at once, each keeping one core busy. Defaults to the number
    /// of cores; lower it to leave cores for your own work.
    #[arg(long, value_name = "N")]
    slots: Option<usize>,

    /// Where the agent keeps its identity, downloaded modules and results not
    /// yet acknowledged by the broker (so none is lost by a restart).
    /// Defaults to $XDG_STATE_HOME/wasmgrid-agent, else
    /// ~/.local/state/wasmgrid-agent.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Name shown to the broker's operator, to tell your machines apart.
    /// Defaults to the host name.
    #[arg(long)]
    name: Option<String>,

    /// On stop, how long running tasks may take to finish before their leases
    /// are given back to the broker (which hands them to another agent). A
    /// second signal gives them back at once.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    stop_timeout: Duration,
}

fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| {
            format!("invalid size '{text}': use a number with an optional unit, e.g. 512MiB, 2GiB")
        })
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<AgentSummary> {
    let state_dir = match args.state_dir {
        Some(dir) => dir,
        None => default_state_dir()
            .context("no state directory: pass --state-dir, or set XDG_STATE_HOME or HOME")?,
    };
    let mut config = AgentConfig::new(args.broker, state_dir);
    config.memory_bytes = args.memory;
    config.slots = args.slots.unwrap_or_else(default_slots);
    config.name = args.name.unwrap_or_else(default_name);
    config.stop_timeout = args.stop_timeout;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (shutdown, force) = stop_signals()?;
        let summary = wasmgrid_agent::run_with_force(
            config,
            async {
                let _ = shutdown.await;
            },
            async {
                let _ = force.await;
            },
        )
        .await?;
        Ok(summary)
    })
}

/// The first SIGINT/SIGTERM completes the first receiver, the second the
/// second one.
fn stop_signals() -> anyhow::Result<(oneshot::Receiver<()>, oneshot::Receiver<()>)> {
    let (first_sender, first) = oneshot::channel();
    let (second_sender, second) = oneshot::channel();
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::spawn(async move {
        let mut senders = [Some(first_sender), Some(second_sender)]
            .into_iter()
            .flatten();
        loop {
            #[cfg(unix)]
            let signalled = tokio::select! {
                received = tokio::signal::ctrl_c() => received.is_ok(),
                received = terminate.recv() => received.is_some(),
            };
            #[cfg(not(unix))]
            let signalled = tokio::signal::ctrl_c().await.is_ok();
            if !signalled {
                tracing::error!("cannot listen for stop signals");
                return;
            }
            match senders.next() {
                Some(sender) => {
                    let _ = sender.send(());
                }
                None => return,
            }
        }
    });
    Ok((first, second))
}
