//! `wasmgrid-broker`: the broker server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use wasmgrid_broker::config::ReplicaSeparation;
use wasmgrid_broker::core::access::ADMIN_TOKEN_FILE;
use wasmgrid_broker::http::{HTTP_ADDRESS_FILE, serve_http};
use wasmgrid_broker::tls::TlsIdentity;
use wasmgrid_broker::{ADDRESS_FILE, Broker, BrokerConfig};
use wasmgrid_proto::AgentVersion;
use wasmgrid_runtime::Compiler;

/// mimalloc instead of the system allocator: under load the broker
/// allocates for every message and row, and glibc's malloc took about a
/// sixth of its CPU (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The wasmgrid broker: queues workloads' tasks, offers and leases them to
/// volunteer agents, verifies and aggregates their results.
#[derive(Debug, Parser)]
#[command(
    name = "wasmgrid-broker",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Args,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create, list or revoke the API tokens of issuers and admins. Works on
    /// the data dir directly, also while the broker runs.
    Token(TokenArgs),
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The broker's data dir.
    #[arg(
        long,
        env = "WASMGRID_DATA_DIR",
        default_value = "wasmgrid-data",
        global = true
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    action: TokenAction,
}

#[derive(Debug, clap::Subcommand)]
enum TokenAction {
    /// Create a token and print it (only now: the broker keeps its sha256).
    Create {
        /// The issuer the token acts for: it submits, follows, cancels and
        /// pays for that issuer's workloads only.
        #[arg(long, value_name = "NAME", required_unless_present = "admin")]
        issuer: Option<String>,
        /// An admin token instead: every workload, grants, agents.
        #[arg(long, conflicts_with = "issuer")]
        admin: bool,
        /// A note shown by `token list` (who has it, what for).
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List tokens (their ids, never the tokens).
    List,
    /// Revoke a token: calls with it fail from now on.
    Revoke {
        /// The token's id as `token list` shows it (at least 8 hex digits).
        id: String,
    },
}

/// Serving (no subcommand).
#[derive(Debug, clap::Args)]
struct Args {
    /// Address to listen on for gRPC (agents, issuers, admins). Port 0 picks
    /// a free port; the address is written to DATA_DIR/broker.addr.
    #[arg(long, env = "WASMGRID_LISTEN", default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Directory of the store (SQLite, WAL). Everything acknowledged is here
    /// and survives a crash; restart on the same directory to carry on.
    /// Compiled reducers are kept in its `compiled/` folder.
    #[arg(long, env = "WASMGRID_DATA_DIR", default_value = "wasmgrid-data")]
    data_dir: PathBuf,
    /// How long a lease lasts without a report or heartbeat before its task
    /// is offered again. Agents heartbeat every third of it.
    #[arg(long, env = "WASMGRID_LEASE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    lease_timeout: Duration,
    /// How long an offer is held for an agent before its task returns to the queue.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    offer_hold: Duration,
    /// How long an agent's request for work waits for work to arrive when
    /// there is none, before the broker answers "nothing, ask again" (0s
    /// answers at once).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    work_wait: Duration,
    /// Least time between two updates of a `WatchProgress` stream (at least
    /// 10ms): changes in between are sent as one. A workload's end is sent
    /// at once.
    #[arg(long, default_value = "200ms", value_parser = parse_progress_interval)]
    progress_interval: Duration,
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
    /// The broker's TLS certificate chain (PEM), with --tls-key.
    #[arg(long, env = "WASMGRID_TLS_CERT", requires = "tls_key", conflicts_with_all = ["dev_tls", "insecure"])]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "WASMGRID_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TLS with a development CA generated in DATA_DIR/tls/ (kept across
    /// restarts); clients trust it with --ca-cert DATA_DIR/tls/ca.pem. The
    /// certificate is valid for localhost, 127.0.0.1, ::1 and --tls-name.
    #[arg(long, conflicts_with = "insecure")]
    dev_tls: bool,
    /// More names (host names or addresses) for the --dev-tls certificate.
    #[arg(long = "tls-name", value_name = "NAME", requires = "dev_tls")]
    tls_names: Vec<String>,
    /// Plain-text gRPC, without TLS: tokens and results cross the network in
    /// clear. Only for a trusted network or tests.
    #[arg(long)]
    insecure: bool,
    /// An admin token to accept (at least 16 characters; kept hashed).
    /// Without it, a broker whose store has no admin token yet generates
    /// one into DATA_DIR/admin.token at its first start.
    #[arg(
        long,
        env = "WASMGRID_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// A secret agents must present to register (their --enrolment-secret).
    /// Without it any machine may join.
    #[arg(
        long,
        env = "WASMGRID_ENROLMENT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    enrolment_secret: Option<String>,
    /// Also serve HTTP on this address: the web dashboard at / (sign in with
    /// an issuer or admin token), /metrics for Prometheus (counts and totals
    /// only), and with --agent-dist the agent builds (/downloads,
    /// /install.sh). Plain HTTP: keep it on loopback or behind a TLS proxy.
    /// Port 0 picks a free port, written to DATA_DIR/broker.http.addr.
    #[arg(long, env = "WASMGRID_HTTP", value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// A directory of agent builds to host, named
    /// wasmgrid-agent-<version>-<os>-<arch>[.exe] (os and arch as Rust names
    /// them: linux, macos, windows; x86_64, aarch64). Read and hashed at
    /// start (restart to publish new ones); served to `wasmgrid-agent
    /// update` over gRPC and, with --http, at /downloads and /install.sh.
    #[arg(long, env = "WASMGRID_AGENT_DIST", value_name = "DIR")]
    agent_dist: Option<PathBuf>,
    /// Refuse agents older than this version (e.g. 0.2.0): at registration
    /// and on their calls, with a message telling them to run
    /// `wasmgrid-agent update`. Host the new build with --agent-dist.
    #[arg(long, env = "WASMGRID_MIN_AGENT_VERSION", value_name = "VERSION", value_parser = parse_version)]
    min_agent_version: Option<AgentVersion>,
    /// The URL volunteers reach this broker's gRPC port at (e.g.
    /// https://broker.example:7070), for the install script and the message
    /// to outdated agents. Defaults to the --listen address, unless that is
    /// every address (0.0.0.0 or [::]).
    #[arg(long, env = "WASMGRID_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// The compiler of reducers: baseline (Winch, x86-64 only: compiles in
    /// a sixth of the time, its code runs slower) or optimizing (Cranelift,
    /// as for tasks), for reducers that compute a lot. A reducer's fuel is
    /// only a limit, never billed.
    #[arg(long, default_value = "baseline", value_name = "COMPILER")]
    reducer_compiler: Compiler,
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

fn parse_version(text: &str) -> Result<AgentVersion, String> {
    AgentVersion::parse(text.trim())
        .map_err(|error| format!("invalid version '{text}': {error}; use e.g. 0.2.0"))
}

/// Shortest `--progress-interval`: each stream reads its workload's status
/// once per interval while it changes, so 0 would be a busy loop.
const MIN_PROGRESS_INTERVAL: Duration = Duration::from_millis(10);

fn parse_progress_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text)
        .map_err(|error| format!("invalid duration '{text}': {error}; use e.g. 200ms"))?;
    if interval < MIN_PROGRESS_INTERVAL {
        return Err(format!(
            "'{text}' is too short: the interval is at least {}",
            humantime::format_duration(MIN_PROGRESS_INTERVAL)
        ));
    }
    Ok(interval)
}

