//! A volunteer's controls of a running agent: `wasmgrid-agent status`,
//! `pause` and `resume`, against a real broker and agent.

use std::process::{Command, Output};
use std::time::Duration;

use wasmgrid_proto::v1;
use wasmgrid_tests::binaries::binary;
use wasmgrid_tests::queries::{status_of, tasks_of};
use wasmgrid_tests::{AgentProcess, BrokerProcess, Submission, eventually, issuer};

const TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

fn agent_command(args: &[&str], state_dir: &std::path::Path) -> Output {
    let output = Command::new(binary("wasmgrid-agent"))
        .args(args)
        .arg("--state-dir")
        .arg(state_dir)
        .output()
        .expect("wasmgrid-agent runs");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `status --json`, parsed far enough for the test: a field's text.
fn status_field(state_dir: &std::path::Path, field: &str) -> String {
    let output = agent_command(&["status", "--json"], state_dir);
    let json = String::from_utf8_lossy(&output.stdout).into_owned();
    let key = format!("\"{field}\":");
    json.split_once(&key)
        .map(|(_, rest)| {
            rest.split([',', '}'])
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_agent_takes_no_work_until_resumed_and_status_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let url = broker.url();
    let state_dir = dir.path().join("agent");
    let mut agent = AgentProcess::start(&url, &state_dir, "volunteer", 2, &[]);
    eventually(
        TIMEOUT,
        POLL,
        "the agent never said it runs",
        || agent.log_tail(),
        || async { status_field(&state_dir, "running") == "true" },
    )
    .await;
    assert_eq!(status_field(&state_dir, "paused"), "false");

    agent_command(&["pause"], &state_dir);
    eventually(
        TIMEOUT,
        POLL,
        "the agent never said it is paused",
        || agent.log_tail(),
        || async { status_field(&state_dir, "paused") == "true" },
    )
    .await;
    let workload_id = Submission::primes(1_000_000, 4)
        .submit(&mut issuer(&url).await)
        .await
        .expect("submit");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tasks = tasks_of(&url, &workload_id).await;
    assert!(
        tasks.iter().all(|task| task.history.is_empty()),
        "a paused agent took work: {tasks:?}"
    );
    let text = String::from_utf8_lossy(&agent_command(&["status"], &state_dir).stdout).into_owned();
    assert!(text.contains("paused (no new work"), "{text}");

    agent_command(&["resume"], &state_dir);
    eventually(
        TIMEOUT,
        POLL,
        "the resumed agent did not finish the workload",
        || agent.log_tail(),
        || async { status_of(&url, &workload_id).await.state == v1::WorkloadState::Done as i32 },
    )
    .await;
    eventually(
        TIMEOUT,
        POLL,
        "the status did not count the tasks",
        || agent.log_tail(),
        || async { status_field(&state_dir, "tasks_run") == "4" },
    )
    .await;
    let text = String::from_utf8_lossy(&agent_command(&["status"], &state_dir).stdout).into_owned();
    assert!(
        text.contains("working") && text.contains("4 run, 4 ok") && text.contains("answered"),
        "{text}"
    );

    // A stopped agent is said to be stopped.
    assert!(
        agent.terminate(Duration::from_secs(30)),
        "{}",
        agent.log_tail()
    );
    let text = String::from_utf8_lossy(&agent_command(&["status"], &state_dir).stdout).into_owned();
    assert!(text.contains("no agent is running"), "{text}");
    assert_eq!(status_field(&state_dir, "running"), "false");
}

/// The config file gives what the flags do; a flag wins over the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_file_sets_the_flags_and_a_flag_wins() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let url = broker.url();
    let state_dir = dir.path().join("agent");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "broker = \"{url}\"\nstate_dir = \"{}\"\nmemory = \"256MiB\"\nslots = 3\n\
             name = \"from-the-file\"\nowner = \"volunteer@example.invalid\"\n",
            state_dir.display()
        ),
    )
    .expect("write");
    let log = std::fs::File::create(dir.path().join("agent.log")).expect("log");
    let mut child = Command::new(binary("wasmgrid-agent"))
        .arg("--config")
        .arg(&config)
        .args(["--slots", "2"])
        .env_remove("WASMGRID_BROKER")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("agent starts");
    let mut admin = wasmgrid_tests::admin(&url).await;
    let mut agents = Vec::new();
    for _ in 0..200 {
        agents = admin
            .list_agents(v1::ListAgentsRequest {})
            .await
            .expect("agents")
            .into_inner()
            .agents;
        // The agent writes its identity once the broker answered, so the
        // broker may list it a moment before the file exists: wait for both
        // before stopping it (the test once killed it in between).
        if !agents.is_empty() && state_dir.join("identity.json").exists() {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let [agent] = agents.as_slice() else {
        panic!(
            "one agent registered: {agents:?}\n{}",
            std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default()
        );
    };
    assert_eq!(agent.name, "from-the-file");
    assert_eq!(agent.owner, "volunteer@example.invalid");
    assert_eq!(agent.memory_bytes, 256 << 20);
    assert_eq!(agent.slots, 2, "the flag wins over the file");
    assert!(
        state_dir.join("identity.json").exists(),
        "state dir from the file"
    );

    // A typo in the file is refused, naming it.
    std::fs::write(&config, "slotz = 3\n").expect("write");
    let output = Command::new(binary("wasmgrid-agent"))
        .arg("--config")
        .arg(&config)
        .env_remove("WASMGRID_BROKER")
        .output()
        .expect("agent runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("slotz"), "{stderr}");
}
