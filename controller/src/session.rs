//! Dashboard sessions as signed cookies: the access token's id and an expiry under an HMAC whose
//! key lives in the shared control records, so every replica accepts a login made on any other and
//! nothing is kept in one process's memory. A revoked token ends its sessions at once.

use readi_common::identity::{hex, unhex};
use ring::hmac;

use crate::records::{RecordError, Records};

/// Where the key is kept among the control records.
const KIND: &str = "dashboard";
const ID: &str = "session-key";
/// Binds a tag to this use, so no other HMAC under the key could pass as a session.
const CONTEXT: &[u8] = b"readi-dashboard-session-v1";

/// Signs and checks session cookie values.
pub struct Sessions {
    key: hmac::Key,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// Why the session key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The records could not be read or written.
    #[error("dashboard session key: {0}")]
    Records(#[from] RecordError),
    /// The stored key is not 64 hex digits.
    #[error("dashboard session key: the stored key is damaged (remove it to make a new one)")]
    Damaged,
}

impl Sessions {
    /// The sessions signed with the key in `records`, made once by whichever replica asks first.
    pub fn load(records: &dyn Records) -> Result<Sessions, SessionError> {
        let fresh = readi_common::token::random_hex(32);
        // Of replicas starting together, one creates the key and all read that one.
        records.create(KIND, ID, fresh.as_bytes())?;
        let stored = records.get(KIND, ID)?.ok_or(SessionError::Damaged)?;
        let bytes = std::str::from_utf8(&stored)
            .ok()
            .and_then(|s| unhex(s.trim()))
            .filter(|b| b.len() == 32)
            .ok_or(SessionError::Damaged)?;
        Ok(Sessions {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        })
    }

    /// What is signed: each part length-prefixed, so no two sessions sign the same bytes.
    fn message(token_id: &str, expires: i64) -> Vec<u8> {
        let mut m = Vec::new();
        for part in [CONTEXT, token_id.as_bytes(), expires.to_string().as_bytes()] {
            m.extend_from_slice(&(part.len() as u64).to_be_bytes());
            m.extend_from_slice(part);
        }
        m
    }

    /// A cookie value for the token `token_id`, valid until `expires` (unix seconds).
    pub fn issue(&self, token_id: &str, expires: i64) -> String {
        let tag = hmac::sign(&self.key, &Self::message(token_id, expires));
        format!("{token_id}.{expires}.{}", hex(tag.as_ref()))
    }

    /// The token id a cookie value speaks for, if its signature holds and it has not expired.
    pub fn check(&self, value: &str, now: i64) -> Option<String> {
        let mut parts = value.splitn(3, '.');
        let (id, expires, tag) = (parts.next()?, parts.next()?, parts.next()?);
        let expires: i64 = expires.parse().ok()?;
        let tag = unhex(tag)?;
        hmac::verify(&self.key, &Self::message(id, expires), &tag).ok()?;
        (now < expires).then(|| id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::FileRecords;

    #[test]
    fn a_session_holds_on_every_replica_until_it_expires() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (FileRecords::new(d.path()), FileRecords::new(d.path()));
        let (one, other) = (Sessions::load(&a).unwrap(), Sessions::load(&b).unwrap());
        let cookie = one.issue("abc123", 1_000);
        assert_eq!(other.check(&cookie, 999).as_deref(), Some("abc123"));
        assert_eq!(other.check(&cookie, 1_000), None, "expired");
        // Any change to the id, the expiry or the tag is refused.
        assert_eq!(other.check(&cookie.replace("abc123", "abc124"), 0), None);
        assert_eq!(other.check(&cookie.replace(".1000.", ".9000."), 0), None);
        let mut tampered = cookie.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert_eq!(other.check(&tampered, 0), None);
        for junk in ["", "x", "a.b.c", "abc123.1000", "abc123.1000.zz"] {
            assert_eq!(other.check(junk, 0), None, "{junk:?}");
        }
        // Another controller's key signs nothing here.
        let elsewhere = tempfile::tempdir().unwrap();
        let stranger = Sessions::load(&FileRecords::new(elsewhere.path())).unwrap();
        assert_eq!(other.check(&stranger.issue("abc123", 1_000), 0), None);
    }
}
