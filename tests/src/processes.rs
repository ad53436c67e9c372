//! Broker and agent child processes. Each is killed (SIGKILL) when dropped,
//! so a failing test leaves nothing running; logs go to files beside their
//! data, shown when a test prints them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::binaries::binary;

/// How long a broker may take to open its store and listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Poll interval while waiting for a condition.
const POLL: Duration = Duration::from_millis(10);

fn spawn(program: &Path, args: &[String], log: &Path) -> Child {
    let log_file = std::fs::File::create(log).expect("log file");
    let err_file = log_file.try_clone().expect("log file");
    Command::new(program)
        .args(args)
        .env("WASMGRID_LOG", "info,wasmgrid=debug")
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

fn signal(child: &Child, signal: Signal) {
    let _ = kill(Pid::from_raw(child.id() as i32), signal);
}

/// The tail of a log file, for failure messages.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// True when the broker's extra arguments choose TLS.
fn uses_tls(extra: &[String]) -> bool {
    extra
        .iter()
        .any(|arg| arg == "--dev-tls" || arg == "--tls-cert")
}

/// A running `wasmgrid-broker`.
#[derive(Debug)]
pub struct BrokerProcess {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    pub log: PathBuf,
    extra: Vec<String>,
}

impl BrokerProcess {
    /// Starts a broker on 127.0.0.1 with a free port.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_on(
            data_dir,
            "127.0.0.1:0",
            extra.iter().map(|s| s.to_string()).collect(),
        )
    }

    fn start_on(data_dir: &Path, listen: &str, extra: Vec<String>) -> Self {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let addr_file = data_dir.join("broker.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = unique_log(&data_dir.with_extension("broker"));
        let mut args = vec![
            "--listen".to_owned(),
            listen.to_owned(),
            "--data-dir".to_owned(),
            data_dir.display().to_string(),
        ];
        args.extend(extra.iter().cloned());
        if !uses_tls(&extra) {
            // Tests speak plain gRPC unless they test TLS.
            args.push("--insecure".to_owned());
        }
        if !extra.iter().any(|arg| arg == "--admin-token") {
            args.push("--admin-token".to_owned());
            args.push(crate::client::TEST_ADMIN_TOKEN.to_owned());
        }
        let mut child = spawn(&binary("wasmgrid-broker"), &args, &log);
        let started = Instant::now();
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file)
                && let Ok(addr) = text.trim().parse()
            {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "broker exited with {status} before listening:\n{}",
                    log_tail(&log)
                );
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "broker did not start:\n{}",
                log_tail(&log)
            );
            std::thread::sleep(POLL);
        };
        BrokerProcess {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            addr,
            log,
            extra,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if uses_tls(&self.extra) {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The development CA of a broker started with `--dev-tls`.
    pub fn dev_ca(&self) -> PathBuf {
        self.data_dir.join("tls").join("ca.pem")
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Freezes the broker (SIGSTOP): connections stay open, nothing is
    /// answered, as a hung host would.
    pub fn freeze(&self) {
        if let Some(child) = &self.child {
            signal(child, Signal::SIGSTOP);
        }
    }

    /// Lets a frozen broker go on (SIGCONT).
    pub fn thaw(&self) {
        if let Some(child) = &self.child {
            signal(child, Signal::SIGCONT);
        }
    }

    /// Starts the broker again on the same data dir and port.
    pub fn restart(&mut self) {
        self.restart_with(&self.extra.clone());
    }

    /// Starts the broker again on the same data dir and port, with `extra`
    /// arguments instead of the ones it had (e.g. a new operator setting).
    pub fn restart_with<S: AsRef<str>>(&mut self, extra: &[S]) {
        self.kill9();
        let extra = extra.iter().map(|arg| arg.as_ref().to_owned()).collect();
        let again = Self::start_on(&self.data_dir, &self.addr.to_string(), extra);
        *self = again;
    }

    /// Runs `wasmgrid-broker token ARGS` on this broker's data dir (e.g.
    /// `["create", "--issuer", "alice"]`) and returns what it printed.
    pub fn token_command(&self, args: &[&str]) -> String {
        token_command(&self.data_dir, args)
    }

    /// The broker's log so far.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn unique_log(base: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    base.with_extension(format!("{}.log", COUNTER.fetch_add(1, Ordering::Relaxed)))
}

/// A running `wasmgrid-agent`.
#[derive(Debug)]
pub struct AgentProcess {
    child: Option<Child>,
    pub name: String,
    pub state_dir: PathBuf,
    pub log: PathBuf,
}

impl AgentProcess {
    /// Starts an agent with `slots` slots against `broker_url`.
    pub fn start(
        broker_url: &str,
        state_dir: &Path,
        name: &str,
        slots: u32,
        extra: &[&str],
    ) -> Self {
        std::fs::create_dir_all(state_dir).expect("state dir");
        let log = unique_log(&state_dir.with_extension("agent"));
        let mut args = vec![
            "--broker".to_owned(),
            broker_url.to_owned(),
            "--state-dir".to_owned(),
            state_dir.display().to_string(),
            "--name".to_owned(),
            name.to_owned(),
            "--slots".to_owned(),
            slots.to_string(),
            "--memory".to_owned(),
            "1GiB".to_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = spawn(&binary("wasmgrid-agent"), &args, &log);
        AgentProcess {
            child: Some(child),
            name: name.to_owned(),
            state_dir: state_dir.to_path_buf(),
            log,
        }
    }

    /// Starts `count` one-slot agents named `agent-0`, `agent-1`, … with
    /// state dirs of the same names in `dir`.
    pub fn start_many(broker_url: &str, dir: &Path, count: usize) -> Vec<AgentProcess> {
        (0..count)
            .map(|i| {
                let name = format!("agent-{i}");
                AgentProcess::start(broker_url, &dir.join(&name), &name, 1, &[])
            })
            .collect()
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Whether the agent has compiled a module: its sandbox stores the
    /// compiled artifact in the state dir, the last step between a lease
    /// and the run, so a task is running (or done) then.
    pub fn has_compiled_module(&self) -> bool {
        std::fs::read_dir(self.state_dir.join("compiled")).is_ok_and(|mut entries| {
            entries.any(|entry| {
                entry.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            })
        })
    }

    /// Waits (up to a minute) until the agent has compiled a module: its
    /// task is running then, since compiling is the last step between a
    /// lease and the run.
    pub async fn wait_until_compiled(&self) {
        crate::eventually(
            Duration::from_secs(60),
            Duration::from_millis(10),
            "the module was never compiled",
            || self.log_tail(),
            || async { self.has_compiled_module() },
        )
        .await;
    }

    /// How many finished results wait in the agent's outbox for the
    /// broker's acknowledgement.
    pub fn kept_results(&self) -> usize {
        std::fs::read_dir(self.state_dir.join("outbox")).map_or(0, |entries| entries.count())
    }

    /// Whether the process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Freezes the process (SIGSTOP), as a machine that hangs would.
    pub fn freeze(&self) {
        if let Some(child) = &self.child {
            signal(child, Signal::SIGSTOP);
        }
    }

    /// Lets a frozen process go on (SIGCONT).
    pub fn thaw(&self) {
        if let Some(child) = &self.child {
            signal(child, Signal::SIGCONT);
        }
    }

    /// Waits up to `timeout` for the agent to exit by itself and returns
    /// how it exited; `None` if it still runs then (it is left running).
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if started.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM, then waits up to `grace` for a clean exit; returns whether
    /// it exited successfully.
    pub fn terminate(&mut self, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        signal(&child, Signal::SIGTERM);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if started.elapsed() > grace {
                signal(&child, Signal::SIGKILL);
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// The agent's log so far.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `wasmgrid-broker token ARGS --data-dir DATA_DIR` (also with no broker
/// running) and returns what it printed, trimmed; panics when it fails.
pub fn token_command(data_dir: &Path, args: &[&str]) -> String {
    let output = Command::new(binary("wasmgrid-broker"))
        .arg("token")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .output()
        .expect("wasmgrid-broker runs");
    assert!(
        output.status.success(),
        "token {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
