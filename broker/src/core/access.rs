//! Who may do what: issuers' and admins' API tokens (created, bootstrapped,
//! checked), the enrolment secret agents register with, and the ownership
//! rule that an issuer sees only its own workloads and account.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::core::Broker;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::{new_token, now_ms, token_digest};
use crate::private_file::write_private;
use crate::store::Store;
use crate::store::api_tokens::{self, TokenRole};

/// The file in the data dir where a broker started without an admin token
/// writes the one it generated (readable by its owner only).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Longest issuer name: it is part of account names and shown in tables.
const MAX_ISSUER_NAME: usize = 128;

/// Who is calling the issuer or admin service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// An issuer's token: its own workloads and account only.
    Issuer(String),
    /// An admin's token: everything.
    Admin,
}

impl Caller {
    /// The issuer a request acts for: `named` (from the request) when the
    /// caller may act for it, the caller's own issuer when `named` is empty.
    pub fn acting_for(&self, named: &str) -> BrokerResult<String> {
        match self {
            Caller::Issuer(own) if named.is_empty() || named == own => Ok(own.clone()),
            Caller::Issuer(own) => Err(BrokerError::PermissionDenied(format!(
                "this token is issuer {own}'s: it cannot act for issuer {named}"
            ))),
            Caller::Admin if named.is_empty() => Err(BrokerError::invalid(
                "an admin token acts for no issuer of its own: name the issuer",
            )),
            Caller::Admin => Ok(named.to_owned()),
        }
    }

    /// Refuses an issuer that does not own `workload_id` (owned by `owner`).
    pub fn check_owns(&self, workload_id: &str, owner: &str) -> BrokerResult<()> {
        match self {
            Caller::Issuer(own) if own != owner => Err(BrokerError::PermissionDenied(format!(
                "workload {workload_id} is not issuer {own}'s"
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses every caller but an admin.
    pub fn require_admin(&self) -> BrokerResult<()> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Issuer(own) => Err(BrokerError::PermissionDenied(format!(
                "this needs an admin token; this token is issuer {own}'s"
            ))),
        }
    }
}

/// Creates a token for `role` and stores its digest; returns the token, the
/// only time it exists in clear.
pub async fn create_token(store: &Store, role: &TokenRole, label: &str) -> BrokerResult<String> {
    if let TokenRole::Issuer(issuer) = role {
        check_issuer_name(issuer)?;
    }
    let token = new_token();
    let mut tx = store.write().await?;
    api_tokens::insert(&mut tx, &token_digest(&token), role, label, now_ms()).await?;
    tx.commit().await?;
    Ok(token)
}

/// An issuer name as accounts and tables can carry it.
pub fn check_issuer_name(issuer: &str) -> BrokerResult<()> {
    let valid = !issuer.is_empty()
        && issuer.len() <= MAX_ISSUER_NAME
        && issuer
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if valid {
        Ok(())
    } else {
        Err(BrokerError::invalid(format!(
            "invalid issuer name {issuer:?}: 1 to {MAX_ISSUER_NAME} letters, digits, '-', '_', '.' or '@'"
        )))
    }
}

/// Makes sure an admin can reach the broker: stores `given` (the operator's
/// `--admin-token`) as an admin token, or, when the store has no admin token
/// yet, generates one into `DATA_DIR/admin.token`. Returns that file when it
/// was written.
pub async fn bootstrap_admin(
    store: &Store,
    data_dir: &Path,
    given: Option<&str>,
) -> BrokerResult<Option<std::path::PathBuf>> {
    let mut tx = store.write().await?;
    if let Some(token) = given {
        if token.len() < 16 {
            return Err(BrokerError::invalid(
                "the admin token must be at least 16 characters long",
            ));
        }
        api_tokens::insert(
            &mut tx,
            &token_digest(token),
            &TokenRole::Admin,
            "--admin-token",
            now_ms(),
        )
        .await?;
        tx.commit().await?;
        return Ok(None);
    }
    if api_tokens::has_admin(&mut tx).await? {
        return Ok(None);
    }
    let token = new_token();
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    write_private(&path, &format!("{token}\n"))?;
    api_tokens::insert(
        &mut tx,
        &token_digest(&token),
        &TokenRole::Admin,
        "generated at first start",
        now_ms(),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(path))
}

/// Whether `given` is the enrolment secret, compared without an early exit
/// on the first differing byte (digests of both, so lengths leak nothing).
fn secret_matches(expected: &str, given: &str) -> bool {
    let (a, b) = (Sha256::digest(expected), Sha256::digest(given));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

impl Broker {
    /// The caller behind an issuer's or admin's token.
    pub async fn caller(&self, token: &str) -> BrokerResult<Caller> {
        let mut conn = self.store.conn().await?;
        match api_tokens::role_of(&mut conn, &token_digest(token)).await? {
            Some(TokenRole::Admin) => Ok(Caller::Admin),
            Some(TokenRole::Issuer(issuer)) => Ok(Caller::Issuer(issuer)),
            None => Err(BrokerError::Unauthenticated(
                "unknown or revoked token: ask the broker's admin for an issuer token \
                 (wasmgrid-broker token create --issuer NAME)"
                    .into(),
            )),
        }
    }

    /// Refuses a registration without the configured enrolment secret.
    pub(crate) fn check_enrolment(&self, given: &str) -> BrokerResult<()> {
        match &self.config.enrolment_secret {
            Some(expected) if !secret_matches(expected, given) => {
                Err(BrokerError::Unauthenticated(if given.is_empty() {
                    "this broker enrols agents with a secret: start the agent with \
                     --enrolment-secret"
                        .into()
                } else {
                    "wrong enrolment secret".into()
                }))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issuer_acts_only_for_itself_and_an_admin_for_whom_it_names() {
        let alice = Caller::Issuer("alice".into());
        assert_eq!(alice.acting_for("").ok().as_deref(), Some("alice"));
        assert_eq!(alice.acting_for("alice").ok().as_deref(), Some("alice"));
        assert!(matches!(
            alice.acting_for("bob"),
            Err(BrokerError::PermissionDenied(_))
        ));
        assert_eq!(Caller::Admin.acting_for("bob").ok().as_deref(), Some("bob"));
        assert!(matches!(
            Caller::Admin.acting_for(""),
            Err(BrokerError::InvalidArgument(_))
        ));
        assert!(alice.check_owns("w-1", "alice").is_ok());
        assert!(alice.check_owns("w-1", "bob").is_err());
        assert!(Caller::Admin.check_owns("w-1", "bob").is_ok());
        assert!(alice.require_admin().is_err());
        assert!(Caller::Admin.require_admin().is_ok());
    }

    #[test]
    fn issuer_names_are_short_and_plain() {
        assert!(check_issuer_name("alice@lab-1.example").is_ok());
        assert!(check_issuer_name("").is_err());
        assert!(check_issuer_name("a b").is_err());
        assert!(check_issuer_name("issuer:x").is_err());
        assert!(check_issuer_name(&"x".repeat(129)).is_err());
    }

    #[test]
    fn the_enrolment_secret_must_match_exactly() {
        assert!(secret_matches("s3cret", "s3cret"));
        assert!(!secret_matches("s3cret", "s3cre"));
        assert!(!secret_matches("s3cret", ""));
    }
}
