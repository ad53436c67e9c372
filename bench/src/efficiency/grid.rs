//! The platform on this machine: the release broker (started by
//! [`BrokerProcess`](crate::dispatch::broker::BrokerProcess), as the dispatch bench starts it) and one release
//! `wasmgrid-agent` as child processes, and the issuer's and admin's gRPC
//! clients that drive them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use wasmgrid_proto::MAX_MESSAGE_BYTES;
use wasmgrid_proto::v1::admin_service_client::AdminServiceClient;
use wasmgrid_proto::v1::issuer_service_client::IssuerServiceClient;
use wasmgrid_proto::v1::{self, AgentInfo};

use crate::dispatch::broker::{AdminChannel, connect_as_admin, issuer_client, log_tail};
use crate::release_build;

/// How long the agent may take to start and register.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);

/// The release `wasmgrid-agent`, built (or found up to date) with `cargo
/// build --release -p wasmgrid-agent`, as the dispatch bench builds the
/// broker.
pub fn build_release_agent() -> Result<PathBuf> {
    release_build::build_release("wasmgrid-agent", "--agent")
}

/// A running `wasmgrid-agent`, killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct AgentProcess {
    child: Child,
    pub log: PathBuf,
    /// When the process was spawned.
    pub started: Instant,
}

impl AgentProcess {
    /// Starts `binary` for the broker at `broker_url` with `slots` slots and
    /// `memory_mib` MiB for its tasks, its state in `state_dir`, everything
    /// else as shipped (fuel metering on, `--cpu-percent 100`).
    pub fn start(
        binary: &Path,
        broker_url: &str,
        state_dir: &Path,
        name: &str,
        slots: usize,
        memory_mib: u64,
    ) -> Result<Self> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("create {}", state_dir.display()))?;
        let log = state_dir.with_extension("log");
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err_file = log_file.try_clone().context("duplicate the log file")?;
        let started = Instant::now();
        let child = Command::new(binary)
            .env("NO_COLOR", "1")
            .arg("--broker")
            .arg(broker_url)
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--name")
            .arg(name)
            .arg("--slots")
            .arg(slots.to_string())
            .arg("--memory")
            .arg(format!("{memory_mib}MiB"))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        Ok(AgentProcess {
            child,
            log,
            started,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error when the agent has exited (it must run until killed).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("wait for the agent")? {
            bail!(
                "the agent exited with {status} during the run:\n{}",
                log_tail(&self.log)
            );
        }
        Ok(())
    }

    /// The tail of the agent's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bench's clients of one broker, with the admin token (which may act
/// for any issuer).
#[derive(Debug)]
pub struct Clients {
    pub issuer: IssuerServiceClient<AdminChannel>,
    pub admin: AdminServiceClient<AdminChannel>,
}

impl Clients {
    pub async fn connect(url: &str) -> Result<Self> {
        let (channel, bearer) = connect_as_admin(url).await?;
        let issuer = issuer_client(channel.clone(), bearer.clone());
        let admin = AdminServiceClient::with_interceptor(channel, bearer)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Clients { issuer, admin })
    }

    /// The agents the broker knows.
    pub async fn agents(&mut self) -> Result<Vec<AgentInfo>> {
        Ok(self
            .admin
            .list_agents(v1::ListAgentsRequest {})
            .await
            .map_err(|status| anyhow!("ListAgents failed: {status}"))?
            .into_inner()
            .agents)
    }

    /// Waits until the agent has registered; returns how long after its
    /// start the bench saw it registered.
    pub async fn wait_for_agent(&mut self, agent: &mut AgentProcess) -> Result<Duration> {
        let started = Instant::now();
        loop {
            agent.check_alive()?;
            if !self.agents().await?.is_empty() {
                return Ok(agent.started.elapsed());
            }
            if started.elapsed() > REGISTER_TIMEOUT {
                bail!(
                    "the agent did not register within {} s:\n{}",
                    REGISTER_TIMEOUT.as_secs(),
                    agent.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Gives `issuer` `micro` micro-credits, as an admin does.
    pub async fn grant(&mut self, issuer: &str, micro: i64) -> Result<()> {
        self.admin
            .grant_credits(v1::GrantCreditsRequest {
                issuer: issuer.to_owned(),
                amount_micro: micro,
                memo: "wasmgrid-bench efficiency".to_owned(),
            })
            .await
            .map_err(|status| anyhow!("GrantCredits failed: {status}"))?;
        Ok(())
    }
}
