//! The agent comes from the broker: builds hosted with `--agent-dist`,
//! listed and served over HTTP with their sha256, installed by the broker's
//! `/install.sh`, fetched by `wasmgrid-agent update` over TLS; and a broker
//! with `--min-agent-version` that tells older agents, new or registered
//! long ago, to update — and they stop, instead of retrying forever.
//!
//! The hosted build is a copy of the real agent binary with a few bytes
//! appended (an ELF runs the same with trailing bytes), named as version
//! 99.0.0 for this machine: its sha256 differs from the running agent's, so
//! a replaced file is told from the original.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use wasmgrid_runtime::ModuleHash;
use wasmgrid_tests::binaries::binary;
use wasmgrid_tests::http;
use wasmgrid_tests::{AgentProcess, BrokerProcess, eventually};

/// The version the hosted build claims in its name.
const DIST_VERSION: &str = "99.0.0";

/// Exit code of an agent refused for its version (`wasmgrid-agent` main).
const EXIT_OUTDATED: i32 = 3;

/// A directory of agent builds holding one build for this machine.
struct Dist {
    dir: PathBuf,
    file: String,
    bytes: Vec<u8>,
    sha256: String,
}

fn dist_in(parent: &Path) -> Dist {
    let dir = parent.join("dist");
    std::fs::create_dir_all(&dir).expect("dist dir");
    let mut bytes = std::fs::read(binary("wasmgrid-agent")).expect("the agent binary");
    bytes.extend_from_slice(b"\nwasmgrid-agent test build 99.0.0\n");
    let file = format!(
        "wasmgrid-agent-{DIST_VERSION}-{}-{}{}",
        std::env::consts::OS,
        std::env::consts::ARCH,
        std::env::consts::EXE_SUFFIX
    );
    std::fs::write(dir.join(&file), &bytes).expect("the build");
    // Not a build: listed nowhere, served never.
    std::fs::write(dir.join("NOTES.txt"), b"release notes").expect("a note");
    let sha256 = sha256(&bytes);
    Dist {
        dir,
        file,
        bytes,
        sha256,
    }
}

/// sha256 in hex (the runtime's module hash is exactly that).
fn sha256(bytes: &[u8]) -> String {
    ModuleHash::of(bytes).to_hex()
}

fn sha256_of(path: &Path) -> String {
    sha256(&std::fs::read(path).expect("the file"))
}

