//! The demo's grid on this machine: a broker and N agents started from the
//! binaries next to `wasmgrid`, all in one temporary directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use crate::children::Children;

/// How often the broker's address file is checked while it starts.
const ADDR_POLL: Duration = Duration::from_millis(20);

/// How long the broker may take to start listening: it opens (and perhaps
/// migrates) its store first; on a loaded CI machine that can take seconds.
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a running demo checks that its broker and agents are alive.
const LIVENESS_POLL: Duration = Duration::from_millis(100);

/// The programs and modules the demo needs.
#[derive(Debug)]
pub struct Programs {
    /// The `wasmgrid-broker` binary.
    pub broker: PathBuf,
    /// The `wasmgrid-agent` binary.
    pub agent: PathBuf,
    /// The `primes` task module.
    pub primes: PathBuf,
    /// The `sum-u64` reducer module.
    pub sum: PathBuf,
}

impl Programs {
    /// Looks in `bin_dir` (default: this executable's directory) for the
    /// binaries and in `tasks_dir` (default: `<exe dir>/../wasm32-wasip1/release`)
    /// for the modules.
    pub fn locate(bin_dir: Option<&Path>, tasks_dir: Option<&Path>) -> anyhow::Result<Programs> {
        let exe_dir = std::env::current_exe()
            .context("cannot find the running executable")?
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| anyhow!("the running executable has no directory"))?;
        let bin_dir = bin_dir.map_or_else(|| exe_dir.clone(), Path::to_path_buf);
        let tasks_dir = tasks_dir.map_or_else(
            || exe_dir.join("..").join("wasm32-wasip1").join("release"),
            Path::to_path_buf,
        );
        let binary = |name: &str| {
            let path = bin_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            if path.is_file() {
                Ok(path)
            } else {
                Err(anyhow!(
                    "cannot find {name} in {}: build it with `cargo build -p wasmgrid-broker -p wasmgrid-agent`, or pass --bin-dir",
                    bin_dir.display()
                ))
            }
        };
        let module = |name: &str| {
            let path = tasks_dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(anyhow!(
                    "cannot find {name} in {}: build the sample tasks with `cargo sample-tasks`, or pass --tasks-dir",
                    tasks_dir.display()
                ))
            }
        };
        Ok(Programs {
            broker: binary("wasmgrid-broker")?,
            agent: binary("wasmgrid-agent")?,
            primes: module("primes.wasm")?,
            sum: module("sum-u64.wasm")?,
        })
    }
}

/// A running broker and its agents. Dropping it stops the agents first, then
/// the broker (fields drop in declaration order). Their logs are files, read
/// with `tail` or `less`: `NO_COLOR` keeps colour codes out of them.
#[derive(Debug)]
pub struct Cluster {
    /// The broker's gRPC URL.
    pub broker_url: String,
    /// The broker's web dashboard.
    pub dashboard_url: String,
    /// The development CA the broker generated, which clients trust.
    pub ca_cert: PathBuf,
    /// The admin token the broker generated at its first start.
    pub admin_token: String,
    /// The broker's data dir.
    data_dir: PathBuf,
    agents: Children,
    broker: Children,
}

