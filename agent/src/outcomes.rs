//! Outcome baselines: the first PHQ-9 or GAD-7 score of an episode, sealed under a keyed hash of the
//! episode, so later scores can be counted as change over the episode without keeping any id.

use std::sync::Arc;

use crate::keys::Keys;

const TREE: &str = "outcomes";

/// Why a baseline could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    /// The store failed.
    #[error("outcome store: {0}")]
    Store(#[from] sled::Error),
    /// Sealing failed.
    #[error("outcome store: {0}")]
    Seal(#[from] crate::seal::SealError),
}

/// The sealed baselines.
#[derive(Debug)]
pub struct Outcomes {
    tree: sled::Tree,
    keys: Arc<Keys>,
}

impl Outcomes {
    /// Opens the baselines in `db`.
    pub fn open(db: &sled::Db, keys: Arc<Keys>) -> Result<Outcomes, OutcomeError> {
        Ok(Outcomes {
            tree: db.open_tree(TREE)?,
            keys,
        })
    }

    /// Records a score for the episode under `key` (a keyed hash): the first becomes the baseline and
    /// gives None; a later one gives its change from the baseline; one taken before the baseline
    /// replaces it and gives None.
    pub fn observe(
        &self,
        key: &str,
        score: i32,
        taken_at: i64,
    ) -> Result<Option<i64>, OutcomeError> {
        let k = key.as_bytes();
        let baseline = match self.tree.get(k)? {
            Some(sealed) => {
                let plain = match self.keys.sealer.open(TREE, k, &sealed) {
                    // Past retention: the old baseline is gone, this score starts afresh.
                    Err(crate::seal::SealError::Shredded) => Vec::new(),
                    other => other?,
                };
                (plain.len() == 12).then(|| {
                    let mut s = [0u8; 4];
                    let mut t = [0u8; 8];
                    s.copy_from_slice(&plain[..4]);
                    t.copy_from_slice(&plain[4..]);
                    (i32::from_be_bytes(s), i64::from_be_bytes(t))
                })
            }
            None => None,
        };
        match baseline {
            Some((base, at)) if taken_at > at => Ok(Some(i64::from(score) - i64::from(base))),
            _ => {
                let mut plain = score.to_be_bytes().to_vec();
                plain.extend_from_slice(&taken_at.to_be_bytes());
                let sealed = self.keys.sealer.seal(TREE, k, &plain)?;
                self.tree.insert(k, sealed)?;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_is_measured_from_the_earliest_score() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        let o = Outcomes::open(&db, keys).unwrap();
        assert_eq!(o.observe("ep", 18, 1000).unwrap(), None);
        assert_eq!(o.observe("ep", 12, 2000).unwrap(), Some(-6));
        // An earlier score arriving late becomes the baseline.
        assert_eq!(o.observe("ep", 20, 500).unwrap(), None);
        assert_eq!(o.observe("ep", 10, 3000).unwrap(), Some(-10));
        assert_eq!(o.observe("other", 5, 3000).unwrap(), None);
    }
}
