//! `wasmgrid-broker`: the broker server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use wasmgrid_broker::config::ReplicaSeparation;
use wasmgrid_broker::{ADDRESS_FILE, Broker, BrokerConfig};

/// The wasmgrid broker: queues workloads' tasks, offers and leases them to
/// volunteer agents, verifies and aggregates their results.
#[derive(Debug, Parser)]
#[command(name = "wasmgrid-broker", version, about)]
struct Args {
    /// Address to listen on for gRPC (agents, issuers, admins). Port 0 picks
    /// a free port; the address is written to DATA_DIR/broker.addr.
    #[arg(long, env = "WASMGRID_LISTEN", default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Directory of the store (SQLite, WAL). Everything acknowledged is here
    /// and survives a crash; restart on the same directory to carry on.
    #[arg(long, env = "WASMGRID_DATA_DIR", default_value = "wasmgrid-data")]
    data_dir: PathBuf,
    /// How long a lease lasts without a report or heartbeat before its task
    /// is offered again. Agents heartbeat every third of it.
    #[arg(long, env = "WASMGRID_LEASE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    lease_timeout: Duration,
    /// How long an offer is held for an agent before its task returns to the queue.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    offer_hold: Duration,
    /// Largest module accepted at submit, e.g. 128MiB.
    #[arg(long, default_value = "128MiB", value_parser = parse_size)]
    max_module_size: u64,
    /// Largest total input of one workload, e.g. 512MiB (a submit is held in memory).
    #[arg(long, default_value = "512MiB", value_parser = parse_size)]
    max_workload_input: u64,
    /// The broker's fee, in percent of what agents are paid for a workload;
    /// taken from its escrow when it ends (fixed per workload at submit).
    #[arg(long, env = "WASMGRID_FEE_PERCENT", default_value = "5", value_parser = parse_percent)]
    fee_percent: u32,
    /// Agreeing results in a row after which an agent's runs may stand
    /// alone in workloads with adaptive replication.
    #[arg(long, default_value = "10")]
    trust_after: u64,
    /// Share of a trusted agent's runs still replicated, at random (0 to 1).
    #[arg(long, default_value = "0.1", value_parser = parse_share)]
    spot_check_rate: f64,
    /// What replicas of one task must not share: agent, owner or address.
    #[arg(long, default_value = "agent")]
    replica_separation: ReplicaSeparation,
    /// Log format: text or json.
    #[arg(long, env = "WASMGRID_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

/// A percentage with up to two decimals, as basis points.
fn parse_percent(text: &str) -> Result<u32, String> {
    let percent: f64 = text
        .parse()
        .map_err(|_| format!("invalid percentage '{text}': use e.g. 5 or 2.5"))?;
    if !(0.0..=100.0).contains(&percent) {
        return Err(format!("percentage '{text}' must be between 0 and 100"));
    }
    Ok((percent * 100.0).round() as u32)
}

fn parse_share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("invalid rate '{text}': use a number from 0 to 1")),
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    text.parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| format!("invalid size '{text}': use e.g. 64MiB"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(&args.log_format);
    let mut config = BrokerConfig::new(args.data_dir.clone());
    config.lease_timeout = args.lease_timeout;
    config.offer_hold = args.offer_hold;
    config.max_module_bytes = args.max_module_size;
    config.max_workload_input_bytes = args.max_workload_input;
    config.fee_basis_points = args.fee_percent;
    config.trust_after = args.trust_after;
    config.spot_check_rate = args.spot_check_rate;
    config.replica_separation = args.replica_separation;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let broker = Broker::start(config)
        .await
        .with_context(|| format!("cannot open the store in {}", args.data_dir.display()))?;
    write_address(&args.data_dir, address)?;
    println!("wasmgrid-broker listening on http://{address}");
    tracing::info!(%address, data_dir = %args.data_dir.display(), "broker ready");
    wasmgrid_broker::serve(listener, broker, shutdown_signal()).await?;
    tracing::info!("broker stopped");
    Ok(())
}

/// Writes the address atomically, so a reader never sees half of it.
fn write_address(data_dir: &Path, address: SocketAddr) -> anyhow::Result<()> {
    let temp = data_dir.join(format!("{ADDRESS_FILE}.tmp"));
    std::fs::write(&temp, address.to_string()).context("cannot write the address file")?;
    std::fs::rename(&temp, data_dir.join(ADDRESS_FILE)).context("cannot write the address file")?;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WASMGRID_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
