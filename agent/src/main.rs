//! `wasmgrid-agent`: the volunteer daemon. Parses flags, sets up logging,
//! turns SIGINT/SIGTERM into a graceful stop (a second one forces it), and
//! runs [`wasmgrid_agent::run_with_force`]; `wasmgrid-agent earnings` shows
//! what the agent has earned, `wasmgrid-agent update` installs the newest
//! build its broker hosts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bytesize::ByteSize;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio::sync::oneshot;
use tracing_subscriber::EnvFilter;
use wasmgrid_agent::config_file::ConfigFile;
use wasmgrid_agent::control;
use wasmgrid_agent::{
    AGENT_VERSION, AgentConfig, AgentError, AgentSummary, UpdateOutcome, UpdateRequest,
    default_name, default_slots, default_state_dir, update_agent,
};

/// Run tasks for a wasmgrid broker on this machine, in a WebAssembly sandbox.
///
/// The agent registers once (its identity is kept in the state directory),
/// then keeps asking the broker for work that fits the memory and slots given
/// here, runs it, and reports results and the resources used, for which this
/// machine earns credits. Of the offers that fit, it takes those that earn
/// the most per second of its capacity and declines the rest at once. Stop it
/// with Ctrl-C or SIGTERM: it takes no new work and lets running tasks
/// finish; a second signal stops it at once.
///
/// Without a subcommand, the agent runs. `wasmgrid-agent earnings` shows
/// what it has earned; `wasmgrid-agent update` replaces it with the newest
/// build its broker hosts. A broker that requires a newer agent stops it
/// with exit code 3 and a message saying so.
#[derive(Debug, Parser)]
#[command(
    name = "wasmgrid-agent",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the agent's balance, record and latest payments, as its broker
    /// knows them.
    ///
    /// Uses the identity saved in the state directory by a previous run of
    /// the agent.
    Earnings(EarningsArgs),
    /// Show what the agent running on this state directory is doing: its
    /// tasks, whether it is paused, when the broker last answered, its
    /// counters and (from the broker) its earnings.
    Status(StatusArgs),
    /// Take no new work (running tasks finish) until `resume`. Works for a
    /// running agent and is kept across its restarts.
    Pause(StateDirArgs),
    /// Take work again after `pause`.
    Resume(StateDirArgs),
    /// Replace this program with the newest agent build the broker hosts
    /// for this OS and CPU.
    ///
    /// The build comes over the broker's gRPC connection (TLS, as the
    /// agent's own calls), is checked against the size and sha256 the
    /// broker announces and run once (`--version`), then renamed over this
    /// program; on any mismatch it is deleted and nothing changes. A
    /// running agent keeps running the old version until it is restarted.
    Update(UpdateArgs),
}

/// `wasmgrid-agent update`.
#[derive(Debug, clap::Args)]
struct UpdateArgs {
    /// The broker to fetch the build from. Defaults to the one the agent
    /// registered with (its identity in the state directory).
    #[arg(long, env = "WASMGRID_BROKER", value_name = "URL")]
    broker: Option<String>,

    /// A CA certificate (PEM) to trust for the broker's TLS certificate.
    #[arg(long, env = "WASMGRID_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,

    /// The agent's state directory, where its identity (and so its broker)
    /// is. Defaults to $XDG_STATE_HOME/wasmgrid-agent, else
    /// ~/.local/state/wasmgrid-agent.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Install the broker's build even when it is the version running, or
    /// an older one.
    #[arg(long)]
    force: bool,
}

/// Exit code of an agent the broker refuses for its version: retrying
/// cannot help, so a service manager should not restart it (systemd:
/// `RestartPreventExitStatus=3`) until it is updated.
const EXIT_OUTDATED: u8 = 3;

/// `--state-dir` alone.
#[derive(Debug, clap::Args)]
struct StateDirArgs {
    /// The agent's state directory (as given to the agent). Defaults to
    /// $XDG_STATE_HOME/wasmgrid-agent, else ~/.local/state/wasmgrid-agent.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// `wasmgrid-agent status`.
#[derive(Debug, clap::Args)]
struct StatusArgs {
    #[command(flatten)]
    state: StateDirArgs,

    /// A CA certificate (PEM) to trust for the broker's TLS certificate,
    /// to ask it for the earnings.
    #[arg(long, env = "WASMGRID_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,

