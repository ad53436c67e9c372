//! The broker's refusal of an agent older than its minimum version. It is
//! told from every other refusal by its metadata, noted once for the whole
//! agent, and ends the agent (with a distinct exit code in the binary)
//! instead of being retried: retrying cannot make the agent newer.

use tokio::sync::watch;
use tonic::{Code, Status};
use wasmgrid_proto::REQUIRED_AGENT_VERSION_HEADER;

/// The version this agent runs, sent with every call.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The lowest version the broker accepts, if `status` refuses the agent for
/// its version.
pub(crate) fn required_version(status: &Status) -> Option<String> {
    if status.code() != Code::FailedPrecondition {
        return None;
    }
    let value = status.metadata().get(REQUIRED_AGENT_VERSION_HEADER)?;
    Some(value.to_str().unwrap_or("?").to_owned())
}

/// The refusal, once a call met it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The lowest version the broker accepts.
    pub(crate) required: String,
    /// The broker's message (which says how to update).
    pub(crate) message: String,
}

impl Refusal {
    /// The refusal `status` carries, if it is one.
    pub(crate) fn of(status: &Status) -> Option<Self> {
        required_version(status).map(|required| Refusal {
            required,
            message: status.message().to_owned(),
        })
    }
}

/// Whether the broker refused the agent for its version: set by whichever
/// call meets the refusal first, awaited by the work loop.
#[derive(Debug)]
pub(crate) struct OutdatedNotice(watch::Sender<Option<Refusal>>);

impl Default for OutdatedNotice {
    fn default() -> Self {
        OutdatedNotice(watch::channel(None).0)
    }
}

impl OutdatedNotice {
    /// Notes the refusal if `status` is one; returns whether it was.
    pub(crate) fn note(&self, status: &Status) -> bool {
        let Some(refusal) = Refusal::of(status) else {
            return false;
        };
        self.0.send_if_modified(|noted| {
            if noted.is_some() {
                return false;
            }
            tracing::error!(
                required = %refusal.required,
                running = AGENT_VERSION,
                detail = %refusal.message,
                "the broker refuses this agent's version; stopping (update it with `wasmgrid-agent update`)"
            );
            *noted = Some(refusal);
            true
        });
        true
    }

    /// The refusal, if one was met.
    pub(crate) fn refusal(&self) -> Option<Refusal> {
        self.0.borrow().clone()
    }

    /// Returns once a refusal was met.
    pub(crate) async fn refused(&self) {
        let mut receiver = self.0.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = receiver.wait_for(Option::is_some).await;
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataMap;

    use super::*;

    fn refusal(required: &str) -> Status {
        let mut metadata = MetadataMap::new();
        metadata.insert(
            REQUIRED_AGENT_VERSION_HEADER,
            required.parse().expect("ASCII"),
        );
        Status::with_metadata(Code::FailedPrecondition, "too old", metadata)
    }

    #[tokio::test]
    async fn only_a_version_refusal_is_noted() {
        let notice = OutdatedNotice::default();
        assert!(!notice.note(&Status::failed_precondition("another reason")));
        assert!(notice.refusal().is_none());
        assert!(notice.note(&refusal("9.0.0")));
        notice.refused().await;
        assert_eq!(
            notice.refusal(),
            Some(Refusal {
                required: "9.0.0".into(),
                message: "too old".into()
            })
        );
        // The first refusal stays.
        notice.note(&refusal("10.0.0"));
        assert_eq!(
            notice.refusal().map(|refusal| refusal.required).as_deref(),
            Some("9.0.0")
        );
    }
}
