//! The embedded sled database: opened once under a data directory (mode 0700), flushed on shutdown.

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
    #[error("embedded database at {path}: {source}")]
    Db {
        /// The database directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
}

/// The open database.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
}

impl Store {
    /// Opens (creating with mode 0700 when absent) the database `name` under `data_dir`.
    pub fn open(data_dir: &Path, name: &str) -> Result<Store, StoreError> {
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
        let db = sled::Config::new()
            .path(&path)
            .open()
            .map_err(|source| StoreError::Db {
                path: path.clone(),
                source,
            })?;
        Ok(Store { db, path })
    }

    /// The underlying database.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Writes everything buffered to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush_async()
            .await
            .map(drop)
            .map_err(|source| StoreError::Db {
                path: self.path.clone(),
                source,
            })
    }
}