    /// Print the status as JSON (status.json as the agent wrote it, plus
    /// `running: true|false`), without asking the broker.
    #[arg(long)]
    json: bool,
}

/// Running the agent (no subcommand).
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// URL of the broker to work for, e.g. https://broker.example:7070 (a
    /// bare host:port means http://, for a broker started with --insecure).
    /// The broker hands out tasks and pays for them.
    #[arg(
        long,
        env = "WASMGRID_BROKER",
        value_name = "URL",
        required_unless_present = "config"
    )]
    broker: Option<String>,

    /// A TOML file with the same keys as these flags (`broker`, `ca_cert`,
    /// `state_dir`, `memory`, `slots`, `work_buffer`, `cpu_percent`, `name`, `owner`, `enrolment_secret`,
    /// `min_rate`, `stop_timeout`, `log_format`). A flag or its environment
    /// variable wins over the file.
    #[arg(long, env = "WASMGRID_AGENT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// A CA certificate (PEM) to trust for the broker's TLS certificate,
    /// besides the public roots, e.g. a --dev-tls broker's DATA_DIR/tls/ca.pem.
    #[arg(long, env = "WASMGRID_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,

    /// Memory all running tasks may use together (e.g. 512MiB, 2GiB). Each
    /// task declares its memory cap; the agent only accepts tasks that fit in
    /// what is left, so this machine never swaps because of them.
    #[arg(long, default_value = "512MiB", value_parser = parse_size, value_name = "SIZE")]
    memory: u64,

    /// Tasks run at once, each keeping one core busy. Defaults to the number
    /// of cores; lower it to leave cores for your own work.
    #[arg(long, value_name = "N")]
    slots: Option<usize>,

    /// Tasks leased ahead of a free slot (a work buffer), so that a slot
    /// that frees up starts its next task at once instead of asking the
    /// broker first [default: one per slot]. A task held waits up to one
    /// task's time before it runs (more than one per slot: longer); 0
    /// leases a task only when a slot is free.
    #[arg(long, value_name = "N")]
    work_buffer: Option<usize>,

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

    /// Who runs this machine (free text, e.g. an e-mail address), sent when
    /// the agent registers. The broker can keep the replicas of a task off
    /// machines of one owner, so give all your machines the same owner.
    #[arg(long, env = "WASMGRID_OWNER", value_name = "TEXT")]
    owner: Option<String>,

    /// The secret a broker that enrols machines asks for, from its operator;
    /// sent once, when the agent registers.
    #[arg(
        long,
        env = "WASMGRID_ENROLMENT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    enrolment_secret: Option<String>,

    /// Percent of the time each task may compute, 1 to 100 (as BOINC's
    /// "use at most N% of CPU time"): tasks sleep in between, so the machine
    /// stays cooler and quieter. A task's wall-time limit counts its running
    /// time only; its result and pay do not change.
    #[arg(long, default_value = "100", value_parser = clap::value_parser!(u8).range(1..=100), value_name = "N")]
    cpu_percent: u8,

    /// Log format: text, or json (one object per line, with the task's
    /// workload, index and lease in each line's span).
    #[arg(long, env = "WASMGRID_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,

    /// Lowest pay accepted, in credits per unit of fuel: offers paying less
    /// are declined. 0 (the default) takes any rate.
    #[arg(long, default_value = "0", value_parser = parse_rate, value_name = "CREDITS")]
    min_rate: f64,

    /// On stop, how long running tasks may take to finish before their leases
    /// are given back to the broker (which hands them to another agent). A
    /// second signal gives them back at once.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    stop_timeout: Duration,
}

/// `wasmgrid-agent earnings`.
#[derive(Debug, clap::Args)]
struct EarningsArgs {
    /// The agent's state directory, where its identity is (as given to the
    /// agent). Defaults to $XDG_STATE_HOME/wasmgrid-agent, else
    /// ~/.local/state/wasmgrid-agent.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// The broker to ask. Defaults to the one the agent registered with.
    #[arg(long, value_name = "URL")]
    broker: Option<String>,

    /// A CA certificate (PEM) to trust for the broker's TLS certificate.
    #[arg(long, env = "WASMGRID_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,

    /// Print one JSON object instead of a table (amounts also in exact
    /// micro-credits).
    #[arg(long)]
    json: bool,
}

fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| {
            format!("invalid size '{text}': use a number with an optional unit, e.g. 512MiB, 2GiB")
        })
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!(
            "invalid rate '{text}': use a number of credits per unit of fuel, at least 0, e.g. 1e-9"
        )),
    }
}

