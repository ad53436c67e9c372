//! The service targets: decoded requests handled by the real gRPC services
//! (`AgentApi`, `IssuerApi`, `AdminApi`) of the fixture broker, exactly as
//! tonic hands them over after decoding.

use bytes::Bytes;
use http_body_util::Full;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio_stream::{Stream, StreamExt};
use tonic::codec::Streaming;
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstDecoder;
use wasmgrid_proto::MAX_MESSAGE_BYTES;
use wasmgrid_proto::v1::admin_service_server::AdminService;
use wasmgrid_proto::v1::agent_service_server::AgentService;
use wasmgrid_proto::v1::issuer_service_server::IssuerService;
use wasmgrid_proto::v1::{self, submit_workload_request::Part};

use crate::decoding::{check_report, check_sha256, check_submit_part, decode};
use crate::findings;
use crate::fixture::{Auth, CallerAuth, Fixture, block_on, fixture};

/// Most items read from a response stream.
const MAX_STREAM_ITEMS: usize = 100_000;

/// `AgentService`. The selector byte's low three bits pick the RPC
/// (Register, RequestWork, AcceptOffers, FetchModule, ExtendLease,
/// ReportResult, ReleaseLease, GetEarnings), the next two how it
/// authenticates (the fixture agent's token unless they say otherwise); the
/// rest of the bytes is the request message.
pub fn agent_service(data: &[u8]) {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let fx = fixture();
    let auth = Auth::from_bits(selector >> 3);
    block_on(agent_rpc(fx, selector & 7, auth, message));
    findings::check();
}

async fn agent_rpc(fx: &Fixture, rpc: u8, auth: Auth, message: &[u8]) {
    let api = &fx.agent_api;
    match rpc {
        0 => {
            let Some(request) = decode::<v1::RegisterRequest>(message) else {
                return;
            };
            answer("Register", api.register(Request::new(request)).await);
        }
        1 => {
            let Some(request) = decode::<v1::RequestWorkRequest>(message) else {
                return;
            };
            answer(
                "RequestWork",
                api.request_work(fx.request(request, auth)).await,
            );
        }
        2 => {
            let Some(mut request) = decode::<v1::AcceptOffersRequest>(message) else {
                return;
            };
            for task in &mut request.tasks {
                fx.fill_workload(&mut task.workload_id);
            }
            answer(
                "AcceptOffers",
                api.accept_offers(fx.request(request, auth)).await,
            );
        }
        3 => {
            let Some(mut request) = decode::<v1::FetchModuleRequest>(message) else {
                return;
            };
            check_sha256(&request.sha256);
            fx.fill_module(&mut request.sha256);
            let response = api.fetch_module(fx.request(request, auth)).await;
            if let Some(stream) = answer("FetchModule", response) {
                drain("FetchModule", stream, MAX_STREAM_ITEMS).await;
            }
        }
        4 => {
            let Some(mut request) = decode::<v1::ExtendLeaseRequest>(message) else {
                return;
            };
            let lease = fx.fill_lease(&mut request.lease_id).await;
            answer(
                "ExtendLease",
                api.extend_lease(fx.request(request, auth)).await,
            );
            fx.give_back(lease).await;
        }
        5 => {
            let Some(mut request) = decode::<v1::ReportResultRequest>(message) else {
                return;
            };
            check_report(&request);
            let lease = fx.fill_lease(&mut request.lease_id).await;
            answer(
                "ReportResult",
                api.report_result(fx.request(request, auth)).await,
            );
            fx.give_back(lease).await;
        }
        6 => {
            let Some(mut request) = decode::<v1::ReleaseLeaseRequest>(message) else {
                return;
            };
            let lease = fx.fill_lease(&mut request.lease_id).await;
            answer(
                "ReleaseLease",
                api.release_lease(fx.request(request, auth)).await,
            );
            fx.give_back(lease).await;
        }
        _ => {
            let Some(request) = decode::<v1::EarningsRequest>(message) else {
                return;
            };
            answer(
                "GetEarnings",
                api.get_earnings(fx.request(request, auth)).await,
            );
        }
    }
}

