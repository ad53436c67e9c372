//! The broker's TLS identity: a certificate and key the operator gives, or
//! for development (`--dev-tls`, `wasmgrid demo`) a private CA and a server
//! certificate generated with rcgen, kept in `DATA_DIR/tls/` so agents that
//! trust the CA keep trusting the broker across restarts.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tonic::transport::{Identity, ServerTlsConfig};

use crate::error::{BrokerError, BrokerResult};
use crate::private_file::write_private;

/// Subdirectory of the data dir holding the development CA and certificate.
pub const DEV_TLS_DIR: &str = "tls";
/// The CA clients must trust to reach a `--dev-tls` broker.
pub const DEV_CA_FILE: &str = "ca.pem";
const DEV_CERT_FILE: &str = "server.pem";
const DEV_KEY_FILE: &str = "server.key";

/// Names a development certificate is valid for: the loopback names, and
/// whatever the operator adds.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A server certificate chain and its key, in PEM.
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TlsIdentity {
    /// Reads the operator's certificate chain and key.
    pub fn from_files(cert: &Path, key: &Path) -> BrokerResult<TlsIdentity> {
        Ok(TlsIdentity {
            cert_pem: read(cert, "TLS certificate")?,
            key_pem: read(key, "TLS key")?,
        })
    }

    /// The development identity in `data_dir/tls/`, created on first use:
    /// a CA (whose certificate clients trust) and a server certificate for
    /// the loopback names plus `extra_names`. Returns it with the CA's path.
    pub fn development(
        data_dir: &Path,
        extra_names: &[String],
    ) -> BrokerResult<(TlsIdentity, PathBuf)> {
        let dir = data_dir.join(DEV_TLS_DIR);
        let ca_path = dir.join(DEV_CA_FILE);
        let (cert_path, key_path) = (dir.join(DEV_CERT_FILE), dir.join(DEV_KEY_FILE));
        if ca_path.exists() && cert_path.exists() && key_path.exists() {
            return Ok((Self::from_files(&cert_path, &key_path)?, ca_path));
        }
        let generated = generate(extra_names).map_err(|error| {
            BrokerError::FailedPrecondition(format!("cannot generate a TLS certificate: {error}"))
        })?;
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        write_private(&key_path, &generated.key_pem)?;
        write(&cert_path, &generated.cert_pem)?;
        // The CA last: its presence means the set is complete.
        write(&ca_path, &generated.ca_pem)?;
        Ok((
            TlsIdentity {
                cert_pem: generated.cert_pem,
                key_pem: generated.key_pem,
            },
            ca_path,
        ))
    }

    /// The server configuration for tonic.
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }
}

struct Generated {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn generate(extra_names: &[String]) -> Result<Generated, rcgen::Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    // A name of its own: a client given another broker's development CA
    // then fails with "unknown issuer", not a confusing bad signature.
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("wasmgrid development CA {:016x}", rand::random::<u64>()),
    );
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let names: Vec<String> = LOOPBACK_NAMES
        .iter()
        .map(|name| (*name).to_owned())
        .chain(extra_names.iter().cloned())
        .collect();
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "wasmgrid broker");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;
    Ok(Generated {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn read(path: &Path, what: &str) -> BrokerResult<String> {
    std::fs::read_to_string(path).map_err(|source| BrokerError::Io {
        context: format!("cannot read the {what} {}", path.display()),
        source,
    })
}

fn write(path: &Path, text: &str) -> BrokerResult<()> {
    std::fs::write(path, text).map_err(io(path))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BrokerError + '_ {
    move |source| BrokerError::Io {
        context: format!("cannot write {}", path.display()),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_development_identity_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (first, ca) =
            TlsIdentity::development(dir.path(), &["broker.lan".into()]).expect("generated");
        assert!(first.cert_pem.contains("BEGIN CERTIFICATE"));
        assert!(
            std::fs::read_to_string(&ca)
                .expect("ca")
                .contains("BEGIN CERTIFICATE")
        );
        let (again, _) = TlsIdentity::development(dir.path(), &[]).expect("reused");
        assert_eq!(first.cert_pem, again.cert_pem, "kept across restarts");
    }
}
