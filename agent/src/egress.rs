//! The egress ledger and outbox: every report is signed with the agent's Ed25519 key, appended to a
//! hash-chained ledger of exactly the bytes that leave the clinic, and queued in a durable outbox, all
//! in one transaction; delivery marks it sent without touching the chained entry.

use readi_common::clock;
use std::sync::Arc;

use prost::Message as _;
use readi_proto::agent::v1 as apb;
use readi_proto::report::v1 as pb;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use sled::Transactional as _;

use crate::keys::Keys;

/// Why the ledger could not be used. Holds no report contents.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The store failed.
    #[error("egress store: {0}")]
    Store(#[from] sled::Error),
    /// A sealed key could not be opened.
    #[error("reporting identity key: {0}")]
    Seal(#[from] crate::seal::SealError),
    /// The identity key is damaged.
    #[error("the reporting identity key is damaged; restore the data directory from backup")]
    KeyDamaged,
    /// A ledger entry does not decode.
    #[error("egress ledger entry {0} is damaged")]
    Damaged(u64),
    /// A transaction failed.
    #[error("egress transaction: {0}")]
    Transaction(String),
}

const META: &str = "meta";
const LEDGER: &str = "egress";
const OUTBOX: &str = "outbox";
const DELIVERED: &str = "egress_delivered";
const BUDGET: &str = "privacy_budget";
const IDENTITY_KEY: &[u8] = b"report-identity-key";
const SESSION_SECRET: &[u8] = b"metrics-session-secret";
const WINDOW_STATE: &[u8] = b"metrics-window";
const LAST_SEQUENCE: &[u8] = b"report-sequence";
const ENROLLMENT: &[u8] = b"enrollment";

/// The agent's reporting identity and its ledger.
pub struct Egress {
    db: sled::Db,
    keys: Arc<Keys>,
    signer: Ed25519KeyPair,
    agent_id: String,
    destination: String,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

pub use readi_common::identity::agent_id_of;

/// The chained hash of one entry.
pub fn entry_hash(
    previous: &[u8],
    sequence: u64,
    recorded_at: i64,
    destination: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"readi egress v1");
    ctx.update(previous);
    ctx.update(&sequence.to_be_bytes());
    ctx.update(&recorded_at.to_be_bytes());
    ctx.update(&(destination.len() as u64).to_be_bytes());
    ctx.update(destination.as_bytes());
    ctx.update(&(payload.len() as u64).to_be_bytes());
    ctx.update(payload);
    ctx.finish().as_ref().to_vec()
}

/// A random secret kept sealed in the store, created on first use.
fn sealed_secret(
    db: &sled::Db,
    keys: &Keys,
    name: &[u8],
    make: impl FnOnce() -> Result<Vec<u8>, EgressError>,
) -> Result<Vec<u8>, EgressError> {
    let meta = db.open_tree(META)?;
    if let Some(sealed) = meta.get(name)? {
        return Ok(keys.sealer.open(META, name, &sealed)?);
    }
    let fresh = make()?;
    let sealed = keys.sealer.seal(META, name, &fresh)?;
    meta.insert(name, sealed)?;
    meta.flush()?;
    Ok(fresh)
}

impl Egress {
    /// Opens the ledger, creating the reporting identity on first use. `destination` is the
    /// controller URL recorded with each entry.
    pub fn open(db: &sled::Db, keys: Arc<Keys>, destination: &str) -> Result<Egress, EgressError> {
        let pkcs8 = sealed_secret(db, &keys, IDENTITY_KEY, || {
            let rng = ring::rand::SystemRandom::new();
            Ed25519KeyPair::generate_pkcs8(&rng)
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| EgressError::KeyDamaged)
        })?;
        let signer = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| EgressError::KeyDamaged)?;
        let agent_id = agent_id_of(signer.public_key().as_ref());
        Ok(Egress {
            db: db.clone(),
            keys,
            signer,
            agent_id,
            destination: destination.to_owned(),
        })
    }

    /// The id this agent reports as.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// The Ed25519 public key reports are signed with.
    pub fn public_key(&self) -> Vec<u8> {
        self.signer.public_key().as_ref().to_vec()
    }

    /// The PKCS#8 document of the identity key (for the mTLS client identity).
    pub fn identity_pkcs8(&self) -> Result<Vec<u8>, EgressError> {
        sealed_secret(&self.db, &self.keys, IDENTITY_KEY, || {
            Err(EgressError::KeyDamaged)
        })
    }

    /// The local secret that keys session hashes.
    pub fn session_secret(&self) -> Result<Vec<u8>, EgressError> {
        sealed_secret(&self.db, &self.keys, SESSION_SECRET, || {
            use ring::rand::SecureRandom as _;
            let mut s = vec![0u8; 32];
            ring::rand::SystemRandom::new()
                .fill(&mut s)
                .map_err(|_| EgressError::KeyDamaged)?;
            Ok(s)
        })
    }

    /// The persisted open window, if any.
    pub fn window_state(&self) -> Result<Option<crate::metrics::WindowState>, EgressError> {
        let meta = self.db.open_tree(META)?;
        let Some(sealed) = meta.get(WINDOW_STATE)? else {
            return Ok(None);
        };
        let plain = self.keys.sealer.open(META, WINDOW_STATE, &sealed)?;
        // A state from an incompatible version is dropped rather than blocking start-up.
        Ok(serde_json::from_slice(&plain).ok())
    }

    /// Persists the open window.
    pub fn save_window(&self, state: &crate::metrics::WindowState) -> Result<(), EgressError> {
        let plain =
            serde_json::to_vec(state).map_err(|e| EgressError::Transaction(e.to_string()))?;
        let sealed = self.keys.sealer.seal(META, WINDOW_STATE, &plain)?;
        self.db.open_tree(META)?.insert(WINDOW_STATE, sealed)?;
        Ok(())
    }

    /// Spends `cost` millionths of epsilon from the application's budget for `day` (days since the
    /// epoch), unless that would pass `limit`.
    pub fn pay(&self, app: &str, day: u64, cost: u64, limit: u64) -> Result<bool, EgressError> {
        let tree = self.db.open_tree(BUDGET)?;
        let key = budget_key(app, day);
        let mut paid = false;
        tree.fetch_and_update(&key, |old| {
            let spent = old.map_or(0, be_u64);
            if spent.saturating_add(cost) > limit {
                paid = false;
                old.map(<[u8]>::to_vec)
            } else {
                paid = true;
                Some((spent + cost).to_be_bytes().to_vec())
            }
        })?;
        Ok(paid)
    }

    /// What each application has spent on `day`, in millionths.
    pub fn spent(&self, day: u64) -> Result<Vec<(String, u64)>, EgressError> {
        spent_on(&self.db, day)
    }

    /// Signs the report with the next sequence number and appends it to the ledger and the outbox in
    /// one transaction, together with the window state that follows it. Returns the sequence.
    pub fn append(
        &self,
        report: pb::Report,
        next_window: &crate::metrics::WindowState,
    ) -> Result<u64, EgressError> {
        let meta = self.db.open_tree(META)?;
        let ledger = self.db.open_tree(LEDGER)?;
        let outbox = self.db.open_tree(OUTBOX)?;
        let window_plain =
            serde_json::to_vec(next_window).map_err(|e| EgressError::Transaction(e.to_string()))?;
        let window_sealed = self.keys.sealer.seal(META, WINDOW_STATE, &window_plain)?;
        let recorded_at = clock::unix_secs_i64();
        let result = (&meta, &ledger, &outbox).transaction(|(meta, ledger, outbox)| {
            let sequence = meta.get(LAST_SEQUENCE)?.map_or(0, |v| be_u64(&v)) + 1;
            let mut report = report.clone();
            report.agent_id = self.agent_id.clone();
            report.sequence = sequence;
            let payload = readi_proto::signing::sign(&report, &self.signer).encode_to_vec();
            let previous = match sequence {
                1 => vec![0u8; 32],
                n => match ledger.get((n - 1).to_be_bytes())? {
                    Some(v) => apb::EgressEntry::decode(v.as_ref())
                        .map(|e| e.entry_hash)
                        .unwrap_or_default(),
                    None => vec![0u8; 32],
                },
            };
            let hash = entry_hash(
                &previous,
                sequence,
                recorded_at,
                &self.destination,
                &payload,
            );
            let entry = apb::EgressEntry {
                sequence,
                recorded_at: Some(prost_types::Timestamp {
                    seconds: recorded_at,
                    nanos: 0,
                }),
                destination: self.destination.clone(),
                payload,
                report: None,
                previous_hash: previous,
                entry_hash: hash,
                delivered_at: None,
            };
            ledger.insert(&sequence.to_be_bytes(), entry.encode_to_vec())?;
            outbox.insert(&sequence.to_be_bytes(), &[] as &[u8])?;
            meta.insert(LAST_SEQUENCE, &sequence.to_be_bytes())?;
            meta.insert(WINDOW_STATE, window_sealed.clone())?;
            Ok(sequence)
        });
        let seq = result.map_err(|e: sled::transaction::TransactionError| {
            EgressError::Transaction(e.to_string())
        })?;
        self.db.flush()?;
        Ok(seq)
    }

    /// The oldest report not yet delivered: (sequence, signed report bytes).
    pub fn next_unsent(&self) -> Result<Option<(u64, Vec<u8>)>, EgressError> {
        let outbox = self.db.open_tree(OUTBOX)?;
        let ledger = self.db.open_tree(LEDGER)?;
        let Some(item) = outbox.iter().next() else {
            return Ok(None);
        };
        let (k, _) = item?;
        let seq = be_u64(&k);
        let v = ledger.get(&k)?.ok_or(EgressError::Damaged(seq))?;
        let entry = apb::EgressEntry::decode(v.as_ref()).map_err(|_| EgressError::Damaged(seq))?;
        Ok(Some((seq, entry.payload)))
    }

    /// Reports waiting in the outbox, and when the oldest was written.
    pub fn outbox_depth(&self) -> Result<(usize, Option<i64>), EgressError> {
        let outbox = self.db.open_tree(OUTBOX)?;
        let oldest = match outbox.iter().next() {
            Some(item) => {
                let (k, _) = item?;
                self.entry(be_u64(&k))?
                    .and_then(|e| e.recorded_at)
                    .map(|t| t.seconds)
            }
            None => None,
        };
        Ok((outbox.len(), oldest))
    }

    /// The newest ledger entry: its sequence number and entry hash; `None` while the ledger is empty.
    pub fn head(&self) -> Result<Option<(u64, Vec<u8>)>, EgressError> {
        let Some((k, v)) = self.db.open_tree(LEDGER)?.last()? else {
            return Ok(None);
        };
        let seq = be_u64(&k);
        let e = apb::EgressEntry::decode(v.as_ref()).map_err(|_| EgressError::Damaged(seq))?;
        Ok(Some((seq, e.entry_hash)))
    }

    /// The sequence number of the newest report written.
    pub fn last_sequence(&self) -> Result<u64, EgressError> {
        Ok(self
            .db
            .open_tree(META)?
            .get(LAST_SEQUENCE)?
            .map_or(0, |v| be_u64(&v)))
    }

    /// Marks a report delivered: out of the outbox, delivery time recorded, in one transaction.
    pub fn delivered(&self, sequence: u64) -> Result<(), EgressError> {
        let outbox = self.db.open_tree(OUTBOX)?;
        let delivered = self.db.open_tree(DELIVERED)?;
        let at = clock::unix_secs_i64();
        (&outbox, &delivered)
            .transaction(|(outbox, delivered)| {
                outbox.remove(&sequence.to_be_bytes())?;
                delivered.insert(&sequence.to_be_bytes(), &at.to_be_bytes())?;
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError| {
                EgressError::Transaction(e.to_string())
            })?;
        self.db.flush()?;
        Ok(())
    }

    fn entry(&self, sequence: u64) -> Result<Option<apb::EgressEntry>, EgressError> {
        let ledger = self.db.open_tree(LEDGER)?;
        match ledger.get(sequence.to_be_bytes())? {
            Some(v) => Ok(Some(
                apb::EgressEntry::decode(v.as_ref()).map_err(|_| EgressError::Damaged(sequence))?,
            )),
            None => Ok(None),
        }
    }

    /// Enrollment as recorded by the uploader: (agent id, app ids).
    pub fn enrollment(&self) -> Result<Option<Vec<u8>>, EgressError> {
        Ok(self
            .db
            .open_tree(META)?
            .get(ENROLLMENT)?
            .map(|v| v.to_vec()))
    }

    /// Records a completed enrollment (the controller's response, encoded).
    pub fn set_enrollment(&self, encoded: &[u8]) -> Result<(), EgressError> {
        self.db.open_tree(META)?.insert(ENROLLMENT, encoded)?;
        self.db.flush()?;
        Ok(())
    }
}

