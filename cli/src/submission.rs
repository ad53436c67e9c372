//! Sending a workload to the broker; the stream itself is built by
//! [`wasmgrid_proto::submission`], shared with the tests. A submit the
//! broker refuses for the issuer's balance says how to look at and top up
//! that balance.

use anyhow::anyhow;
use tonic::Code;
pub use wasmgrid_proto::submission::Workload;
use wasmgrid_proto::v1::SubmitWorkloadResponse;

use crate::client::Broker;

/// Sends the workload; the broker answers with its id once it is stored
/// (and the workload's maximum cost is escrowed from the issuer's account).
pub async fn submit(
    broker: &mut Broker,
    workload: Workload,
) -> anyhow::Result<SubmitWorkloadResponse> {
    let issuer = workload.issuer.clone();
    let requests = workload.into_requests()?;
    let response = broker
        .issuer
        .submit_workload(tokio_stream::iter(requests))
        .await
        .map_err(|status| match status.code() {
            Code::FailedPrecondition => refused(&issuer, status.message()),
            _ => broker.error(status),
        })?;
    Ok(response.into_inner())
}

/// The broker's refusal, word for word, and when it is about credits the
/// commands that show and add them.
fn refused(issuer: &str, message: &str) -> anyhow::Error {
    let lower = message.to_lowercase();
    if lower.contains("credit") || lower.contains("balance") || lower.contains("escrow") {
        // Without --issuer, the token said who pays; the broker named it.
        let (flag, name) = if issuer.is_empty() {
            (String::new(), "YOUR_ISSUER")
        } else {
            (format!(" --issuer {issuer}"), issuer)
        };
        anyhow!(
            "the broker refused the workload: {message}\n  \
             see the balance with `wasmgrid balance{flag}`; \
             an admin adds credits with `wasmgrid grant --issuer {name} AMOUNT`"
        )
    } else {
        anyhow!("the broker refused the workload: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_for_credits_says_how_to_get_them() {
        let error = refused(
            "alice",
            "insufficient credits: the workload needs up to 12.000000, issuer:alice has 2.000000",
        );
        let text = error.to_string();
        assert!(
            text.starts_with("the broker refused the workload: insufficient credits"),
            "{text}"
        );
        assert!(
            text.contains("wasmgrid grant --issuer alice AMOUNT"),
            "{text}"
        );
        let other = refused("alice", "quorum above replicas").to_string();
        assert_eq!(
            other,
            "the broker refused the workload: quorum above replicas"
        );
    }
}
