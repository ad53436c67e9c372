//! Connecting to the broker, and turning gRPC failures into messages an
//! issuer can act on: "cannot reach the broker at URL" for the network,
//! the broker's own message (e.g. "workload w-123 not found") otherwise.

use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use wasmgrid_proto::v1::admin_service_client::AdminServiceClient;
use wasmgrid_proto::v1::issuer_service_client::IssuerServiceClient;
use wasmgrid_proto::{Bearer, MAX_MESSAGE_BYTES};

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
    /// URL of the broker's gRPC endpoint: https:// for TLS; `host:port`
    /// means `http://host:port` (a broker started with --insecure).
    #[arg(
        long = "broker",
        env = "WASMGRID_BROKER",
        default_value = DEFAULT_BROKER_URL,
        value_name = "URL"
    )]
    pub url: String,
    /// A CA certificate (PEM) to trust for the broker's TLS certificate,
    /// besides the public roots, e.g. a --dev-tls broker's DATA_DIR/tls/ca.pem.
    #[arg(long = "ca-cert", env = "WASMGRID_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Your API token: an issuer's (from the broker's admin: `wasmgrid-broker
    /// token create --issuer NAME`) or an admin's (e.g. the broker's
    /// DATA_DIR/admin.token).
    #[arg(
        long = "token",
        env = "WASMGRID_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// A file holding the token (read at start; a trailing newline is fine).
    #[arg(
        long = "token-file",
        env = "WASMGRID_TOKEN_FILE",
        value_name = "FILE",
        conflicts_with = "token"
    )]
    pub token_file: Option<std::path::PathBuf>,
}

impl BrokerArgs {
    /// The token given by `--token` or read from `--token-file`, if any.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        if let Some(path) = &self.token_file {
            let token = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?;
            return Ok(Some(token.trim().to_owned()));
        }
        Ok(self.token.clone())
    }
}

/// An open connection to one broker, with a client per service.
#[derive(Debug, Clone)]
pub struct Broker {
    url: String,
    /// Submit, follow and fetch workloads.
    pub issuer: IssuerClient,
    /// The operator's lists of agents and workloads.
    pub admin: AdminClient,
}

/// The issuer service, with the token on every call.
pub type IssuerClient = IssuerServiceClient<InterceptedService<Channel, Bearer>>;
/// The admin service, with the token on every call.
pub type AdminClient = AdminServiceClient<InterceptedService<Channel, Bearer>>;

impl Broker {
    /// Connects now, so an unreachable broker is reported before any work.
    pub async fn connect(args: &BrokerArgs) -> anyhow::Result<Broker> {
        Broker::connect_url(&args.url, args.ca_cert.as_deref(), args.token()?.as_deref()).await
    }

    /// Like [`Broker::connect`], for a URL that does not come from a flag.
    pub async fn connect_url(
        url: &str,
        ca_cert: Option<&std::path::Path>,
        token: Option<&str>,
    ) -> anyhow::Result<Broker> {
        let bearer = match token {
            Some(token) => Bearer::new(token)?,
            None => Bearer::none(),
        };
        let url = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let endpoint = wasmgrid_proto::endpoint(&url, ca_cert)?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_INTERVAL)
            .keep_alive_while_idle(true);
        let channel = endpoint.connect().await.map_err(|error| {
            let causes = causes(&error);
            anyhow!(
                "cannot reach the broker at {url}: {causes}{}",
                tls_hint(&causes)
            )
        })?;
        Ok(Broker {
            issuer: IssuerServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            admin: AdminServiceClient::with_interceptor(channel, bearer)
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

/// What to do about a certificate the client could not verify.
fn tls_hint(causes: &str) -> &'static str {
    if causes.contains("UnknownIssuer") {
        "\n  the broker's certificate is not signed by a CA this client trusts: for a \
         broker started with --dev-tls, pass --ca-cert DATA_DIR/tls/ca.pem (or set \
         WASMGRID_CA_CERT)"
    } else if causes.contains("not valid for name") {
        "\n  the broker's certificate is for another name: use a --broker URL with a \
         name the certificate lists (a --dev-tls broker adds names with --tls-name)"
    } else {
        ""
    }
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
        Code::Unauthenticated => anyhow!(
            "{message}\n  give your token with --token TOKEN, --token-file FILE or \
             WASMGRID_TOKEN"
        ),
        // A plain client on a TLS port fails in hyper's words, which vary:
        // "transport error", "h2 protocol error", "operation was canceled".
        Code::Unknown | Code::Internal | Code::Cancelled if url.starts_with("http://") => {
            anyhow!(
                "cannot talk to the broker at {url}: {message}\n  the broker may be serving \
             TLS: use an https:// URL (with --ca-cert DATA_DIR/tls/ca.pem for a --dev-tls \
             broker)"
            )
        }
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
    fn a_missing_token_or_tls_says_what_to_do() {
        let error = call_error(
            "https://b:1",
            &tonic::Status::unauthenticated("missing authorization"),
        );
        assert!(error.to_string().contains("WASMGRID_TOKEN"), "{error}");
        for status in [
            tonic::Status::unknown("h2 protocol error: http2 error"),
            tonic::Status::cancelled("operation was canceled"),
        ] {
            let error = call_error("http://b:1", &status);
            assert!(error.to_string().contains("use an https:// URL"), "{error}");
        }
        let error = call_error(
            "https://b:1",
            &tonic::Status::unknown("h2 protocol error: http2 error"),
        );
        assert!(
            !error.to_string().contains("use an https:// URL"),
            "{error}"
        );
    }

    #[test]
    fn certificate_failures_say_what_to_do() {
        assert!(tls_hint("invalid peer certificate: UnknownIssuer").contains("--ca-cert"));
        assert!(tls_hint("certificate not valid for name \"10.0.0.1\"").contains("--tls-name"));
        assert_eq!(tls_hint("tcp connect error: Connection refused"), "");
    }

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