/// Lists ledger entries from `from` (at most `limit`), decoded, with delivery times, and whether
/// the hash chain over them (and to their predecessor) verifies.
pub fn list(
    db: &sled::Db,
    from: u64,
    limit: usize,
) -> Result<(Vec<apb::EgressEntry>, bool), EgressError> {
    let ledger = db.open_tree(LEDGER)?;
    let delivered = db.open_tree(DELIVERED)?;
    let mut previous: Option<Vec<u8>> = match from.checked_sub(1).filter(|&p| p > 0) {
        Some(p) => ledger
            .get(p.to_be_bytes())?
            .and_then(|v| apb::EgressEntry::decode(v.as_ref()).ok())
            .map(|e| e.entry_hash),
        None => Some(vec![0u8; 32]),
    };
    let mut ok = true;
    let mut out = Vec::new();
    let mut expected = from.max(1);
    for item in ledger.range(from.max(1).to_be_bytes()..).take(limit) {
        let (k, v) = item?;
        let seq = be_u64(&k);
        let mut e = apb::EgressEntry::decode(v.as_ref()).map_err(|_| EgressError::Damaged(seq))?;
        let recorded = e.recorded_at.as_ref().map_or(0, |t| t.seconds);
        let want = entry_hash(&e.previous_hash, seq, recorded, &e.destination, &e.payload);
        if want != e.entry_hash || seq != expected || e.sequence != seq {
            ok = false;
        }
        if let Some(p) = &previous
            && *p != e.previous_hash
        {
            ok = false;
        }
        previous = Some(e.entry_hash.clone());
        expected = seq + 1;
        e.report = pb::SignedReport::decode(e.payload.as_slice())
            .ok()
            .and_then(|s| pb::Report::decode(s.report.as_slice()).ok());
        e.delivered_at = delivered.get(&k)?.map(|t| prost_types::Timestamp {
            seconds: be_u64(&t) as i64,
            nanos: 0,
        });
        out.push(e);
    }
    Ok((out, ok))
}

