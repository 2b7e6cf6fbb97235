//! The embedded sled database: opened once under a data directory (mode 0700), flushed on shutdown,
//! and refused when it is not the store that was created there (damaged, emptied or replaced).

use std::path::{Path, PathBuf};

/// Why the store could not be used. Never holds stored values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created or secured.
    #[error("cannot prepare data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// sled failed.
    #[error("embedded database at {path}: {source}{}", hint(source))]
    Db {
        /// The database directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// The database is not the one created here: it would start empty or with another store's data.
    #[error(
        "embedded database at {path} is damaged or was replaced: {why}. Refusing to use it. {RESTORE}"
    )]
    Damaged {
        /// The database directory.
        path: PathBuf,
        /// What was found.
        why: &'static str,
    },
    /// The identity file beside the database could not be read or written.
    #[error("store identity file {path}: {source}")]
    Identity {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

const RESTORE: &str = "Restore the data directory from a backup (docs/operations.md, \"Keys, backup and restore\"); to start over with an empty store instead, move the data directory aside (what it sealed cannot be read without it)";

/// Whether a store error means the disk (or the user's quota) is full: a condition that passes.
pub fn is_disk_full(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::StorageFull
                || io.kind() == std::io::ErrorKind::QuotaExceeded
                || matches!(io.raw_os_error(), Some(28 | 122))
        }
        _ => false,
    }
}

fn hint(e: &sled::Error) -> String {
    match e {
        sled::Error::Corruption { .. } => format!(". {RESTORE}"),
        _ => String::new(),
    }
}

/// The tree and keys of the store's identity and closing seal inside the database; the same values
/// are kept in `<name>.id` beside it, so a database that comes up empty or foreign is noticed. The
/// seal is the last record written at a clean close: sled recovers a damaged log only up to the
/// damage, so records lost anywhere before it take the seal with them.
const IDENTITY_TREE: &[u8] = b"store_identity";
const IDENTITY_KEY: &[u8] = b"id";
const SEAL_KEY: &[u8] = b"seal";

/// What the file beside the database says.
#[derive(Debug, PartialEq)]
struct Recorded {
    id: String,
    /// The seal of the last clean close; `None` while open (or after a crash).
    seal: Option<String>,
}

impl Recorded {
    fn parse(text: &str) -> Recorded {
        let mut lines = text.lines();
        let id = lines.next().unwrap_or("").trim().to_owned();
        let seal = lines
            .next()
            .and_then(|l| l.strip_prefix("closed "))
            .map(|s| s.trim().to_owned());
        Recorded { id, seal }
    }

    fn render(&self) -> String {
        match &self.seal {
            Some(seal) => format!("{}\nclosed {seal}\n", self.id),
            None => format!("{}\nopen\n", self.id),
        }
    }
}

fn random_hex() -> Option<String> {
    let mut raw = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw).ok()?;
    Some(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs `f`, turning a panic inside it into `None` without printing it: sled 0.34 panics on some
/// damaged files (while recovering or reading pages) where it should return `Corruption`, and a
/// damaged store must be refused with a message, not crash. Meant for opening and checking a store
/// at start, while one thread uses it: the panic hook is swapped for the duration.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    std::panic::set_hook(hook);
    out
}

/// The page cache when the config does not say (storage.cache_mib).
pub const DEFAULT_CACHE_MIB: u64 = 128;

/// The open database. Closed cleanly (sealed) when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Store {
    inner: std::sync::Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: sled::Db,
    path: PathBuf,
    identity: PathBuf,
    /// Whether the identity check passed, so closing may seal the store.
    checked: bool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.checked {
            return;
        }
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "The store could not be closed cleanly");
        }
    }
}

impl Store {
    /// Opens (creating with mode 0700 when absent) the database `name` under `data_dir`, with the
    /// default page cache.
    pub fn open(data_dir: &Path, name: &str) -> Result<Store, StoreError> {
        Store::open_with_cache(data_dir, name, DEFAULT_CACHE_MIB)
    }

