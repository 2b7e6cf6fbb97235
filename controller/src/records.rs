//! Control records (vendors, applications, access tokens, enrollment tokens, revocations): small
//! JSON documents by kind and id, kept where every controller sharing a store sees them — files
//! under the data directory beside the embedded store, or a table in PostgreSQL for replicas.

use std::path::{Path, PathBuf};

/// The kinds of record, and what they hold.
pub const KINDS: &[&str] = &[
    "vendors",
    "apps",
    "tokens",
    "enrollment",
    "revoked",
    "agents",
    "dashboard",
    crate::ingest::AUDIT_HEAD,
    crate::ingest::EGRESS_HEAD,
];

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The database failed.
    #[error("{0}")]
    Backend(String),
}

/// Where control records live. Ids are checked by the caller (`registry::is_id`, hex token ids,
/// agent ids), so they are safe as file names.
pub trait Records: Send + Sync + std::fmt::Debug {
    /// A record's value.
    fn get(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, RecordError>;
    /// Writes a record, replacing any with its id; whole or not at all.
    fn put(&self, kind: &str, id: &str, value: &[u8]) -> Result<(), RecordError>;
    /// Writes a record only if none has its id; false when one has.
    fn create(&self, kind: &str, id: &str, value: &[u8]) -> Result<bool, RecordError>;
    /// Every record of a kind, by id.
    fn list(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>, RecordError>;
    /// Removes a record; false when there was none.
    fn remove(&self, kind: &str, id: &str) -> Result<bool, RecordError>;
    /// Retires a record so it can be taken only once: of two callers at once, one gets true.
    fn take(&self, kind: &str, id: &str) -> Result<bool, RecordError>;
}

/// Records as files under a data directory (the layout earlier versions wrote, so an existing
/// directory keeps its vendors, tokens and revocations).
#[derive(Clone, Debug)]
pub struct FileRecords {
    root: PathBuf,
}

impl FileRecords {
    /// The records under `data_dir` (nothing is created until something is written).
    pub fn new(data_dir: &Path) -> FileRecords {
        FileRecords {
            root: data_dir.to_owned(),
        }
    }

    fn dir(&self, kind: &str) -> PathBuf {
        match kind {
            "enrollment" | "revoked" => self.root.join(kind),
            other => self.root.join("registry").join(other),
        }
    }

    fn suffix(kind: &str) -> &'static str {
        if kind == "revoked" { "" } else { ".json" }
    }

    fn path(&self, kind: &str, id: &str) -> PathBuf {
        self.dir(kind).join(format!("{id}{}", Self::suffix(kind)))
    }

    fn made_dir(&self, kind: &str) -> Result<PathBuf, RecordError> {
        use std::os::unix::fs::DirBuilderExt as _;
        let dir = self.dir(kind);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir))?;
        Ok(dir)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_new(path: &Path, value: &[u8], create_new: bool) -> Result<bool, RecordError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(create_new)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path);
    let mut f = match f {
        Ok(f) => f,
        Err(e) if create_new && e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(io(path)(e)),
    };
    f.write_all(value)
        .and_then(|()| f.sync_all())
        .map_err(io(path))?;
    Ok(true)
}

impl Records for FileRecords {
    fn get(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, RecordError> {
        let path = self.path(kind, id);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn put(&self, kind: &str, id: &str, value: &[u8]) -> Result<(), RecordError> {
        let dir = self.made_dir(kind)?;
        let tmp = dir.join(format!(".{id}.tmp"));
        write_new(&tmp, value, false)?;
        // The rename makes the new record appear whole to a reader.
        let path = self.path(kind, id);
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    fn create(&self, kind: &str, id: &str, value: &[u8]) -> Result<bool, RecordError> {
        self.made_dir(kind)?;
        write_new(&self.path(kind, id), value, true)
    }

    fn list(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>, RecordError> {
        let dir = self.dir(kind);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let suffix = Self::suffix(kind);
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .filter_map(|n| {
                if suffix.is_empty() {
                    Some(n)
                } else {
                    n.strip_suffix(suffix).map(str::to_owned)
                }
            })
            .collect();
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(v) = self.get(kind, &id)? {
                out.push((id, v));
            }
        }
        Ok(out)
    }

    fn remove(&self, kind: &str, id: &str) -> Result<bool, RecordError> {
        let path = self.path(kind, id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn take(&self, kind: &str, id: &str) -> Result<bool, RecordError> {
        // The rename is the single point of truth: of two callers, one wins; the used record stays
        // for the audit trail.
        let path = self.path(kind, id);
        let used = self.dir(kind).join(format!("{id}.used"));
        match std::fs::rename(&path, &used) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&path)(e)),
        }
    }
}

/// Copies every record from one place to another (moving a controller onto PostgreSQL); returns
/// how many it wrote.
pub fn copy(from: &dyn Records, to: &dyn Records) -> Result<usize, RecordError> {
    let mut n = 0;
    for kind in KINDS {
        for (id, value) in from.list(kind)? {
            to.put(kind, &id, &value)?;
            n += 1;
        }
    }
    Ok(n)
}

/// The behaviour every place for records must show.
#[cfg(test)]
pub(crate) fn check_records(r: &dyn Records) {
    assert_eq!(r.get("apps", "a").unwrap(), None);
    assert!(r.list("apps").unwrap().is_empty());
    r.put("apps", "b", b"{\"x\":2}").unwrap();
    r.put("apps", "a", b"{\"x\":1}").unwrap();
    r.put("apps", "a", b"{\"x\":3}").unwrap();
    assert_eq!(
        r.get("apps", "a").unwrap().as_deref(),
        Some(&b"{\"x\":3}"[..])
    );
    let ids: Vec<String> = r
        .list("apps")
        .unwrap()
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(r.list("vendors").unwrap().is_empty(), "kinds are apart");
    assert!(r.create("enrollment", "t1", b"{}").unwrap());
    assert!(!r.create("enrollment", "t1", b"{\"other\":1}").unwrap());
    assert_eq!(
        r.get("enrollment", "t1").unwrap().as_deref(),
        Some(&b"{}"[..])
    );
    assert!(r.take("enrollment", "t1").unwrap());
    assert!(!r.take("enrollment", "t1").unwrap(), "taken once");
    assert_eq!(r.get("enrollment", "t1").unwrap(), None);
    assert!(r.list("enrollment").unwrap().is_empty());
    r.put("revoked", "agt-0123456789abcdef", b"").unwrap();
    assert!(r.get("revoked", "agt-0123456789abcdef").unwrap().is_some());
    assert!(r.remove("apps", "b").unwrap());
    assert!(!r.remove("apps", "b").unwrap());
    assert_eq!(r.list("apps").unwrap().len(), 1);
}

/// Eight callers take one record at once: one gets it.
#[cfg(test)]
pub(crate) fn check_taken_once(r: &dyn Records) {
    r.create("enrollment", "race", b"{}").unwrap();
    let won = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| s.spawn(|| r.take("enrollment", "race").unwrap()))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .filter(|w| *w)
            .count()
    });
    assert_eq!(won, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_hold_records() {
        let d = tempfile::tempdir().unwrap();
        check_records(&FileRecords::new(d.path()));
        // The layout earlier versions wrote.
        assert!(d.path().join("registry/apps/a.json").exists());
        assert!(d.path().join("revoked/agt-0123456789abcdef").exists());
        assert!(d.path().join("enrollment/t1.used").exists());
    }

    #[test]
    fn one_of_many_takes_a_record() {
        let d = tempfile::tempdir().unwrap();
        check_taken_once(&FileRecords::new(d.path()));
    }
}
