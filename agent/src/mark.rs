//! The high-water mark: a small MAC'd file beside the database naming the newest acknowledged audit
//! record, session map and escalation, advanced (and fsync'd) before a write is acknowledged, so a
//! store that comes back shorter than what callers were told is refused, after a crash or a clean
//! stop alike.
//!
//! Writers advance it after their sled flush; concurrent advances are grouped, so one file write
//! covers every caller whose flush finished before it (group commit). The store may be ahead of the
//! mark (a crash between flush and mark loses only unacknowledged writes), never behind it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use readi_common::identity::{hex, unhex};
use serde::{Deserialize, Serialize};

use crate::keys::Keys;

/// The file's name under the data directory.
pub const FILE: &str = "hwm";
const META: &str = "meta";
/// Set in the store when its mark is first written, so a deleted mark file is noticed.
const IN_USE: &[u8] = b"hwm-in-use";

/// Why the mark could not be read, written, or does not cover the store.
#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    /// The file could not be read or written.
    #[error("high-water mark {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store says it has a mark but the file is gone.
    #[error(
        "the high-water mark {0} is missing but the store was written under one: restore the data directory (the mark file with it) from a backup — refusing to start without knowing what was acknowledged"
    )]
    Missing(PathBuf),
    /// The file is not a mark, or its MAC does not verify under this agent's key.
    #[error(
        "the high-water mark {0} is damaged or was not written with this agent's key: restore the data directory from a backup — refusing to start"
    )]
    Forged(PathBuf),
    /// The store ends before the mark: acknowledged writes are gone.
    #[error(
        "the store ends before its high-water mark: {0}. Acknowledged writes were lost (a damaged or rolled-back store). Refusing to start: restore the data directory from a backup (docs/operations.md, \"Keys, backup and restore\")"
    )]
    Behind(String),
    /// The store failed while being compared with the mark.
    #[error("the store could not be read to compare it with its high-water mark: {0}")]
    Store(#[from] sled::Error),
}

impl MarkError {
    /// A failed write of the mark as the store error it amounts to (a full disk, a failing device),
    /// so callers treat both alike.
    pub fn as_store_error(&self) -> Option<sled::Error> {
        match self {
            MarkError::Io { source, .. } => Some(sled::Error::Io(match source.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::from(source.kind()),
            })),
            MarkError::Store(e) => Some(e.clone()),
            _ => None,
        }
    }
}

/// What the mark covers: the newest acknowledged write of each kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Covered {
    /// Sequence number of the newest acknowledged audit record (0: none).
    pub audit_seq: u64,
    /// SHA-256 of that record's stored bytes, hex.
    pub audit_hash: String,
    /// Session-map writes acknowledged (orders them; maps expire, so it is no count of records).
    pub session_writes: u64,
    /// The record key (a hash of app and session, never the ids) of the newest map, hex.
    pub session_key: String,
    /// Unix seconds at which that map expires; a map past it may be swept on purpose.
    pub session_expires: u64,
    /// Session maps created and removed (expired) so far: the store holds at least the difference.
    #[serde(default)]
    pub sessions_created: u64,
    /// See `sessions_created`; advanced before the maps are removed.
    #[serde(default)]
    pub sessions_removed: u64,
    /// Escalations raised and acknowledged to the caller; the tree never holds fewer.
    pub escalations: u64,
    /// The id (random) of the newest one.
    pub escalation_last: String,
    /// Acknowledgements of escalations recorded.
    pub acks: u64,
    /// The id of the newest acknowledged escalation.
    pub ack_last: String,
}

/// One acknowledged write, to be covered.
#[derive(Debug, Clone)]
pub enum Advance {
    /// An audit record.
    Audit {
        /// Its sequence number.
        seq: u64,
        /// SHA-256 of its stored bytes.
        hash: [u8; 32],
    },
    /// A session map.
    Session {
        /// The writer's ordinal (from `Covered::session_writes`).
        n: u64,
        /// The record key.
        key: [u8; 32],
        /// Its expiry, Unix seconds.
        expires: u64,
        /// Maps created so far, this one included.
        created: u64,
    },
    /// Expired maps about to be removed.
    SessionsRemoved {
        /// Maps removed so far, these included.
        removed: u64,
    },
    /// A raised escalation.
    Raised {
        /// How many escalations the tree holds with it.
        n: u64,
        /// Its id.
        id: String,
    },
    /// An acknowledged escalation.
    Acked {
        /// The writer's ordinal.
        n: u64,
        /// Its id.
        id: String,
    },
}

