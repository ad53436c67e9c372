//! TLS on every connection: a `--dev-tls` broker serves real agents and
//! issuers over rustls; clients refuse a broker whose certificate they cannot
//! verify (unknown CA, wrong name) with a clear reason; and a broker will not
//! start without a choice of transport.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::Channel;
use wasmgrid_proto::v1;
use wasmgrid_tests::binaries::binary;
use wasmgrid_tests::prime_counts::PI_OF_1E6;
use wasmgrid_tests::{
    AgentProcess, BrokerProcess, Submission, TEST_ADMIN_TOKEN, issuer_on, results, wait_until_final,
};

async fn connect(url: &str, ca: Option<&Path>) -> Result<Channel, String> {
    let endpoint = wasmgrid_proto::endpoint(url, ca).map_err(|error| error.to_string())?;
    endpoint.connect().await.map_err(|error| {
        std::iter::successors(
            Some(&error as &(dyn std::error::Error + 'static)),
            |error| error.source(),
        )
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_tls_broker_serves_agents_and_issuers_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &["--dev-tls"]);
    let url = broker.url();
    assert!(url.starts_with("https://"), "{url}");
    let ca = broker.dev_ca();
    let ca_arg = ca.display().to_string();
    let _agent = AgentProcess::start(
        &url,
        &dir.path().join("agent"),
        "agent",
        2,
        &["--ca-cert", &ca_arg],
    );
    let channel = connect(&url, Some(&ca)).await.expect("TLS with the dev CA");
    let mut client = issuer_on(channel, TEST_ADMIN_TOKEN);
    let workload_id = Submission::primes(1_000_000, 4)
        .submit(&mut client)
        .await
        .expect("submit over TLS");
    let status = wait_until_final(&mut client, &workload_id, Duration::from_secs(60)).await;
    assert_eq!(status.state, v1::WorkloadState::Done as i32, "{status:?}");
    let (_, end) = results(&mut client, &workload_id).await.expect("results");
    assert_eq!(String::from_utf8_lossy(&end.output), PI_OF_1E6.to_string());

    // The CLI too, and plain text is not spoken on a TLS port.
    let output = Command::new(binary("wasmgrid"))
        .args([
            "status",
            &workload_id,
            "--broker",
            &url,
            "--ca-cert",
            &ca_arg,
            "--token",
            TEST_ADMIN_TOKEN,
        ])
        .output()
        .expect("wasmgrid runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plain = url.replacen("https://", "http://", 1);
    let output = Command::new(binary("wasmgrid"))
        .args(["workloads", "--broker", &plain, "--token", TEST_ADMIN_TOKEN])
        .output()
        .expect("wasmgrid runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("use an https:// URL"), "{stderr}");
    let mut plain_client = issuer_on(connect(&plain, None).await.expect("tcp"), TEST_ADMIN_TOKEN);
    assert!(
        plain_client
            .get_status(v1::WorkloadRequest { workload_id })
            .await
            .is_err(),
        "a TLS broker answered plain text"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_refuse_a_broker_they_cannot_verify() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &["--dev-tls"]);
    let url = broker.url();

    // No CA: the development CA is not a public root.
    let error = connect(&url, None).await.expect_err("unverifiable");
    assert!(error.contains("UnknownIssuer"), "{error}");

    // Another broker's CA.
    let other = BrokerProcess::start(&dir.path().join("other"), &["--dev-tls"]);
    let error = connect(&url, Some(&other.dev_ca()))
        .await
        .expect_err("wrong CA");
    assert!(error.contains("UnknownIssuer"), "{error}");

    // The right CA but a certificate for another name (--tls-cert/--tls-key).
    let named = dir.path().join("named");
    std::fs::create_dir_all(&named).expect("dir");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["broker.test".to_owned()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("cert");
    let (ca_path, cert_path, key_path) = (
        named.join("ca.pem"),
        named.join("cert.pem"),
        named.join("key.pem"),
    );
    std::fs::write(&ca_path, ca.pem()).expect("write");
    std::fs::write(&cert_path, cert.pem()).expect("write");
    std::fs::write(&key_path, key.serialize_pem()).expect("write");
    let cert_arg = cert_path.display().to_string();
    let key_arg = key_path.display().to_string();
    let for_other_name = BrokerProcess::start(
        &dir.path().join("named-broker"),
        &["--tls-cert", &cert_arg, "--tls-key", &key_arg],
    );
    let error = connect(&for_other_name.url(), Some(&ca_path))
        .await
        .expect_err("wrong name");
    assert!(error.contains("not valid for name"), "{error}");

    // The CLI says why.
    let output = Command::new(binary("wasmgrid"))
        .args(["workloads", "--broker", &url])
        .output()
        .expect("wasmgrid runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach the broker")
            && stderr.contains("UnknownIssuer")
            && stderr.contains("--ca-cert DATA_DIR/tls/ca.pem"),
        "{stderr}"
    );
}

#[test]
fn a_broker_will_not_start_without_a_choice_of_transport() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(binary("wasmgrid-broker"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("broker runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--tls-cert")
            && stderr.contains("--dev-tls")
            && stderr.contains("--insecure"),
        "{stderr}"
    );
}
