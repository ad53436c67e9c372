//! Reading and granting credits: admin grants (the only way credits are
//! created), issuer balances and statements, agent earnings and the ledger's
//! totals.

use crate::core::Broker;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::{new_lease_id, now_ms};
use crate::store::agents::{self, AgentRecord};
use crate::store::ledger::{
    self, Account, Entry, EntryFilter, EntryKind, MINT_ACCOUNT, Transfer, agent_account,
    issuer_account,
};

/// Most credits one grant may create, in micro-credits (10^12 credits).
const MAX_GRANT_MICRO: i64 = 1_000_000_000_000_000_000;
/// Payments listed with an agent's earnings.
const RECENT_PAYMENTS: u32 = 20;

/// An agent's balance and record.
#[derive(Clone, Debug)]
pub struct AgentEarnings {
    pub balance: i64,
    pub record: AgentRecord,
    pub trusted: bool,
    /// The latest payments, oldest first.
    pub recent: Vec<Entry>,
}

/// Every account and the ledger's totals.
#[derive(Clone, Debug)]
pub struct LedgerTotals {
    pub accounts: Vec<Account>,
    /// Credits granted in all (minus the mint's balance).
    pub granted: i64,
    /// Sum of every balance but the mint's.
    pub held: i64,
}

impl Broker {
    /// Creates `amount` micro-credits on an issuer's account; returns the
    /// new balance and the posting.
    pub async fn grant(&self, issuer: &str, amount: i64, memo: &str) -> BrokerResult<(i64, Entry)> {
        if issuer.is_empty() || issuer.len() > 128 {
            return Err(BrokerError::invalid("issuer must be 1 to 128 bytes"));
        }
        if amount <= 0 || amount > MAX_GRANT_MICRO {
            return Err(BrokerError::invalid(format!(
                "a grant must be between 0.000001 and {} credits",
                MAX_GRANT_MICRO / crate::pricing::MICRO_PER_CREDIT
            )));
        }
        if memo.len() > 1024 {
            return Err(BrokerError::invalid("memo must be at most 1024 bytes"));
        }
        let now = now_ms();
        let account = issuer_account(issuer);
        let cause = format!("grant:{}", new_lease_id());
        let mut tx = self.store.write().await?;
        ledger::transfer(
            &mut tx,
            &Transfer {
                cause: cause.clone(),
                kind: EntryKind::Grant,
                from: MINT_ACCOUNT,
                to: &account,
                amount,
                workload_id: None,
                index: None,
                lease_id: None,
                agent_id: None,
                fuel: None,
                memo: (!memo.is_empty()).then_some(memo),
                at_ms: now,
            },
            "issuer",
        )
        .await?;
        let balance = ledger::balance(&mut tx, &account).await?;
        let entry = ledger::entries(
            &mut tx,
            &EntryFilter {
                account: Some(&account),
                kind: Some(EntryKind::Grant),
                limit: 1,
                ..EntryFilter::default()
            },
        )
        .await?
        .pop()
        .ok_or_else(|| BrokerError::not_found("the grant was not posted"))?;
        tx.commit().await?;
        self.changed();
        tracing::info!(%issuer, amount, "credits granted");
        Ok((balance, entry))
    }

    /// An issuer's balance and the escrow its running workloads hold.
    pub async fn balance(&self, issuer: &str) -> BrokerResult<(i64, i64)> {
        let mut conn = self.store.conn().await?;
        let balance = ledger::balance(&mut conn, &issuer_account(issuer)).await?;
        let held = ledger::escrow_held(&mut conn, issuer).await?;
        Ok((balance, held))
    }

    /// An issuer's statement, or one workload's postings; with the issuer's
    /// balance.
    pub async fn statement(
        &self,
        issuer: &str,
        workload_id: Option<&str>,
        limit: u32,
    ) -> BrokerResult<(Vec<Entry>, i64)> {
        let account = issuer_account(issuer);
        let mut conn = self.store.conn().await?;
        if let Some(workload_id) = workload_id {
            let workload = crate::store::workloads::require(&mut conn, workload_id).await?;
            if workload.issuer != issuer {
                return Err(BrokerError::not_found(format!(
                    "workload {workload_id} not found for issuer {issuer}"
                )));
            }
        }
        let filter = EntryFilter {
            account: workload_id.is_none().then_some(account.as_str()),
            workload_id,
            kind: None,
            limit,
        };
        let entries = ledger::entries(&mut conn, &filter).await?;
        let balance = ledger::balance(&mut conn, &account).await?;
        Ok((entries, balance))
    }

    /// An agent's balance, record and latest payments.
    pub async fn earnings(&self, agent_id: &str) -> BrokerResult<AgentEarnings> {
        let account = agent_account(agent_id);
        let mut conn = self.store.conn().await?;
        let (record, _, _) = agents::record(&mut conn, agent_id)
            .await?
            .ok_or_else(|| BrokerError::not_found(format!("agent {agent_id} not found")))?;
        let balance = ledger::balance(&mut conn, &account).await?;
        let recent = ledger::entries(
            &mut conn,
            &EntryFilter {
                account: Some(&account),
                limit: RECENT_PAYMENTS,
                ..EntryFilter::default()
            },
        )
        .await?;
        Ok(AgentEarnings {
            balance,
            record,
            trusted: record.trusted(self.config.trust_after),
            recent,
        })
    }

    /// Every account and the totals that must agree.
    pub async fn ledger_totals(&self) -> BrokerResult<LedgerTotals> {
        let mut conn = self.store.conn().await?;
        let accounts = ledger::accounts(&mut conn).await?;
        let granted = -accounts
            .iter()
            .filter(|account| account.id == MINT_ACCOUNT)
            .map(|account| account.balance)
            .sum::<i64>();
        let held = accounts
            .iter()
            .filter(|account| account.id != MINT_ACCOUNT)
            .map(|account| account.balance)
            .sum();
        Ok(LedgerTotals {
            accounts,
            granted,
            held,
        })
    }

    /// Whether an agent is trusted with solo runs.
    pub fn trusts(&self, record: &AgentRecord) -> bool {
        record.trusted(self.config.trust_after)
    }
}