impl Cluster {
    /// Starts the broker in `dir/broker`, waits until it listens, then
    /// starts `agents` agents with state in `dir/agent-K`. Logs go to
    /// `dir/broker.log` and `dir/agent-K.log`.
    pub async fn start(programs: &Programs, dir: &Path, agents: u32) -> anyhow::Result<Cluster> {
        let data_dir = dir.join("broker");
        let mut broker = Children::default();
        broker.spawn(
            "the broker",
            Command::new(&programs.broker)
                .env("NO_COLOR", "1")
                .arg("--listen")
                .arg("127.0.0.1:0")
                .arg("--data-dir")
                .arg(&data_dir)
                // TLS as in production, with a CA made for the demo.
                .arg("--dev-tls")
                // The web dashboard and metrics, on a free loopback port.
                .args(["--http", "127.0.0.1:0"]),
            &dir.join("broker.log"),
        )?;
        let addr = wait_for_address(&mut broker, &data_dir.join("broker.addr")).await?;
        let broker_url = format!("https://{addr}");
        // Written before broker.addr (wasmgrid_broker::http::HTTP_ADDRESS_FILE).
        let http_file = data_dir.join("broker.http.addr");
        let dashboard_url = std::fs::read_to_string(&http_file)
            .map(|addr| format!("http://{}/", addr.trim()))
            .with_context(|| format!("cannot read the broker's {}", http_file.display()))?;
        // Where a `--dev-tls` broker writes its CA (wasmgrid_broker::tls).
        let ca_cert = data_dir.join("tls").join("ca.pem");
        // Where a broker started without --admin-token writes the one it
        // generated (wasmgrid_broker::core::access::ADMIN_TOKEN_FILE).
        let token_file = data_dir.join("admin.token");
        let admin_token = std::fs::read_to_string(&token_file)
            .with_context(|| format!("cannot read the broker's {}", token_file.display()))?
            .trim()
            .to_owned();
        let mut agent_group = Children::default();
        for k in 1..=agents {
            let name = format!("agent-{k}");
            agent_group.spawn(
                &name,
                Command::new(&programs.agent)
                    .env("NO_COLOR", "1")
                    .arg("--broker")
                    .arg(&broker_url)
                    .arg("--ca-cert")
                    .arg(&ca_cert)
                    .arg("--state-dir")
                    .arg(dir.join(&name))
                    .args(["--slots", "1", "--memory", "512MiB", "--name", &name]),
                &dir.join(format!("{name}.log")),
            )?;
        }
        Ok(Cluster {
            broker_url,
            dashboard_url,
            ca_cert,
            admin_token,
            data_dir,
            agents: agent_group,
            broker,
        })
    }

    /// A new token for `issuer`, made as an admin makes one:
    /// `wasmgrid-broker token create --issuer NAME`.
    pub fn issuer_token(&self, programs: &Programs, issuer: &str) -> anyhow::Result<String> {
        let output = Command::new(&programs.broker)
            .args([
                "token",
                "create",
                "--issuer",
                issuer,
                "--label",
                "wasmgrid demo",
            ])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdin(std::process::Stdio::null())
            .output()
            .context("cannot run wasmgrid-broker token create")?;
        if !output.status.success() {
            anyhow::bail!(
                "wasmgrid-broker token create failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Resolves when the broker or an agent exits, with an error naming it.
    /// A demo never expects that while it runs.
    pub async fn exited(&mut self) -> anyhow::Error {
        loop {
            if let Some((name, status)) = self.broker.exited().or_else(|| self.agents.exited()) {
                return anyhow!("{name} exited unexpectedly ({status})");
            }
            tokio::time::sleep(LIVENESS_POLL).await;
        }
    }

    /// Stops the agents, then the broker, each with SIGTERM and a grace
    /// period; returns the names of those that had to be killed.
    pub fn stop(mut self) -> Vec<String> {
        let mut killed = self.agents.stop();
        killed.extend(self.broker.stop());
        killed
    }
}

/// Waits until the broker has written its address to `path`, which it does
/// once it listens. The same address must be read twice in a row, so a file
/// caught half-written is not taken for a shorter port.
async fn wait_for_address(broker: &mut Children, path: &Path) -> anyhow::Result<SocketAddr> {
    let deadline = Instant::now() + BROKER_START_TIMEOUT;
    let mut previous: Option<SocketAddr> = None;
    loop {
        let current = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse::<SocketAddr>().ok());
        if let Some(addr) = current
            && previous == Some(addr)
        {
            return Ok(addr);
        }
        previous = current;
        if let Some((name, status)) = broker.exited() {
            bail!("{name} exited before it was listening ({status})");
        }
        if Instant::now() >= deadline {
            bail!(
                "the broker did not write its address to {} within {}s",
                path.display(),
                BROKER_START_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(ADDR_POLL).await;
    }
}
