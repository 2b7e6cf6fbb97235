//! The audit log: append-only, hash-chained records of sensitive operations (who, what, when,
//! outcome; never PHI), checkpoints signed with the agent's Ed25519 key, and a verifier that says
//! which record was edited, deleted, reordered or cut off.

use readi_common::clock;
use readi_common::identity::{hex, unhex};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::keys::Keys;
use crate::mark::{Advance, Mark, MarkError};
use crate::seal::SealError;

const TREE: &str = "audit";
const CHECKPOINTS: &str = "audit_checkpoints";
const META: &str = "meta";
const SIGNING_KEY: &[u8] = b"audit-signing-key";
const CHECKPOINT_DOMAIN: &[u8] = b"readi audit checkpoint v1\0";
const PRUNE_DOMAIN: &[u8] = b"readi audit prune v1\0";
const PRUNED: &[u8] = b"audit-pruned";

/// Why the audit log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] sled::Error),
    /// The sealed signing key did not open.
    #[error("audit signing key: {0}")]
    Seal(#[from] SealError),
    /// The signing key is gone while records exist: the log cannot be trusted or extended.
    #[error(
        "the audit signing key is missing but the log has records; restore the store from backup"
    )]
    KeyMissing,
    /// The signing key is not a valid Ed25519 key.
    #[error("the audit signing key is damaged")]
    KeyDamaged,
    /// The last record does not parse, so the chain cannot be extended.
    #[error("the last audit record is damaged; run `readi-agent audit verify`")]
    HeadDamaged,
    /// The high-water mark could not be advanced: the record is not acknowledged.
    #[error(transparent)]
    Mark(#[from] MarkError),
}

#[derive(Serialize, Deserialize)]
struct Entry {
    seq: u64,
    at_unix_ms: u64,
    action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    actor: String,
    app_id: String,
    outcome: String,
    /// SHA-256 of the previous record's stored bytes, hex; zeros for the first.
    prev: String,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    seq: u64,
    hash: String,
    at_unix_ms: u64,
    signature: String,
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verification {
    /// Records read.
    pub records: u64,
    /// Signed checkpoints whose signature and record both verified.
    pub checkpoints: u64,
    /// The highest sequence number covered by a verified checkpoint.
    pub signed_through: u64,
    /// The first problem: the sequence number it concerns and what is wrong.
    pub problem: Option<(u64, String)>,
    /// Every problem found, in order.
    pub problems: Vec<(u64, String)>,
    /// The Ed25519 public key checkpoints are signed with, hex.
    pub public_key: String,
}

impl Verification {
    /// True when the chain and every checkpoint verify.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn fail(&mut self, seq: u64, message: String) {
        if self.problem.is_none() {
            self.problem = Some((seq, message.clone()));
        }
        self.problems.push((seq, message));
    }
}

/// The signed record of a retention prune: records up to `through` were removed on purpose, and the
/// chain continues from `hash`.
#[derive(Serialize, Deserialize)]
struct Pruned {
    through: u64,
    hash: String,
    at_unix_ms: u64,
    signature: String,
}

