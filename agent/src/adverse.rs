//! Adverse events: every escalation, blocked reply, missed escalation and clinician's report, kept in
//! order in a sealed log and listed for the clinic's compliance review. Never text.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use readi_proto::agent::v1 as pb;

use crate::keys::Keys;
use crate::sealed_log::{LogError, SealedLog};

const TREE: &str = "adverse_events";

/// Why an adverse-event operation failed.
pub type AdverseError = LogError;

/// The adverse-event log.
#[derive(Debug)]
pub struct AdverseEvents {
    log: SealedLog,
}

impl AdverseEvents {
    /// Opens the adverse-event tree.
    pub fn open(db: &sled::Db, keys: Arc<Keys>) -> Result<AdverseEvents, AdverseError> {
        Ok(AdverseEvents {
            log: SealedLog::open(db, keys, TREE)?,
        })
    }

    /// Appends an event (id and time assigned here) and makes it durable.
    pub fn record(&self, mut ev: pb::AdverseEvent) -> Result<pb::AdverseEvent, AdverseError> {
        self.log.append(|seq| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            ev.id = format!("ae-{seq}");
            ev.recorded_at = Some(prost_types::Timestamp {
                seconds: now.as_secs() as i64,
                nanos: now.subsec_nanos() as i32,
            });
            let plain = ev.encode_to_vec();
            Ok((ev, plain))
        })
    }

    /// Events recorded at or after `since` (unix seconds), oldest first, at most `limit`.
    pub fn list(
        &self,
        since: Option<i64>,
        limit: usize,
    ) -> Result<Vec<pb::AdverseEvent>, AdverseError> {
        let mut out = Vec::new();
        for plain in self.log.records() {
            let ev = pb::AdverseEvent::decode(plain?.as_slice()).map_err(|_| self.log.corrupt())?;
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
