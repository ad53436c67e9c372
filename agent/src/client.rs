//! The connection to the broker: a lazily connected channel, the interceptor
//! that adds the agent's token and version to every call, and
//! [`BrokerClient::call`], which retries transient failures, registers again
//! when the broker no longer knows the agent, and notes a refusal of the
//! agent's version.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use std::path::Path;
use tokio::time::Instant;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use wasmgrid_proto::v1::agent_service_client::AgentServiceClient;
use wasmgrid_proto::{AGENT_VERSION_HEADER, MAX_MESSAGE_BYTES};

use crate::backoff::{Backoff, BackoffConfig};
use crate::error::AgentError;
use crate::outdated::AGENT_VERSION;
use crate::registration::Session;

/// How long to wait for a TCP connection to the broker. A broker that does
/// not accept within this is treated as away, and retried with backoff.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Cap on one call until its response arrives. Reports carry outputs up to
/// `MAX_OUTPUT_BYTES` (32 MiB), about 30 s on a slow 1 MB/s uplink; a call
/// that takes longer is treated as a failure and retried.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// HTTP/2 ping interval and timeout: a broker that vanished without closing
/// the connection (a crashed machine, a dropped NAT mapping) is noticed in
/// under a minute instead of at the next call's timeout.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The generated client with the token interceptor.
pub(crate) type AgentGrpc = AgentServiceClient<InterceptedService<Channel, BearerToken>>;

/// Adds `authorization: Bearer <token>` (once there is one) and the agent's
/// version to every call. Shared by every clone of the client, so a new
/// registration takes effect everywhere at once.
#[derive(Clone, Default)]
pub(crate) struct BearerToken(Arc<RwLock<Option<MetadataValue<Ascii>>>>);

impl BearerToken {
    /// Uses `token` from now on. Fails if it cannot be a header value.
    pub(crate) fn set(&self, token: &str) -> Result<(), Status> {
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::invalid_argument("the broker's token is not a valid header"))?;
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(value);
        Ok(())
    }
}

impl fmt::Debug for BearerToken {
    /// Leaves the token out, so it never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let value = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(value) = value {
            request.metadata_mut().insert("authorization", value);
        }
        request.metadata_mut().insert(
            AGENT_VERSION_HEADER,
            MetadataValue::from_static(AGENT_VERSION),
        );
        Ok(request)
    }
}

/// What a failed call means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The broker is away, overloaded or the connection broke: try again.
    Transient,
    /// The broker does not know the token (e.g. its data was wiped).
    Unauthenticated,
    /// The broker understood and said no; the same call will never succeed.
    Permanent,
}

/// Sorts a failed call by what to do about it.
pub(crate) fn classify(status: &Status) -> Failure {
    match status.code() {
        Code::Unauthenticated => Failure::Unauthenticated,
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented => Failure::Permanent,
        // Unavailable (connection refused), DeadlineExceeded, Cancelled
        // (tonic's own timeout), Unknown (a broken connection),
        // ResourceExhausted, Aborted, Internal, DataLoss.
        _ => Failure::Transient,
    }
}

/// How long a call keeps retrying transient failures.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Retry {
    /// Not at all (the caller has its own retry loop).
    Once,
    /// Until this instant.
    Until(Instant),
    /// Until the caller drops the call.
    Forever,
}

impl Retry {
    /// Retries for `duration` from now.
    pub(crate) fn for_duration(duration: Duration) -> Self {
        Retry::Until(Instant::now() + duration)
    }

    /// True if a retry after `delay` would fall outside this policy.
    pub(crate) fn gives_up_before(&self, delay: Duration) -> bool {
        match self {
            Retry::Once => true,
            Retry::Until(deadline) => Instant::now()
                .checked_add(delay)
                .is_none_or(|retry_at| retry_at > *deadline),
            Retry::Forever => false,
        }
    }
}

/// The agent's client of the broker. Cheap to clone: all clones share one
/// HTTP/2 connection and one registration.
#[derive(Clone, Debug)]
pub(crate) struct BrokerClient {
    grpc: AgentGrpc,
    pub(crate) session: Arc<Session>,
    pub(crate) backoff: BackoffConfig,
}

