//! A real grid for the CLI's tests: a `wasmgrid-broker` and some
//! `wasmgrid-agent`s as child processes on 127.0.0.1, in a temporary
//! directory, killed when dropped, and `wasmgrid` run against them.
//!
//! The broker and agent binaries belong to other packages, so cargo does not
//! build them for `cargo test -p wasmgrid`: `wasmgrid_tests::binaries`
//! builds them as the integration tests do (a no-op after `cargo test
//! --workspace`), so a test never runs against stale binaries.

#![allow(dead_code, reason = "each test file uses its own part of the grid")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use wasmgrid_tests::binaries::binary;

/// How long the broker may take to open its store and listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Poll interval while the broker starts.
const POLL: Duration = Duration::from_millis(20);

/// The `wasmgrid` binary under test.
pub fn wasmgrid_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wasmgrid"))
}

/// A path as a command-line argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A sample task module, built by `wasmgrid-sample-tasks` if needed.
pub fn sample(name: &str) -> String {
    wasmgrid_sample_tasks::wasm(name).display().to_string()
}

/// A broker and agents, killed (SIGKILL) on drop, agents first.
#[derive(Debug)]
pub struct Grid {
    pub url: String,
    agents: Vec<Child>,
    broker: Child,
    dir: tempfile::TempDir,
}

/// The admin token of the grid's broker: the commands act as the admin,
/// naming the issuer where one is needed.
pub const GRID_ADMIN_TOKEN: &str = "wasmgrid-cli-test-admin-token";

impl Grid {
    /// Starts a broker with a free port, waits until it listens, then
    /// starts `agents` agents of one slot each.
    pub fn start(agents: u32) -> Grid {
        let broker_binary = binary("wasmgrid-broker");
        let agent_binary = binary("wasmgrid-agent");
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("broker");
        let mut broker = spawn(
            Command::new(broker_binary)
                .args(["--insecure", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(&data_dir)
                .args(["--admin-token", GRID_ADMIN_TOKEN]),
            &dir.path().join("broker.log"),
        );
        let addr_file = data_dir.join("broker.addr");
        let started = Instant::now();
        let mut previous: Option<String> = None;
        let addr = loop {
            let current = std::fs::read_to_string(&addr_file)
                .ok()
                .map(|text| text.trim().to_owned())
                .filter(|text| text.parse::<std::net::SocketAddr>().is_ok());
            if current.is_some() && current == previous {
                break current.unwrap_or_default();
            }
            previous = current;
            if let Ok(Some(status)) = broker.try_wait() {
                panic!(
                    "the broker exited with {status} before listening:\n{}",
                    tail(&dir.path().join("broker.log"))
                );
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the broker did not start:\n{}",
                tail(&dir.path().join("broker.log"))
            );
            std::thread::sleep(POLL);
        };
        let url = format!("http://{addr}");
        let agents = (1..=agents)
            .map(|k| {
                let name = format!("agent-{k}");
                spawn(
                    Command::new(&agent_binary)
                        .args(["--broker", &url, "--state-dir"])
                        .arg(dir.path().join(&name))
                        .args(["--name", &name, "--slots", "1", "--memory", "512MiB"]),
                    &dir.path().join(format!("{name}.log")),
                )
            })
            .collect();
        Grid {
            url,
            agents,
            broker,
            dir,
        }
    }

    /// A directory for the test's own files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `wasmgrid ARGS --broker URL`.
    pub fn wasmgrid(&self, args: &[&str]) -> Output {
        Command::new(wasmgrid_binary())
            .args(args)
            .args(["--broker", &self.url])
            .env_remove("WASMGRID_BROKER")
            .env_remove("WASMGRID_ISSUER")
            .env("WASMGRID_TOKEN", GRID_ADMIN_TOKEN)
            .output()
            .expect("wasmgrid runs")
    }

    /// Runs `wasmgrid ARGS`, asserts it succeeded and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.wasmgrid(args);
        assert!(
            output.status.success(),
            "wasmgrid {args:?} failed ({}):\n{}\n{}",
            output.status,
            stderr(&output),
            self.logs()
        );
        stdout(&output)
    }

    /// Runs `wasmgrid ARGS --json`, asserts it succeeded and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.ok(&args);
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"))
    }

    /// The end of the broker's and agents' logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        let names = std::iter::once("broker".to_owned())
            .chain((1..=self.agents.len()).map(|k| format!("agent-{k}")));
        for name in names {
            text.push_str(&format!(
                "--- {name}.log ---\n{}\n",
                tail(&self.dir.path().join(format!("{name}.log")))
            ));
        }
        text
    }
}

impl Drop for Grid {
    fn drop(&mut self) {
        for child in self
            .agents
            .iter_mut()
            .chain(std::iter::once(&mut self.broker))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(command: &mut Command, log: &Path) -> Child {
    let file = std::fs::File::create(log).expect("log file");
    let err = file.try_clone().expect("log file");
    command
        .env("NO_COLOR", "1")
        .env("WASMGRID_LOG", "info")
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .expect("the process starts")
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
