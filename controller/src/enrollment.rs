//! One-time enrollment tokens. An operator issues one with `readi-controller enroll-token`; it is a
//! file under the data directory holding only the token's SHA-256 and the applications it grants, so
//! it works while the controller runs. Redeeming it renames the file, so it works once.

use readi_common::token::{digest, random_hex, same};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Token prefix, so a leaked token is recognisable in a scan.
const PREFIX: &str = "rde_";

/// Why a token was not accepted. Messages never echo the token.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// Not a token of this format.
    #[error("the enrollment token is malformed (expected rde_<id>_<secret>)")]
    Malformed,
    /// Unknown, already used, or wrong secret: indistinguishable on purpose.
    #[error("the enrollment token is not valid: unknown, already used or revoked")]
    Invalid,
    /// Past its expiry.
    #[error("the enrollment token expired; ask the operator for a new one")]
    Expired,
    /// The token directory could not be used.
    #[error("enrollment tokens at {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What a token grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// SHA-256 of the secret, hex.
    digest: String,
    /// Applications the enrolled agent may report on.
    pub apps: Vec<String>,
    /// Unix seconds after which the token is refused.
    pub expires_at: i64,
}

/// The directory tokens live in.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("enrollment")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EnrollError + '_ {
    move |source| EnrollError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Issues a token for `apps`, valid for `ttl_secs`, and returns it (shown once, stored only hashed).
pub fn issue(
    data_dir: &Path,
    apps: &[String],
    ttl_secs: i64,
    now: i64,
) -> Result<String, EnrollError> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let d = dir(data_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)
        .map_err(io(&d))?;
    let (id, secret) = (random_hex(6), random_hex(24));
    let grant = Grant {
        digest: digest(&secret),
        apps: apps.to_vec(),
        expires_at: now + ttl_secs,
    };
    let path = d.join(format!("{id}.json"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io(&path))?;
    let body = serde_json::to_vec_pretty(&grant).expect("grant serialises");
    f.write_all(&body)
        .and_then(|()| f.sync_all())
        .map_err(io(&path))?;
    Ok(format!("{PREFIX}{id}_{secret}"))
}

/// Redeems a token once: checks it, then retires it so no second agent can use it.
pub fn redeem(data_dir: &Path, token: &str, now: i64) -> Result<Grant, EnrollError> {
    let (id, secret) = token
        .strip_prefix(PREFIX)
        .and_then(|t| t.split_once('_'))
        .ok_or(EnrollError::Malformed)?;
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EnrollError::Malformed);
    }
    let d = dir(data_dir);
    let path = d.join(format!("{id}.json"));
    let body = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(EnrollError::Invalid),
        Err(e) => return Err(io(&path)(e)),
    };
    let grant: Grant = serde_json::from_slice(&body).map_err(|_| EnrollError::Invalid)?;
    if !same(&digest(secret), &grant.digest) {
        return Err(EnrollError::Invalid);
    }
    if now > grant.expires_at {
        return Err(EnrollError::Expired);
    }
    // The rename is the single point of truth: of two concurrent redeemers, one wins.
    let used = d.join(format!("{id}.used"));
    match std::fs::rename(&path, &used) {
        Ok(()) => Ok(grant),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(EnrollError::Invalid),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Marks an agent revoked by file, so a running controller refuses it at once.
pub fn revoke(data_dir: &Path, agent_id: &str) -> Result<(), EnrollError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let d = data_dir.join("revoked");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)
        .map_err(io(&d))?;
    let path = d.join(agent_id);
    std::fs::write(&path, b"").map_err(io(&path))
}

/// Whether an agent has been revoked.
pub fn is_revoked(data_dir: &Path, agent_id: &str) -> bool {
    data_dir.join("revoked").join(agent_id).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_once_and_only_with_its_secret() {
        let d = tempfile::tempdir().unwrap();
        let apps = vec!["notes".to_owned()];
        let token = issue(d.path(), &apps, 3600, 100).unwrap();
        let wrong = format!("{}x", &token[..token.len() - 1]);
        assert!(matches!(
            redeem(d.path(), &wrong, 100),
            Err(EnrollError::Invalid)
        ));
        assert!(matches!(
            redeem(d.path(), "nonsense", 100),
            Err(EnrollError::Malformed)
        ));
        assert!(matches!(
            redeem(d.path(), "rde_../../etc_x", 100),
            Err(EnrollError::Malformed)
        ));
        assert_eq!(redeem(d.path(), &token, 200).unwrap().apps, apps);
        assert!(matches!(
            redeem(d.path(), &token, 200),
            Err(EnrollError::Invalid)
        ));
        // Only the digest is on disk.
        let secret = token.rsplit('_').next().unwrap();
        for f in std::fs::read_dir(dir(d.path())).unwrap() {
            let body = std::fs::read_to_string(f.unwrap().path()).unwrap();
            assert!(!body.contains(secret));
        }
    }

    #[test]
    fn an_expired_token_is_refused_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let token = issue(d.path(), &["a".into()], 10, 100).unwrap();
        assert!(matches!(
            redeem(d.path(), &token, 111),
            Err(EnrollError::Expired)
        ));
    }

    #[test]
    fn revocation_is_seen_by_id() {
        let d = tempfile::tempdir().unwrap();
        assert!(!is_revoked(d.path(), "agt-1"));
        revoke(d.path(), "agt-1").unwrap();
        assert!(is_revoked(d.path(), "agt-1"));
    }
}
