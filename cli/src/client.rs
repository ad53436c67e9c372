//! Connecting to the broker, and turning gRPC failures into messages an
//! issuer can act on: "cannot reach the broker at URL" for the network,
//! the broker's own message (e.g. "workload w-123 not found") otherwise.

use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use wasmgrid_proto::MAX_MESSAGE_BYTES;
use wasmgrid_proto::v1::admin_service_client::AdminServiceClient;
use wasmgrid_proto::v1::issuer_service_client::IssuerServiceClient;

/// Where a broker started with its defaults listens.
pub const DEFAULT_BROKER_URL: &str = "http://127.0.0.1:7070";

/// How long opening a connection may take before the broker is declared
/// unreachable: a broker on the LAN answers in milliseconds, a distant one in
/// well under a second; a wrong address should not hang the command.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Ping interval on an open connection, and how long an answer may take:
/// `wait` can sit on a quiet progress stream for hours, and a connection that
/// died without a word (a broker host gone, a NAT entry dropped) must be
/// noticed so the stream can be reopened.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// `--broker`, shared by every command that talks to a broker.
#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// URL of the broker's gRPC endpoint; `host:port` means `http://host:port`.
    #[arg(
        long = "broker",
        env = "WASMGRID_BROKER",
        default_value = DEFAULT_BROKER_URL,
        value_name = "URL"
    )]
    pub url: String,
}

/// An open connection to one broker, with a client per service.
#[derive(Debug, Clone)]
pub struct Broker {
    url: String,
    /// Submit, follow and fetch workloads.
    pub issuer: IssuerServiceClient<Channel>,
    /// The operator's lists of agents and workloads.
    pub admin: AdminServiceClient<Channel>,
}

impl Broker {
    /// Connects now, so an unreachable broker is reported before any work.
    pub async fn connect(args: &BrokerArgs) -> anyhow::Result<Broker> {
        Broker::connect_url(&args.url).await
    }

    /// Like [`Broker::connect`], for a URL that does not come from a flag.
    pub async fn connect_url(url: &str) -> anyhow::Result<Broker> {
        let url = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let endpoint = Endpoint::from_shared(url.clone())
            .with_context(|| format!("invalid broker URL '{url}'"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_INTERVAL)
            .keep_alive_while_idle(true);
        let channel = endpoint
            .connect()
            .await
            .map_err(|error| anyhow!("cannot reach the broker at {url}: {}", causes(&error)))?;
        Ok(Broker {
            issuer: IssuerServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            admin: AdminServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            url,
        })
    }

    /// The URL this connection was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The error to show for a failed call.
    pub fn error(&self, status: tonic::Status) -> anyhow::Error {
        call_error(&self.url, &status)
    }
}

/// An error and its sources joined by `: `, each said once (hyper and tonic
/// repeat "tcp connect error" at two levels).
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in std::iter::successors(Some(error), |error| error.source()) {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// A failed call as an issuer should read it: network trouble names the
/// broker's URL; anything else is the broker's own message.
pub fn call_error(url: &str, status: &tonic::Status) -> anyhow::Error {
    let message = if status.message().is_empty() {
        status.code().description()
    } else {
        status.message()
    };
    match status.code() {
        Code::Unavailable => anyhow!("cannot reach the broker at {url}: {message}"),
        _ => anyhow!("{message}"),
    }
}

/// Whether a failed call may succeed when repeated: the connection broke or
/// the broker was briefly unavailable, as opposed to the broker refusing the
/// request (unknown workload, bad argument, not allowed).
pub fn is_transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Internal
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_refusals_show_the_brokers_message() {
        let error = call_error(
            "http://b:1",
            &tonic::Status::not_found("workload w-123 not found"),
        );
        assert_eq!(error.to_string(), "workload w-123 not found");
        let error = call_error(
            "http://b:1",
            &tonic::Status::unavailable("connection reset"),
        );
        assert_eq!(
            error.to_string(),
            "cannot reach the broker at http://b:1: connection reset"
        );
        assert!(!is_transient(&tonic::Status::not_found("x")));
        assert!(is_transient(&tonic::Status::unavailable("x")));
    }
}
