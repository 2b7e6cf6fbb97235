//! A sealed log: records in arrival order under store-generated sequence numbers, each sealed to
//! its tree and record key and durable before it is acknowledged. The shape the adverse-event and
//! feedback logs share; they add what their records are.

use std::sync::Arc;

use crate::keys::Keys;
use crate::seal::SealError;

/// Why a sealed-log operation failed. Never holds record contents.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] sled::Error),
    /// A sealed record did not open (wrong key or damaged).
    #[error("sealed record did not open: {0}")]
    Seal(#[from] SealError),
    /// A record opened but does not decode (or would not encode).
    #[error("{0} record is damaged")]
    Corrupt(&'static str),
}

/// One sealed, append-only tree.
#[derive(Debug)]
pub struct SealedLog {
    name: &'static str,
    tree: sled::Tree,
    db: sled::Db,
    keys: Arc<Keys>,
}

impl SealedLog {
    /// Opens the log kept in tree `name`.
    pub fn open(db: &sled::Db, keys: Arc<Keys>, name: &'static str) -> Result<SealedLog, LogError> {
        Ok(SealedLog {
            name,
            tree: db.open_tree(name)?,
            db: db.clone(),
            keys,
        })
    }

    /// A damaged-record error naming this log.
    pub fn corrupt(&self) -> LogError {
        LogError::Corrupt(self.name)
    }

    /// Appends the record `make` encodes for the next sequence number, sealed, and makes it
    /// durable; returns what `make` returned beside the bytes.
    pub fn append<T>(
        &self,
        make: impl FnOnce(u64) -> Result<(T, Vec<u8>), LogError>,
    ) -> Result<T, LogError> {
        let seq = self.db.generate_id()?;
        let (out, plain) = make(seq)?;
        let key = seq.to_be_bytes();
        let sealed = self.keys.sealer.seal(self.name, &key, &plain)?;
        self.tree.insert(key, sealed)?;
        self.tree.flush()?;
        Ok(out)
    }

    /// Every record, opened, oldest first. Records whose keys were destroyed by retention are gone
    /// by design and skipped.
    pub fn records(&self) -> impl Iterator<Item = Result<Vec<u8>, LogError>> + '_ {
        self.keys.sealer.open_all::<LogError>(self.name, &self.tree)
    }
}