/// A copy of the agent binary in its own directory, to be replaced.
fn agent_copy(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let copy = bin.join(format!("wasmgrid-agent{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(binary("wasmgrid-agent"), &copy).expect("copy the agent");
    copy
}

/// A broker in `dir` hosting `dist`, with `extra` arguments.
fn broker_hosting(dist: &Dist, dir: &Path, extra: &[&str]) -> BrokerProcess {
    let agent_dist = dist.dir.display().to_string();
    let mut args = vec!["--agent-dist", &agent_dist];
    args.extend_from_slice(extra);
    BrokerProcess::start(&dir.join("broker"), &args)
}

/// The names of the files in `dir`.
fn file_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("a directory")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

fn http_address(broker: &BrokerProcess) -> String {
    std::fs::read_to_string(broker.data_dir.join("broker.http.addr"))
        .expect("the HTTP address")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_are_listed_served_and_installed_by_the_script() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dist = dist_in(dir.path());
    let broker = broker_hosting(&dist, dir.path(), &["--http", "127.0.0.1:0"]);
    let http = http_address(&broker);

    let listed = http::get(&http, "/downloads", None).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.header("content-type"), Some("application/json"));
    let listing = listed.text();
    for field in [
        format!(r#""file": "{}""#, dist.file),
        format!(r#""version": "{DIST_VERSION}""#),
        format!(r#""os": "{}""#, std::env::consts::OS),
        format!(r#""arch": "{}""#, std::env::consts::ARCH),
        format!(r#""sha256": "{}""#, dist.sha256),
        format!(r#""size": {}"#, dist.bytes.len()),
        r#""newest": true"#.to_owned(),
    ] {
        assert!(listing.contains(&field), "{field} in {listing}");
    }
    assert!(!listing.contains("NOTES"), "{listing}");

    let served = http::get(&http, &format!("/downloads/{}", dist.file), None).await;
    assert_eq!(served.status, 200);
    assert_eq!(
        served.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(sha256(&served.body), dist.sha256);
    assert!(
        served.body == dist.bytes,
        "the bytes served are the build's"
    );

    for path in [
        "/downloads/NOTES.txt",
        "/downloads/wasmgrid-agent-98.0.0-linux-x86_64",
        "/downloads/..%2Fbroker.addr",
        "/downloads/../broker.addr",
        "/downloads/%2E%2E/broker/broker.addr",
        "/downloads/..",
    ] {
        let refused = http::get(&http, path, None).await;
        assert_eq!(refused.status, 404, "{path}: {}", refused.text());
    }

    let script = http::get(&http, "/install.sh", None).await;
    assert_eq!(script.status, 200);
    let script = script.text();
    assert!(script.starts_with("#!/bin/sh"), "{script}");
    assert!(script.contains(&format!("sha256='{}'", dist.sha256)));
    assert!(script.contains("sha256sum"), "{script}");
    assert!(script.contains("/downloads/$file"), "{script}");
    assert!(
        script.contains(&format!("--broker {}", broker.url())),
        "{script}"
    );

    // As a volunteer would, with a real HTTP client: curl … | sh.
    let home = dir.path().join("home");
    let install_dir = home.join("bin");
    std::fs::create_dir_all(&home).expect("home");
    let installed = Command::new("sh")
        .arg("-c")
        .arg(format!("curl -fsSL http://{http}/install.sh | sh"))
        .env("HOME", &home)
        .env("WASMGRID_INSTALL_DIR", &install_dir)
        .stdin(Stdio::null())
        .output()
        .expect("sh runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&installed.stdout),
        String::from_utf8_lossy(&installed.stderr)
    );
    assert!(installed.status.success(), "{said}");
    assert!(
        said.contains(&format!("installed {}", install_dir.display())),
        "{said}"
    );
    let agent = install_dir.join("wasmgrid-agent");
    assert_eq!(sha256_of(&agent), dist.sha256);
    let version = Command::new(&agent)
        .arg("--version")
        .output()
        .expect("the installed agent runs");
    assert!(version.status.success());
    assert_eq!(
        file_names(&install_dir),
        ["wasmgrid-agent"],
        "no temporary file is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_replaces_the_program_with_the_brokers_build_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dist = dist_in(dir.path());
    let broker = broker_hosting(&dist, dir.path(), &["--dev-tls"]);
    let agent = agent_copy(dir.path());
    let before = sha256_of(&agent);
    assert_ne!(before, dist.sha256);

    let updated = Command::new(&agent)
        .args(["update", "--broker", &broker.url(), "--ca-cert"])
        .arg(broker.dev_ca())
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdin(Stdio::null())
        .output()
        .expect("update runs");
    let said = String::from_utf8_lossy(&updated.stdout).into_owned();
    assert!(
        updated.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&updated.stderr)
    );
    assert!(
        said.contains(&format!("{} → {DIST_VERSION}", env!("CARGO_PKG_VERSION"))),
        "{said}"
    );
    assert!(said.contains(&dist.sha256), "{said}");
    assert_eq!(sha256_of(&agent), dist.sha256, "the program was replaced");
    let version = Command::new(&agent)
        .arg("--version")
        .output()
        .expect("the new agent runs");
    assert!(version.status.success());
    let files = file_names(agent.parent().expect("bin dir"));
    assert_eq!(files.len(), 1, "no temporary file is left: {files:?}");

    // Without a trusted CA, nothing is fetched and nothing replaced.
    let copy = agent_copy(&dir.path().join("untrusting"));
    let refused = Command::new(&copy)
        .args(["update", "--broker", &broker.url(), "--state-dir"])
        .arg(dir.path().join("state"))
        .env_remove("WASMGRID_CA_CERT")
        .stdin(Stdio::null())
        .output()
        .expect("update runs");
    assert!(!refused.status.success());
    assert_eq!(sha256_of(&copy), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_older_than_the_minimum_stops_and_says_how_to_update() {
    let dir = tempfile::tempdir().expect("temp dir");
    let minimum = ["--min-agent-version", DIST_VERSION];

    // A new agent: refused at registration.
    let broker = BrokerProcess::start(&dir.path().join("strict"), &minimum);
    let mut newcomer = AgentProcess::start(
        &broker.url(),
        &dir.path().join("newcomer"),
        "newcomer",
        1,
        &[],
    );
    assert_refused_for_its_version(&mut newcomer, &broker.url());
    drop(broker);

    // An agent registered before the broker required more: refused on its
    // next call after the restart, with its saved identity.
    let mut broker = BrokerProcess::start(&dir.path().join("lenient"), &[]);
    let mut veteran = AgentProcess::start(
        &broker.url(),
        &dir.path().join("veteran"),
        "veteran",
        1,
        &[],
    );
    eventually(
        Duration::from_secs(60),
        Duration::from_millis(20),
        "the agent registered",
        || veteran.log_tail(),
        || async { veteran.state_dir.join("identity.json").exists() },
    )
    .await;
    broker.restart_with(&minimum);
    assert_refused_for_its_version(&mut veteran, &broker.url());
    assert!(
        !veteran.log_tail().contains("registered again"),
        "it kept its identity:\n{}",
        veteran.log_tail()
    );
}

/// The agent exits by itself with [`EXIT_OUTDATED`] and says what to run.
fn assert_refused_for_its_version(agent: &mut AgentProcess, broker_url: &str) {
    let status = agent
        .wait_for_exit(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the agent still runs:\n{}", agent.log_tail()));
    let log = agent.log_tail();
    assert_eq!(status.code(), Some(EXIT_OUTDATED), "{log}");
    assert!(
        log.contains(&format!("requires wasmgrid-agent >= {DIST_VERSION}")),
        "{log}"
    );
    assert!(
        log.contains(&format!("update --broker {broker_url}")),
        "{log}"
    );
}

#[test]
fn a_broker_whose_agent_dist_cannot_be_read_does_not_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-dist");
    let output = Command::new(binary("wasmgrid-broker"))
        .args(["--listen", "127.0.0.1:0", "--insecure", "--data-dir"])
        .arg(dir.path().join("broker"))
        .arg("--agent-dist")
        .arg(&missing)
        .stdin(Stdio::null())
        .output()
        .expect("the broker runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("--agent-dist"), "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
}