fn parse_size(text: &str) -> Result<u64, String> {
    text.parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| format!("invalid size '{text}': use e.g. 64MiB"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(token)) => manage_tokens(token).await,
        None => serve(cli.serve).await,
    }
}

/// `wasmgrid-broker token …`.
async fn manage_tokens(args: TokenArgs) -> anyhow::Result<()> {
    use wasmgrid_broker::core::access::create_token;
    use wasmgrid_broker::store::Store;
    use wasmgrid_broker::store::api_tokens::{self, TokenRole};

    let store = Store::open(&args.data_dir)
        .await
        .with_context(|| format!("cannot open the store in {}", args.data_dir.display()))?;
    match args.action {
        TokenAction::Create {
            issuer,
            admin,
            label,
        } => {
            let role = match issuer {
                Some(issuer) if !admin => TokenRole::Issuer(issuer),
                _ => TokenRole::Admin,
            };
            let token = create_token(&store, &role, &label).await?;
            println!("{token}");
            eprintln!(
                "this is the only time the token is shown: give it to its holder \
                 (wasmgrid --token or WASMGRID_TOKEN)"
            );
        }
        TokenAction::List => {
            let mut conn = store.conn().await?;
            println!(
                "{:<14} {:<8} {:<24} {:<10} LABEL",
                "ID", "ROLE", "ISSUER", "STATE"
            );
            for row in api_tokens::list(&mut conn).await? {
                let (role, issuer) = match &row.role {
                    TokenRole::Issuer(issuer) => ("issuer", issuer.as_str()),
                    TokenRole::Admin => ("admin", "-"),
                };
                let state = if row.revoked_ms.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<14} {role:<8} {issuer:<24} {state:<10} {}",
                    &row.token_sha256[..12],
                    row.label
                );
            }
        }
        TokenAction::Revoke { id } => {
            let mut tx = store.write().await?;
            let row = api_tokens::revoke(&mut tx, &id, wasmgrid_broker::ids::now_ms()).await?;
            tx.commit().await?;
            println!("revoked {}", &row.token_sha256[..12]);
        }
    }
    Ok(())
}

