//! Who may do what, against a real broker: issuers hold tokens the admin
//! creates with `wasmgrid-broker token create`, see and cancel only their
//! own workloads, spend only their own credits; only an admin grants or
//! lists; no, unknown and revoked tokens are refused; a broker started
//! without an admin token makes one only its owner can read; tokens are
//! stored hashed; agents register only with the enrolment secret when the
//! broker has one. Every refusal leaves everything as it was.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tonic::Code;
use wasmgrid_proto::v1;
use wasmgrid_tests::binaries::binary;
use wasmgrid_tests::client::register_request;
use wasmgrid_tests::ledger_check::{CREDITS_PER_FUEL, escrow_needed};
use wasmgrid_tests::processes::token_command;
use wasmgrid_tests::queries::workload_count;
use wasmgrid_tests::{
    BrokerProcess, IssuerClient, Submission, admin, admin_with_token, agent_client, issuer,
    issuer_with_token,
};

/// `wasmgrid-broker token ARGS --data-dir DIR`, which must succeed; its stdout.
fn echo(issuer: &str) -> Submission {
    let mut submission = Submission::new(
        wasmgrid_sample_tasks::read_wasm("echo"),
        vec![b"a".to_vec(), b"b".to_vec()],
    );
    submission.issuer = issuer.to_owned();
    submission
}

