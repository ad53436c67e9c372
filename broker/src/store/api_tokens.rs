//! The `api_tokens` table: issuers' and admins' tokens, by their sha256.

use sqlx::{Row, SqliteConnection};

use crate::error::{BrokerError, BrokerResult};

/// What a token lets its holder do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRole {
    /// Submit and follow its own workloads, read its own account.
    Issuer(String),
    /// Everything: every issuer's workloads, grants, the lists of agents.
    Admin,
}

impl TokenRole {
    fn columns(&self) -> (&'static str, &str) {
        match self {
            TokenRole::Issuer(issuer) => ("issuer", issuer),
            TokenRole::Admin => ("admin", ""),
        }
    }

    fn from_columns(role: &str, issuer: String) -> BrokerResult<TokenRole> {
        match role {
            "issuer" => Ok(TokenRole::Issuer(issuer)),
            "admin" => Ok(TokenRole::Admin),
            other => Err(BrokerError::FailedPrecondition(format!(
                "the store holds a token of unknown role {other:?}"
            ))),
        }
    }
}

/// A token as `token list` shows it: never the token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRow {
    /// The sha256 of the token, in hex; its first 12 digits name it.
    pub token_sha256: String,
    pub role: TokenRole,
    pub label: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// Stores a token's digest; a digest already stored is left as it is.
pub async fn insert(
    conn: &mut SqliteConnection,
    token_sha256: &str,
    role: &TokenRole,
    label: &str,
    now_ms: i64,
) -> BrokerResult<()> {
    let (role, issuer) = role.columns();
    sqlx::query(
        "INSERT INTO api_tokens (token_sha256, role, issuer, label, created_ms)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (token_sha256) DO NOTHING",
    )
    .bind(token_sha256)
    .bind(role)
    .bind(issuer)
    .bind(label)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// The role of a token that is stored and not revoked.
pub async fn role_of(
    conn: &mut SqliteConnection,
    token_sha256: &str,
) -> BrokerResult<Option<TokenRole>> {
    let row = sqlx::query(
        "SELECT role, issuer FROM api_tokens WHERE token_sha256 = ? AND revoked_ms IS NULL",
    )
    .bind(token_sha256)
    .fetch_optional(conn)
    .await?;
    row.map(|row| TokenRole::from_columns(row.get("role"), row.get("issuer")))
        .transpose()
}

/// Whether any admin token that still works is stored.
pub async fn has_admin(conn: &mut SqliteConnection) -> BrokerResult<bool> {
    let row = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE role = 'admin' AND revoked_ms IS NULL) AS any",
    )
    .fetch_one(conn)
    .await?;
    Ok(row.get::<bool, _>("any"))
}

/// Every token, oldest first.
pub async fn list(conn: &mut SqliteConnection) -> BrokerResult<Vec<TokenRow>> {
    let rows = sqlx::query(
        "SELECT token_sha256, role, issuer, label, created_ms, revoked_ms
         FROM api_tokens ORDER BY created_ms, token_sha256",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(TokenRow {
                token_sha256: row.get("token_sha256"),
                role: TokenRole::from_columns(row.get("role"), row.get("issuer"))?,
                label: row.get("label"),
                created_ms: row.get("created_ms"),
                revoked_ms: row.get("revoked_ms"),
            })
        })
        .collect()
}

/// Revokes the one token whose digest starts with `prefix` (at least 8 hex
/// digits, so a short typo cannot revoke the wrong token). Returns its row.
pub async fn revoke(
    conn: &mut SqliteConnection,
    prefix: &str,
    now_ms: i64,
) -> BrokerResult<TokenRow> {
    if prefix.len() < 8 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(BrokerError::invalid(format!(
            "token id {prefix:?}: give at least 8 hex digits of the id `token list` shows"
        )));
    }
    let prefix = prefix.to_ascii_lowercase();
    let matching: Vec<TokenRow> = list(conn)
        .await?
        .into_iter()
        .filter(|row| row.token_sha256.starts_with(&prefix))
        .collect();
    let [row] = matching.as_slice() else {
        return Err(if matching.is_empty() {
            BrokerError::not_found(format!("no token with id {prefix}"))
        } else {
            BrokerError::invalid(format!(
                "{} tokens have ids starting with {prefix}: give more digits",
                matching.len()
            ))
        });
    };
    sqlx::query(
        "UPDATE api_tokens SET revoked_ms = COALESCE(revoked_ms, ?) WHERE token_sha256 = ?",
    )
    .bind(now_ms)
    .bind(&row.token_sha256)
    .execute(conn)
    .await?;
    Ok(row.clone())
}
