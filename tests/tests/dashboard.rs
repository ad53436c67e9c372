//! The web dashboard on the broker's HTTP port: its JSON API shows each
//! issuer its own workloads, account and agents, an admin everything, and
//! refuses requests without a valid token; and in a real browser (Debian's
//! headless Chromium, driven over WebDriver by chromedriver) a person who
//! signs in with an issuer token sees a finished workload at 100 %, its end
//! result and the agents that computed it. The browser test saves its
//! screenshot as `docs/dashboard.png`.
//!
//! The browser test needs `chromium` and `chromedriver` (Debian packages
//! `chromium` and `chromium-driver`, installed by `.ci/run`). Without them
//! it says so and passes, unless `WASMGRID_REQUIRE_BROWSER` is set, as
//! `.ci/run` sets it: there, a missing browser fails the test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::Value;
use wasmgrid_tests::http::{self, HttpResponse};
use wasmgrid_tests::ledger_check::fund;
use wasmgrid_tests::{
    AgentProcess, BrokerProcess, Submission, issuer_with_token, wait_until_final,
};

/// π(10^6), the end result of `Submission::primes(1_000_000, _)`.
const PRIMES_BELOW_A_MILLION: &str = "78498";

/// A broker with its HTTP port, issuer tokens for alice and bob, and a
/// finished π(10^6) workload of alice's in `tasks` tasks, run by `agents`.
struct FinishedWorkload {
    broker: BrokerProcess,
    http: String,
    alice: String,
    bob: String,
    workload_id: String,
    agent_names: Vec<String>,
    _agents: Vec<AgentProcess>,
    _dir: tempfile::TempDir,
}

async fn finished_workload(tasks: u64, agents: usize) -> FinishedWorkload {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("broker");
    let broker = BrokerProcess::start(&data_dir, &["--http", "127.0.0.1:0"]);
    let http = std::fs::read_to_string(data_dir.join("broker.http.addr"))
        .expect("HTTP address")
        .trim()
        .to_owned();
    let url = broker.url();
    let alice = broker.token_command(&["create", "--issuer", "alice"]);
    let bob = broker.token_command(&["create", "--issuer", "bob"]);

    let mut submission = Submission::primes(1_000_000, tasks);
    submission.issuer = "alice".into();
    fund(&url, &mut submission).await;
    let mut client = issuer_with_token(&url, &alice).await;
    let workload_id = submission.submit(&mut client).await.expect("alice submits");
    let agent_names: Vec<String> = (0..agents).map(|i| format!("volunteer-{i}")).collect();
    let running: Vec<AgentProcess> = agent_names
        .iter()
        .map(|name| AgentProcess::start(&url, &dir.path().join(name), name, 2, &[]))
        .collect();
    let status = wait_until_final(&mut client, &workload_id, Duration::from_secs(120)).await;
    assert_eq!(
        status.state,
        wasmgrid_proto::v1::WorkloadState::Done as i32,
        "{status:?}"
    );
    FinishedWorkload {
        broker,
        http,
        alice,
        bob,
        workload_id,
        agent_names,
        _agents: running,
        _dir: dir,
    }
}

async fn json(http: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let response = http::get(http, path, token).await;
    let value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {}", response.text()));
    (response.status, value)
}