/// The agent id of the reporting identity in `db`, if one was made (never creates one).
pub fn existing_agent_id(db: &sled::Db, keys: &Keys) -> Option<String> {
    let sealed = db.open_tree(META).ok()?.get(IDENTITY_KEY).ok()??;
    let pkcs8 = keys.sealer.open(META, IDENTITY_KEY, &sealed).ok()?;
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).ok()?;
    Some(agent_id_of(pair.public_key().as_ref()))
}

/// What each application spent on `day` (days since the epoch), in millionths of epsilon.
pub fn spent_on(db: &sled::Db, day: u64) -> Result<Vec<(String, u64)>, EgressError> {
    let tree = db.open_tree(BUDGET)?;
    let mut out = Vec::new();
    for item in tree.iter() {
        let (k, v) = item?;
        if k.len() > 8 && be_u64(&k[k.len() - 8..]) == day {
            let app = String::from_utf8_lossy(&k[..k.len() - 9]).into_owned();
            out.push((app, be_u64(&v)));
        }
    }
    Ok(out)
}

/// Reports waiting in the outbox.
pub fn outbox_len(db: &sled::Db) -> Result<usize, EgressError> {
    Ok(db.open_tree(OUTBOX)?.len())
}

fn budget_key(app: &str, day: u64) -> Vec<u8> {
    let mut k = app.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&day.to_be_bytes());
    k
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[8 - n..].copy_from_slice(&b[b.len() - n..]);
    u64::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, sled::Db, Egress) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        let e = Egress::open(&db, keys, "https://controller.test").unwrap();
        (dir, db, e)
    }

    fn report(start: i64) -> pb::Report {
        pb::Report {
            schema_version: 1,
            window_start: Some(prost_types::Timestamp {
                seconds: start,
                nanos: 0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn reports_are_signed_chained_and_queued_in_order() {
        let (_d, db, e) = open();
        let s1 = e.append(report(0), &Default::default()).unwrap();
        let s2 = e.append(report(60), &Default::default()).unwrap();
        assert_eq!((s1, s2), (1, 2));
        let (seq, bytes) = e.next_unsent().unwrap().unwrap();
        assert_eq!(seq, 1);
        let signed = pb::SignedReport::decode(bytes.as_slice()).unwrap();
        let key =
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, e.public_key());
        key.verify(&signed.report, &signed.signature).unwrap();
        let r = pb::Report::decode(signed.report.as_slice()).unwrap();
        assert_eq!((r.sequence, r.agent_id.as_str()), (1, e.agent_id()));
        e.delivered(1).unwrap();
        assert_eq!(e.next_unsent().unwrap().unwrap().0, 2);
        let (entries, ok) = list(&db, 0, 100).unwrap();
        assert!(ok);
        assert_eq!(entries.len(), 2);
        assert!(entries[0].delivered_at.is_some() && entries[1].delivered_at.is_none());
        assert_eq!(entries[1].previous_hash, entries[0].entry_hash);
    }

    #[test]
    fn an_edited_entry_breaks_the_chain() {
        let (_d, db, e) = open();
        e.append(report(0), &Default::default()).unwrap();
        e.append(report(60), &Default::default()).unwrap();
        let ledger = db.open_tree(LEDGER).unwrap();
        let mut first =
            apb::EgressEntry::decode(ledger.get(1u64.to_be_bytes()).unwrap().unwrap().as_ref())
                .unwrap();
        first.payload.push(0);
        ledger
            .insert(1u64.to_be_bytes(), first.encode_to_vec())
            .unwrap();
        assert!(!list(&db, 0, 100).unwrap().1);
    }

    #[test]
    fn the_identity_survives_a_restart_and_the_budget_caps_spending() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let db = sled::open(dir.path().join("db")).unwrap();
            let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
            let e = Egress::open(&db, keys, "x").unwrap();
            assert!(e.pay("app", 10, 600, 1000).unwrap());
            assert!(!e.pay("app", 10, 600, 1000).unwrap());
            assert!(e.pay("app", 11, 600, 1000).unwrap());
            assert_eq!(e.spent(10).unwrap(), vec![("app".to_owned(), 600)]);
            db.flush().unwrap();
            e.agent_id().to_owned()
        };
        let db = sled::open(dir.path().join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        assert_eq!(Egress::open(&db, keys, "x").unwrap().agent_id(), id);
    }
}