    /// As `open`, with a page cache of `cache_mib` MiB: what bounds the store's memory.
    pub fn open_with_cache(
        data_dir: &Path,
        name: &str,
        cache_mib: u64,
    ) -> Result<Store, StoreError> {
        use std::os::unix::fs::DirBuilderExt as _;
        let dir_err = |source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(dir_err)?;
        let path = data_dir.join(name);
        let existed = path.exists();
        let identity = data_dir.join(format!("{name}.id"));
        if !existed && identity.exists() {
            // Opening would create an empty database where one is recorded.
            return Err(StoreError::Damaged {
                path,
                why: "the database directory is missing",
            });
        }
        let config = sled::Config::new()
            .path(&path)
            .cache_capacity(cache_mib.saturating_mul(1024 * 1024));
        let db = quietly(|| config.open())
            .ok_or_else(|| StoreError::Damaged {
                path: path.clone(),
                why: "the embedded database failed while reading its files",
            })?
            .map_err(|source| StoreError::Db {
                path: path.clone(),
                source,
            })?;
        let mut inner = Inner {
            db,
            path,
            identity,
            checked: false,
        };
        quietly(|| inner.check_identity(existed)).ok_or_else(|| StoreError::Damaged {
            path: inner.path.clone(),
            why: "the embedded database failed while reading its records",
        })??;
        inner.checked = true;
        Ok(Store {
            inner: std::sync::Arc::new(inner),
        })
    }

    /// The underlying database.
    pub fn db(&self) -> &sled::Db {
        &self.inner.db
    }

    /// Writes everything buffered to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.inner
            .db
            .flush_async()
            .await
            .map(drop)
            .map_err(|source| StoreError::Db {
                path: self.inner.path.clone(),
                source,
            })
    }
}

