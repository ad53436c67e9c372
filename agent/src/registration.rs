//! Registration: reuse the identity in the state directory, or `Register`
//! and keep the new one; register again when the broker forgot the agent.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use tonic::Status;
use wasmgrid_proto::v1::RegisterRequest;

use crate::backoff::Backoff;
use crate::client::{BearerToken, BrokerClient, Failure, Retry, classify};
use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::identity::Identity;
use crate::outdated::{AGENT_VERSION, OutdatedNotice, Refusal};

/// The agent's standing with the broker, shared by every clone of the client.
#[derive(Debug)]
pub(crate) struct Session {
    /// The token the interceptor sends.
    pub(crate) token: BearerToken,
    broker_url: String,
    state_dir: PathBuf,
    request: RegisterRequest,
    /// Held while registering, so concurrent `Unauthenticated` failures of
    /// several workers lead to one registration, not one each.
    registering: tokio::sync::Mutex<()>,
    /// Bumped by every registration: a caller that saw `Unauthenticated`
    /// with an older token knows another caller already registered again.
    generation: AtomicU64,
    agent_id: Mutex<String>,
    /// Set once the broker refused the agent's version.
    pub(crate) outdated: OutdatedNotice,
}

impl Session {
    pub(crate) fn new(config: &AgentConfig, broker_url: String) -> Self {
        Session {
            token: BearerToken::default(),
            broker_url,
            state_dir: config.state_dir.clone(),
            request: register_request(config),
            registering: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            agent_id: Mutex::new(String::new()),
            outdated: OutdatedNotice::default(),
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The agent's id, empty before the first registration.
    pub(crate) fn agent_id(&self) -> String {
        self.agent_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn adopt(&self, identity: &Identity) -> Result<(), Status> {
        self.token.set(&identity.token)?;
        *self.agent_id.lock().unwrap_or_else(PoisonError::into_inner) = identity.agent_id.clone();
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

/// What the agent announces: the machine and what its volunteer gives.
fn register_request(config: &AgentConfig) -> RegisterRequest {
    RegisterRequest {
        name: config.name.clone(),
        os: std::env::consts::OS.to_owned(),
        arch: std::env::consts::ARCH.to_owned(),
        cores: u32::try_from(crate::config::default_slots()).unwrap_or(u32::MAX),
        memory_bytes: config.memory_bytes,
        slots: u32::try_from(config.slots).unwrap_or(u32::MAX),
        version: AGENT_VERSION.to_owned(),
        owner: config.owner.clone(),
        enrolment_secret: config.enrolment_secret.clone(),
    }
}

impl BrokerClient {
    /// Takes the identity from the state directory if it was made with this
    /// broker, else registers (retrying while the broker is away) and keeps
    /// the new identity. Returns the agent id.
    pub(crate) async fn sign_in(&self) -> Result<String, AgentError> {
        let session = &self.session;
        let _registering = session.registering.lock().await;
        let saved = Identity::load(&session.state_dir)
            .map_err(|error| AgentError::state_dir(Identity::path(&session.state_dir), error))?;
        if let Some(identity) = saved {
            if identity.broker == session.broker_url && session.adopt(&identity).is_ok() {
                tracing::info!(agent = %identity.agent_id, "reusing the saved identity");
                return Ok(identity.agent_id);
            }
            tracing::info!(saved_broker = %identity.broker, "the saved identity is for another broker; registering anew");
        }
        let identity =
            self.register(Retry::Forever)
                .await
                .map_err(|status| match Refusal::of(&status) {
                    Some(refusal) => AgentError::Outdated {
                        required: refusal.required,
                        message: refusal.message,
                    },
                    None => AgentError::Registration {
                        code: status.code(),
                        message: status.message().to_owned(),
                    },
                })?;
        identity
            .save(&session.state_dir)
            .map_err(|error| AgentError::state_dir(Identity::path(&session.state_dir), error))?;
        session
            .adopt(&identity)
            .map_err(|status| AgentError::Registration {
                code: status.code(),
                message: status.message().to_owned(),
            })?;
        tracing::info!(agent = %identity.agent_id, "registered with the broker");
        Ok(identity.agent_id)
    }

    /// Registers again after a call with the token of `seen_generation` was
    /// refused as `Unauthenticated` — unless another caller already did.
    pub(crate) async fn reauthenticate(
        &self,
        seen_generation: u64,
        retry: Retry,
    ) -> Result<(), Status> {
        let session = &self.session;
        let _registering = session.registering.lock().await;
        if session.generation() != seen_generation {
            return Ok(());
        }
        let identity = self.register(retry).await?;
        session.adopt(&identity)?;
        if let Err(error) = identity.save(&session.state_dir) {
            tracing::error!(%error, "cannot save the new identity; the agent will register again after a restart");
        }
        tracing::info!(agent = %identity.agent_id, "registered again with the broker");
        Ok(())
    }

    /// Calls `Register`, retrying transient failures as `retry` allows.
    async fn register(&self, retry: Retry) -> Result<Identity, Status> {
        let session = &self.session;
        let mut backoff = Backoff::new(self.backoff);
        loop {
            let status = match self.grpc().register(session.request.clone()).await {
                Ok(response) => {
                    let response = response.into_inner();
                    return Ok(Identity {
                        broker: session.broker_url.clone(),
                        agent_id: response.agent_id,
                        token: response.token,
                    });
                }
                Err(status) => status,
            };
            if classify(&status) != Failure::Transient {
                session.outdated.note(&status);
                return Err(status);
            }
            let delay = backoff.next_delay();
            if backoff.failures() % 10 == 1 {
                tracing::warn!(code = ?status.code(), detail = status.message(), "cannot register with the broker; retrying with backoff");
            }
            if retry.gives_up_before(delay) {
                return Err(status);
            }
            tokio::time::sleep(delay).await;
        }
    }
}