/// Every read or change of `workload_id` by `client`, with the code each
/// answered (the stream calls answer before their first item).
async fn workload_calls(client: &mut IssuerClient, workload_id: &str) -> Vec<(&'static str, Code)> {
    let request = || v1::WorkloadRequest {
        workload_id: workload_id.to_owned(),
    };
    let code = |result: Result<(), tonic::Status>| result.err().map_or(Code::Ok, |s| s.code());
    vec![
        (
            "GetStatus",
            code(client.get_status(request()).await.map(drop)),
        ),
        (
            "WatchProgress",
            code(client.watch_progress(request()).await.map(drop)),
        ),
        (
            "FetchResults",
            code(client.fetch_results(request()).await.map(drop)),
        ),
        (
            "ListTasks",
            code(client.list_tasks(request()).await.map(drop)),
        ),
        ("Cancel", code(client.cancel(request()).await.map(drop))),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuers_see_and_spend_only_their_own() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("broker");
    let broker = BrokerProcess::start(&data_dir, &[]);
    let url = broker.url();
    // Tokens are made while the broker runs, on its data dir.
    let alice_token = token_command(&data_dir, &["create", "--issuer", "alice"]);
    let bob_token = token_command(
        &data_dir,
        &["create", "--issuer", "bob", "--label", "bob's laptop"],
    );
    assert_eq!(alice_token.len(), 64, "{alice_token}");
    let mut alice = issuer_with_token(&url, &alice_token).await;
    let mut bob = issuer_with_token(&url, &bob_token).await;

    // The admin grants alice credits; alice submits without naming herself.
    let mut paid = echo("");
    paid.credits_per_fuel = CREDITS_PER_FUEL;
    paid.limits.fuel = 10_000_000;
    let needed = escrow_needed(&paid);
    admin(&url)
        .await
        .grant_credits(v1::GrantCreditsRequest {
            issuer: "alice".into(),
            amount_micro: needed * 3,
            memo: "test".into(),
        })
        .await
        .expect("admin grants");
    let workload_id = paid.submit(&mut alice).await.expect("alice submits");
    let status = alice
        .get_status(v1::WorkloadRequest {
            workload_id: workload_id.clone(),
        })
        .await
        .expect("her own")
        .into_inner();
    assert_eq!(status.issuer, "alice");
    let balance = alice
        .get_balance(v1::BalanceRequest {
            issuer: String::new(),
        })
        .await
        .expect("her balance")
        .into_inner();
    assert_eq!(balance.account, "issuer:alice");
    assert_eq!(balance.balance_micro, needed * 2);

    // Bob can neither read nor cancel alice's workload.
    for (call, code) in workload_calls(&mut bob, &workload_id).await {
        assert_eq!(code, Code::PermissionDenied, "bob's {call}");
    }
    // Nor submit as alice (refused before the module is read), nor read
    // her balance or statement; his own are his.
    let before = workload_count(&url).await;
    let error = paid_as("alice")
        .submit(&mut bob)
        .await
        .expect_err("not bob's");
    assert_eq!(error.code(), Code::PermissionDenied);
    assert!(
        error.message().contains("cannot act for issuer alice"),
        "{error:?}"
    );
    assert_eq!(workload_count(&url).await, before, "nothing stored");
    let error = bob
        .get_balance(v1::BalanceRequest {
            issuer: "alice".into(),
        })
        .await
        .expect_err("not bob's");
    assert_eq!(error.code(), Code::PermissionDenied);
    let error = bob
        .get_ledger(v1::LedgerRequest {
            issuer: "alice".into(),
            workload_id: String::new(),
            limit: 0,
        })
        .await
        .expect_err("not bob's");
    assert_eq!(error.code(), Code::PermissionDenied);
    let error = bob
        .get_ledger(v1::LedgerRequest {
            issuer: String::new(),
            workload_id: workload_id.clone(),
            limit: 0,
        })
        .await
        .expect_err("not bob's workload");
    assert_eq!(error.code(), Code::NotFound, "{error:?}");
    let own = bob
        .get_balance(v1::BalanceRequest {
            issuer: String::new(),
        })
        .await
        .expect("his own")
        .into_inner();
    assert_eq!((own.account.as_str(), own.balance_micro), ("issuer:bob", 0));

    // An issuer's token is not an admin's.
    let mut alice_as_admin = admin_with_token(&url, &alice_token).await;
    let refusals = [
        alice_as_admin
            .list_agents(v1::ListAgentsRequest {})
            .await
            .map(drop),
        alice_as_admin
            .list_workloads(v1::ListWorkloadsRequest {})
            .await
            .map(drop),
        alice_as_admin
            .list_accounts(v1::ListAccountsRequest {})
            .await
            .map(drop),
        alice_as_admin
            .grant_credits(v1::GrantCreditsRequest {
                issuer: "alice".into(),
                amount_micro: 1_000_000_000,
                memo: "self-service".into(),
            })
            .await
            .map(drop),
    ];
    for refusal in refusals {
        let error = refusal.expect_err("admins only");
        assert_eq!(error.code(), Code::PermissionDenied);
        assert!(error.message().contains("admin token"), "{error:?}");
    }
    let balance = alice
        .get_balance(v1::BalanceRequest {
            issuer: String::new(),
        })
        .await
        .expect("balance")
        .into_inner();
    assert_eq!(balance.balance_micro, needed * 2, "no grant happened");

    // No token, an unknown token, a malformed header: unauthenticated.
    for token in ["", "0123456789abcdef", "not a real token at all"] {
        let mut stranger = if token.is_empty() {
            issuer_without_token(&url).await
        } else {
            issuer_with_token(&url, token).await
        };
        for (call, code) in workload_calls(&mut stranger, &workload_id).await {
            assert_eq!(code, Code::Unauthenticated, "{call} with {token:?}");
        }
        let error = echo("alice").submit(&mut stranger).await.expect_err("who?");
        assert_eq!(error.code(), Code::Unauthenticated);
    }

    // The admin sees every workload, and must name the issuer it acts for.
    let mut admin_issuer = issuer(&url).await;
    admin_issuer
        .get_status(v1::WorkloadRequest {
            workload_id: workload_id.clone(),
        })
        .await
        .expect("the admin reads anyone's");
    let error = admin_issuer
        .get_balance(v1::BalanceRequest {
            issuer: String::new(),
        })
        .await
        .expect_err("whose?");
    assert_eq!(error.code(), Code::InvalidArgument);

    // Alice still owns her workload: she cancels it.
    let cancelled = alice
        .cancel(v1::WorkloadRequest {
            workload_id: workload_id.clone(),
        })
        .await
        .expect("her own")
        .into_inner();
    assert_eq!(cancelled.state, v1::WorkloadState::Cancelled as i32);

    // Revoked: refused from the next call on, everything else unchanged.
    let listing = token_command(&data_dir, &["list"]);
    let bob_line = listing
        .lines()
        .find(|line| line.contains(" bob "))
        .unwrap_or_else(|| panic!("bob's token listed:\n{listing}"));
    assert!(
        bob_line.contains("active") && bob_line.contains("bob's laptop"),
        "{bob_line}"
    );
    assert!(
        !listing.contains(&bob_token),
        "token list shows ids, never tokens"
    );
    let id = bob_line.split_whitespace().next().expect("an id");
    assert_eq!(
        token_command(&data_dir, &["revoke", id]),
        format!("revoked {id}")
    );
    let error = bob
        .get_balance(v1::BalanceRequest {
            issuer: String::new(),
        })
        .await
        .expect_err("revoked");
    assert_eq!(error.code(), Code::Unauthenticated);
    assert!(token_command(&data_dir, &["list"]).contains("revoked"));
    alice
        .get_balance(v1::BalanceRequest {
            issuer: String::new(),
        })
        .await
        .expect("alice's token still works");

    // The store keeps digests only: neither token is anywhere in its files.
    for entry in std::fs::read_dir(&data_dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("broker.sqlite"))
        {
            let bytes = std::fs::read(&path).expect("read");
            for token in [&alice_token, &bob_token] {
                assert!(
                    !bytes
                        .windows(token.len())
                        .any(|window| window == token.as_bytes()),
                    "{} holds a token in clear",
                    path.display()
                );
            }
        }
    }
}

