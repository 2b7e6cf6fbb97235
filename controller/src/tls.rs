//! The controller's own certificate authority: made on first start under the data directory, it signs
//! the controller's server certificate and, at enrollment, a client certificate for each agent's
//! Ed25519 reporting key, so every connection after enrollment is mutually authenticated.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PublicKeyData, SignatureAlgorithm,
};

/// Why the CA could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// rcgen refused.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
}

/// The CA and the controller's server identity.
pub struct AgentCa {
    params: CertificateParams,
    key: KeyPair,
    /// The CA certificate agents trust (PEM), as written on first start.
    pub ca_pem: String,
    /// The server certificate (PEM).
    pub server_pem: String,
    /// The server key (PEM).
    pub server_key_pem: String,
    /// Where the CA certificate is, to hand to clinic IT.
    pub ca_path: PathBuf,
}

impl std::fmt::Debug for AgentCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCa")
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

/// An agent's raw Ed25519 public key, as rcgen wants it.
struct Ed25519Public<'a>(&'a [u8]);

impl PublicKeyData for Ed25519Public<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }

    fn algorithm(&self) -> &SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "readi controller agent CA");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

fn read(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn write(path: &Path, body: &str, mode: u32) -> Result<(), TlsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(body.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(err)
}

impl AgentCa {
    /// Loads the CA under `data_dir/tls`, creating it on first start, and issues a server certificate
    /// for `names` (host names or IP addresses).
    pub fn load(data_dir: &Path, names: &[String]) -> Result<AgentCa, TlsError> {
        use std::os::unix::fs::DirBuilderExt as _;
        let dir = data_dir.join("tls");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| TlsError::Io {
                path: dir.clone(),
                source,
            })?;
        let (key_path, ca_path) = (dir.join("ca.key"), dir.join("ca.pem"));
        let (key, ca_pem) = match (read(&key_path)?, read(&ca_path)?) {
            (Some(k), Some(c)) => (KeyPair::from_pem(&k)?, c),
            _ => {
                let key = KeyPair::generate()?;
                let cert = ca_params().self_signed(&key)?;
                write(&key_path, &key.serialize_pem(), 0o600)?;
                write(&ca_path, &cert.pem(), 0o644)?;
                (key, cert.pem())
            }
        };
        let params = ca_params();
        let issuer = params.clone().self_signed(&key)?;
        let server_key = KeyPair::generate()?;
        let mut sp = CertificateParams::new(names.to_vec())?;
        sp.distinguished_name
            .push(DnType::CommonName, "readi controller");
        sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = sp.signed_by(&server_key, &issuer, &key)?;
        Ok(AgentCa {
            params,
            key,
            ca_pem,
            server_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            ca_path,
        })
    }

    /// A client certificate for an agent's Ed25519 key: (PEM, DER).
    pub fn issue(&self, agent_id: &str, public_key: &[u8]) -> Result<(String, Vec<u8>), TlsError> {
        let issuer = self.params.clone().self_signed(&self.key)?;
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, agent_id);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&Ed25519Public(public_key), &issuer, &self.key)?;
        Ok((cert.pem(), cert.der().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_persists_and_issues_client_certificates() {
        let d = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let a = AgentCa::load(d.path(), &names).unwrap();
        let b = AgentCa::load(d.path(), &names).unwrap();
        assert_eq!(a.ca_pem, b.ca_pem, "the CA is made once");
        let (pem, der) = a.issue("agt-1", &[9u8; 32]).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!der.is_empty());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(d.path().join("tls/ca.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
