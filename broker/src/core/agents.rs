//! Agent registration and the token check every agent call goes through.

use std::sync::PoisonError;

use crate::core::Broker;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::{new_agent_id, new_token, now_ms, token_digest};
use crate::store::agents::{self, AgentRow};

/// How often an agent's `last_seen_ms` is written while it polls: often
/// enough for operators, rare enough not to cost a synced write per poll.
const LAST_SEEN_WRITE_MS: i64 = 10_000;

impl Broker {
    /// Registers a machine; returns its id and (only now, in clear) its token.
    pub async fn register(&self, mut agent: AgentRow) -> BrokerResult<(String, String)> {
        if agent.name.len() > 256
            || agent.os.len() > 64
            || agent.arch.len() > 64
            || agent.version.len() > 64
        {
            return Err(BrokerError::invalid(
                "agent name, os, arch or version too long",
            ));
        }
        let token = new_token();
        let now = now_ms();
        agent.id = new_agent_id();
        agent.registered_ms = now;
        agent.last_seen_ms = now;
        let mut conn = self.store.conn().await?;
        agents::insert(&mut conn, &agent, &token_digest(&token)).await?;
        tracing::info!(agent = %agent.id, name = %agent.name, "agent registered");
        Ok((agent.id, token))
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
            let mut conn = self.store.conn().await?;
            agents::touch(&mut conn, agent_id, now).await?;
        }
        Ok(())
    }
}
