//! The vault: each session's tag map, sealed in the store with an expiry, so replies can be
//! re-identified inside the clinic and nowhere else. It stores; detection and redaction are the
//! pipeline's (`pipeline::redact`).

use readi_common::clock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::keys::Keys;
use crate::mark::{Advance, Mark, MarkError};
use crate::redact::TagMap;
use crate::seal::SealError;

const TREE: &str = "vault";
const LOCK_STRIPES: usize = 64;

/// Why a vault operation failed. Never holds session contents.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No live map for the session (never redacted, or expired).
    #[error(
        "no surrogate map for this session: it was never redacted here or it expired (vault TTL)"
    )]
    NotFound,
    /// The store failed.
    #[error("vault store: {0}")]
    Db(#[from] sled::Error),
    /// A sealed map did not open.
    #[error("vault record: {0}")]
    Seal(#[from] SealError),
    /// A map did not decode.
    #[error("vault record does not decode")]
    Decode,
    /// The high-water mark could not be advanced: the map is not acknowledged.
    #[error(transparent)]
    Mark(#[from] MarkError),
}

#[derive(Debug, Default, Deserialize, Serialize)]
struct SessionMap {
    /// Unix seconds after which the map is gone.
    expires_at: u64,
    tags: TagMap,
    /// Ordinal of the map's creation (dense, from 1; 0 before marks), so the high-water mark can
    /// check that every map created up to its count is still held.
    #[serde(default, skip_serializing_if = "is_zero")]
    created: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Sealed per-session tag maps with a time to live.
#[derive(Debug)]
pub struct Vault {
    tree: sled::Tree,
    db: sled::Db,
    keys: Arc<Keys>,
    ttl: Duration,
    locks: Vec<Mutex<()>>,
    /// Covers the newest flushed map before `flush` returns, when attached.
    mark: OnceLock<Arc<Mark>>,
    /// Ordinal of the newest map written, and that write (not yet covered by the mark).
    writes: AtomicU64,
    newest: Mutex<Option<Newest>>,
    /// Maps created and removed so far: the tree never holds fewer than their difference.
    created: AtomicU64,
    removed: AtomicU64,
    /// Held while a creation ordinal is taken and its map inserted, so every map with a lower
    /// ordinal is in the tree before a flush that covers this one.
    creating: Mutex<()>,
}

/// The newest map written, to be covered by the mark at the next flush.
#[derive(Debug, Clone, Copy)]
struct Newest {
    n: u64,
    key: [u8; 32],
    expires: u64,
    created: u64,
}

/// Of the maps the store holds, how many were created at or before ordinal `upto` (maps from
/// before marks and maps shredded under retention count too; maps that do not open do not), and
/// the highest creation ordinal seen. Opens every map: call it at start.
pub(crate) fn held(db: &sled::Db, keys: &Keys, upto: u64) -> Result<(u64, u64), sled::Error> {
    let (mut held, mut highest) = (0, 0);
    for item in db.open_tree(TREE)?.iter() {
        let (k, v) = item?;
        let created = match keys.sealer.open(TREE, &k, &v) {
            Ok(plain) => match serde_json::from_slice::<SessionMap>(&plain) {
                Ok(m) => m.created,
                Err(_) => continue,
            },
            Err(SealError::Shredded) => 0,
            Err(_) => continue,
        };
        highest = highest.max(created);
        if created <= upto {
            held += 1;
        }
    }
    Ok((held, highest))
}

/// Whether the store holds the map under `key_hex` with an expiry at least `expires` (Unix
/// seconds): false when it is missing, older, or does not open.
pub(crate) fn holds(
    db: &sled::Db,
    keys: &Keys,
    key_hex: &str,
    expires: u64,
) -> Result<bool, sled::Error> {
    let Some(key) = readi_common::identity::unhex(key_hex) else {
        return Ok(false);
    };
    let Some(sealed) = db.open_tree(TREE)?.get(&key)? else {
        return Ok(false);
    };
    Ok(match keys.sealer.open(TREE, &key, &sealed) {
        Ok(plain) => {
            serde_json::from_slice::<SessionMap>(&plain).is_ok_and(|m| m.expires_at >= expires)
        }
        // Shredded under retention: gone on purpose.
        Err(SealError::Shredded) => true,
        Err(_) => false,
    })
}

/// The record key: a hash of (app, session), so ids are not stored in the clear.
fn record_key(app: &str, session: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(app.as_bytes());
    ctx.update(&[0]);
    ctx.update(session.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl Vault {
    /// Opens the vault tree.
    pub fn open(db: &sled::Db, keys: Arc<Keys>, ttl: Duration) -> Result<Vault, VaultError> {
        Ok(Vault {
            tree: db.open_tree(TREE)?,
            db: db.clone(),
            keys,
            ttl,
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            mark: OnceLock::new(),
            writes: AtomicU64::new(0),
            newest: Mutex::new(None),
            created: AtomicU64::new(0),
            removed: AtomicU64::new(0),
            creating: Mutex::new(()),
        })
    }

    /// From now on `flush` covers the maps it made durable with `mark` before returning.
    pub fn attach(&self, mark: Arc<Mark>) {
        let c = mark.covered();
        self.writes.store(c.session_writes, Ordering::SeqCst);
        // Past any ordinal in the store: it may be ahead of the mark by unacknowledged maps, whose
        // ordinals must not be handed out again.
        let highest = held(&self.db, &self.keys, 0).map_or(0, |(_, h)| h);
        self.removed.store(c.sessions_removed, Ordering::SeqCst);
        self.created
            .store(highest.max(c.sessions_created), Ordering::SeqCst);
        let _ = self.mark.set(mark);
    }

    fn lock(&self, key: &[u8; 32]) -> std::sync::MutexGuard<'_, ()> {
        // A poisoned stripe only means another call panicked mid-update; the sealed record is still whole.
        self.locks[key[0] as usize % LOCK_STRIPES]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn load(&self, key: &[u8; 32], now: u64) -> Result<Option<SessionMap>, VaultError> {
        let Some(sealed) = self.tree.get(key)? else {
            return Ok(None);
        };
        let plain = self.keys.sealer.open(TREE, key, &sealed)?;
        let map: SessionMap = serde_json::from_slice(&plain).map_err(|_| VaultError::Decode)?;
        Ok((map.expires_at > now).then_some(map))
    }

    /// Runs `f` on the session's live tag map (empty when there is none) under the session's lock;
    /// when `f` returns a value the map is stored, sealed, with its expiry slid forward. Returns what
    /// `f` returned and the map's expiry (Unix seconds), or None and the old expiry when `f` kept it.
    pub fn update<R>(
        &self,
        app: &str,
        session: &str,
        f: impl FnOnce(&mut TagMap) -> Option<R>,
    ) -> Result<(Option<R>, u64), VaultError> {
        let key = record_key(app, session);
        let _guard = self.lock(&key);
        let now = clock::unix_secs();
        let fresh = !self.tree.contains_key(key)?;
        let mut map = self.load(&key, now)?.unwrap_or_default();
        let Some(out) = f(&mut map.tags) else {
            return Ok((None, map.expires_at));
        };
        map.expires_at = now + self.ttl.as_secs();
        let creating = fresh.then(|| self.creating.lock().unwrap_or_else(|p| p.into_inner()));
        let created = if fresh {
            map.created = self.created.load(Ordering::SeqCst) + 1;
            map.created
        } else {
            self.created.load(Ordering::SeqCst)
        };
        let plain = serde_json::to_vec(&map).map_err(|_| VaultError::Decode)?;
        self.tree
            .insert(key, self.keys.sealer.seal(TREE, &key, &plain)?)?;
        if fresh {
            self.created.store(created, Ordering::SeqCst);
        }
        drop(creating);
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let mut newest = self.newest.lock().unwrap_or_else(|p| p.into_inner());
        if newest.is_none_or(|w| w.n < n) {
            *newest = Some(Newest {
                n,
                key,
                expires: map.expires_at,
                created,
            });
        }
        Ok((Some(out), map.expires_at))
    }

    /// Makes every map written so far durable and covers the newest with the high-water mark
    /// (blocking: call it off the async workers).
    pub fn flush(&self) -> Result<(), VaultError> {
        // Taken before the flush, so the mark never names a map the flush may not have included.
        let newest = *self.newest.lock().unwrap_or_else(|p| p.into_inner());
        self.tree.flush()?;
        if let (Some(mark), Some(w)) = (self.mark.get(), newest) {
            mark.advance(Advance::Session {
                n: w.n,
                key: w.key,
                expires: w.expires,
                created: w.created,
            })?;
        }
        Ok(())
    }

    /// Restores the session's tags in `text`.
    pub fn reidentify(
        &self,
        app: &str,
        session: &str,
        text: &str,
    ) -> Result<(String, u32), VaultError> {
        let key = record_key(app, session);
        let map = self
            .load(&key, clock::unix_secs())?
            .ok_or(VaultError::NotFound)?;
        Ok(map.tags.restore(text))
    }

    /// Deletes every expired map; returns how many.
    pub fn sweep(&self) -> Result<usize, VaultError> {
        let now = clock::unix_secs();
        let mut expired_keys = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            let Ok(key) = <[u8; 32]>::try_from(k.as_ref()) else {
                continue;
            };
            let expired = match self.keys.sealer.open(TREE, &key, &v) {
                Ok(plain) => serde_json::from_slice::<SessionMap>(&plain)
                    .map_or(true, |m| m.expires_at <= now),
                // Its key was destroyed under retention: the record is unreadable litter.
                Err(SealError::Shredded) => true,
                Err(_) => false,
            };
            if expired {
                expired_keys.push(key);
            }
        }
        if expired_keys.is_empty() {
            return Ok(0);
        }
        // The mark lowers its count first: a crash before the removals leaves the store ahead.
        let removed = self
            .removed
            .fetch_add(expired_keys.len() as u64, Ordering::SeqCst)
            + expired_keys.len() as u64;
        if let Some(mark) = self.mark.get() {
            mark.advance(Advance::SessionsRemoved { removed })?;
        }
        for key in &expired_keys {
            let _guard = self.lock(key);
            // Looked at again under the session's lock: a Redact since the scan revived it.
            if matches!(self.load(key, now), Ok(Some(_))) {
                continue;
            }
            self.tree.remove(key)?;
        }
        self.tree.flush()?;
        Ok(expired_keys.len())
    }
}
