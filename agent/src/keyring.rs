//! The keyring: a data key per data class (the tree a value lives in) and epoch, each wrapped by the
//! key-encryption key. New values are sealed under the class's current epoch; rotation adds an epoch
//! and old values stay readable; destroying an epoch's key crypto-shreds everything sealed under it.

use readi_common::clock;
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::seal::{SealError, Sealer, open_with, seal_with};

const TREE: &str = "keys";
const VERSION: u8 = 2;
/// Seals per data key before it is retired: random 96-bit nonces stay collision-safe well below 2^32.
pub const SEALS_PER_KEY: u64 = 1 << 32;
/// Seal counts are reserved on disk this far ahead, so a crash never under-counts.
const RESERVE: u64 = 4096;

#[derive(Serialize, Deserialize)]
struct EpochRecord {
    created_unix: u64,
    /// The data key sealed by the wrapping key, bound to this record's key.
    wrapped: Vec<u8>,
    /// Seals reserved so far (at least those made).
    reserved: u64,
}

struct Epoch {
    cipher: Aes256Gcm,
    created_unix: u64,
    seals: AtomicU64,
    reserved: AtomicU64,
}

/// One data key as the safeguards report shows it (never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The data class (tree) it seals.
    pub class: String,
    /// Its epoch number.
    pub epoch: u32,
    /// When it was created (Unix seconds).
    pub created_unix: u64,
    /// Whether new values are sealed under it.
    pub current: bool,
    /// Seals counted so far.
    pub seals: u64,
}

/// Why a keyring operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The store failed.
    #[error("key store: {0}")]
    Store(#[from] sled::Error),
    /// A wrapped data key did not unwrap (wrong KEK or damage).
    #[error("data key {0} does not unwrap: wrong key-encryption key or damaged key store")]
    Unwrap(String),
    /// Randomness failed.
    #[error("no randomness available")]
    Random,
}

fn record_key(class: &str, epoch: u32) -> Vec<u8> {
    format!("epoch/{class}/{epoch:010}").into_bytes()
}

fn parse_record_key(k: &[u8]) -> Option<(String, u32)> {
    let s = std::str::from_utf8(k).ok()?.strip_prefix("epoch/")?;
    let (class, epoch) = s.rsplit_once('/')?;
    Some((class.to_owned(), epoch.parse().ok()?))
}

fn binding(tree: &str, key: &[u8], epoch: u32) -> Vec<u8> {
    let mut ad = Vec::with_capacity(tree.len() + key.len() + 13);
    ad.push(VERSION);
    ad.extend_from_slice(&epoch.to_be_bytes());
    ad.extend_from_slice(&(tree.len() as u64).to_be_bytes());
    ad.extend_from_slice(tree.as_bytes());
    ad.extend_from_slice(key);
    ad
}

/// Data keys by class and epoch.
pub struct Keyring {
    wrap: Sealer,
    legacy: Sealer,
    tree: sled::Tree,
    epochs: RwLock<HashMap<String, BTreeMap<u32, Epoch>>>,
    limit: u64,
    rng: SystemRandom,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(<keys redacted>)")
    }
}

impl Keyring {
    /// Loads every epoch's data key, unwrapping it with `wrap`; `legacy` opens values written before
    /// epochs existed. Keys are retired after `limit` seals.
    pub fn load(
        db: &sled::Db,
        wrap: Sealer,
        legacy: Sealer,
        limit: u64,
    ) -> Result<Keyring, KeyringError> {
        let tree = db.open_tree(TREE)?;
        let mut epochs: HashMap<String, BTreeMap<u32, Epoch>> = HashMap::new();
        for item in tree.scan_prefix(b"epoch/") {
            let (k, v) = item?;
            let Some((class, epoch)) = parse_record_key(&k) else {
                continue;
            };
            let name = format!("{class}/{epoch}");
            let rec: EpochRecord =
                serde_json::from_slice(&v).map_err(|_| KeyringError::Unwrap(name.clone()))?;
            let dek = wrap
                .open(TREE, &k, &rec.wrapped)
                .map_err(|_| KeyringError::Unwrap(name.clone()))?;
            let dek: [u8; 32] = dek.try_into().map_err(|_| KeyringError::Unwrap(name))?;
            epochs.entry(class).or_default().insert(
                epoch,
                Epoch {
                    cipher: Aes256Gcm::new(&dek.into()),
                    created_unix: rec.created_unix,
                    // Everything reserved may have been used before a crash.
                    seals: AtomicU64::new(rec.reserved),
                    reserved: AtomicU64::new(rec.reserved),
                },
            );
        }
        Ok(Keyring {
            wrap,
            legacy,
            tree,
            epochs: RwLock::new(epochs),
            limit: limit.max(RESERVE),
            rng: SystemRandom::new(),
        })
    }

