//! The vault: each session's tag map, sealed in the store with an expiry, so replies can be
//! re-identified inside the clinic and nowhere else.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::keys::Keys;
use crate::phi::Detector;
use crate::redact::{self, Policy, Replacement, Style, TagMap};
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
}

#[derive(Debug, Default, Deserialize, Serialize)]
struct SessionMap {
    /// Unix seconds after which the map is gone.
    expires_at: u64,
    tags: TagMap,
}

/// Sealed per-session tag maps with a time to live.
#[derive(Debug)]
pub struct Vault {
    tree: sled::Tree,
    keys: Arc<Keys>,
    ttl: Duration,
    locks: Vec<Mutex<()>>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

/// Where a live buffer may be cut: `hold` bytes before its end or earlier, just after whitespace, and
/// before any span that would otherwise be split.
pub fn stream_cut(buffer: &str, spans: &[crate::phi::Span], hold: usize) -> usize {
    let mut cut = buffer.len().saturating_sub(hold);
    loop {
        while cut > 0 && !buffer.is_char_boundary(cut) {
            cut -= 1;
        }
        // Back to just after the last whitespace, so no word is cut.
        cut = buffer[..cut].rfind(char::is_whitespace).map_or(0, |i| {
            i + buffer[i..].chars().next().map_or(1, char::len_utf8)
        });
        match spans.iter().find(|s| s.start < cut && cut < s.end) {
            Some(s) => cut = s.start,
            None => return cut,
        }
    }
}

impl Vault {
    /// Opens the vault tree.
    pub fn open(db: &sled::Db, keys: Arc<Keys>, ttl: Duration) -> Result<Vault, VaultError> {
        Ok(Vault {
            tree: db.open_tree(TREE)?,
            keys,
            ttl,
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        })
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

    /// Redacts `text` with the session's tags, stores the updated map (sliding expiry) and returns the
    /// redacted text, the replacements and the expiry (Unix seconds).
    pub fn redact(
        &self,
        app: &str,
        session: &str,
        text: &str,
        detector: &Detector,
        policy: &Policy,
        forced: Option<Style>,
    ) -> Result<(String, Vec<Replacement>, u64), VaultError> {
        let (_, redacted, reps, expires) =
            self.redact_up_to(app, session, text, None, detector, policy, forced)?;
        Ok((redacted, reps, expires))
    }

    /// Redacts the part of a live transcript's pending `buffer` that can no longer change: detection
    /// runs over the whole buffer, but only text before a cut point is released. The cut leaves at
    /// least `hold` bytes of look-ahead, falls on whitespace, and never splits a span, so PHI that
    /// straddles chunks is decided with the text after it. With no `hold`, everything is released.
    /// Returns the cut (bytes of `buffer` consumed), the redacted text and the replacements.
    pub fn redact_stream(
        &self,
        app: &str,
        session: &str,
        buffer: &str,
        hold: Option<usize>,
        detector: &Detector,
        policy: &Policy,
    ) -> Result<(usize, String, Vec<Replacement>), VaultError> {
        let (cut, redacted, reps, _) =
            self.redact_up_to(app, session, buffer, hold, detector, policy, None)?;
        Ok((cut, redacted, reps))
    }

    /// Detects over all of `text` with the session's known terms, redacts up to the cut `hold`
    /// allows (all of it without one), and stores the updated map unless nothing was released.
    /// Returns the cut, the redacted text, the replacements and the map's new expiry.
    #[allow(clippy::too_many_arguments)]
    fn redact_up_to(
        &self,
        app: &str,
        session: &str,
        text: &str,
        hold: Option<usize>,
        detector: &Detector,
        policy: &Policy,
        forced: Option<Style>,
    ) -> Result<(usize, String, Vec<Replacement>, u64), VaultError> {
        let key = record_key(app, session);
        let _guard = self.lock(&key);
        let now = now_secs();
        let mut map = self.load(&key, now)?.unwrap_or_default();
        // What the session already revealed is looked for again ("Quackenbush called back").
        let mut known = map.tags.known_terms(detector.lexicon());
        known.extend(policy.deny.iter().cloned());
        let mut spans = detector.detect_with(text, &known);
        policy.retain_allowed(text, &mut spans);
        let cut = match hold {
            None => text.len(),
            Some(hold) => stream_cut(text, &spans, hold),
        };
        if hold.is_some() && cut == 0 {
            return Ok((0, String::new(), Vec::new(), map.expires_at));
        }
        spans.retain(|s| s.end <= cut);
        let (redacted, reps) = redact::apply(&text[..cut], &spans, policy, forced, &mut map.tags);
        map.expires_at = now + self.ttl.as_secs();
        let plain = serde_json::to_vec(&map).map_err(|_| VaultError::Decode)?;
        self.tree
            .insert(key, self.keys.sealer.seal(TREE, &key, &plain)?)?;
        Ok((cut, redacted, reps, map.expires_at))
    }

    /// Makes every map written so far durable (blocking: call it off the async workers).
    pub fn flush(&self) -> Result<(), VaultError> {
        self.tree.flush()?;
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
        let map = self.load(&key, now_secs())?.ok_or(VaultError::NotFound)?;
        Ok(map.tags.restore(text))
    }

    /// Deletes every expired map; returns how many.
    pub fn sweep(&self) -> Result<usize, VaultError> {
        let now = now_secs();
        let mut removed = 0;
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
                let _guard = self.lock(&key);
                self.tree.remove(k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(dir: &std::path::Path, ttl: Duration) -> Vault {
        let db = sled::open(dir.join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir, &db).unwrap());
        Vault::open(&db, keys, ttl).unwrap()
    }

    #[test]
    fn maps_expire_and_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path(), Duration::from_secs(1));
        let text = "Call Jane Doe at 617-555-0199.";
        let policy = Policy::default();
        let (red, _, _) = v
            .redact("app", "s1", text, Detector::global(), &policy, None)
            .unwrap();
        let (again, _, _) = v
            .redact(
                "app",
                "s1",
                "Doe called back.",
                Detector::global(),
                &policy,
                None,
            )
            .unwrap();
        assert!(!again.contains("Doe"), "{again}");
        assert_eq!(v.reidentify("app", "s1", &red).unwrap().0, text);
        assert!(matches!(
            v.reidentify("app", "other", &red),
            Err(VaultError::NotFound)
        ));
        assert!(matches!(
            v.reidentify("other-app", "s1", &red),
            Err(VaultError::NotFound)
        ));
        std::thread::sleep(Duration::from_millis(2100));
        assert!(matches!(
            v.reidentify("app", "s1", &red),
            Err(VaultError::NotFound)
        ));
        assert_eq!(v.sweep().unwrap(), 1);
        assert_eq!(v.tree.len(), 0);
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;
    use crate::config::RedactionConfig;
    use crate::phi::Detector;

    #[test]
    fn allow_and_deny_terms_apply() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        let v = Vault::open(&db, keys, Duration::from_secs(60)).unwrap();
        let cfg: RedactionConfig = toml::from_str(
            "allow = [\"Hope Clinic\"]\n[deny]\nLOCATION = [\"smallville rec center\"]\nNAME = [\"Quill\"]\n",
        )
        .unwrap();
        let text = "Referred to Hope Clinic after group at Smallville Rec Center; Quill attended.";
        let (red, _, _) = v
            .redact("app", "s", text, Detector::global(), &cfg.policy(), None)
            .unwrap();
        assert!(
            red.contains("Hope Clinic"),
            "allowed term must survive: {red}"
        );
        assert!(
            !red.contains("Smallville") && !red.contains("Quill"),
            "denied terms must go: {red}"
        );
    }
}