/// `IssuerService`. The selector byte's low three bits pick the RPC
/// (GetStatus, WatchProgress, FetchResults, Cancel, ListTasks, GetBalance,
/// GetLedger, SubmitWorkload), the next two the caller (`CallerAuth`:
/// admin, the fixture issuer, no token, an unknown token); the rest of the
/// bytes is the request message, or for SubmitWorkload the input of
/// [`submit_workload`] (always as the admin).
pub fn issuer_service(data: &[u8]) {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let fx = fixture();
    let auth = CallerAuth::from_bits(selector >> 3);
    block_on(issuer_rpc(fx, selector & 7, auth, message));
    findings::check();
}

async fn issuer_rpc(fx: &Fixture, rpc: u8, auth: CallerAuth, message: &[u8]) {
    let api = &fx.issuer_api;
    match rpc {
        0..=4 => {
            let Some(mut request) = decode::<v1::WorkloadRequest>(message) else {
                return;
            };
            fx.fill_workload(&mut request.workload_id);
            let request = fx.caller_request(request, auth);
            match rpc {
                0 => {
                    answer("GetStatus", api.get_status(request).await);
                }
                // The first status only: the stream goes on while the
                // workload runs.
                1 => {
                    if let Some(stream) = answer("WatchProgress", api.watch_progress(request).await)
                    {
                        drain("WatchProgress", stream, 1).await;
                    }
                }
                2 => {
                    if let Some(stream) = answer("FetchResults", api.fetch_results(request).await) {
                        drain("FetchResults", stream, MAX_STREAM_ITEMS).await;
                    }
                }
                3 => {
                    answer("Cancel", api.cancel(request).await);
                }
                _ => {
                    answer("ListTasks", api.list_tasks(request).await);
                }
            }
        }
        5 => {
            let Some(request) = decode::<v1::BalanceRequest>(message) else {
                return;
            };
            answer(
                "GetBalance",
                api.get_balance(fx.caller_request(request, auth)).await,
            );
        }
        6 => {
            let Some(mut request) = decode::<v1::LedgerRequest>(message) else {
                return;
            };
            fx.fill_workload(&mut request.workload_id);
            answer(
                "GetLedger",
                api.get_ledger(fx.caller_request(request, auth)).await,
            );
        }
        _ => submit(fx, message).await,
    }
}

/// `AdminService`. The selector byte's low two bits pick the RPC
/// (ListAgents, ListWorkloads, GrantCredits, ListAccounts), the next two the
/// caller (`CallerAuth`); the rest of the bytes is the request message.
pub fn admin_service(data: &[u8]) {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let fx = fixture();
    let auth = CallerAuth::from_bits(selector >> 2);
    block_on(admin_rpc(fx, selector & 3, auth, message));
    findings::check();
}

async fn admin_rpc(fx: &Fixture, rpc: u8, auth: CallerAuth, message: &[u8]) {
    let api = &fx.admin_api;
    match rpc {
        0 => {
            let Some(request) = decode::<v1::ListAgentsRequest>(message) else {
                return;
            };
            answer(
                "ListAgents",
                api.list_agents(fx.caller_request(request, auth)).await,
            );
        }
        1 => {
            let Some(request) = decode::<v1::ListWorkloadsRequest>(message) else {
                return;
            };
            answer(
                "ListWorkloads",
                api.list_workloads(fx.caller_request(request, auth)).await,
            );
        }
        2 => {
            let Some(request) = decode::<v1::GrantCreditsRequest>(message) else {
                return;
            };
            answer(
                "GrantCredits",
                api.grant_credits(fx.caller_request(request, auth)).await,
            );
        }
        _ => {
            let Some(request) = decode::<v1::ListAccountsRequest>(message) else {
                return;
            };
            answer(
                "ListAccounts",
                api.list_accounts(fx.caller_request(request, auth)).await,
            );
        }
    }
}

/// `IssuerService.SubmitWorkload`, the client stream. The first byte picks
/// the form of the rest:
///
/// - even: the request body verbatim, as gRPC frames (a flag byte, a
///   big-endian `u32` length, the message), so the broker decodes it as it
///   decodes a real stream (truncated frames, compression flags, …);
/// - odd: parts of 2-byte little-endian length and `SubmitWorkloadRequest`
///   bytes (`encode_parts`). Each part that decodes is sent, with the
///   header's sizes and sha256s and the end marker's task count made to
///   match what is sent, so the submission gets past the stream's integrity
///   checks to validation, module compilation and the store.
pub fn submit_workload(data: &[u8]) {
    let fx = fixture();
    block_on(submit(fx, data));
    findings::check();
}