    fn put(&self, class: &str, epoch: u32, e: &Epoch, wrapped: Vec<u8>) -> Result<(), sled::Error> {
        let rec = EpochRecord {
            created_unix: e.created_unix,
            wrapped,
            reserved: e.reserved.load(Ordering::SeqCst),
        };
        self.tree.insert(
            record_key(class, epoch),
            serde_json::to_vec(&rec).expect("epoch record serializes"),
        )?;
        self.tree.flush()?;
        Ok(())
    }

    /// Adds a new epoch for `class` and makes it current; returns its number.
    pub fn rotate(&self, class: &str) -> Result<u32, KeyringError> {
        let mut all = self.epochs.write().unwrap_or_else(|p| p.into_inner());
        self.rotate_locked(&mut all, class)
    }

    fn rotate_locked(
        &self,
        all: &mut HashMap<String, BTreeMap<u32, Epoch>>,
        class: &str,
    ) -> Result<u32, KeyringError> {
        let mut dek = [0u8; 32];
        self.rng.fill(&mut dek).map_err(|_| KeyringError::Random)?;
        let epochs = all.entry(class.to_owned()).or_default();
        let epoch = epochs.keys().next_back().map_or(1, |e| e + 1);
        let k = record_key(class, epoch);
        let wrapped = self
            .wrap
            .seal(TREE, &k, &dek)
            .map_err(|_| KeyringError::Random)?;
        let e = Epoch {
            cipher: Aes256Gcm::new(&dek.into()),
            created_unix: clock::unix_secs(),
            seals: AtomicU64::new(0),
            reserved: AtomicU64::new(RESERVE),
        };
        self.put(class, epoch, &e, wrapped)?;
        epochs.insert(epoch, e);
        Ok(epoch)
    }

    /// Rotates every class that has keys; returns (class, new epoch) pairs.
    pub fn rotate_all(&self) -> Result<Vec<(String, u32)>, KeyringError> {
        let mut all = self.epochs.write().unwrap_or_else(|p| p.into_inner());
        let classes: Vec<String> = all.keys().cloned().collect();
        let mut out = Vec::new();
        for class in classes {
            out.push((class.clone(), self.rotate_locked(&mut all, &class)?));
        }
        out.sort();
        Ok(out)
    }

    /// Destroys the keys of `class` whose epoch ended (its successor began) before `cutoff_unix`;
    /// everything sealed under them becomes unrecoverable. Returns the epochs destroyed.
    pub fn shred_before(&self, class: &str, cutoff_unix: u64) -> Result<Vec<u32>, KeyringError> {
        let mut all = self.epochs.write().unwrap_or_else(|p| p.into_inner());
        let Some(epochs) = all.get_mut(class) else {
            return Ok(Vec::new());
        };
        let numbers: Vec<u32> = epochs.keys().copied().collect();
        let mut gone = Vec::new();
        for pair in numbers.windows(2) {
            let ended = epochs[&pair[1]].created_unix;
            if ended < cutoff_unix {
                self.tree.remove(record_key(class, pair[0]))?;
                gone.push(pair[0]);
            }
        }
        self.tree.flush()?;
        for e in &gone {
            epochs.remove(e);
        }
        Ok(gone)
    }