impl Covered {
    fn merge(&mut self, a: Advance) {
        match a {
            Advance::Audit { seq, hash } if seq > self.audit_seq => {
                self.audit_seq = seq;
                self.audit_hash = hex(&hash);
            }
            Advance::Session {
                n,
                key,
                expires,
                created,
            } => {
                if n > self.session_writes {
                    self.session_writes = n;
                    self.session_key = hex(&key);
                    self.session_expires = expires;
                }
                self.sessions_created = self.sessions_created.max(created);
            }
            Advance::SessionsRemoved { removed } => {
                self.sessions_removed = self.sessions_removed.max(removed);
            }
            Advance::Raised { n, id } if n > self.escalations => {
                self.escalations = n;
                self.escalation_last = id;
            }
            Advance::Acked { n, id } if n > self.acks => {
                self.acks = n;
                self.ack_last = id;
            }
            _ => {}
        }
    }
}

struct State {
    covered: Covered,
    generation: u64,
}

/// The mark file of one store.
pub struct Mark {
    path: PathBuf,
    key: ring::hmac::Key,
    state: Mutex<State>,
    /// The generation last written; held while writing, so advances queue behind one writer.
    written: Mutex<u64>,
    db: sled::Db,
}

impl std::fmt::Debug for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mark").field("path", &self.path).finish()
    }
}

impl Mark {
    /// Reads and authenticates `<data_dir>/hwm`; creates it for a store that never had one (new, or
    /// from before marks). Does not compare it with the store: see `behind`.
    pub fn open(data_dir: &Path, keys: &Keys, db: &sled::Db) -> Result<Mark, MarkError> {
        let path = data_dir.join(FILE);
        let io = |source| MarkError::Io {
            path: path.clone(),
            source,
        };
        let meta = db.open_tree(META)?;
        let covered = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text, &keys.mark).ok_or_else(|| MarkError::Forged(path.clone()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if meta.get(IN_USE)?.is_some() {
                    return Err(MarkError::Missing(path));
                }
                Covered::default()
            }
            Err(e) => return Err(io(e)),
        };
        let mark = Mark {
            path,
            key: keys.mark.clone(),
            state: Mutex::new(State {
                covered,
                generation: 0,
            }),
            written: Mutex::new(0),
            db: db.clone(),
        };
        if meta.get(IN_USE)?.is_none() {
            // A store from before marks: what it holds now is the floor from here on.
            {
                let mut s = mark.lock_state();
                s.covered.sessions_created = db.open_tree("vault")?.len() as u64;
                s.covered.escalations = db.open_tree("escalations")?.len() as u64;
            }
            mark.write(&mark.covered())?;
            meta.insert(IN_USE, b"1".as_slice())?;
            meta.flush()?;
        }
        Ok(mark)
    }

    /// Opens the mark and refuses a store that ends before it (`behind`). A damaged store can make
    /// sled panic while it is read; that is a refusal too, never a crash.
    pub fn open_checked(
        data_dir: &Path,
        keys: &Keys,
        db: &sled::Db,
        audit: &crate::audit::Audit,
    ) -> Result<Arc<Mark>, MarkError> {
        let checked = readi_common::embedded::quietly(|| {
            let mark = Mark::open(data_dir, keys, db)?;
            mark.behind(keys, audit)?;
            Ok::<_, MarkError>(mark)
        });
        match checked {
            Some(r) => r.map(Arc::new),
            None => Err(MarkError::Behind(
                "the embedded database failed while being read (its files are damaged)".into(),
            )),
        }
    }

    /// What the mark covers now.
    pub fn covered(&self) -> Covered {
        self.lock_state().covered.clone()
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        // Poisoned only by a panic between merge and unlock; the state is whole either way.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Covers `a` durably before returning. Call it only after the write `a` describes is flushed
    /// to the store. Advances that arrive while a file write is under way are covered together by
    /// the next one.
    pub fn advance(&self, a: Advance) -> Result<(), MarkError> {
        let mine = {
            let mut s = self.lock_state();
            s.covered.merge(a);
            s.generation += 1;
            s.generation
        };
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if *written >= mine {
            return Ok(());
        }
        let (snapshot, generation) = {
            let s = self.lock_state();
            (s.covered.clone(), s.generation)
        };
        self.write(&snapshot)?;
        *written = generation;
        Ok(())
    }

    /// Writes the mark atomically: temporary file, fsync, rename, fsync of the directory.
    fn write(&self, covered: &Covered) -> Result<(), MarkError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |source| MarkError::Io {
            path: self.path.clone(),
            source,
        };
        let body = serde_json::to_string(covered).expect("the mark serializes");
        let tag = ring::hmac::sign(&self.key, body.as_bytes());
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(format!("{body}\n{}\n", hex(tag.as_ref())).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }

    /// Fails with `Behind`, naming (without content) the first acknowledged write the store no
    /// longer holds. The audit record is checked by the audit log itself (`Audit::holds`).
    pub fn behind(&self, keys: &Keys, audit: &crate::audit::Audit) -> Result<(), MarkError> {
        let c = self.covered();
        if let Some(missing) = audit
            .holds(c.audit_seq, &c.audit_hash)
            .map_err(|e| match e {
                crate::audit::AuditError::Store(s) => MarkError::Store(s),
                other => MarkError::Behind(other.to_string()),
            })?
        {
            return Err(MarkError::Behind(missing));
        }
        let expected = c.sessions_created.saturating_sub(c.sessions_removed);
        let (held, _) = crate::vault::held(&self.db, keys, c.sessions_created)?;
        if held < expected {
            return Err(MarkError::Behind(format!(
                "{expected} acknowledged session maps should be held but the store holds {held}"
            )));
        }
        let now = readi_common::clock::unix_secs();
        if !c.session_key.is_empty()
            && c.session_expires > now
            && !crate::vault::holds(&self.db, keys, &c.session_key, c.session_expires)?
        {
            return Err(MarkError::Behind(format!(
                "the newest acknowledged session map (write #{}) is missing or older",
                c.session_writes
            )));
        }
        if let Some(missing) = crate::escalation::holds(&self.db, keys, &c)? {
            return Err(MarkError::Behind(missing));
        }
        Ok(())
    }
}

