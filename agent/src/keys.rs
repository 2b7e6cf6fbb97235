//! The key-encryption key (KEK) and the data key derived from it, checked against the store at start.
//!
//! The KEK comes from a secret source (file with mode 0600, environment, systemd credential). On embedded
//! defaults it is generated once into `<data_dir>/kek` (mode 0600) when the store is new; an existing
//! store without its KEK, or with another one, refuses to start rather than starting empty.

use std::path::{Path, PathBuf};

use readi_common::secret::{SecretError, SecretSource};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

use crate::keyring::{Keyring, KeyringError, SEALS_PER_KEY};
use crate::seal::Sealer;

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The configured secret could not be read.
    #[error("keys.kek: {0}")]
    Source(#[from] SecretError),
    /// The KEK is not 64 hex characters (32 bytes).
    #[error(
        "keys.kek: the key must be 64 hexadecimal characters (32 bytes); generate one with `openssl rand -hex 32`"
    )]
    Format,
    /// The store exists but its KEK is missing.
    #[error(
        "the store at {0} exists but its key-encryption key is missing; restore the KEK (keys.kek) — refusing to start with an empty store"
    )]
    Missing(PathBuf),
    /// The KEK does not open this store.
    #[error(
        "the key-encryption key does not open the store at {0}: wrong key (check keys.kek) — refusing to start"
    )]
    Wrong(PathBuf),
    /// Writing the generated KEK failed.
    #[error("cannot write generated KEK {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The random source failed.
    #[error("no randomness available to generate a key")]
    Random,
    /// The store could not be read or written.
    #[error("key check record: {0}")]
    Db(#[from] sled::Error),
    /// The data keys could not be loaded.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

/// Keys in use by the agent.
#[derive(Debug)]
pub struct Keys {
    /// Seals values at rest, under per-class, per-epoch data keys.
    pub sealer: Keyring,
    /// Where the KEK came from (for the safeguards report; never the key).
    pub source: String,
    /// MACs the high-water mark beside the store; derived from the KEK, so it lives outside the
    /// database and a mark cannot be forged without the key (ring's `Debug` shows no key bytes).
    pub(crate) mark: ring::hmac::Key,
}

const CHECK_TREE: &str = "meta";
const CHECK_KEY: &[u8] = b"key-check";
const CHECK_VALUE: &[u8] = b"readi key check v1";

fn parse_hex(s: &str) -> Result<[u8; 32], KeyError> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(KeyError::Format);
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| KeyError::Format)?;
    }
    Ok(out)
}

fn derive(kek: &[u8; 32], purpose: &[u8]) -> [u8; 32] {
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"readi-agent data key").extract(kek);
    let mut out = [0u8; 32];
    prk.expand(&[purpose], Len32)
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF-SHA256 expands 32 bytes");
    out
}

impl Keys {
    /// Loads the KEK (from `source`, or `<data_dir>/kek`), derives the data key and checks it against the
    /// store's key-check record, creating that record (and the default KEK file) only for a new store.
    pub fn load(
        source: Option<&SecretSource>,
        data_dir: &Path,
        db: &sled::Db,
    ) -> Result<Keys, KeyError> {
        let check_tree = db.open_tree(CHECK_TREE)?;
        let existing = check_tree.get(CHECK_KEY)?;
        let (kek, described) = match source {
            Some(src) => (parse_hex(src.load()?.expose())?, src.to_string()),
            None => {
                let path = data_dir.join("kek");
                let described = format!(
                    "file {} (generated; move it to keys.kek on another device)",
                    path.display()
                );
                if path.exists() {
                    (
                        parse_hex(SecretSource::File(path).load()?.expose())?,
                        described,
                    )
                } else if existing.is_some() {
                    return Err(KeyError::Missing(data_dir.to_owned()));
                } else {
                    (generate(&path)?, described)
                }
            }
        };
        let sealer = Sealer::new(&derive(&kek, b"seal v1"));
        match existing {
            Some(sealed) => {
                if sealer.open(CHECK_TREE, CHECK_KEY, &sealed).as_deref() != Ok(CHECK_VALUE) {
                    return Err(KeyError::Wrong(data_dir.to_owned()));
                }
            }
            None => {
                let sealed = sealer
                    .seal(CHECK_TREE, CHECK_KEY, CHECK_VALUE)
                    .map_err(|_| KeyError::Random)?;
                check_tree.insert(CHECK_KEY, sealed)?;
                check_tree.flush()?;
            }
        }
        let keyring = Keyring::load(
            db,
            Sealer::new(&derive(&kek, b"wrap v1")),
            sealer,
            SEALS_PER_KEY,
        )?;
        Ok(Keys {
            sealer: keyring,
            source: described,
            mark: ring::hmac::Key::new(
                ring::hmac::HMAC_SHA256,
                &derive(&kek, b"high-water mark v1"),
            ),
        })
    }
}

fn generate(path: &Path) -> Result<[u8; 32], KeyError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| KeyError::Random)?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let write_err = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_err)?;
    f.write_all(hex.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(write_err)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_reopens_and_wrong_or_missing_key_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let k1 = Keys::load(None, dir.path(), &db).unwrap();
        let sealed = k1.sealer.seal("vault", b"k", b"v").unwrap();
        let k2 = Keys::load(None, dir.path(), &db).unwrap();
        assert_eq!(k2.sealer.open("vault", b"k", &sealed).unwrap(), b"v");

        wrong_key_refuses(dir.path(), &db);
        std::fs::remove_file(dir.path().join("kek")).unwrap();
        let err = Keys::load(None, dir.path(), &db).unwrap_err();
        assert!(matches!(err, KeyError::Missing(_)), "{err}");
    }

    fn wrong_key_refuses(dir: &Path, db: &sled::Db) {
        use std::os::unix::fs::PermissionsExt as _;
        let other = dir.join("other-kek");
        std::fs::write(&other, "11".repeat(32)).unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = Keys::load(Some(&SecretSource::File(other)), dir, db).unwrap_err();
        assert!(matches!(err, KeyError::Wrong(_)), "{err}");
        assert!(err.to_string().contains("keys.kek"));
    }
}