    /// Rotates `class` when its current epoch began before `cutoff_unix`; returns the new epoch.
    pub fn roll_if_older(
        &self,
        class: &str,
        cutoff_unix: u64,
    ) -> Result<Option<u32>, KeyringError> {
        let due = {
            let all = self.epochs.read().unwrap_or_else(|p| p.into_inner());
            all.get(class)
                .and_then(|e| e.values().next_back())
                .is_some_and(|e| e.created_unix < cutoff_unix)
        };
        if due {
            self.rotate(class).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Every key's metadata, by class and epoch.
    pub fn describe(&self) -> Vec<KeyInfo> {
        let all = self.epochs.read().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (class, epochs) in all.iter() {
            let current = epochs.keys().next_back().copied();
            for (n, e) in epochs {
                out.push(KeyInfo {
                    class: class.clone(),
                    epoch: *n,
                    created_unix: e.created_unix,
                    current: Some(*n) == current,
                    seals: e.seals.load(Ordering::Relaxed),
                });
            }
        }
        out.sort_by(|a, b| (&a.class, a.epoch).cmp(&(&b.class, b.epoch)));
        out
    }

    /// Seals `plain` for record `key` of `tree` under the tree's current epoch: version, epoch,
    /// nonce, ciphertext and tag; tree, record and epoch are bound as associated data.
    pub fn seal(&self, tree: &str, key: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        loop {
            {
                let all = self.epochs.read().unwrap_or_else(|p| p.into_inner());
                if let Some((&epoch, e)) = all.get(tree).and_then(|m| m.iter().next_back()) {
                    let n = e.seals.fetch_add(1, Ordering::SeqCst);
                    if n < self.limit {
                        if n + 1 >= e.reserved.load(Ordering::SeqCst) {
                            self.reserve(tree, epoch, e)?;
                        }
                        let mut header = [VERSION, 0, 0, 0, 0];
                        header[1..].copy_from_slice(&epoch.to_be_bytes());
                        return seal_with(
                            &e.cipher,
                            &self.rng,
                            &header,
                            &binding(tree, key, epoch),
                            plain,
                        );
                    }
                }
            }
            // No key yet for this class, or the current one is used up: start a new epoch.
            let mut all = self.epochs.write().unwrap_or_else(|p| p.into_inner());
            let fresh = all
                .get(tree)
                .and_then(|m| m.values().next_back())
                .is_some_and(|e| e.seals.load(Ordering::SeqCst) < self.limit);
            if !fresh {
                self.rotate_locked(&mut all, tree)
                    .map_err(|_| SealError::Random)?;
            }
        }
    }

    fn reserve(&self, tree: &str, epoch: u32, e: &Epoch) -> Result<(), SealError> {
        let next = e.reserved.fetch_add(RESERVE, Ordering::SeqCst) + RESERVE;
        let k = record_key(tree, epoch);
        let updated = self.tree.get(&k).ok().flatten().and_then(|v| {
            let mut rec: EpochRecord = serde_json::from_slice(&v).ok()?;
            rec.reserved = rec.reserved.max(next);
            serde_json::to_vec(&rec).ok()
        });
        if let Some(v) = updated {
            self.tree.insert(k, v).map_err(|_| SealError::Random)?;
            self.tree.flush().map_err(|_| SealError::Random)?;
        }
        Ok(())
    }

    /// Every value of `tree` (the data class `class`) opened, in key order. Values whose keys were
    /// shredded under the retention policy are gone by design and skipped, not errors.
    pub fn open_all<'a, E>(
        &'a self,
        class: &'a str,
        tree: &'a sled::Tree,
    ) -> impl Iterator<Item = Result<Vec<u8>, E>> + 'a
    where
        E: From<sled::Error> + From<SealError> + 'a,
    {
        tree.iter().filter_map(move |item| {
            let (k, v) = match item {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            match self.open(class, &k, &v) {
                Err(SealError::Shredded) => None,
                other => Some(other.map_err(E::from)),
            }
        })
    }

    /// Opens a value sealed for record `key` of `tree`, under whichever epoch sealed it.
    pub fn open(&self, tree: &str, key: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        match sealed.first() {
            Some(1) => self.legacy.open(tree, key, sealed),
            Some(&VERSION) if sealed.len() >= 5 => {
                let epoch = u32::from_be_bytes(sealed[1..5].try_into().expect("4 bytes"));
                let all = self.epochs.read().unwrap_or_else(|p| p.into_inner());
                let e = all
                    .get(tree)
                    .and_then(|m| m.get(&epoch))
                    .ok_or(SealError::Shredded)?;
                open_with(&e.cipher, &sealed[5..], &binding(tree, key, epoch))
            }
            _ => Err(SealError::Malformed),
        }
    }
}

/// How long after an epoch ends its data is kept, as a cutoff: `now - keep`.
pub fn cutoff(keep: Duration) -> u64 {
    clock::unix_secs().saturating_sub(keep.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(db: &sled::Db, limit: u64) -> Keyring {
        Keyring::load(db, Sealer::new(&[1; 32]), Sealer::new(&[2; 32]), limit).unwrap()
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_binds_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let r = ring(&db, SEALS_PER_KEY);
        let old = r.seal("vault", b"k", b"before").unwrap();
        assert_eq!(r.rotate("vault").unwrap(), 2);
        let new = r.seal("vault", b"k", b"after").unwrap();
        assert_eq!(&new[1..5], &2u32.to_be_bytes());
        // Reloaded from disk with the same wrapping key: both open.
        let r2 = ring(&db, SEALS_PER_KEY);
        assert_eq!(r2.open("vault", b"k", &old).unwrap(), b"before");
        assert_eq!(r2.open("vault", b"k", &new).unwrap(), b"after");
        // Relabelling a value as another epoch, or moving it, fails.
        let mut relabelled = new.clone();
        relabelled[1..5].copy_from_slice(&1u32.to_be_bytes());
        assert_eq!(r2.open("vault", b"k", &relabelled), Err(SealError::Open));
        assert_eq!(r2.open("vault", b"other", &new), Err(SealError::Open));
        assert_eq!(
            r2.open("adverse_events", b"k", &new),
            Err(SealError::Shredded)
        );
        // A wrong wrapping key cannot load the keyring.
        assert!(Keyring::load(&db, Sealer::new(&[9; 32]), Sealer::new(&[2; 32]), 1 << 20).is_err());
        // Values sealed before epochs existed still open.
        let legacy = Sealer::new(&[2; 32]).seal("vault", b"k", b"v1").unwrap();
        assert_eq!(r2.open("vault", b"k", &legacy).unwrap(), b"v1");
    }

    #[test]
    fn a_used_up_key_is_retired_before_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let r = ring(&db, RESERVE);
        let mut last = Vec::new();
        for _ in 0..RESERVE + 10 {
            last = r.seal("vault", b"k", b"x").unwrap();
        }
        assert_eq!(&last[1..5], &2u32.to_be_bytes(), "epoch 2 after the limit");
        let info = r.describe();
        assert_eq!(info.len(), 2);
        assert!(info[0].seals >= RESERVE && !info[0].current && info[1].current);
        // After a restart the count is never lower than what was used.
        let r2 = ring(&db, RESERVE);
        assert!(r2.describe()[1].seals >= 10);
    }

    #[test]
    fn shredding_makes_old_values_unrecoverable_even_from_a_copy_of_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let r = ring(&db, SEALS_PER_KEY);
        let old = r.seal("vault", b"k", b"Jane Doe").unwrap();
        r.rotate("vault").unwrap();
        let kept = r.seal("vault", b"k", b"kept").unwrap();
        // Nothing ended before the distant past; the current epoch is never shredded.
        assert!(r.shred_before("vault", 0).unwrap().is_empty());
        assert_eq!(r.shred_before("vault", u64::MAX).unwrap(), vec![1]);
        assert_eq!(r.open("vault", b"k", &old), Err(SealError::Shredded));
        assert_eq!(r.open("vault", b"k", &kept).unwrap(), b"kept");
        db.flush().unwrap();
        drop(r);
        let r2 = ring(&db, SEALS_PER_KEY);
        assert_eq!(r2.open("vault", b"k", &old), Err(SealError::Shredded));
        assert!(
            db.open_tree(TREE)
                .unwrap()
                .get(record_key("vault", 1))
                .unwrap()
                .is_none()
        );
    }
}
