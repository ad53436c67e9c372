//! Reading the bearer token of a request, and the caller of the issuer and
//! admin services behind it.

use tonic::{Request, Status};

use crate::core::{Broker, Caller};

/// The token in `authorization: Bearer <token>`; `whose` names the kind of
/// token expected, for the error message.
pub(crate) fn bearer_token<'r, T>(request: &'r Request<T>, whose: &str) -> Result<&'r str, Status> {
    let header = request.metadata().get("authorization").ok_or_else(|| {
        Status::unauthenticated(format!("missing authorization: Bearer <{whose}>"))
    })?;
    header
        .to_str()
        .ok()
        .and_then(bearer_of)
        .ok_or_else(|| Status::unauthenticated(format!("authorization must be `Bearer <{whose}>`")))
}

/// The token of an `Authorization` header value `Bearer <token>`, for gRPC
/// metadata and HTTP headers alike.
pub(crate) fn bearer_of(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// The issuer or admin calling.
pub(crate) async fn caller<T>(broker: &Broker, request: &Request<T>) -> Result<Caller, Status> {
    let token = bearer_token(request, "issuer or admin token")?;
    Ok(broker.caller(token).await?)
}
