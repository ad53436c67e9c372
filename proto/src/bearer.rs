//! [`Bearer`]: the interceptor that sends an issuer's or admin's API token
//! as `authorization: Bearer <token>` on every call (the CLI and tests; the
//! agent has its own, whose token changes when it registers again).

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Adds `authorization: Bearer <token>` to every request; without a token,
/// requests go out as they are (and the broker answers `Unauthenticated`).
#[derive(Clone, Debug, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

/// A token that cannot travel in a header.
#[derive(Debug, thiserror::Error)]
#[error("the token is not a valid header value (visible ASCII only)")]
pub struct InvalidToken;

impl Bearer {
    /// The interceptor for `token` (surrounding white space removed: tokens
    /// are often read from files that end in a newline).
    pub fn new(token: &str) -> Result<Bearer, InvalidToken> {
        let value = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| InvalidToken)?;
        Ok(Bearer(Some(value)))
    }

    /// No token: calls that need one are refused by the broker.
    pub fn none() -> Bearer {
        Bearer(None)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_in_the_authorization_header() -> Result<(), Status> {
        let mut bearer = Bearer::new("abc123\n").map_err(|e| Status::internal(e.to_string()))?;
        let request = bearer.call(Request::new(()))?;
        assert_eq!(
            request
                .metadata()
                .get("authorization")
                .map(|v| v.to_str().ok()),
            Some(Some("Bearer abc123"))
        );
        let request = Bearer::none().call(Request::new(()))?;
        assert!(request.metadata().get("authorization").is_none());
        assert!(Bearer::new("line\nbreak").is_err());
        Ok(())
    }
}
