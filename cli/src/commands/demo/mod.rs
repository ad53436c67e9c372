//! `wasmgrid demo`: a whole grid on this machine in one command. Starts a
//! broker and agents as child processes, grants the `demo` issuer enough
//! credits, counts the primes below a limit as a workload of many tasks,
//! shows its progress, checks the answer, prints the bill and what each
//! agent did and earned, and stops everything.
//!
//! - `cluster`: finding the binaries and modules, starting and stopping.
//! - `prime_count`: the workload's inputs, limits and known answers.
//! - `budget`: the credits granted before submitting.

mod budget;
mod cluster;
mod prime_count;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;
use wasmgrid_proto::v1::{AgentInfo, BalanceRequest, WorkloadRequest, WorkloadState};

use self::budget::budget;
use self::cluster::{Cluster, Programs};
use crate::bill::bill_lines;
use crate::children::log_tail;
use crate::client::Broker;
use crate::commands::agents::{list_agents, reputation_text};
use crate::commands::grant::grant;
use crate::commands::results::fetch;
use crate::commands::wait::{follow, report_end};
use crate::credits::{credits_text, credits_with_unit};
use crate::module_file::read_module;
use crate::progress::LiveProgress;
use crate::submission::{Workload, submit};
use crate::table::{Table, duration_text, si_text};
use crate::units::parse_count;

/// The issuer the demo submits as.
const DEMO_ISSUER: &str = "demo";

/// The demo's prices: a credit per 10^9 units of fuel, memory free.
const CREDITS_PER_FUEL: f64 = 1e-9;
const CREDITS_PER_MIB_SECOND: f64 = 0.0;

/// Lines of each log shown when the demo fails.
const LOG_TAIL_LINES: usize = 20;

/// Arguments of `wasmgrid demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Volunteer agents to start, each running one task at a time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    agents: u32,
    /// Tasks the range [0, limit) is split into, of equal width.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    tasks: u32,
    /// Count the primes below this number, e.g. 1e9 (checked against the
    /// known answer when it is a power of ten).
    #[arg(long, default_value = "1000000000", value_parser = parse_count)]
    limit: u64,
    /// Keep the temporary directory (broker data, agent state, logs) and
    /// print its path.
    #[arg(long)]
    keep: bool,
    /// After the workload, keep the grid running until Ctrl-C, to look
    /// around the web dashboard (its address and the issuer token to sign
    /// in with are printed).
    #[arg(long)]
    stay: bool,
    /// Directory holding wasmgrid-broker and wasmgrid-agent; by default the
    /// directory of this executable.
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Directory holding primes.wasm and sum-u64.wasm; by default
    /// EXE_DIR/../wasm32-wasip1/release (built by `cargo sample-tasks`).
    #[arg(long, value_name = "DIR")]
    tasks_dir: Option<PathBuf>,
}

