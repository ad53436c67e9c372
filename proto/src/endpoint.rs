//! [`endpoint`]: how every client (agent, CLI, tests) reaches a broker. An
//! `https://` URL is TLS (rustls) verified against the public web roots
//! plus, when given, the broker's own CA (e.g. the development CA a
//! `--dev-tls` broker writes to `DATA_DIR/tls/ca.pem`); the name checked is
//! the URL's host. An `http://` URL is plain text, for brokers started with
//! `--insecure`.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// Why a broker URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Not a URL tonic accepts.
    #[error("invalid broker URL '{url}': {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file cannot be read.
    #[error("cannot read the CA certificate {path}: {source}")]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A CA was given for a plain-text URL: the user meant TLS.
    #[error("a CA certificate was given for the plain-text URL '{0}': use https://")]
    CaWithoutTls(String),
    /// The TLS settings were refused.
    #[error("cannot set up TLS for '{url}': {reason}")]
    Tls {
        /// The URL.
        url: String,
        /// What tonic said.
        reason: String,
    },
}

/// The endpoint for `url` (`host:port` alone means `http://host:port`),
/// with TLS for `https://` trusting `ca_cert` besides the public roots.
pub fn endpoint(url: &str, ca_cert: Option<&Path>) -> Result<Endpoint, EndpointError> {
    let url = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let endpoint =
        Endpoint::from_shared(url.clone()).map_err(|error| EndpointError::InvalidUrl {
            url: url.clone(),
            reason: error.to_string(),
        })?;
    if !url.starts_with("https://") {
        return match ca_cert {
            Some(_) => Err(EndpointError::CaWithoutTls(url)),
            None => Ok(endpoint),
        };
    }
    let mut tls = ClientTlsConfig::new().with_webpki_roots();
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).map_err(|source| EndpointError::ReadCa {
            path: path.to_owned(),
            source,
        })?;
        tls = tls.ca_certificate(Certificate::from_pem(pem));
    }
    endpoint
        .tls_config(tls)
        .map_err(|error| EndpointError::Tls {
            url,
            reason: error.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_tls_urls() {
        assert!(endpoint("127.0.0.1:7070", None).is_ok());
        assert!(endpoint("https://127.0.0.1:7070", None).is_ok());
        assert!(matches!(
            endpoint("http://127.0.0.1:7070", Some(Path::new("/nonexistent.pem"))),
            Err(EndpointError::CaWithoutTls(_))
        ));
        assert!(matches!(
            endpoint(
                "https://127.0.0.1:7070",
                Some(Path::new("/nonexistent.pem"))
            ),
            Err(EndpointError::ReadCa { .. })
        ));
        assert!(matches!(
            endpoint("http://bad url", None),
            Err(EndpointError::InvalidUrl { .. })
        ));
    }
}
