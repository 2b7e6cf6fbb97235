//! Clinicians' feedback on the agent (missed risk, false alarms, PHI that got through, unexpected model
//! behaviour), sealed locally with its free text for the clinic's own quality review. Only counts of
//! each kind ever leave the clinic; the text never does.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::keys::Keys;
use crate::sealed_log::{LogError, SealedLog};

/// The sealed tree, and the data class its keys and retention belong to.
pub const TREE: &str = "feedback";

/// Why a feedback operation failed.
pub type FeedbackError = LogError;

/// What a clinician reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Risk that was there and not flagged.
    MissedRisk,
    /// A finding that was wrong.
    FalseAlarm,
    /// PHI that got through redaction.
    LeakedPhi,
    /// The model behaved unexpectedly.
    UnexpectedBehavior,
}

impl Kind {
    /// The name used in audit records and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::MissedRisk => "missed_risk",
            Kind::FalseAlarm => "false_alarm",
            Kind::LeakedPhi => "leaked_phi",
            Kind::UnexpectedBehavior => "unexpected_behavior",
        }
    }
}

/// One report, as the clinic's quality review sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `fb-<n>`, in order of arrival.
    pub id: String,
    /// Unix seconds.
    pub recorded_at: u64,
    /// What was reported.
    pub kind: Kind,
    /// The application.
    pub app_id: String,
    /// The session.
    pub session_id: String,
    /// The exchange, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exchange_id: String,
    /// The risk category seen (missed risk), by its proto name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub category: String,
    /// The finding reported as wrong (false alarm).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub finding_id: String,
    /// The PHI type that got through (never its value).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phi_type: String,
    /// What the clinician wrote about unexpected behaviour. Sealed; never reported.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Who reported it: the token id, or `local` when tokens are not enforced.
    pub reporter: String,
    /// The adverse-event record it became.
    pub adverse_event_id: String,
    /// The escalation it raised, when any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub escalation_id: String,
}

/// The sealed feedback log.
#[derive(Debug)]
pub struct Feedback {
    log: SealedLog,
}

impl Feedback {
    /// Opens the feedback tree.
    pub fn open(db: &sled::Db, keys: Arc<Keys>) -> Result<Feedback, FeedbackError> {
        Ok(Feedback {
            log: SealedLog::open(db, keys, TREE)?,
        })
    }

    /// Seals and stores a record (id and time assigned here) and makes it durable.
    pub fn record(&self, mut rec: Record) -> Result<Record, FeedbackError> {
        self.log.append(|seq| {
            rec.id = format!("fb-{seq}");
            rec.recorded_at = readi_common::clock::unix_secs();
            let plain = serde_json::to_vec(&rec).map_err(|_| self.log.corrupt())?;
            Ok((rec, plain))
        })
    }

    /// Records made at or after `since` (unix seconds), oldest first. Records whose keys were
    /// destroyed by retention are gone and skipped.
    pub fn since(&self, since: u64) -> Result<Vec<Record>, FeedbackError> {
        let mut out = Vec::new();
        for plain in self.log.records() {
            let rec: Record = serde_json::from_slice(&plain?).map_err(|_| self.log.corrupt())?;
            if rec.recorded_at >= since {
                out.push(rec);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: Kind, text: &str) -> Record {
        Record {
            id: String::new(),
            recorded_at: 0,
            kind,
            app_id: "chat".into(),
            session_id: "s1".into(),
            exchange_id: String::new(),
            category: String::new(),
            finding_id: String::new(),
            phi_type: String::new(),
            text: text.into(),
            reporter: "local".into(),
            adverse_event_id: "ae-1".into(),
            escalation_id: String::new(),
        }
    }

    #[test]
    fn records_are_sealed_and_listed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        let fb = Feedback::open(&db, Arc::clone(&keys)).unwrap();
        let canary = "Model told Zebulon Quaggard to stop his lithium";
        let a = fb.record(record(Kind::UnexpectedBehavior, canary)).unwrap();
        let b = fb.record(record(Kind::FalseAlarm, "")).unwrap();
        assert!(a.id.starts_with("fb-") && a.id != b.id);
        let all = fb.since(0).unwrap();
        assert_eq!(all, vec![a.clone(), b]);
        assert!(fb.since(a.recorded_at + 10).unwrap().is_empty());
        drop(fb);
        drop(db);
        // Nothing of the text is readable on disk.
        let mut found = false;
        for entry in walk(dir.path()) {
            let bytes = std::fs::read(entry).unwrap();
            found |= bytes.windows(8).any(|w| w == b"Quaggard");
        }
        assert!(!found, "feedback text is on disk in the clear");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
