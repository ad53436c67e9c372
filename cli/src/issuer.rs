//! Who the issuer is: `--issuer` (or `$WASMGRID_ISSUER`), shared by
//! `submit`, `balance` and `ledger`, and the default when neither is given.

use clap::Args;

/// `--issuer`, for commands that act on an issuer's own account.
#[derive(Debug, Clone, Args)]
pub struct IssuerArgs {
    /// Who submits and pays; defaults to $USER, or "default".
    #[arg(long, env = "WASMGRID_ISSUER", value_name = "NAME")]
    pub issuer: Option<String>,
}

impl IssuerArgs {
    /// The issuer named on the command line, else [`default_issuer`].
    pub fn name(&self) -> String {
        self.issuer
            .clone()
            .filter(|issuer| !issuer.is_empty())
            .unwrap_or_else(default_issuer)
    }

    /// Whether an issuer was named (flag or environment), as opposed to the
    /// default.
    pub fn is_given(&self) -> bool {
        self.issuer
            .as_ref()
            .is_some_and(|issuer| !issuer.is_empty())
    }
}

/// `$USER`, or `default` when it is unset or empty.
pub fn default_issuer() -> String {
    std::env::var("USER")
        .ok()
        .filter(|user| !user.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

/// The ledger account of an issuer, e.g. `issuer:alice`.
pub fn issuer_account(issuer: &str) -> String {
    format!("issuer:{issuer}")
}
