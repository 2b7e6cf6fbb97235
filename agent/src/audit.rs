//! Audit records of sensitive operations (who, what, when, outcome; never PHI), appended in order.
//! The hash chain and signed checkpoints are built on these records by the audit-log work.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Appends audit records to the store.
#[derive(Debug)]
pub struct Audit {
    tree: sled::Tree,
    db: sled::Db,
}

#[derive(Serialize)]
struct Record<'a> {
    at_unix_ms: u128,
    action: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    actor: &'a str,
    app_id: &'a str,
    outcome: &'a str,
}

impl Audit {
    /// Opens the audit tree.
    pub fn open(db: &sled::Db) -> Result<Audit, sled::Error> {
        Ok(Audit {
            tree: db.open_tree("audit")?,
            db: db.clone(),
        })
    }

    /// Appends a record and makes it durable before returning.
    pub fn record(&self, action: &str, app_id: &str, outcome: &str) -> Result<(), sled::Error> {
        self.record_by(action, "", app_id, outcome)
    }

    /// Appends a record naming who acted (a staff id, never a patient's).
    pub fn record_by(
        &self,
        action: &str,
        actor: &str,
        app_id: &str,
        outcome: &str,
    ) -> Result<(), sled::Error> {
        let rec = Record {
            at_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            action,
            actor,
            app_id,
            outcome,
        };
        let seq = self.db.generate_id()?;
        let value = serde_json::to_vec(&rec).expect("audit record serializes");
        self.tree.insert(seq.to_be_bytes(), value)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Every record, oldest first, as JSON.
    pub fn records(&self) -> Result<Vec<String>, sled::Error> {
        self.tree
            .iter()
            .values()
            .map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
            .collect()
    }
}
