//! What the agent has earned: [`fetch_earnings`] asks the broker, with the
//! identity kept in the state directory, and [`EarningsError`] says why it
//! could not. Rendering is in `earnings_view`.

use std::path::{Path, PathBuf};

use tonic::Code;
use wasmgrid_proto::v1::{Earnings, EarningsRequest};

use crate::client::{BearerToken, endpoint, grpc_client};
use crate::config::broker_url;
use crate::error::AgentError;
use crate::identity::Identity;

/// The agent's earnings, as its broker reported them.
#[derive(Clone, Debug, PartialEq)]
pub struct EarningsReport {
    /// The broker asked.
    pub broker: String,
    /// The agent's id in its saved identity.
    pub agent_id: String,
    /// The broker's answer.
    pub earnings: Earnings,
}

/// Why the earnings could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum EarningsError {
    /// No identity in the state directory.
    #[error(
        "no identity in {}: this agent has not registered yet; start it once with --broker",
        .state_dir.display()
    )]
    NotRegistered {
        /// The state directory looked in.
        state_dir: PathBuf,
    },
    /// The identity file cannot be read.
    #[error("cannot read the agent's identity {}: {source}", .path.display())]
    Identity {
        /// The identity file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The broker URL is unusable.
    #[error("{0}")]
    BrokerUrl(String),
    /// The broker did not answer.
    #[error("cannot reach the broker at {broker}: {detail}")]
    Unreachable {
        /// The broker's URL.
        broker: String,
        /// The transport's explanation.
        detail: String,
    },
    /// The broker does not know the agent's token.
    #[error(
        "the broker at {broker} does not know this agent ({agent_id}){hint}; start the agent to register again"
    )]
    Unauthenticated {
        /// The broker's URL.
        broker: String,
        /// The agent id in the saved identity.
        agent_id: String,
        /// Why it may not, when that can be told.
        hint: String,
    },
    /// The broker answered with another error.
    #[error("the broker at {broker} refused: {code:?}: {message}")]
    Refused {
        /// The broker's URL.
        broker: String,
        /// The gRPC status code.
        code: Code,
        /// The broker's message.
        message: String,
    },
}

/// Asks the broker for the agent's earnings, authenticated with the identity
/// saved in `state_dir`. The broker is the identity's, unless `broker` names
/// another (the identity is only known to the broker it came from).
pub async fn fetch_earnings(
    state_dir: &Path,
    broker: Option<&str>,
    ca_cert: Option<&Path>,
) -> Result<EarningsReport, EarningsError> {
    let identity = Identity::load(state_dir)
        .map_err(|source| EarningsError::Identity {
            path: Identity::path(state_dir),
            source,
        })?
        .ok_or_else(|| EarningsError::NotRegistered {
            state_dir: state_dir.to_path_buf(),
        })?;
    let url = match broker {
        Some(broker) => broker_url(broker),
        None => broker_url(&identity.broker),
    }
    .map_err(url_error)?;
    let token = BearerToken::default();
    token
        .set(&identity.token)
        .map_err(|_| EarningsError::Identity {
            path: Identity::path(state_dir),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the saved token is not a valid header value",
            ),
        })?;
    let channel = endpoint(&url, ca_cert).map_err(url_error)?.connect_lazy();
    let answer = grpc_client(channel, token)
        .get_earnings(EarningsRequest {})
        .await;
    match answer {
        Ok(earnings) => Ok(EarningsReport {
            broker: url,
            agent_id: identity.agent_id,
            earnings: earnings.into_inner(),
        }),
        Err(status) => Err(match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                EarningsError::Unreachable {
                    broker: url,
                    detail: explain(&status),
                }
            }
            Code::Unauthenticated => EarningsError::Unauthenticated {
                hint: if url == identity.broker {
                    " (its data may have been reset)".to_owned()
                } else {
                    format!(", which registered with {}", identity.broker)
                },
                broker: url,
                agent_id: identity.agent_id,
            },
            code => EarningsError::Refused {
                broker: url,
                code,
                message: status.message().to_owned(),
            },
        }),
    }
}

/// An unusable broker URL, said once.
fn url_error(error: AgentError) -> EarningsError {
    EarningsError::BrokerUrl(match error {
        AgentError::Config(message) => message,
        other => other.to_string(),
    })
}

/// The status's message and the causes under it (e.g. "tcp connect error:
/// Connection refused").
pub(crate) fn explain(status: &tonic::Status) -> String {
    let mut text = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
