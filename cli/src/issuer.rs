//! Which issuer a command acts for: `--issuer` (or `$WASMGRID_ISSUER`),
//! shared by `submit`, `balance` and `ledger`. An issuer's token acts for
//! its own issuer, so the flag is only needed with an admin's token.

use clap::Args;

/// `--issuer`, for commands that act on an issuer's own account.
#[derive(Debug, Clone, Args)]
pub struct IssuerArgs {
    /// The issuer to act for. An issuer's token acts for its own issuer
    /// (the default); an admin's token must name one.
    #[arg(long, env = "WASMGRID_ISSUER", value_name = "NAME")]
    pub issuer: Option<String>,
}

impl IssuerArgs {
    /// The issuer named on the command line, or "" to let the broker take
    /// the token's own issuer.
    pub fn requested(&self) -> String {
        self.issuer.clone().unwrap_or_default()
    }
}

/// The ledger account of an issuer, e.g. `issuer:alice`.
pub fn issuer_account(issuer: &str) -> String {
    format!("issuer:{issuer}")
}

/// The issuer of an account `issuer:NAME` (the account itself otherwise).
pub fn issuer_of_account(account: &str) -> &str {
    account.strip_prefix("issuer:").unwrap_or(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_name_their_issuer() {
        assert_eq!(issuer_account("alice"), "issuer:alice");
        assert_eq!(issuer_of_account("issuer:alice"), "alice");
        assert_eq!(issuer_of_account("broker"), "broker");
    }
}