fn prune_message(through: u64, hash: &[u8]) -> Vec<u8> {
    let mut m = PRUNE_DOMAIN.to_vec();
    m.extend_from_slice(&through.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

struct Head {
    seq: u64,
    hash: [u8; 32],
    signed: u64,
}

/// Appends audit records and signs checkpoints.
pub struct Audit {
    tree: sled::Tree,
    checkpoints: sled::Tree,
    meta: sled::Tree,
    signer: Ed25519KeyPair,
    head: Mutex<Head>,
    every: u64,
    /// Advanced after each record is durable, when attached (`attach`).
    mark: OnceLock<Arc<Mark>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").finish_non_exhaustive()
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn seq_of(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[8 - n..].copy_from_slice(&key[key.len() - n..]);
    u64::from_be_bytes(b)
}

fn checkpoint_message(seq: u64, hash: &[u8]) -> Vec<u8> {
    let mut m = CHECKPOINT_DOMAIN.to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

impl Audit {
    /// Opens the log, creating the signing key (sealed under the data key) for a new store. A
    /// checkpoint is signed every `checkpoint_every` records, and on `checkpoint()`.
    pub fn open(
        db: &sled::Db,
        keys: &Arc<Keys>,
        checkpoint_every: u64,
    ) -> Result<Audit, AuditError> {
        let tree = db.open_tree(TREE)?;
        let checkpoints = db.open_tree(CHECKPOINTS)?;
        let meta = db.open_tree(META)?;
        let pkcs8 = match meta.get(SIGNING_KEY)? {
            Some(sealed) => keys.sealer.open(META, SIGNING_KEY, &sealed)?,
            None if !tree.is_empty() => return Err(AuditError::KeyMissing),
            None => {
                let rng = ring::rand::SystemRandom::new();
                let doc =
                    Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| AuditError::KeyDamaged)?;
                let sealed = keys.sealer.seal(META, SIGNING_KEY, doc.as_ref())?;
                meta.insert(SIGNING_KEY, sealed)?;
                meta.flush()?;
                doc.as_ref().to_vec()
            }
        };
        let signer = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| AuditError::KeyDamaged)?;
        let head = match tree.last()? {
            None => Head {
                seq: 0,
                hash: [0; 32],
                signed: 0,
            },
            Some((k, v)) => {
                serde_json::from_slice::<Entry>(&v).map_err(|_| AuditError::HeadDamaged)?;
                Head {
                    seq: seq_of(&k),
                    hash: sha256(&v),
                    signed: checkpoints.last()?.map_or(0, |(k, _)| seq_of(&k)),
                }
            }
        };
        Ok(Audit {
            tree,
            checkpoints,
            meta,
            signer,
            head: Mutex::new(head),
            every: checkpoint_every.max(1),
            mark: OnceLock::new(),
        })
    }

    /// From now on every record is covered by `mark` before it is acknowledged, and `verify`
    /// checks the log against it.
    pub fn attach(&self, mark: Arc<Mark>) {
        let _ = self.mark.set(mark);
    }

    /// The newest record: sequence number and SHA-256 of its stored bytes.
    pub fn head(&self) -> (u64, [u8; 32]) {
        let head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        (head.seq, head.hash)
    }

    /// Whether the log still holds record `seq` with stored-bytes hash `hash_hex` (or removed it
    /// under retention, by a prune marker that verifies); `Some(what is missing)` when not.
    pub fn holds(&self, seq: u64, hash_hex: &str) -> Result<Option<String>, AuditError> {
        if seq == 0 {
            return Ok(None);
        }
        let last = self.tree.last()?.map_or(0, |(k, _)| seq_of(&k));
        let pruned = self.pruned_through()?;
        // Sequence numbers are dense: every one up to the mark must be there, not only the newest.
        if seq > pruned {
            let mut held = 0u64;
            for k in self
                .tree
                .range((pruned + 1).to_be_bytes()..=seq.to_be_bytes())
                .keys()
            {
                k?;
                held += 1;
            }
            if held < seq - pruned && last >= seq {
                return Ok(Some(format!(
                    "{} of the acknowledged audit records #{} to #{seq} are missing",
                    seq - pruned - held,
                    pruned + 1
                )));
            }
        }
        match self.tree.get(seq.to_be_bytes())? {
            Some(v) if hex(&sha256(&v)) == hash_hex => Ok(None),
            Some(_) => Ok(Some(format!(
                "audit record #{seq} differs from the one acknowledged"
            ))),
            None if pruned >= seq => Ok(None),
            None if last < seq => Ok(Some(format!(
                "audit records #{} to #{seq} are missing (the log ends at #{last})",
                last + 1
            ))),
            None => Ok(Some(format!("audit record #{seq} is missing"))),
        }
    }

    /// Through which sequence number records were removed by a verified retention prune.
    fn pruned_through(&self) -> Result<u64, AuditError> {
        let key = UnparsedPublicKey::new(&ED25519, self.signer.public_key().as_ref().to_vec());
        let Some(bytes) = self.meta.get(PRUNED)? else {
            return Ok(0);
        };
        Ok(serde_json::from_slice::<Pruned>(&bytes)
            .ok()
            .filter(|p| {
                unhex(&p.hash)
                    .zip(unhex(&p.signature))
                    .is_some_and(|(h, s)| key.verify(&prune_message(p.through, &h), &s).is_ok())
            })
            .map_or(0, |p| p.through))
    }

    /// Appends a record and makes it durable before returning.
    pub fn record(&self, action: &str, app_id: &str, outcome: &str) -> Result<(), AuditError> {
        self.record_by(action, "", app_id, outcome)
    }

    /// Appends a record naming who acted (a staff or token id, never a patient's).
    pub fn record_by(
        &self,
        action: &str,
        actor: &str,
        app_id: &str,
        outcome: &str,
    ) -> Result<(), AuditError> {
        // A poisoned lock means another append panicked; the head it guards is still consistent
        // because it is only updated after a successful insert.
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let entry = Entry {
            seq: head.seq + 1,
            at_unix_ms: clock::unix_ms(),
            action: action.to_owned(),
            actor: actor.to_owned(),
            app_id: app_id.to_owned(),
            outcome: outcome.to_owned(),
            prev: hex(&head.hash),
        };
        let bytes = serde_json::to_vec(&entry).expect("audit entry serializes");
        self.tree
            .insert(entry.seq.to_be_bytes(), bytes.as_slice())?;
        head.seq = entry.seq;
        head.hash = sha256(&bytes);
        if head.seq.is_multiple_of(self.every) {
            self.sign(&mut head)?;
        }
        self.tree.flush()?;
        let (seq, hash) = (head.seq, head.hash);
        drop(head);
        if let Some(mark) = self.mark.get() {
            mark.advance(Advance::Audit { seq, hash })?;
        }
        Ok(())
    }

    fn sign(&self, head: &mut Head) -> Result<(), AuditError> {
        if head.seq == 0 || head.signed == head.seq {
            return Ok(());
        }
        let sig = self.signer.sign(&checkpoint_message(head.seq, &head.hash));
        let cp = Checkpoint {
            seq: head.seq,
            hash: hex(&head.hash),
            at_unix_ms: clock::unix_ms(),
            signature: hex(sig.as_ref()),
        };
        let bytes = serde_json::to_vec(&cp).expect("checkpoint serializes");
        self.checkpoints.insert(head.seq.to_be_bytes(), bytes)?;
        self.checkpoints.flush()?;
        head.signed = head.seq;
        Ok(())
    }

    /// Signs a checkpoint over the newest record, if it is not signed yet.
    pub fn checkpoint(&self) -> Result<(), AuditError> {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        self.sign(&mut head)
    }

    /// Removes records written before `cutoff_unix_ms` (never the newest), after signing a marker
    /// so the verifier knows the chain starts later on purpose. Returns how many were removed.
    pub fn prune_before(&self, cutoff_unix_ms: u64) -> Result<u64, AuditError> {
        let (through, hash) = {
            let head = self.head.lock().unwrap_or_else(|p| p.into_inner());
            let mut found = None;
            for item in self.tree.iter() {
                let (k, v) = item?;
                let seq = seq_of(&k);
                let old = serde_json::from_slice::<Entry>(&v)
                    .is_ok_and(|e| e.at_unix_ms < cutoff_unix_ms);
                if !old || seq >= head.seq {
                    break;
                }
                found = Some((seq, sha256(&v)));
            }
            match found {
                Some(f) => f,
                None => return Ok(0),
            }
        };
        let sig = self.signer.sign(&prune_message(through, &hash));
        let marker = Pruned {
            through,
            hash: hex(&hash),
            at_unix_ms: clock::unix_ms(),
            signature: hex(sig.as_ref()),
        };
        self.meta.insert(
            PRUNED,
            serde_json::to_vec(&marker).expect("prune marker serializes"),
        )?;
        self.meta.flush()?;
        let mut removed = 0;
        for item in self.tree.range(..=through.to_be_bytes()) {
            let (k, _) = item?;
            self.tree.remove(k)?;
            removed += 1;
        }
        for item in self.checkpoints.range(..=through.to_be_bytes()) {
            let (k, _) = item?;
            self.checkpoints.remove(k)?;
        }
        self.tree.flush()?;
        self.checkpoints.flush()?;
        self.record(
            "audit_prune",
            "",
            &format!("{removed} records through #{through} past retention removed"),
        )?;
        Ok(removed)
    }

    /// The Ed25519 public key of the checkpoints, hex.
    pub fn public_key(&self) -> String {
        hex(self.signer.public_key().as_ref())
    }

    /// Every record, oldest first, as JSON.
    pub fn records(&self) -> Result<Vec<String>, AuditError> {
        Ok(self
            .tree
            .iter()
            .values()
            .map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
            .collect::<Result<_, _>>()?)
    }

    /// Walks the chain and every checkpoint; names each edited, deleted, reordered or truncated
    /// record and each bad signature.
    pub fn verify(&self) -> Result<Verification, AuditError> {
        let mut v = Verification {
            public_key: self.public_key(),
            ..Verification::default()
        };
        // Read before the walk: the mark only covers records already in the tree, so appends
        // while verifying never look like a cut tail.
        let covered = self.mark.get().map(|m| m.covered());
        let key = UnparsedPublicKey::new(&ED25519, self.signer.public_key().as_ref().to_vec());
        let mut signed: Vec<Checkpoint> = Vec::new();
        for item in self.checkpoints.iter() {
            let (k, bytes) = item?;
            match serde_json::from_slice::<Checkpoint>(&bytes) {
                Ok(cp) if cp.seq == seq_of(&k) => signed.push(cp),
                _ => v.fail(
                    seq_of(&k),
                    format!("checkpoint at #{} is damaged", seq_of(&k)),
                ),
            }
        }
        let wanted: HashMap<u64, ()> = signed.iter().map(|c| (c.seq, ())).collect();
        let mut hashes: HashMap<u64, [u8; 32]> = HashMap::new();
        let mut prev = [0u8; 32];
        let mut expected = 1u64;
        let mut last = 0u64;
        // Records removed under retention: the signed marker says where the chain resumes.
        let mut pruned_through = 0u64;
        if let Some(bytes) = self.meta.get(PRUNED)? {
            match serde_json::from_slice::<Pruned>(&bytes) {
                Ok(p) => {
                    let valid = unhex(&p.hash).zip(unhex(&p.signature)).and_then(|(h, s)| {
                        key.verify(&prune_message(p.through, &h), &s).ok()?;
                        <[u8; 32]>::try_from(h.as_slice()).ok()
                    });
                    match valid {
                        Some(h) => {
                            prev = h;
                            expected = p.through + 1;
                            pruned_through = p.through;
                            last = p.through;
                        }
                        None => v.fail(0, "the retention prune marker has a bad signature".into()),
                    }
                }
                Err(_) => v.fail(0, "the retention prune marker is damaged".into()),
            }
        }
        signed.retain(|c| c.seq > pruned_through);
        for item in self.tree.iter() {
            let (k, bytes) = item?;
            let at = seq_of(&k);
            if at <= pruned_through {
                // Left behind by a prune interrupted before it finished deleting.
                continue;
            }
            v.records += 1;
            last = at;
            let hash = sha256(&bytes);
            match serde_json::from_slice::<Entry>(&bytes) {
                Err(_) => v.fail(at, format!("record #{at} is unreadable: it was edited")),
                Ok(e) if e.seq != at => v.fail(
                    at,
                    format!(
                        "position #{at} holds record #{}: records were reordered",
                        e.seq
                    ),
                ),
                Ok(_) if at > expected => v.fail(
                    expected,
                    if at == expected + 1 {
                        format!("record #{expected} was deleted")
                    } else {
                        format!("records #{expected} to #{} were deleted", at - 1)
                    },
                ),
                Ok(e) if e.prev != hex(&prev) => v.fail(
                    at - 1,
                    format!(
                        "record #{} was edited: record #{at} links to a different hash",
                        at - 1
                    ),
                ),
                Ok(_) => {}
            }
            if wanted.contains_key(&at) {
                hashes.insert(at, hash);
            }
            prev = hash;
            expected = at + 1;
        }
        for cp in &signed {
            let sig_ok = unhex(&cp.hash)
                .zip(unhex(&cp.signature))
                .is_some_and(|(h, s)| key.verify(&checkpoint_message(cp.seq, &h), &s).is_ok());
            if !sig_ok {
                v.fail(
                    cp.seq,
                    format!("checkpoint at #{} has a bad signature", cp.seq),
                );
                continue;
            }
            match hashes.get(&cp.seq) {
                None if cp.seq > last => v.fail(
                    last + 1,
                    format!(
                        "the log was truncated: a signed checkpoint covers #{} but the log ends at #{last}",
                        cp.seq
                    ),
                ),
                None => v.fail(cp.seq, format!("record #{} was deleted", cp.seq)),
                Some(h) if hex(h) != cp.hash => v.fail(
                    cp.seq,
                    format!("record #{} differs from its signed checkpoint", cp.seq),
                ),
                Some(_) => {
                    v.checkpoints += 1;
                    v.signed_through = v.signed_through.max(cp.seq);
                }
            }
        }
        if let Some(c) = covered {
            if c.audit_seq > last && c.audit_seq > pruned_through {
                v.fail(
                    last + 1,
                    format!(
                        "records #{} to #{} are missing: the high-water mark says #{} was acknowledged, but the log ends at #{last}",
                        last + 1,
                        c.audit_seq,
                        c.audit_seq
                    ),
                );
            } else if let Some(missing) = self.holds(c.audit_seq, &c.audit_hash)? {
                v.fail(c.audit_seq, format!("{missing} (high-water mark)"));
            }
        }
        v.problems.sort_by_key(|p| p.0);
        v.problem = v.problems.first().cloned();
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(every: u64) -> (tempfile::TempDir, sled::Db, Audit) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        let a = Audit::open(&db, &keys, every).unwrap();
        (dir, db, a)
    }

    fn fill(a: &Audit, n: u64) {
        for i in 0..n {
            a.record_by("reidentify", "token-1", "app", &format!("restored {i}"))
                .unwrap();
        }
        a.checkpoint().unwrap();
    }

    #[test]
    fn pruning_past_retention_keeps_the_rest_verifiable() {
        let (_d, _db, a) = open(4);
        fill(&a, 10);
        let removed = a.prune_before(u64::MAX).unwrap();
        assert_eq!(removed, 9, "everything but the newest record");
        a.checkpoint().unwrap();
        let v = a.verify().unwrap();
        assert!(v.ok(), "{:?}", v.problems);
        assert_eq!(v.records, 2, "the newest record and the prune's own record");
        // Forging the marker to hide more deletions needs the signing key.
        let raw = a.meta.get(PRUNED).unwrap().unwrap();
        let mut p: Pruned = serde_json::from_slice(&raw).unwrap();
        p.through += 1;
        a.meta
            .insert(PRUNED, serde_json::to_vec(&p).unwrap())
            .unwrap();
        let v = a.verify().unwrap();
        assert!(v.problem.unwrap().1.contains("bad signature"));
    }

    fn key(seq: u64) -> [u8; 8] {
        seq.to_be_bytes()
    }

    #[test]
    fn an_untouched_log_verifies_and_reopens_where_it_ended() {
        let (dir, db, a) = open(4);
        fill(&a, 10);
        let v = a.verify().unwrap();
        assert!(v.ok(), "{:?}", v.problems);
        assert_eq!((v.records, v.signed_through), (10, 10));
        assert_eq!(v.checkpoints, 3, "at #4, #8 and the explicit one at #10");
        drop(a);
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        let again = Audit::open(&db, &keys, 4).unwrap();
        again.record("x", "app", "y").unwrap();
        again.checkpoint().unwrap();
        let v = again.verify().unwrap();
        assert!(v.ok(), "{:?}", v.problems);
        assert_eq!(v.records, 11);
    }

    #[test]
    fn an_edited_record_is_named() {
        let (_d, _db, a) = open(100);
        fill(&a, 6);
        let raw = a.tree.get(key(3)).unwrap().unwrap();
        let edited = String::from_utf8(raw.to_vec())
            .unwrap()
            .replace("restored 2", "restored 9");
        a.tree.insert(key(3), edited.as_bytes()).unwrap();
        let v = a.verify().unwrap();
        assert_eq!(v.problem.as_ref().map(|p| p.0), Some(3), "{:?}", v.problems);
        assert!(v.problem.unwrap().1.contains("edited"));
    }

    #[test]
    fn a_deleted_record_is_named() {
        let (_d, _db, a) = open(100);
        fill(&a, 6);
        a.tree.remove(key(4)).unwrap();
        let v = a.verify().unwrap();
        assert_eq!(v.problem.as_ref().map(|p| p.0), Some(4), "{:?}", v.problems);
        assert!(v.problem.unwrap().1.contains("deleted"));
    }

    #[test]
    fn reordered_records_are_named() {
        let (_d, _db, a) = open(100);
        fill(&a, 6);
        let r2 = a.tree.get(key(2)).unwrap().unwrap();
        let r3 = a.tree.get(key(3)).unwrap().unwrap();
        a.tree.insert(key(2), r3).unwrap();
        a.tree.insert(key(3), r2).unwrap();
        let v = a.verify().unwrap();
        assert_eq!(v.problem.as_ref().map(|p| p.0), Some(2), "{:?}", v.problems);
        assert!(v.problem.unwrap().1.contains("reordered"));
    }

    #[test]
    fn truncation_after_a_checkpoint_is_named() {
        let (_d, _db, a) = open(100);
        fill(&a, 8);
        a.tree.remove(key(8)).unwrap();
        a.tree.remove(key(7)).unwrap();
        let v = a.verify().unwrap();
        let (seq, msg) = v.problem.clone().unwrap();
        assert_eq!(seq, 7, "{:?}", v.problems);
        assert!(msg.contains("truncated"), "{msg}");
    }

    #[test]
    fn an_edited_last_record_or_forged_checkpoint_is_caught_by_the_signature() {
        let (_d, _db, a) = open(100);
        fill(&a, 3);
        let raw = a.tree.get(key(3)).unwrap().unwrap();
        let edited = String::from_utf8(raw.to_vec())
            .unwrap()
            .replace("restored 2", "restored 7");
        a.tree.insert(key(3), edited.as_bytes()).unwrap();
        let v = a.verify().unwrap();
        assert!(v.problem.unwrap().1.contains("signed checkpoint"));
        // Re-pointing the checkpoint at the edited record needs the private key.
        let raw = a.checkpoints.get(key(3)).unwrap().unwrap();
        let mut cp: Checkpoint = serde_json::from_slice(&raw).unwrap();
        cp.hash = hex(&sha256(edited.as_bytes()));
        a.checkpoints
            .insert(key(3), serde_json::to_vec(&cp).unwrap())
            .unwrap();
        let v = a.verify().unwrap();
        assert!(v.problem.unwrap().1.contains("bad signature"));
    }

    #[test]
    fn a_log_without_its_signing_key_refuses_to_open() {
        let (dir, db, a) = open(100);
        fill(&a, 2);
        drop(a);
        db.open_tree(META).unwrap().remove(SIGNING_KEY).unwrap();
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        assert!(matches!(
            Audit::open(&db, &keys, 100),
            Err(AuditError::KeyMissing)
        ));
    }

    #[test]
    fn a_tail_cut_with_its_checkpoints_fails_against_the_high_water_mark() {
        let (dir, db, a) = open(4);
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        let mark = Arc::new(Mark::open(dir.path(), &keys, &db).unwrap());
        a.attach(Arc::clone(&mark));
        fill(&a, 10);
        assert!(a.verify().unwrap().ok());
        for seq in 7..=10 {
            a.tree.remove(key(seq)).unwrap();
            a.checkpoints.remove(key(seq)).unwrap();
        }
        assert!(a.checkpoints.remove(key(8)).unwrap().is_none());
        let v = a.verify().unwrap();
        let (seq, msg) = v.problem.clone().unwrap();
        assert_eq!(seq, 7, "{:?}", v.problems);
        assert!(msg.contains("records #7 to #10 are missing"), "{msg}");
        assert!(mark.behind(&keys, &a).is_err());
    }
}