/// The broker at `url` (TLS for `https://`, trusting `ca_cert` besides the
/// public roots), with the agent's timeouts and keep-alives.
pub(crate) fn endpoint(url: &str, ca_cert: Option<&Path>) -> Result<Endpoint, AgentError> {
    Ok(wasmgrid_proto::endpoint(url, ca_cert)
        .map_err(|error| AgentError::Config(error.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT))
}

/// The generated client on `channel`, sending `token`, with the protocol's
/// message size limits.
pub(crate) fn grpc_client(channel: Channel, token: BearerToken) -> AgentGrpc {
    AgentServiceClient::with_interceptor(channel, token)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

impl BrokerClient {
    /// A client of the broker at `url` that connects on first use and
    /// reconnects after the broker went away.
    pub(crate) fn new(
        url: &str,
        ca_cert: Option<&Path>,
        session: Session,
        backoff: BackoffConfig,
    ) -> Result<Self, AgentError> {
        let grpc = grpc_client(
            endpoint(url, ca_cert)?.connect_lazy(),
            session.token.clone(),
        );
        Ok(BrokerClient {
            grpc,
            session: Arc::new(session),
            backoff,
        })
    }

    /// The raw client, for calls that must not go through [`Self::call`].
    pub(crate) fn grpc(&self) -> AgentGrpc {
        self.grpc.clone()
    }

    /// Makes one call, named `what` in logs: retries transient failures with
    /// backoff as `retry` allows, and registers again (then retries) when
    /// the broker answers `Unauthenticated`. Returns the last failure.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        what: &'static str,
        retry: Retry,
        mut rpc: F,
    ) -> Result<T, Status>
    where
        F: FnMut(AgentGrpc) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut backoff = Backoff::new(self.backoff);
        let mut reauthenticated = false;
        loop {
            let generation = self.session.generation();
            let status = match rpc(self.grpc()).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => status,
            };
            match classify(&status) {
                Failure::Permanent => {
                    self.session.outdated.note(&status);
                    return Err(status);
                }
                Failure::Unauthenticated => {
                    tracing::warn!(
                        call = what,
                        detail = status.message(),
                        "the broker does not know this agent's token; registering again"
                    );
                    self.reauthenticate(generation, retry).await?;
                    if !reauthenticated {
                        reauthenticated = true;
                        continue;
                    }
                }
                Failure::Transient => {
                    let failures = backoff.failures() + 1;
                    if failures % 10 == 1 && !matches!(retry, Retry::Once) {
                        tracing::warn!(call = what, code = ?status.code(), detail = status.message(), failures, "broker unreachable; retrying with backoff");
                    } else {
                        tracing::debug!(call = what, code = ?status.code(), detail = status.message(), failures, "broker call failed; retrying");
                    }
                }
            }
            let delay = backoff.next_delay();
            if retry.gives_up_before(delay) {
                return Err(status);
            }
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_sorted_by_what_to_do() {
        assert_eq!(
            classify(&Status::unavailable("refused")),
            Failure::Transient
        );
        assert_eq!(classify(&Status::cancelled("timeout")), Failure::Transient);
        assert_eq!(
            classify(&Status::unauthenticated("who")),
            Failure::Unauthenticated
        );
        assert_eq!(classify(&Status::not_found("lease")), Failure::Permanent);
        assert_eq!(
            classify(&Status::permission_denied("not yours")),
            Failure::Permanent
        );
    }

    #[test]
    fn token_is_added_to_requests() -> Result<(), Status> {
        let mut token = BearerToken::default();
        let request = token.call(Request::new(()))?;
        assert!(request.metadata().get("authorization").is_none());
        assert_eq!(
            request
                .metadata()
                .get(AGENT_VERSION_HEADER)
                .and_then(|value| value.to_str().ok()),
            Some(AGENT_VERSION)
        );
        token.set("abc")?;
        let request = token.call(Request::new(()))?;
        assert_eq!(
            request
                .metadata()
                .get("authorization")
                .and_then(|value| value.to_str().ok()),
            Some("Bearer abc")
        );
        assert!(token.set("bad\nvalue").is_err());
        Ok(())
    }
}