async fn serve(args: Args) -> anyhow::Result<()> {
    init_logging(&args.log_format);
    let mut config = BrokerConfig::new(args.data_dir.clone());
    config.lease_timeout = args.lease_timeout;
    config.offer_hold = args.offer_hold;
    config.work_wait = args.work_wait;
    config.progress_interval = args.progress_interval;
    config.max_module_bytes = args.max_module_size;
    config.max_workload_input_bytes = args.max_workload_input;
    config.fee_basis_points = args.fee_percent;
    config.trust_after = args.trust_after;
    config.spot_check_rate = args.spot_check_rate;
    config.replica_separation = args.replica_separation;
    config.reducer_compiler = args.reducer_compiler;
    config.admin_token = args.admin_token.clone();
    config.enrolment_secret = args.enrolment_secret.clone().filter(|s| !s.is_empty());

    let tls = match (&args.tls_cert, &args.tls_key, args.dev_tls, args.insecure) {
        (Some(cert), Some(key), _, _) => Some(
            TlsIdentity::from_files(cert, key)
                .context("cannot load the TLS identity")?
                .server_config(),
        ),
        (_, _, true, _) => {
            let (identity, ca) = TlsIdentity::development(&args.data_dir, &args.tls_names)
                .context("cannot set up development TLS")?;
            println!("development TLS: clients trust {}", ca.display());
            Some(identity.server_config())
        }
        (_, _, false, true) => {
            tracing::warn!(
                "serving plain-text gRPC (--insecure): tokens and results cross the network in clear"
            );
            None
        }
        _ => anyhow::bail!(
            "choose how clients connect: --tls-cert FILE --tls-key FILE, --dev-tls (a \
             generated development CA), or --insecure (plain text, trusted networks only)"
        ),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    config.agent_dist = args.agent_dist.clone();
    config.min_agent_version = args.min_agent_version.clone();
    config.public_url = args
        .public_url
        .clone()
        .or_else(|| (!address.ip().is_unspecified()).then(|| format!("{scheme}://{address}")));
    // The cause names what failed: the store, or the agent builds.
    let broker = Broker::start(config)
        .await
        .with_context(|| format!("cannot start the broker on {}", args.data_dir.display()))?;
    let hosts_builds = !broker.agent_builds().builds().is_empty();
    if args.agent_dist.is_some() {
        println!("agent builds: {}", broker.agent_builds().builds().len());
    }
    if let Some(required) = &args.min_agent_version {
        println!("agents older than {required} are refused");
    }
    let admin_token_file = args.data_dir.join(ADMIN_TOKEN_FILE);
    if args.admin_token.is_none() && admin_token_file.exists() {
        println!("admin token: {}", admin_token_file.display());
    }
    let http = match args.http {
        Some(http) => {
            let listener = tokio::net::TcpListener::bind(http)
                .await
                .with_context(|| format!("cannot listen for HTTP on {http}"))?;
            let http_address = listener.local_addr()?;
            write_file_atomically(&args.data_dir, HTTP_ADDRESS_FILE, &http_address.to_string())?;
            println!("dashboard on http://{http_address}/ (metrics at /metrics)");
            if hosts_builds {
                println!("agent install script on http://{http_address}/install.sh");
            }
            let mut stopping = broker.stopping();
            let shutdown = async move {
                let _ = stopping.wait_for(|stopping| *stopping).await;
            };
            Some(tokio::spawn(serve_http(
                listener,
                Arc::clone(&broker),
                shutdown,
            )))
        }
        None => None,
    };
    write_address(&args.data_dir, address)?;
    println!("wasmgrid-broker listening on {scheme}://{address}");
    tracing::info!(%address, data_dir = %args.data_dir.display(), "broker ready");
    wasmgrid_broker::serve(listener, broker, tls, shutdown_signal()).await?;
    if let Some(http) = http {
        http.await.context("the HTTP server panicked")??;
    }
    tracing::info!("broker stopped");
    Ok(())
}

/// Writes the gRPC address, for tests and scripts that listen on port 0.
fn write_address(data_dir: &Path, address: SocketAddr) -> anyhow::Result<()> {
    write_file_atomically(data_dir, ADDRESS_FILE, &address.to_string())
}

/// Writes `name` in the data dir atomically, so a reader never sees half.
fn write_file_atomically(data_dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let temp = data_dir.join(format!("{name}.tmp"));
    std::fs::write(&temp, text).with_context(|| format!("cannot write {name}"))?;
    std::fs::rename(&temp, data_dir.join(name)).with_context(|| format!("cannot write {name}"))?;
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