fn paid_as(issuer: &str) -> Submission {
    let mut submission = echo(issuer);
    submission.credits_per_fuel = CREDITS_PER_FUEL;
    submission
}

async fn issuer_without_token(url: &str) -> IssuerClient {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    wasmgrid_proto::v1::issuer_service_client::IssuerServiceClient::with_interceptor(
        channel,
        wasmgrid_proto::Bearer::none(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_acts_as_the_issuer_its_token_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("broker");
    let broker = BrokerProcess::start(&data_dir, &[]);
    let url = broker.url();
    let carol = token_command(&data_dir, &["create", "--issuer", "carol"]);
    let module = dir.path().join("echo.wasm");
    std::fs::write(&module, wasmgrid_sample_tasks::read_wasm("echo")).expect("write");
    let inputs = dir.path().join("inputs.jsonl");
    std::fs::write(&inputs, "{\"x\":1}\n{\"y\":2}\n").expect("write");
    let wasmgrid = |args: &[&str], token: &str| {
        Command::new(binary("wasmgrid"))
            .args(args)
            .args(["--broker", &url])
            .env("WASMGRID_TOKEN", token)
            .env_remove("WASMGRID_ISSUER")
            .stdin(Stdio::null())
            .output()
            .expect("wasmgrid runs")
    };
    let submit = [
        "submit",
        &module.display().to_string(),
        "--inputs",
        &inputs.display().to_string(),
    ];
    // Carol pays for her own: with no credits she is told how to get some.
    let refused = wasmgrid(&submit, &carol);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("issuer carol holds") && stderr.contains("`wasmgrid balance`"),
        "{stderr}"
    );
    let granted = wasmgrid(
        &["grant", "--issuer", "carol", "1000"],
        wasmgrid_tests::TEST_ADMIN_TOKEN,
    );
    assert!(
        granted.status.success(),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    let submitted = wasmgrid(&submit, &carol);
    assert!(
        submitted.status.success(),
        "{}",
        String::from_utf8_lossy(&submitted.stderr)
    );
    let id = String::from_utf8_lossy(&submitted.stdout).trim().to_owned();
    let balance = wasmgrid(&["balance"], &carol);
    assert!(
        String::from_utf8_lossy(&balance.stdout).contains("issuer    carol"),
        "{}",
        String::from_utf8_lossy(&balance.stdout)
    );
    // Another issuer's CLI is told plainly.
    let dave = token_command(&data_dir, &["create", "--issuer", "dave"]);
    let refused = wasmgrid(&["status", &id], &dave);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("workload {id} is not issuer dave's")),
        "{stderr}"
    );
    // Without a token the CLI says what to do.
    let refused = wasmgrid(&["balance"], "");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("Bearer"), "{stderr}");
    let refused = wasmgrid(&["grant", "--issuer", "carol", "5"], &carol);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs an admin token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_broker_makes_an_admin_token_only_its_owner_can_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("broker");
    let mut child = Command::new(binary("wasmgrid-broker"))
        .args(["--insecure", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("broker starts");
    let started = Instant::now();
    let addr = loop {
        if let Ok(text) = std::fs::read_to_string(data_dir.join("broker.addr"))
            && !text.trim().is_empty()
        {
            break text.trim().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "broker did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let token_file = data_dir.join("admin.token");
    let token = std::fs::read_to_string(&token_file).expect("admin.token written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "admin.token is the owner's only");
    }
    let url = format!("http://{addr}");
    admin_with_token(&url, token.trim())
        .await
        .list_agents(v1::ListAgentsRequest {})
        .await
        .expect("the generated token is an admin's");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_register_only_with_the_enrolment_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(
        &dir.path().join("broker"),
        &["--enrolment-secret", "open sesame"],
    );
    let url = broker.url();
    let register = |secret: &str| v1::RegisterRequest {
        enrolment_secret: secret.into(),
        ..register_request("machine")
    };
    let mut client = agent_client(&url, "").await;
    for (secret, says) in [
        ("", "--enrolment-secret"),
        ("open sesam", "wrong enrolment secret"),
    ] {
        let error = client
            .register(register(secret))
            .await
            .expect_err("refused");
        assert_eq!(error.code(), Code::Unauthenticated);
        assert!(error.message().contains(says), "{error:?}");
    }
    let agents = admin(&url)
        .await
        .list_agents(v1::ListAgentsRequest {})
        .await
        .expect("list")
        .into_inner()
        .agents;
    assert!(agents.is_empty(), "no agent was stored");
    client
        .register(register("open sesame"))
        .await
        .expect("the right secret");

    // The real agent says why it cannot join, and stops.
    let output = Command::new(binary("wasmgrid-agent"))
        .args(["--broker", &url, "--state-dir"])
        .arg(dir.path().join("agent"))
        .args(["--enrolment-secret", "guess"])
        .stdin(Stdio::null())
        .output()
        .expect("agent runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wrong enrolment secret"), "{stderr}");
}
