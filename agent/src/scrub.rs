//! Scrub: opens every sealed value and walks every chain, naming each damaged record by tree and
//! key (never its content), so damage is found before the record is next needed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use readi_common::identity::hex;

use crate::audit::Audit;
use crate::keys::Keys;

/// The trees whose every value is sealed to (tree, key) under the data keys.
const SEALED: &[&str] = &[
    "vault",
    "escalations",
    "adverse_events",
    "feedback",
    "outcomes",
];

/// One damaged record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Damage {
    /// The tree it is in.
    pub tree: String,
    /// Its key as printed: a sequence number, a random id, or a hash (keys may derive from ids).
    pub key: String,
    /// What is wrong, without content.
    pub why: String,
}

/// What one scrub found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// Sealed values opened plus chain records walked.
    pub records: u64,
    /// Every damaged record found.
    pub damaged: Vec<Damage>,
    /// How long it took.
    #[serde(skip)]
    pub elapsed: Duration,
    /// Unix seconds at which it finished.
    pub finished_unix: u64,
}

impl Report {
    /// True when nothing is damaged.
    pub fn ok(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// The latest background scrub's result, for `/healthz`, `/metrics` and the safeguards report.
#[derive(Debug, Default)]
pub struct Last(Mutex<Option<Report>>);

impl Last {
    /// Keeps `r` as the latest result.
    pub fn record(&self, r: Report) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
    }

    /// The latest result, if a scrub has finished.
    pub fn latest(&self) -> Option<Report> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// How a record's key is printed. Session-map and outcome keys are already hashes of ids, escalation
/// ids are random and log keys are sequence numbers; anything else is shown hashed, since a key
/// could carry an identifier.
pub fn key_label(tree: &str, key: &[u8]) -> String {
    match tree {
        "audit" | "adverse_events" | "feedback" | "egress" if key.len() == 8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(key);
            format!("#{}", u64::from_be_bytes(b))
        }
        "escalations"
            if key.starts_with(b"esc-")
                && key.len() <= 40
                && key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') =>
        {
            String::from_utf8_lossy(key).into_owned()
        }
        "vault" if key.len() == 32 => hex(key),
        _ => {
            let d = ring::digest::digest(&ring::digest::SHA256, key);
            format!("sha256:{}", &hex(d.as_ref())[..16])
        }
    }
}

/// Scrubs the whole store: every sealed value, the audit chain with its checkpoints (and the
/// high-water mark when one is attached to `audit`), and the egress ledger's chain.
pub fn scrub(db: &sled::Db, keys: &Keys, audit: &Audit) -> Report {
    let started = Instant::now();
    let mut r = Report::default();
    for tree in SEALED {
        sealed_tree(db, keys, tree, &mut r);
    }
    audit_chain(audit, &mut r);
    egress_chain(db, &mut r);
    r.elapsed = started.elapsed();
    r.finished_unix = readi_common::clock::unix_secs();
    r
}

fn unreadable(r: &mut Report, tree: &str, after: Option<&[u8]>, why: String) {
    r.damaged.push(Damage {
        tree: tree.to_owned(),
        key: match after {
            Some(k) => format!("after {}", key_label(tree, k)),
            None => "(tree)".to_owned(),
        },
        why,
    });
}

fn sealed_tree(db: &sled::Db, keys: &Keys, name: &str, r: &mut Report) {
    let walked = readi_common::embedded::quietly(|| {
        let tree = match db.open_tree(name) {
            Ok(t) => t,
            Err(e) => {
                unreadable(r, name, None, format!("the tree does not open: {e}"));
                return;
            }
        };
        let mut last: Option<sled::IVec> = None;
        for item in tree.iter() {
            let (k, v) = match item {
                Ok(kv) => kv,
                Err(e) => {
                    unreadable(r, name, last.as_deref(), format!("the store failed: {e}"));
                    return;
                }
            };
            r.records += 1;
            match keys.sealer.open(name, &k, &v) {
                // Destroyed under retention on purpose.
                Ok(_) | Err(crate::seal::SealError::Shredded) => {}
                Err(e) => r.damaged.push(Damage {
                    tree: name.to_owned(),
                    key: key_label(name, &k),
                    why: e.to_string(),
                }),
            }
            last = Some(k);
        }
    });
    if walked.is_none() {
        unreadable(
            r,
            name,
            None,
            "the embedded database failed while reading this tree".into(),
        );
    }
}

fn audit_chain(audit: &Audit, r: &mut Report) {
    match readi_common::embedded::quietly(|| audit.verify()) {
        Some(Ok(v)) => {
            r.records += v.records;
            for (seq, why) in v.problems {
                r.damaged.push(Damage {
                    tree: "audit".into(),
                    key: format!("#{seq}"),
                    why,
                });
            }
        }
        Some(Err(e)) => unreadable(r, "audit", None, format!("the log could not be read: {e}")),
        None => unreadable(
            r,
            "audit",
            None,
            "the embedded database failed while reading the log".into(),
        ),
    }
}

fn egress_chain(db: &sled::Db, r: &mut Report) {
    let walked = readi_common::embedded::quietly(|| {
        let mut next = 1;
        loop {
            match crate::egress::list(db, next, 1000) {
                Ok((page, ok)) => {
                    let Some(last) = page.last().map(|e| e.sequence) else {
                        return;
                    };
                    r.records += page.len() as u64;
                    if !ok {
                        r.damaged.push(Damage {
                            tree: "egress".into(),
                            key: format!("#{next} to #{last}"),
                            why: "the ledger's hash chain does not verify".into(),
                        });
                    }
                    next = last + 1;
                }
                Err(crate::egress::EgressError::Damaged(seq)) => {
                    r.damaged.push(Damage {
                        tree: "egress".into(),
                        key: format!("#{seq}"),
                        why: "the ledger entry does not decode".into(),
                    });
                    return;
                }
                Err(e) => {
                    unreadable(
                        r,
                        "egress",
                        None,
                        format!("the ledger could not be read: {e}"),
                    );
                    return;
                }
            }
        }
    });
    if walked.is_none() {
        unreadable(
            r,
            "egress",
            None,
            "the embedded database failed while reading the ledger".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_damaged_sealed_value_is_named_by_tree_and_key_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        let audit = Audit::open(&db, &keys, 8).unwrap();
        let vault =
            crate::vault::Vault::open(&db, Arc::clone(&keys), Duration::from_secs(60)).unwrap();
        for i in 0..20 {
            vault
                .update("app", &format!("s{i}"), |t| {
                    t.tag(crate::phi::PhiType::Name, &format!("Jane Doe{i}"));
                    Some(())
                })
                .unwrap();
        }
        audit.record("x", "app", "y").unwrap();
        assert!(scrub(&db, &keys, &audit).ok());
        let tree = db.open_tree("vault").unwrap();
        let (k, v) = tree.iter().nth(7).unwrap().unwrap();
        let mut bad = v.to_vec();
        let at = bad.len() / 2;
        bad[at] ^= 0x20;
        tree.insert(&k, bad).unwrap();
        let r = scrub(&db, &keys, &audit);
        assert_eq!(r.damaged.len(), 1, "{:?}", r.damaged);
        assert_eq!(r.damaged[0].tree, "vault");
        assert_eq!(r.damaged[0].key, hex(&k));
        assert!(!format!("{:?}", r.damaged).contains("Jane"));
        assert_eq!(r.records, 21);
    }
}