async fn submit(fx: &Fixture, data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let body = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        fixed_up_body(rest)
    };
    let stream = Streaming::new_request(
        ProstDecoder::<v1::SubmitWorkloadRequest>::default(),
        Full::new(Bytes::from(body)),
        None,
        Some(MAX_MESSAGE_BYTES),
    );
    answer(
        "SubmitWorkload",
        fx.issuer_api
            .submit_workload(fx.caller_request(stream, CallerAuth::Admin))
            .await,
    );
}

/// Splits `data` into parts of a 2-byte little-endian length and as many
/// bytes (the last one possibly short).
pub(crate) fn split_parts(mut data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    while let [low, high, rest @ ..] = data {
        let len = usize::from(u16::from_le_bytes([*low, *high])).min(rest.len());
        let (part, tail) = rest.split_at(len);
        parts.push(part);
        data = tail;
    }
    parts
}

/// Messages as parts for [`split_parts`] (each at most 64 KiB encoded).
pub(crate) fn encode_parts(messages: &[v1::SubmitWorkloadRequest]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        let encoded = message.encode_to_vec();
        let len = u16::try_from(encoded.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&encoded[..usize::from(len)]);
    }
    out
}

/// Messages as a gRPC request body: uncompressed frames.
pub(crate) fn grpc_body(messages: &[v1::SubmitWorkloadRequest]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        let len = u32::try_from(message.encoded_len()).unwrap_or(u32::MAX);
        out.push(0);
        out.extend_from_slice(&len.to_be_bytes());
        message
            .encode(&mut out)
            .unwrap_or_else(|error| panic!("encoding into a Vec cannot run out of room: {error}"));
    }
    out
}

/// The odd form of [`submit_workload`]'s input as the body to send.
fn fixed_up_body(data: &[u8]) -> Vec<u8> {
    let mut messages: Vec<v1::SubmitWorkloadRequest> =
        split_parts(data).into_iter().filter_map(decode).collect();
    let mut module = Vec::new();
    let mut reducer = Vec::new();
    for message in &messages {
        check_submit_part(message);
        match &message.part {
            Some(Part::ModuleChunk(chunk)) => module.extend_from_slice(chunk),
            Some(Part::ReducerChunk(chunk)) => reducer.extend_from_slice(chunk),
            _ => {}
        }
    }
    let mut inputs: u32 = 0;
    for message in &mut messages {
        match &mut message.part {
            Some(Part::Header(header)) => {
                header.module_size = module.len() as u64;
                header.module_sha256 = hex::encode(Sha256::digest(&module));
                if reducer.is_empty() {
                    header.reducer_size = 0;
                    header.reducer_sha256.clear();
                } else {
                    header.reducer_size = reducer.len() as u64;
                    header.reducer_sha256 = hex::encode(Sha256::digest(&reducer));
                }
            }
            Some(Part::Inputs(batch)) => {
                inputs = inputs.saturating_add(u32::try_from(batch.inputs.len()).unwrap_or(0));
            }
            Some(Part::End(end)) => end.task_count = inputs,
            _ => {}
        }
    }
    grpc_body(&messages)
}

/// The response, or `None`; an `INTERNAL` status is recorded.
fn answer<T>(rpc: &str, result: Result<Response<T>, Status>) -> Option<T> {
    match result {
        Ok(response) => {
            findings::tally(format!("{rpc} Ok"));
            Some(response.into_inner())
        }
        Err(status) => {
            findings::tally(format!("{rpc} {:?}", status.code()));
            note(rpc, &status);
            None
        }
    }
}

fn note(rpc: &str, status: &Status) {
    if status.code() == Code::Internal {
        findings::internal(rpc, status.message());
    }
}

/// Reads up to `max` items of a response stream, to its first error.
async fn drain<T, S>(rpc: &str, mut stream: S, max: usize)
where
    S: Stream<Item = Result<T, Status>> + Unpin,
{
    for _ in 0..max {
        match stream.next().await {
            None => return,
            Some(Ok(_)) => {}
            Some(Err(status)) => {
                note(rpc, &status);
                return;
            }
        }
    }
}
