//! What an operator sees: `/metrics` on the broker's HTTP port, scraped as
//! Prometheus would while a real workload runs (the figures start at zero
//! and move with the work), and JSON logs with the task's ids, the
//! broker's inside spans named after the gRPC call with its ids.

use std::collections::HashMap;
use std::time::Duration;

use wasmgrid_proto::v1;
use wasmgrid_tests::http;
use wasmgrid_tests::ledger_check::fund;
use wasmgrid_tests::{AgentProcess, BrokerProcess, Submission, issuer, wait_until_final};

/// `GET /metrics`: the status code and the samples, `name{labels}` → value.
async fn scrape(addr: &str) -> (u16, HashMap<String, f64>) {
    let response = http::get(addr, "/metrics", None).await;
    assert!(
        response
            .header("content-type")
            .is_some_and(|value| value.starts_with("application/openmetrics-text")),
        "{:?}",
        response.headers
    );
    let samples = response
        .text()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect();
    (response.status, samples)
}

fn value(samples: &HashMap<String, f64>, name: &str) -> f64 {
    samples.get(name).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_the_work_and_logs_carry_the_task_ids() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("broker");
    let broker = BrokerProcess::start(
        &data_dir,
        &["--http", "127.0.0.1:0", "--log-format", "json"],
    );
    let http = std::fs::read_to_string(data_dir.join("broker.http.addr")).expect("HTTP address");
    let url = broker.url();

    let (status, before) = scrape(&http).await;
    assert_eq!(status, 200);
    assert_eq!(value(&before, "wasmgrid_agents_registered"), 0.0);
    assert_eq!(value(&before, "wasmgrid_leases_active"), 0.0);
    assert_eq!(
        value(&before, r#"wasmgrid_task_events_total{event="leased"}"#),
        0.0
    );

    let mut submission = Submission::primes(1_000_000, 4);
    let granted = fund(&url, &mut submission).await;
    let workload_id = submission
        .submit(&mut issuer(&url).await)
        .await
        .expect("submit");
    let agent = AgentProcess::start(
        &url,
        &dir.path().join("agent"),
        "agent",
        2,
        &["--log-format", "json"],
    );
    let status = wait_until_final(
        &mut issuer(&url).await,
        &workload_id,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(status.state, v1::WorkloadState::Done as i32, "{status:?}");

    let (_, after) = scrape(&http).await;
    assert_eq!(value(&after, r#"wasmgrid_tasks{state="done"}"#), 4.0);
    assert_eq!(value(&after, r#"wasmgrid_workloads{state="done"}"#), 1.0);
    assert_eq!(
        value(&after, r#"wasmgrid_task_events_total{event="leased"}"#),
        4.0
    );
    assert_eq!(
        value(&after, r#"wasmgrid_task_events_total{event="reported"}"#),
        4.0
    );
    assert_eq!(
        value(&after, r#"wasmgrid_task_events_total{event="done"}"#),
        4.0
    );
    assert_eq!(value(&after, "wasmgrid_leases_active"), 0.0);
    assert_eq!(value(&after, "wasmgrid_agents_registered"), 1.0);
    assert_eq!(value(&after, "wasmgrid_agents_connected"), 1.0);
    assert_eq!(
        value(&after, "wasmgrid_credits_granted_micro"),
        granted as f64
    );
    let held: f64 = ["issuer", "agent", "broker", "escrow"]
        .iter()
        .map(|kind| {
            value(
                &after,
                &format!(r#"wasmgrid_credits_held_micro{{kind="{kind}"}}"#),
            )
        })
        .sum();
    assert_eq!(held, granted as f64, "held credits sum to what was granted");
    assert!(value(&after, r#"wasmgrid_credits_held_micro{kind="agent"}"#) > 0.0);
    assert!(
        value(&after, "wasmgrid_store_write_wait_seconds_count") > 0.0,
        "writers were timed"
    );
    // Every report (and every accept) is a call of the group commit.
    assert!(
        value(&after, "wasmgrid_store_group_commit_calls_sum")
            >= value(&after, r#"wasmgrid_task_events_total{event="reported"}"#),
        "every report went through the group commit"
    );
    assert!(value(&after, "wasmgrid_store_group_commit_seconds_count") > 0.0);
    // Reports must be durable: their batches synced the WAL.
    assert!(value(&after, "wasmgrid_store_group_commit_syncs_total") >= 1.0);
    // The agent's first request for work came alone; a report that gave a
    // lease's capacity back while the agent waited for it asked for the
    // next work in the same call.
    assert!(value(&after, r#"wasmgrid_work_requests_total{asked="alone"}"#) >= 1.0);
    assert!(
        value(
            &after,
            r#"wasmgrid_work_requests_total{asked="with_reports"}"#
        ) >= 1.0,
        "the agent asks for work with its reports"
    );

    // The agent logged one JSON object per line, each finished task with
    // its workload, index and lease.
    let log = std::fs::read_to_string(&agent.log).expect("agent log");
    assert!(
        log.lines()
            .all(|line| line.starts_with('{') && line.ends_with('}')),
        "{log}"
    );
    let finished: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("task finished"))
        .collect();
    assert_eq!(finished.len(), 4, "{log}");
    for line in finished {
        assert!(
            line.contains(&format!("\"workload\":\"{workload_id}\""))
                && line.contains("\"lease\":\"l-")
                && line.contains("\"task\":"),
            "{line}"
        );
    }

    // The broker's lines carry the spans of the gRPC call they happened in:
    // the workload ended in an Aggregate span under the call of the last
    // report, named with the agent and the lease (`ReportResult`) or the
    // number of reports (`ReportResults`, when slots finished together).
    let log = std::fs::read_to_string(&broker.log).expect("broker log");
    let finished = log
        .lines()
        .find(|line| line.contains("workload finished"))
        .unwrap_or_else(|| panic!("no 'workload finished' line:\n{log}"));
    let under_a_report = (finished.contains(r#""name":"ReportResult""#)
        && finished.contains(r#""lease":"l-"#))
        || (finished.contains(r#""name":"ReportResults""#) && finished.contains(r#""reports":"#));
    assert!(
        finished.contains(r#""name":"Aggregate""#)
            && under_a_report
            && finished.contains(r#""agent":"a-"#)
            && finished.contains(&format!(r#""workload":"{workload_id}""#)),
        "{finished}"
    );
    let submitted = log
        .lines()
        .find(|line| line.contains("workload submitted"))
        .unwrap_or_else(|| panic!("no 'workload submitted' line:\n{log}"));
    assert!(
        submitted.contains(r#""name":"SubmitWorkload""#),
        "{submitted}"
    );
}
