//! Agent registration and the token check every agent call goes through.

use std::sync::PoisonError;

use crate::config::ReplicaSeparation;
use crate::core::Broker;
use crate::core::group_commit::unchanged;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::{new_agent_id, new_token, now_ms, token_digest};
use crate::store::agents::{self, AgentRow};
use crate::store::writer;

/// How often an agent's `last_seen_ms` is written while it polls: often
/// enough for operators, rare enough not to cost a synced write per poll.
const LAST_SEEN_WRITE_MS: i64 = 10_000;

impl Broker {
    /// Registers a machine; returns its id and (only now, in clear) its token.
    pub async fn register(&self, mut agent: AgentRow) -> BrokerResult<(String, String)> {
        if agent.name.len() > 256
            || agent.os.len() > 64
            || agent.arch.len() > 64
            || agent.version.len() > super::agent_version::MAX_VERSION_LEN
        {
            return Err(BrokerError::invalid(
                "agent name, os, arch or version too long",
            ));
        }
        if agent.owner.len() > 256 {
            return Err(BrokerError::invalid("agent owner too long"));
        }
        self.check_agent_version(&agent.version)?;
        let token = new_token();
        let now = now_ms();
        agent.id = new_agent_id();
        agent.registered_ms = now;
        agent.last_seen_ms = now;
        let mut conn = self.store.conn().await?;
        agents::insert(&mut conn, &agent, &token_digest(&token)).await?;
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(agent.id.clone(), agent.version.clone());
        if let Some(group) = self.replica_group(&agent) {
            self.scheduler.lock().await.set_group(&agent.id, group);
        }
        tracing::info!(agent = %agent.id, name = %agent.name, "agent registered");
        Ok((agent.id, token))
    }

    /// The replica group of an agent, when replicas are kept apart by more
    /// than the agent itself.
    pub(crate) fn replica_group(&self, agent: &AgentRow) -> Option<String> {
        let (prefix, key) = match self.config.replica_separation {
            ReplicaSeparation::Agent => return None,
            ReplicaSeparation::Owner => ("owner", &agent.owner),
            ReplicaSeparation::Address => ("address", &agent.address),
        };
        (!key.is_empty()).then(|| format!("{prefix}:{key}"))
    }

    /// Adds a run's fuel and wall time to the agent's measured speed.
    pub(crate) fn add_speed(&self, agent_id: &str, fuel: u64, wall_ms: u64) {
        let mut speeds = self.speeds.lock().unwrap_or_else(PoisonError::into_inner);
        let speed = speeds.entry(agent_id.to_owned()).or_default();
        speed.0 += u128::from(fuel);
        speed.1 += u128::from(wall_ms);
    }

    /// The agent's measured speed in fuel per millisecond, once it has run
    /// at least a millisecond's worth.
    pub fn fuel_per_ms(&self, agent_id: &str) -> Option<f64> {
        let speeds = self.speeds.lock().unwrap_or_else(PoisonError::into_inner);
        let (fuel, ms) = speeds.get(agent_id).copied()?;
        (ms > 0).then(|| fuel as f64 / ms as f64)
    }

    /// The agent a bearer token belongs to.
    pub async fn authenticate(&self, token: &str) -> BrokerResult<String> {
        let digest = token_digest(token);
        let cached = self
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest)
            .cloned();
        let agent_id = match cached {
            Some(agent_id) => agent_id,
            None => {
                let mut conn = self.store.conn().await?;
                let agent_id = agents::by_token(&mut conn, &digest).await?.ok_or_else(|| {
                    BrokerError::Unauthenticated("unknown agent token: register again".into())
                })?;
                self.tokens
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(digest, agent_id.clone());
                agent_id
            }
        };
        self.note_seen(&agent_id).await?;
        Ok(agent_id)
    }

    async fn note_seen(&self, agent_id: &str) -> BrokerResult<()> {
        let now = now_ms();
        let due = {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            let last = seen.entry(agent_id.to_owned()).or_insert(0);
            let due = now - *last >= LAST_SEEN_WRITE_MS;
            if due {
                *last = now;
            }
            due
        };
        if due {
            let agent_id = agent_id.to_owned();
            self.commits
                .run(move |conn| {
                    writer::agents::touch(conn, &agent_id, now)?;
                    Ok(unchanged(()))
                })
                .await?;
        }
        Ok(())
    }
}