/// Runs the demo; `Ok(false)` when the workload failed or its answer is wrong.
pub async fn run(args: DemoArgs) -> anyhow::Result<bool> {
    let programs = Programs::locate(args.bin_dir.as_deref(), args.tasks_dir.as_deref())?;
    let workdir = tempfile::Builder::new()
        .prefix("wasmgrid-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let result = run_in(&args, &programs, workdir.path()).await;
    if !matches!(result, Ok(true)) {
        print_log_tails(workdir.path(), args.agents);
    }
    if args.keep {
        let kept = workdir.keep();
        eprintln!("kept {} (broker data, agent state, logs)", kept.display());
    }
    result
}

async fn run_in(args: &DemoArgs, programs: &Programs, dir: &Path) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut cluster = Cluster::start(programs, dir, args.agents).await?;
    let plural = if args.agents == 1 { "" } else { "s" };
    eprintln!(
        "started a broker at {} (dashboard {}) and {} agent{plural}",
        cluster.broker_url, cluster.dashboard_url, args.agents
    );
    let access = Access {
        url: cluster.broker_url.clone(),
        ca_cert: cluster.ca_cert.clone(),
        admin_token: cluster.admin_token.clone(),
        issuer_token: cluster.issuer_token(programs, DEMO_ISSUER)?,
    };
    eprintln!(
        "created an issuer token for {DEMO_ISSUER} (wasmgrid-broker token create --issuer {DEMO_ISSUER})"
    );
    let mut outcome = tokio::select! {
        outcome = count_primes(args, programs, &access) => outcome,
        error = cluster.exited() => Err(error),
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    if args.stay && outcome.is_ok() {
        eprintln!(
            "the grid stays up: open {} and sign in with the issuer token {} \
             (or the admin token {}); Ctrl-C stops it",
            cluster.dashboard_url, access.issuer_token, access.admin_token
        );
        tokio::select! {
            error = cluster.exited() => outcome = Err(error),
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    eprintln!("stopping the agents and the broker");
    let killed = tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .context("stopping the children panicked")?;
    if !killed.is_empty() {
        eprintln!("had to kill {} after the grace period", killed.join(", "));
    }
    let good = outcome?;
    println!("total wall time     {}", duration_text(started.elapsed()));
    Ok(good)
}

/// How the demo reaches its broker: over TLS, trusting the broker's
/// development CA, as the admin (to grant credits) and as the issuer.
struct Access {
    url: String,
    ca_cert: PathBuf,
    admin_token: String,
    issuer_token: String,
}

/// Grants the credits, submits the workload, follows it, checks and prints
/// the answer, the bill and the agents' statistics. `Ok(false)` when it
/// failed or the answer is wrong.
async fn count_primes(
    args: &DemoArgs,
    programs: &Programs,
    access: &Access,
) -> anyhow::Result<bool> {
    let mut admin = Broker::connect_url(
        &access.url,
        Some(&access.ca_cert),
        Some(&access.admin_token),
    )
    .await?;
    let mut broker = Broker::connect_url(
        &access.url,
        Some(&access.ca_cert),
        Some(&access.issuer_token),
    )
    .await?;
    let width = args.limit.div_ceil(u64::from(args.tasks));
    let workload = Workload {
        name: format!("primes below {}", args.limit),
        // The issuer's token says who pays.
        issuer: String::new(),
        module: read_module(&programs.primes, "module")?,
        reducer: Some(read_module(&programs.sum, "reducer")?),
        inputs: prime_count::inputs(args.limit, args.tasks),
        limits: prime_count::limits(width),
        replicas: 1,
        max_attempts: 3,
        quorum: 0,
        adaptive_replication: false,
        credits_per_fuel: CREDITS_PER_FUEL,
        credits_per_mib_second: CREDITS_PER_MIB_SECOND,
    };
    let budget = budget(
        args.tasks,
        workload.replicas,
        &workload.limits,
        CREDITS_PER_FUEL,
        CREDITS_PER_MIB_SECOND,
    )?;
    let granted = grant(
        &mut admin,
        DEMO_ISSUER,
        budget.grant_micro,
        "wasmgrid demo: the workload's most possible cost",
    )
    .await?;
    eprintln!(
        "granted {} credits to issuer {DEMO_ISSUER} (enough for {} paid runs at their limits, {:.6} credits each, plus 20% for the broker's fee); balance {}",
        credits_text(budget.grant_micro),
        budget.runs,
        budget.per_run_credits,
        credits_with_unit(granted.balance_micro)
    );
    eprintln!(
        "counting the primes below {} in {} tasks",
        args.limit, args.tasks
    );
    let submitted = Instant::now();
    let id = submit(&mut broker, workload).await?.workload_id;
    let mut progress = LiveProgress::new();
    let status = follow(&mut broker, &id, &mut progress).await?;
    progress.finish(&status);
    if status.state() != WorkloadState::Done {
        report_end(&status);
        return Ok(false);
    }
    let end = fetch(&mut broker, &id, |_| Ok(()))
        .await?
        .filter(|end| end.reduced)
        .ok_or_else(|| anyhow!("workload {id} is done but the broker sent no reduced result"))?;
    let grid_time = submitted.elapsed();
    let text = String::from_utf8_lossy(&end.output);
    let count: u64 = text
        .trim()
        .parse()
        .with_context(|| format!("the reducer's result '{text}' is not a number"))?;
    println!("primes below {}: {count}", args.limit);
    let correct = match prime_count::known_count(args.limit) {
        Some((k, known)) if known == count => {
            println!("correct: the known π(10^{k}) is {known}");
            true
        }
        Some((k, known)) => {
            println!("WRONG: the known π(10^{k}) is {known}");
            false
        }
        None => true,
    };
    print_bill(&mut broker, &id, budget.grant_micro).await?;
    let agents = list_agents(&mut admin).await?;
    print!("\n{}\n", agent_statistics(&agents).render());
    println!("workload wall time  {}", duration_text(grid_time));
    Ok(correct)
}

/// The workload's bill and the issuer's balance after it: what was granted
/// less what the agents were paid and the broker's fee.
async fn print_bill(broker: &mut Broker, id: &str, granted_micro: i64) -> anyhow::Result<()> {
    let status = broker
        .issuer
        .get_status(WorkloadRequest {
            workload_id: id.to_owned(),
        })
        .await
        .map_err(|status| broker.error(status))?
        .into_inner();
    let bill = status.bill.unwrap_or_default();
    let balance = broker
        .issuer
        .get_balance(BalanceRequest {
            // The issuer's token says who pays.
            issuer: String::new(),
        })
        .await
        .map_err(|status| broker.error(status))?
        .into_inner();
    println!();
    for line in bill_lines(&bill, None) {
        println!("{line}");
    }
    println!(
        "issuer {DEMO_ISSUER} balance {} (granted {} - paid {} - fee {})",
        credits_with_unit(balance.balance_micro),
        credits_text(granted_micro),
        credits_text(bill.paid_micro),
        credits_text(bill.fee_micro),
    );
    Ok(())
}

fn agent_statistics(agents: &[AgentInfo]) -> Table {
    let mut table = Table::new(&[
        "AGENT",
        ">TASKS OK",
        ">FAILED",
        ">REPUTATION",
        ">FUEL",
        ">FUEL/S",
        ">BUSY",
        ">EARNED",
    ]);
    for agent in agents {
        table.row(vec![
            agent.name.clone(),
            agent.tasks_ok.to_string(),
            agent.tasks_failed.to_string(),
            reputation_text(agent),
            agent.fuel_consumed.to_string(),
            si_text(agent.fuel_per_second),
            duration_text(Duration::from_millis(agent.busy_ms)),
            credits_text(agent.earned_micro),
        ]);
    }
    table
}

/// The end of the broker's and each agent's log, for a demo that failed.
fn print_log_tails(dir: &Path, agents: u32) {
    let logs =
        std::iter::once("broker".to_owned()).chain((1..=agents).map(|k| format!("agent-{k}")));
    for name in logs {
        let path = dir.join(format!("{name}.log"));
        if path.exists() {
            eprintln!("--- last lines of {} ---", path.display());
            eprint!("{}", log_tail(&path, LOG_TAIL_LINES));
        }
    }
}