/// Logs to stderr, filtered by `WASMGRID_LOG` (or `RUST_LOG`), as text or
/// one JSON object per line.
fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_env("WASMGRID_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Fills in from the config file what neither a flag nor its environment
/// variable gave.
fn apply_config_file(args: &mut RunArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let Some(path) = &args.config else {
        return Ok(());
    };
    let file = ConfigFile::load(path)?;
    let unset = |id: &str| {
        !matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let invalid = |key: &str, why: String| anyhow::anyhow!("{}: {key}: {why}", path.display());
    if let Some(broker) = file.broker.filter(|_| unset("broker")) {
        args.broker = Some(broker);
    }
    if let Some(ca_cert) = file.ca_cert.filter(|_| unset("ca_cert")) {
        args.ca_cert = Some(ca_cert);
    }
    if let Some(state_dir) = file.state_dir.filter(|_| unset("state_dir")) {
        args.state_dir = Some(state_dir);
    }
    if let Some(memory) = file.memory.filter(|_| unset("memory")) {
        args.memory = parse_size(&memory).map_err(|why| invalid("memory", why))?;
    }
    if let Some(slots) = file.slots.filter(|_| unset("slots")) {
        args.slots = Some(slots);
    }
    if let Some(work_buffer) = file.work_buffer.filter(|_| unset("work_buffer")) {
        args.work_buffer = Some(work_buffer);
    }
    if let Some(percent) = file.cpu_percent.filter(|_| unset("cpu_percent")) {
        if !(1..=100).contains(&percent) {
            return Err(invalid("cpu_percent", format!("{percent}: use 1 to 100")));
        }
        args.cpu_percent = percent;
    }
    if let Some(name) = file.name.filter(|_| unset("name")) {
        args.name = Some(name);
    }
    if let Some(owner) = file.owner.filter(|_| unset("owner")) {
        args.owner = Some(owner);
    }
    if let Some(secret) = file.enrolment_secret.filter(|_| unset("enrolment_secret")) {
        args.enrolment_secret = Some(secret);
    }
    if let Some(rate) = file.min_rate.filter(|_| unset("min_rate")) {
        args.min_rate = parse_rate(&rate.to_string()).map_err(|why| invalid("min_rate", why))?;
    }
    if let Some(timeout) = file.stop_timeout.filter(|_| unset("stop_timeout")) {
        args.stop_timeout = humantime::parse_duration(&timeout)
            .map_err(|error| invalid("stop_timeout", error.to_string()))?;
    }
    if let Some(format) = file.log_format.filter(|_| unset("log_format")) {
        if format != "text" && format != "json" {
            return Err(invalid(
                "log_format",
                format!("{format:?}: use text or json"),
            ));
        }
        args.log_format = format;
    }
    Ok(())
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    if cli.command.is_none()
        && let Err(error) = apply_config_file(&mut cli.run, &matches)
    {
        eprintln!("error: {error:#}");
        return ExitCode::from(2);
    }
    let outcome = match cli.command {
        Some(Command::Earnings(args)) => earnings(args),
        Some(Command::Status(args)) => status(args),
        Some(Command::Pause(args)) => state_dir_or_default(args.state_dir).and_then(|dir| {
            control::pause(&dir).with_context(|| format!("cannot pause in {}", dir.display()))?;
            println!(
                "paused: the agent of {} takes no new work; running tasks finish",
                dir.display()
            );
            Ok(())
        }),
        Some(Command::Resume(args)) => state_dir_or_default(args.state_dir).and_then(|dir| {
            let was_paused = control::resume(&dir)
                .with_context(|| format!("cannot resume in {}", dir.display()))?;
            if was_paused {
                println!("resumed: the agent of {} takes work again", dir.display());
            } else {
                println!("the agent of {} was not paused", dir.display());
            }
            Ok(())
        }),
        Some(Command::Update(args)) => update(args),
        None => {
            init_logging(&cli.run.log_format);
            let broker = cli.run.broker.clone();
            let ca_cert = cli.run.ca_cert.clone();
            return match run(cli.run) {
                Ok(_) => ExitCode::SUCCESS,
                Err(error) => match error.downcast_ref::<AgentError>() {
                    Some(AgentError::Outdated { message, .. }) => {
                        eprintln!("error: {message}");
                        eprintln!("update this agent, then start it again:");
                        eprintln!("    {}", update_command(broker, ca_cert));
                        ExitCode::from(EXIT_OUTDATED)
                    }
                    _ => {
                        eprintln!("error: {error:#}");
                        ExitCode::FAILURE
                    }
                },
            };
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command that updates this very program from `broker`.
fn update_command(broker: Option<String>, ca_cert: Option<PathBuf>) -> String {
    let program = std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| "wasmgrid-agent".to_owned());
    let mut command = format!("{program} update");
    if let Some(broker) = broker {
        command.push_str(&format!(" --broker {broker}"));
    }
    if let Some(ca_cert) = ca_cert {
        command.push_str(&format!(" --ca-cert {}", ca_cert.display()));
    }
    command
}

/// `wasmgrid-agent update`.
fn update(args: UpdateArgs) -> anyhow::Result<()> {
    let executable =
        std::env::current_exe().context("cannot tell where this program is, to replace it")?;
    let state_dir = args.state_dir.or_else(default_state_dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(update_agent(UpdateRequest {
        broker: args.broker.as_deref(),
        state_dir: state_dir.as_deref(),
        ca_cert: args.ca_cert.as_deref(),
        executable: &executable,
        force: args.force,
    }))?;
    match outcome {
        UpdateOutcome::UpToDate { broker, version } => {
            println!("wasmgrid-agent {version} is up to date (the newest build at {broker})");
        }
        UpdateOutcome::BrokerHasOlder { broker, offered } => {
            println!(
                "this agent ({AGENT_VERSION}) is newer than the build at {broker} ({offered}): \
                 nothing done (--force installs it)"
            );
        }
        UpdateOutcome::Installed {
            broker,
            path,
            from,
            to,
            sha256,
            size,
        } => {
            println!("updated {}: {from} → {to}", path.display());
            println!("sha256 {sha256} ({size} bytes, as {broker} announced)");
            println!("a running agent keeps the old version until it is restarted");
        }
    }
    Ok(())
}

fn state_dir_or_default(state_dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match state_dir {
        Some(dir) => Ok(dir),
        None => default_state_dir()
            .context("no state directory: pass --state-dir, or set XDG_STATE_HOME or HOME"),
    }
}

fn run(args: RunArgs) -> anyhow::Result<AgentSummary> {
    let broker = args
        .broker
        .context("--broker (or `broker` in the --config file) is required")?;
    let mut config = AgentConfig::new(broker, state_dir_or_default(args.state_dir)?);
    config.ca_cert = args.ca_cert;
    config.memory_bytes = args.memory;
    config.slots = args.slots.unwrap_or_else(default_slots);
    config.work_buffer = args.work_buffer;
    config.name = args.name.unwrap_or_else(default_name);
    config.owner = args
        .owner
        .map(|owner| owner.trim().to_owned())
        .unwrap_or_default();
    config.enrolment_secret = args.enrolment_secret.unwrap_or_default();
    config.cpu_percent = args.cpu_percent;
    config.min_rate = args.min_rate;
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

fn earnings(args: EarningsArgs) -> anyhow::Result<()> {
    let state_dir = state_dir_or_default(args.state_dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(wasmgrid_agent::fetch_earnings(
        &state_dir,
        args.broker.as_deref(),
        args.ca_cert.as_deref(),
    ))?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// `wasmgrid-agent status`.
fn status(args: StatusArgs) -> anyhow::Result<()> {
    let state_dir = state_dir_or_default(args.state.state_dir)?;
    let status = control::read_status(&state_dir)
        .with_context(|| format!("cannot read the status in {}", state_dir.display()))?;
    let running = status.as_ref().is_some_and(control::AgentStatus::is_fresh);
    if args.json {
        let mut json = serde_json::to_value(&status)?;
        if let Some(object) = json.as_object_mut() {
            object.insert("running".into(), running.into());
        } else {
            json = serde_json::json!({ "running": false });
        }
        println!("{json}");
        return Ok(());
    }
    let Some(status) = status.filter(|_| running) else {
        println!(
            "no agent is running on {} (paused: {})",
            state_dir.display(),
            if control::is_paused(&state_dir) {
                "yes"
            } else {
                "no"
            }
        );
        return Ok(());
    };
    print!("{}", control::status_text(&status));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match runtime.block_on(wasmgrid_agent::fetch_earnings(
        &state_dir,
        None,
        args.ca_cert.as_deref(),
    )) {
        // The agent and broker lines are already printed above.
        Ok(report) => report
            .to_text()
            .lines()
            .filter(|line| !line.starts_with("agent ") && !line.starts_with("broker "))
            .for_each(|line| println!("{line}")),
        Err(error) => println!("earnings    unavailable: {error}"),
    }
    Ok(())
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
