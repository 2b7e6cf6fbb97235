//! Adverse events: every escalation, block and missed escalation (and, later, clinicians' reports),
//! sealed in the store in order, listed for the clinic's compliance review. Never text.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use readi_proto::agent::v1 as pb;

use crate::keys::Keys;
use crate::seal::SealError;

const TREE: &str = "adverse_events";

/// Why an adverse-event operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdverseError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] sled::Error),
    /// A sealed record did not open.
    #[error("sealed adverse event did not open: {0}")]
    Seal(#[from] SealError),
    /// A record opened but does not decode.
    #[error("adverse event record is damaged")]
    Corrupt,
}

/// The adverse-event log.
#[derive(Debug)]
pub struct AdverseEvents {
    tree: sled::Tree,
    db: sled::Db,
    keys: Arc<Keys>,
}

impl AdverseEvents {
    /// Opens the adverse-event tree.
    pub fn open(db: &sled::Db, keys: Arc<Keys>) -> Result<AdverseEvents, AdverseError> {
        Ok(AdverseEvents {
            tree: db.open_tree(TREE)?,
            db: db.clone(),
            keys,
        })
    }

    /// Appends an event (id and time assigned here) and makes it durable.
    pub fn record(&self, mut ev: pb::AdverseEvent) -> Result<pb::AdverseEvent, AdverseError> {
        let seq = self.db.generate_id()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        ev.id = format!("ae-{seq}");
        ev.recorded_at = Some(prost_types::Timestamp {
            seconds: now.as_secs() as i64,
            nanos: now.subsec_nanos() as i32,
        });
        let key = seq.to_be_bytes();
        let sealed = self.keys.sealer.seal(TREE, &key, &ev.encode_to_vec())?;
        self.tree.insert(key, sealed)?;
        self.tree.flush()?;
        Ok(ev)
    }

    /// Events recorded at or after `since` (unix seconds), oldest first, at most `limit`.
    pub fn list(
        &self,
        since: Option<i64>,
        limit: usize,
    ) -> Result<Vec<pb::AdverseEvent>, AdverseError> {
        let mut out = Vec::new();
        for plain in self.keys.sealer.open_all::<AdverseError>(TREE, &self.tree) {
            let plain = plain?;
            let ev =
                pb::AdverseEvent::decode(plain.as_slice()).map_err(|_| AdverseError::Corrupt)?;
            if since.is_some_and(|s| ev.recorded_at.is_none_or(|t| t.seconds < s)) {
                continue;
            }
            out.push(ev);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_listed_in_order_and_filtered_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        let log = AdverseEvents::open(&db, keys).unwrap();
        for kind in [
            pb::AdverseEventKind::Escalation,
            pb::AdverseEventKind::MissedEscalation,
        ] {
            log.record(pb::AdverseEvent {
                kind: kind as i32,
                app_id: "app".into(),
                ..Default::default()
            })
            .unwrap();
        }
        let all = log.list(None, 100).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].kind, pb::AdverseEventKind::MissedEscalation as i32);
        assert!(all[0].id < all[1].id || all[0].id.len() < all[1].id.len());
        assert_eq!(log.list(None, 1).unwrap().len(), 1);
        assert!(log.list(Some(i64::MAX), 100).unwrap().is_empty());
    }
}
