//! Secrets: where they come from (env, file, systemd credential) and a wrapper that never prints them.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a secret is read from. Secrets are never written inline in a config file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file, which must not be readable by group or others.
    File(PathBuf),
    /// A systemd credential: `$CREDENTIALS_DIRECTORY/<name>` (`LoadCredential=`).
    Credential(String),
}

/// Why a secret could not be loaded. Messages name the source, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The variable is not set or not UTF-8.
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    /// The file could not be read.
    #[error("cannot read secret file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is readable by group or others.
    #[error(
        "secret file {path} has mode {mode:o}; it must not be accessible to group or others (chmod 600)"
    )]
    LoosePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// `$CREDENTIALS_DIRECTORY` is not set.
    #[error("systemd credential {0} requested but CREDENTIALS_DIRECTORY is not set")]
    NoCredentialsDirectory(String),
    /// The secret is empty.
    #[error("secret from {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Reads the secret, checking file permissions. Trailing newlines are trimmed.
    pub fn load(&self) -> Result<Secret, SecretError> {
        let raw = match self {
            SecretSource::Env(name) => {
                std::env::var(name).map_err(|_| SecretError::EnvMissing(name.clone()))?
            }
            SecretSource::File(path) => read_private_file(path)?,
            SecretSource::Credential(name) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY")
                    .ok_or_else(|| SecretError::NoCredentialsDirectory(name.clone()))?;
                read_private_file(&PathBuf::from(dir).join(name))?
            }
        };
        let value = raw.trim_end_matches(['\n', '\r']).to_owned();
        if value.is_empty() {
            return Err(SecretError::Empty(self.to_string()));
        }
        Ok(Secret(value))
    }
}

impl SecretSource {
    /// Checks what can be checked before the secret is needed, recording problems under `key`: a
    /// file (or a credential, where `$CREDENTIALS_DIRECTORY` is set) must exist and be private.
    /// Never reads the value.
    pub fn check(&self, problems: &mut crate::config::Problems, key: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = match self {
            SecretSource::Env(_) => return,
            SecretSource::File(path) => path.clone(),
            SecretSource::Credential(name) => match std::env::var_os("CREDENTIALS_DIRECTORY") {
                Some(dir) => PathBuf::from(dir).join(name),
                None => return,
            },
        };
        match std::fs::metadata(&path) {
            Err(e) => problems.push(
                key,
                format!("cannot read secret file {}: {e}", path.display()),
            ),
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => problems.push(
                key,
                SecretError::LoosePermissions {
                    mode: meta.permissions().mode() & 0o777,
                    path,
                }
                .to_string(),
            ),
            Ok(_) => {}
        }
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(n) => write!(f, "env {n}"),
            SecretSource::File(p) => write!(f, "file {}", p.display()),
            SecretSource::Credential(n) => write!(f, "credential {n}"),
        }
    }
}

fn read_private_file(path: &PathBuf) -> Result<String, SecretError> {
    use std::os::unix::fs::PermissionsExt as _;
    let file_err = |source| SecretError::File {
        path: path.clone(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(file_err)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::LoosePermissions {
            path: path.clone(),
            mode,
        });
    }
    std::fs::read_to_string(path).map_err(file_err)
}

/// A secret value. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2-canary");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn file_secret_requires_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretSource::File(path.clone()).load().unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(!err.to_string().contains("s3cret"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(SecretSource::File(path).load().unwrap().expose(), "s3cret");
    }

    #[test]
    fn parses_from_toml() {
        #[derive(Deserialize)]
        struct T {
            token: SecretSource,
        }
        let t: T = toml::from_str(r#"token = { env = "X_TOKEN" }"#).unwrap();
        assert_eq!(t.token, SecretSource::Env("X_TOKEN".into()));
        assert!(toml::from_str::<T>(r#"token = "inline""#).is_err());
    }
}