fn array_len(value: &Value) -> usize {
    value.as_array().map_or(usize::MAX, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_each_issuer_its_own_and_an_admin_everything() {
    let grid = finished_workload(6, 1).await;
    let (http, alice, bob) = (
        &grid.http,
        Some(grid.alice.as_str()),
        Some(grid.bob.as_str()),
    );
    let admin = Some(wasmgrid_tests::TEST_ADMIN_TOKEN);
    let id = &grid.workload_id;

    // No token, a wrong token: refused, with a reason.
    for token in [None, Some("not-a-token")] {
        let (status, body) = json(http, "/api/workloads", token).await;
        assert_eq!(status, 401, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }

    let (_, me) = json(http, "/api/me", alice).await;
    assert_eq!(
        (me["role"].as_str(), me["issuer"].as_str()),
        (Some("issuer"), Some("alice"))
    );
    let (_, me) = json(http, "/api/me", admin).await;
    assert_eq!(me["role"], "admin");

    // Workloads: alice's one, none of bob's; the admin sees alice's.
    let (status, mine) = json(http, "/api/workloads", alice).await;
    assert_eq!(status, 200);
    assert_eq!(array_len(&mine), 1, "{mine}");
    assert_eq!(mine[0]["workload_id"], id.as_str());
    assert_eq!(
        (mine[0]["done"].as_u64(), mine[0]["total"].as_u64()),
        (Some(6), Some(6))
    );
    assert!(
        mine[0]["bill"]["paid_micro"]
            .as_i64()
            .is_some_and(|paid| paid > 0),
        "{mine}"
    );
    let (_, theirs) = json(http, "/api/workloads", bob).await;
    assert_eq!(array_len(&theirs), 0, "{theirs}");
    let (_, all) = json(http, "/api/workloads", admin).await;
    assert_eq!(array_len(&all), 1, "{all}");

    // One workload: its end result for alice; bob is refused.
    let (status, detail) = json(http, &format!("/api/workloads/{id}"), alice).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["end_result"]["reduced"], true);
    assert_eq!(detail["end_result"]["text"], PRIMES_BELOW_A_MILLION);
    let (status, refused) = json(http, &format!("/api/workloads/{id}"), bob).await;
    assert_eq!(status, 403, "{refused}");
    let (status, _) = json(http, "/api/workloads/no-such-workload", admin).await;
    assert_eq!(status, 404);

    // Tasks, paged: every one done, run by the agent, paid.
    let (_, page) = json(
        http,
        &format!("/api/workloads/{id}/tasks?from=2&limit=3"),
        alice,
    )
    .await;
    assert_eq!(
        (page["total"].as_u64(), page["from"].as_u64()),
        (Some(6), Some(2))
    );
    let tasks = page["tasks"].as_array().expect("tasks");
    assert_eq!(
        tasks
            .iter()
            .map(|t| t["index"].as_u64())
            .collect::<Vec<_>>(),
        [Some(2), Some(3), Some(4)]
    );
    for task in tasks {
        assert_eq!(task["state"], 3, "done: {task}");
        assert!(
            task["fuel_consumed"].as_u64().is_some_and(|fuel| fuel > 0),
            "{task}"
        );
        assert!(
            task["paid_micro"].as_i64().is_some_and(|paid| paid > 0),
            "{task}"
        );
        assert!(
            task["history"][0]["agent_id"]
                .as_str()
                .is_some_and(|a| !a.is_empty()),
            "{task}"
        );
    }
    let (status, _) = json(http, &format!("/api/workloads/{id}/tasks"), bob).await;
    assert_eq!(status, 403);

    // Agents: alice sees the one that worked for her, without owner and
    // address; bob sees none; the admin sees where it is.
    let (_, agents) = json(http, "/api/agents", alice).await;
    assert_eq!(array_len(&agents), 1, "{agents}");
    assert_eq!(agents[0]["name"], grid.agent_names[0].as_str());
    assert_eq!(agents[0]["tasks_ok"], 6);
    assert_eq!(agents[0]["address"], "");
    let (_, agents) = json(http, "/api/agents", bob).await;
    assert_eq!(array_len(&agents), 0, "{agents}");
    let (_, agents) = json(http, "/api/agents", admin).await;
    assert!(
        agents[0]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1")),
        "{agents}"
    );

    // Ledger: alice's statement; the admin's totals balance.
    let (_, ledger) = json(http, "/api/ledger", alice).await;
    assert_eq!(ledger["view"], "issuer");
    assert_eq!(ledger["balance"]["account"], "issuer:alice");
    let kinds: Vec<&str> = ledger["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|entry| entry["kind"].as_str())
        .collect();
    for kind in ["grant", "escrow", "refund"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let (_, ledger) = json(http, "/api/ledger", admin).await;
    assert_eq!(ledger["view"], "admin");
    assert_eq!(
        ledger["accounts"]["granted_micro"],
        ledger["accounts"]["held_micro"]
    );

    // Throughput: alice's six tasks in the window, none for bob.
    let finished = |value: &Value| -> u64 {
        value["buckets"]
            .as_array()
            .expect("buckets")
            .iter()
            .filter_map(|bucket| bucket[1].as_u64())
            .sum()
    };
    let (_, chart) = json(http, "/api/throughput?minutes=5", alice).await;
    assert_eq!(finished(&chart), 6, "{chart}");
    let (_, chart) = json(http, "/api/throughput", bob).await;
    assert_eq!(finished(&chart), 0, "{chart}");

    // The page itself needs no token (it holds no data); unknown API paths
    // are JSON errors.
    let page: HttpResponse = http::get(http, "/", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(page.text().contains("/app.js"));
    let (status, body) = json(http, "/api/nothing-here", alice).await;
    assert_eq!(status, 404, "{body}");
    drop(grid.broker);
}

/// Chromium and chromedriver, when this machine has them.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let find = |env: &str, names: &[&str]| -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(env) {
            return Some(PathBuf::from(path));
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    };
    let chromium = find("WASMGRID_CHROMIUM", &["chromium", "chromium-browser"])?;
    let driver = find("WASMGRID_CHROMEDRIVER", &["chromedriver"])?;
    Some((chromium, driver))
}

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(path: &Path, log: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        Driver { child, port }
    }

    async fn session(&self, chromium: &Path, profile: &Path) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                // The flags this machine's Chromium needs: no sandbox as
                // root, and no background connections to a closed network.
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1280,1900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{}", self.port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return client,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("no WebDriver session from chromedriver: {error}"),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of the element `css`, once `ready` says it is what we wait for.
async fn text_when(client: &Client, css: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if ready(&text) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never became what was expected; last text: {last:?}");
}

async fn sign_in(client: &Client, token: &str) {
    let field = client
        .wait()
        .for_element(Locator::Css("#token"))
        .await
        .expect("the sign-in form");
    field.send_keys(token).await.expect("type the token");
    client
        .find(Locator::Css("#sign-in-form button[type=submit]"))
        .await
        .expect("the sign-in button")
        .click()
        .await
        .expect("click sign in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sees_the_finished_workload_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser() else {
        assert!(
            std::env::var_os("WASMGRID_REQUIRE_BROWSER").is_none(),
            "WASMGRID_REQUIRE_BROWSER is set but chromium or chromedriver is missing \
             (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no chromium and chromedriver on this machine");
        return;
    };
    let grid = finished_workload(8, 2).await;
    let scratch = tempfile::tempdir().expect("temp dir");
    let driver = Driver::start(&chromedriver, &scratch.path().join("chromedriver.log"));
    let client = driver
        .session(&chromium, &scratch.path().join("profile"))
        .await;
    let page = format!("http://{}/", grid.http);
    client.goto(&page).await.expect("open the dashboard");

    // A wrong token: the page says the broker refused it.
    sign_in(&client, "a-wrong-token").await;
    text_when(&client, "#sign-in-error", |text| text.contains("refused")).await;

    // Alice's token: her finished workload, at 100 %, with its end result.
    sign_in(&client, &grid.alice).await;
    text_when(&client, "#who", |text| text == "issuer alice").await;
    text_when(&client, "#workload-state", |text| text == "done").await;
    let progress = text_when(&client, "#workload-facts .pct", |text| !text.is_empty()).await;
    assert_eq!(progress, "100%");
    let row = text_when(&client, "#workloads tbody tr", |text| text.contains("100%")).await;
    assert!(
        row.contains(&grid.workload_id) && row.contains("8 / 8"),
        "{row}"
    );
    let end = text_when(&client, "#end-result-text", |text| !text.is_empty()).await;
    assert_eq!(end.trim(), PRIMES_BELOW_A_MILLION);

    // Every task done; the agents that ran them, with their work.
    let tasks = client
        .find_all(Locator::Css("#tasks tbody tr"))
        .await
        .expect("task rows");
    assert_eq!(tasks.len(), 8);
    for task in &tasks {
        let text = task.text().await.expect("row text");
        assert!(text.contains("done"), "{text}");
    }
    let agents = text_when(&client, "#agents tbody", |text| {
        grid.agent_names
            .iter()
            .all(|name| text.contains(name.as_str()))
    })
    .await;
    assert!(agents.contains("100.0 %"), "reputation shown: {agents}");
    text_when(&client, "#ledger-summary", |text| {
        text.starts_with("Balance")
    })
    .await;
    let chart = client
        .find_all(Locator::Css("#throughput svg rect"))
        .await
        .expect("chart bars");
    assert!(!chart.is_empty(), "the throughput chart has a bar");
    text_when(&client, "#throughput-caption", |text| {
        text.starts_with("8 tasks finished")
    })
    .await;
    // The task table names the agents that ran each task.
    let first_task = tasks[0].text().await.expect("row text");
    assert!(
        grid.agent_names
            .iter()
            .any(|name| first_task.contains(name.as_str())),
        "{first_task}"
    );

    let png = client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard.png");
    std::fs::write(&docs, &png).expect("save the screenshot under docs/");
    client.close().await.expect("end the session");
    drop(grid.broker);
}
