//! gRPC clients for tests, and a builder for submission streams.

use std::time::{Duration, Instant};

use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use wasmgrid_proto::MAX_MESSAGE_BYTES;
use wasmgrid_proto::submission::Workload;
use wasmgrid_proto::v1::admin_service_client::AdminServiceClient;
use wasmgrid_proto::v1::agent_service_client::AgentServiceClient;
use wasmgrid_proto::v1::issuer_service_client::IssuerServiceClient;
use wasmgrid_proto::v1::{self, SubmitWorkloadRequest};
use wasmgrid_runtime::Limits;

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_owned())
        .expect("url")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

/// The admin token every test broker accepts (`BrokerProcess` passes it
/// as `--admin-token`): tests act as the admin unless they test access.
pub const TEST_ADMIN_TOKEN: &str = "wasmgrid-test-admin-token";

/// The issuer service with a token on every call.
pub type IssuerClient = IssuerServiceClient<InterceptedService<Channel, wasmgrid_proto::Bearer>>;
/// The admin service with a token on every call.
pub type AdminClient = AdminServiceClient<InterceptedService<Channel, wasmgrid_proto::Bearer>>;

fn bearer(token: &str) -> wasmgrid_proto::Bearer {
    wasmgrid_proto::Bearer::new(token).expect("a token is a header value")
}

/// An issuer client, as the admin (it acts for the issuer a request names).
pub async fn issuer(url: &str) -> IssuerClient {
    issuer_with_token(url, TEST_ADMIN_TOKEN).await
}

/// An issuer client speaking with `token`.
pub async fn issuer_with_token(url: &str, token: &str) -> IssuerClient {
    issuer_on(channel(url).await, token)
}

/// An issuer client on an open channel, speaking with `token`.
pub fn issuer_on(channel: Channel, token: &str) -> IssuerClient {
    IssuerServiceClient::with_interceptor(channel, bearer(token))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// An admin client.
pub async fn admin(url: &str) -> AdminClient {
    admin_with_token(url, TEST_ADMIN_TOKEN).await
}

/// An admin client speaking with `token`.
pub async fn admin_with_token(url: &str, token: &str) -> AdminClient {
    AdminServiceClient::with_interceptor(channel(url).await, bearer(token))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
}

/// The agent service with a token on every call.
pub type AgentClient = AgentServiceClient<InterceptedService<Channel, wasmgrid_proto::Bearer>>;

/// What a one-slot test machine called `name` announces when it registers
/// (1 GiB, this host's OS and architecture, no owner, no enrolment secret).
pub fn register_request(name: &str) -> v1::RegisterRequest {
    v1::RegisterRequest {
        name: name.to_owned(),
        os: std::env::consts::OS.to_owned(),
        arch: std::env::consts::ARCH.to_owned(),
        cores: 1,
        memory_bytes: 1 << 30,
        slots: 1,
        version: "test".to_owned(),
        owner: String::new(),
        enrolment_secret: String::new(),
    }
}

/// An agent client speaking with `token` (any string, for refusal tests).
pub async fn agent_client(url: &str, token: &str) -> AgentClient {
    AgentServiceClient::with_interceptor(channel(url).await, bearer(token))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// A workload to submit, as a test describes it.
#[derive(Clone, Debug)]
pub struct Submission {
    pub issuer: String,
    pub module: Vec<u8>,
    pub reducer: Option<Vec<u8>>,
    pub inputs: Vec<Vec<u8>>,
    pub limits: Limits,
    pub replicas: u32,
    /// Agreeing results needed; 0 means all replicas.
    pub quorum: u32,
    pub adaptive_replication: bool,
    pub max_attempts: u32,
    /// 0 by default: a free workload needs no credits. Tests of the ledger
    /// set a rate and grant their issuer credits first.
    pub credits_per_fuel: f64,
}

impl Submission {
    /// A workload of `module` over `inputs` with default settings.
    pub fn new(module: Vec<u8>, inputs: Vec<Vec<u8>>) -> Self {
        Submission {
            issuer: "tester".into(),
            module,
            reducer: None,
            inputs,
            limits: Limits::default(),
            replicas: 1,
            quorum: 0,
            adaptive_replication: false,
            max_attempts: 3,
            credits_per_fuel: 0.0,
        }
    }

    /// π(`limit`) as `tasks` `primes` ranges, reduced by `sum-u64`.
    pub fn primes(limit: u64, tasks: u64) -> Self {
        let inputs = (0..tasks)
            .map(|i| {
                let (start, end) = (limit * i / tasks, limit * (i + 1) / tasks);
                format!(r#"{{"start":{start},"end":{end}}}"#).into_bytes()
            })
            .collect();
        let mut submission = Submission::new(wasmgrid_sample_tasks::read_wasm("primes"), inputs);
        submission.reducer = Some(wasmgrid_sample_tasks::read_wasm("sum-u64"));
        submission
    }

    /// The stream of messages, complete with its end marker, as every
    /// client builds it (`wasmgrid_proto::submission`).
    pub fn messages(&self) -> Vec<SubmitWorkloadRequest> {
        Workload {
            name: "test".into(),
            issuer: self.issuer.clone(),
            module: self.module.clone(),
            reducer: self.reducer.clone(),
            inputs: self.inputs.clone(),
            limits: self.limits.clone(),
            replicas: self.replicas,
            quorum: self.quorum,
            adaptive_replication: self.adaptive_replication,
            max_attempts: self.max_attempts,
            credits_per_fuel: self.credits_per_fuel,
            credits_per_mib_second: 0.0,
        }
        .into_requests()
        .expect("a test workload fits in messages")
    }

    /// Submits; returns the workload id.
    pub async fn submit(&self, client: &mut IssuerClient) -> Result<String, Status> {
        let response = client
            .submit_workload(tokio_stream::iter(self.messages()))
            .await?;
        Ok(response.into_inner().workload_id)
    }
}

/// Polls the status until the workload is no longer running.
pub async fn wait_until_final(
    client: &mut IssuerClient,
    workload_id: &str,
    timeout: Duration,
) -> v1::WorkloadStatus {
    let started = Instant::now();
    loop {
        let status = client
            .get_status(v1::WorkloadRequest {
                workload_id: workload_id.to_owned(),
            })
            .await
            .expect("status")
            .into_inner();
        if status.state != v1::WorkloadState::Running as i32 {
            return status;
        }
        assert!(
            started.elapsed() < timeout,
            "workload {workload_id} still running after {timeout:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every task result and the end result of a finished workload.
pub async fn results(
    client: &mut IssuerClient,
    workload_id: &str,
) -> Result<(Vec<v1::TaskResult>, v1::EndResult), Status> {
    let mut stream = client
        .fetch_results(v1::WorkloadRequest {
            workload_id: workload_id.to_owned(),
        })
        .await?
        .into_inner();
    let mut tasks = Vec::new();
    let mut end = None;
    while let Some(item) = stream.message().await? {
        match item.item {
            Some(v1::result_item::Item::Task(task)) => tasks.push(task),
            Some(v1::result_item::Item::End(result)) => end = Some(result),
            None => {}
        }
    }
    Ok((tasks, end.ok_or_else(|| Status::internal("no end result"))?))
}