/// The covered state in `text` if its MAC verifies.
fn parse(text: &str, key: &ring::hmac::Key) -> Option<Covered> {
    let mut lines = text.lines();
    let body = lines.next()?;
    let tag = unhex(lines.next()?.trim())?;
    ring::hmac::verify(key, body.as_bytes(), &tag).ok()?;
    serde_json::from_str(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, sled::Db, Arc<Keys>) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        (dir, db, keys)
    }

    #[test]
    fn advances_persist_and_only_forward() {
        let (dir, db, keys) = setup();
        let m = Mark::open(dir.path(), &keys, &db).unwrap();
        m.advance(Advance::Raised {
            n: 2,
            id: "esc-b".into(),
        })
        .unwrap();
        m.advance(Advance::Raised {
            n: 1,
            id: "esc-a".into(),
        })
        .unwrap();
        drop(m);
        let again = Mark::open(dir.path(), &keys, &db).unwrap();
        assert_eq!(again.covered().escalations, 2);
        assert_eq!(again.covered().escalation_last, "esc-b");
    }

    #[test]
    fn a_forged_or_deleted_mark_is_refused() {
        let (dir, db, keys) = setup();
        drop(Mark::open(dir.path(), &keys, &db).unwrap());
        let path = dir.path().join(FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        // Rolling the mark back by hand needs the key the MAC is made with.
        let forged = text.replacen("\"escalations\":0", "\"escalations\":7", 1);
        assert_ne!(forged, text);
        std::fs::write(&path, forged).unwrap();
        assert!(matches!(
            Mark::open(dir.path(), &keys, &db),
            Err(MarkError::Forged(_))
        ));
        std::fs::remove_file(&path).unwrap();
        let e = Mark::open(dir.path(), &keys, &db).unwrap_err();
        assert!(matches!(e, MarkError::Missing(_)), "{e}");
        assert!(e.to_string().contains("backup"));
    }
}