impl Inner {
    /// Compares the identity (and, after a clean close, the seal) inside the database with the
    /// record beside it, then marks the store open; records an identity for a new store (and once for
    /// a store from before identities).
    fn check_identity(&self, existed: bool) -> Result<(), StoreError> {
        let file = self.identity.as_path();
        let db_err = |source| StoreError::Db {
            path: self.path.clone(),
            source,
        };
        let id_err = |source| StoreError::Identity {
            path: file.to_owned(),
            source,
        };
        let damaged = |why| StoreError::Damaged {
            path: self.path.clone(),
            why,
        };
        let outside = match std::fs::read_to_string(file) {
            Ok(s) => Some(Recorded::parse(&s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(id_err(e)),
        };
        let tree = self.db.open_tree(IDENTITY_TREE).map_err(db_err)?;
        let text = |v: sled::IVec| String::from_utf8_lossy(&v).into_owned();
        let inside = tree.get(IDENTITY_KEY).map_err(db_err)?.map(text);
        let id = match (outside, inside) {
            (Some(o), Some(i)) if o.id == i => {
                if let Some(seal) = o.seal
                    && tree.get(SEAL_KEY).map_err(db_err)?.map(text) != Some(seal)
                {
                    return Err(damaged(
                        "records written before it was last closed are missing (the log is damaged)",
                    ));
                }
                i
            }
            (Some(_), Some(_)) => {
                return Err(damaged(
                    "its identity differs from the one recorded beside it (another store's files?)",
                ));
            }
            (Some(_), None) => {
                return Err(damaged(
                    "it holds no identity record, so it came up empty or lost its first records",
                ));
            }
            (None, Some(i)) => i,
            (None, None) => {
                if existed && self.holds_data().map_err(db_err)? {
                    tracing::info!(store = %self.path.display(), "Recording the store's identity");
                }
                let id =
                    random_hex().ok_or_else(|| id_err(std::io::Error::other("no randomness")))?;
                tree.insert(IDENTITY_KEY, id.as_bytes()).map_err(db_err)?;
                tree.flush().map_err(db_err)?;
                id
            }
        };
        write_identity(file, &Recorded { id, seal: None }).map_err(id_err)
    }

    /// Closes the store cleanly: flushes it, writes a new seal as its last record and records the
    /// seal beside it, so the next open notices records lost before the seal. Blocking.
    fn close(&self) -> Result<(), StoreError> {
        let db_err = |source| StoreError::Db {
            path: self.path.clone(),
            source,
        };
        let id_err = |source| StoreError::Identity {
            path: self.identity.clone(),
            source,
        };
        let tree = self.db.open_tree(IDENTITY_TREE).map_err(db_err)?;
        let id = tree
            .get(IDENTITY_KEY)
            .map_err(db_err)?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .ok_or_else(|| id_err(std::io::Error::other("the store has no identity record")))?;
        self.db.flush().map_err(db_err)?;
        let seal = random_hex().ok_or_else(|| id_err(std::io::Error::other("no randomness")))?;
        tree.insert(SEAL_KEY, seal.as_bytes()).map_err(db_err)?;
        tree.flush().map_err(db_err)?;
        write_identity(
            &self.identity,
            &Recorded {
                id,
                seal: Some(seal),
            },
        )
        .map_err(id_err)
    }

    fn holds_data(&self) -> Result<bool, sled::Error> {
        for name in self.db.tree_names() {
            if !self.db.open_tree(&name)?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Writes the identity file durably: a temporary file renamed into place, then the directory synced.
fn write_identity(file: &Path, recorded: &Recorded) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = file.with_extension("id.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(recorded.render().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_some(dir: &Path) {
        let s = Store::open(dir, "t.db").unwrap();
        let tree = s.db().open_tree("data").unwrap();
        for i in 0u32..200 {
            tree.insert(i.to_be_bytes(), vec![7u8; 100]).unwrap();
        }
    }

    fn id_of(dir: &Path) -> String {
        let text = std::fs::read_to_string(dir.join("t.db.id")).unwrap();
        text.lines().next().unwrap().to_owned()
    }

    #[test]
    fn a_store_reopens_as_itself() {
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path());
        let id = id_of(dir.path());
        assert_eq!(id.len(), 32);
        let s = Store::open(dir.path(), "t.db").unwrap();
        assert_eq!(s.db().open_tree("data").unwrap().len(), 200);
        // Without a clean close (a crash), the next open still works.
        s.db()
            .open_tree("data")
            .unwrap()
            .insert(b"late", b"x")
            .unwrap();
        drop(s);
        let crashed = format!("{id}\nopen\n");
        std::fs::write(dir.path().join("t.db.id"), crashed).unwrap();
        let s = Store::open(dir.path(), "t.db").unwrap();
        assert_eq!(s.db().open_tree("data").unwrap().len(), 201);
        drop(s);
        // A lost identity file is written again from the database.
        std::fs::remove_file(dir.path().join("t.db.id")).unwrap();
        drop(Store::open(dir.path(), "t.db").unwrap());
        assert_eq!(id_of(dir.path()), id);
    }

    #[test]
    fn damage_anywhere_in_a_cleanly_closed_log_is_refused() {
        for at in [0.1, 0.3, 0.5, 0.7, 0.9] {
            let dir = tempfile::tempdir().unwrap();
            write_some(dir.path());
            let path = dir.path().join("t.db/db");
            let mut raw = std::fs::read(&path).unwrap();
            // Inside what was written (sled's file is larger than its log).
            let used = raw.iter().rposition(|&b| b != 0).unwrap();
            let from = (used as f64 * at) as usize;
            raw[from..from + 64].fill(0x5a);
            std::fs::write(&path, raw).unwrap();
            let msg = refused(dir.path());
            assert!(
                msg.contains("missing") || msg.contains("orrupt"),
                "at {at}: {msg}"
            );
        }
    }

    fn refused(dir: &Path) -> String {
        let e = Store::open(dir, "t.db").expect_err("a damaged store must be refused");
        let msg = e.to_string();
        assert!(msg.contains("Restore the data directory"), "{msg}");
        msg
    }

    #[test]
    fn an_emptied_missing_or_foreign_database_is_refused() {
        // The database directory gone: refused, and not recreated empty.
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path());
        std::fs::remove_dir_all(dir.path().join("t.db")).unwrap();
        assert!(refused(dir.path()).contains("missing"));
        // The database file emptied.
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path());
        std::fs::write(dir.path().join("t.db/db"), b"").unwrap();
        refused(dir.path());
        // Its first bytes overwritten.
        let dir = tempfile::tempdir().unwrap();
        write_some(dir.path());
        let mut raw = std::fs::read(dir.path().join("t.db/db")).unwrap();
        raw[..512].fill(0x5a);
        std::fs::write(dir.path().join("t.db/db"), raw).unwrap();
        refused(dir.path());
        // Another store's files put in its place.
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_some(a.path());
        write_some(b.path());
        std::fs::write(
            a.path().join("t.db.id"),
            format!("{}\nopen\n", id_of(b.path())),
        )
        .unwrap();
        assert!(refused(a.path()).contains("differs"));
    }

    #[test]
    fn a_store_from_before_identities_is_adopted_once() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("t.db")).unwrap();
            db.open_tree("data").unwrap().insert(b"k", b"v").unwrap();
            db.flush().unwrap();
        }
        let s = Store::open(dir.path(), "t.db").unwrap();
        assert!(
            s.db()
                .open_tree("data")
                .unwrap()
                .get(b"k")
                .unwrap()
                .is_some()
        );
        assert!(dir.path().join("t.db.id").exists());
    }
}
