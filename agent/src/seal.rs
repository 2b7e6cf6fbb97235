//! Sealing values at rest: AES-256-GCM with a random nonce and associated data naming where the value
//! lives, so a sealed value copied to another record does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ring::rand::{SecureRandom, SystemRandom};

const NONCE_LEN: usize = 12;
const VERSION: u8 = 1;

/// Why a value could not be sealed or opened. Never carries the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The system random source failed.
    #[error("no randomness available for a nonce")]
    Random,
    /// Authentication failed: wrong key, tampered value, or a value moved from another record.
    #[error("sealed value does not open: wrong key, tampering, or moved between records")]
    Open,
    /// The stored bytes are not a sealed value of a known version.
    #[error("sealed value is malformed")]
    Malformed,
    /// The key it was sealed under was destroyed (retention): the value is gone for good.
    #[error("sealed value's key was shredded under the retention policy")]
    Shredded,
}

/// A 256-bit data key with the cipher built once.
pub struct Sealer {
    cipher: Aes256Gcm,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

/// The associated data for a value in `tree` under `key`: both are bound into the tag.
fn binding(tree: &str, key: &[u8]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(tree.len() + key.len() + 9);
    ad.push(VERSION);
    ad.extend_from_slice(&(tree.len() as u64).to_be_bytes());
    ad.extend_from_slice(tree.as_bytes());
    ad.extend_from_slice(key);
    ad
}

impl Sealer {
    /// A sealer over a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Sealer {
        Sealer {
            cipher: Aes256Gcm::new(key.into()),
            rng: SystemRandom::new(),
        }
    }

    /// Seals `plain` for record `key` of `tree`: version byte, nonce, ciphertext and tag.
    pub fn seal(&self, tree: &str, key: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        seal_with(
            &self.cipher,
            &self.rng,
            &[VERSION],
            &binding(tree, key),
            plain,
        )
    }

    /// Opens a value sealed for record `key` of `tree`.
    pub fn open(&self, tree: &str, key: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.first() != Some(&VERSION) {
            return Err(SealError::Malformed);
        }
        open_with(&self.cipher, &sealed[1..], &binding(tree, key))
    }
}

/// `header`, a fresh random nonce, then `plain` encrypted and tagged over `ad`.
pub(crate) fn seal_with(
    cipher: &Aes256Gcm,
    rng: &SystemRandom,
    header: &[u8],
    ad: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: ad,
            },
        )
        .map_err(|_| SealError::Open)?;
    let mut out = Vec::with_capacity(header.len() + NONCE_LEN + ct.len());
    out.extend_from_slice(header);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens `body` (nonce, ciphertext and tag, after any header) against `ad`.
pub(crate) fn open_with(cipher: &Aes256Gcm, body: &[u8], ad: &[u8]) -> Result<Vec<u8>, SealError> {
    if body.len() < NONCE_LEN + 16 {
        return Err(SealError::Malformed);
    }
    let (nonce, ct) = body.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: ad })
        .map_err(|_| SealError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let s = Sealer::new(&[7; 32]);
        let sealed = s.seal("vault", b"session-1", b"Jane Doe").unwrap();
        assert!(
            !sealed.windows(8).any(|w| w == b"Jane Doe"),
            "plaintext visible"
        );
        assert_eq!(s.open("vault", b"session-1", &sealed).unwrap(), b"Jane Doe");
        assert_eq!(
            s.open("vault", b"session-2", &sealed),
            Err(SealError::Open),
            "moved record must not open"
        );
        assert_eq!(
            s.open("audit", b"session-1", &sealed),
            Err(SealError::Open),
            "moved tree must not open"
        );
        assert_eq!(
            Sealer::new(&[8; 32]).open("vault", b"session-1", &sealed),
            Err(SealError::Open)
        );
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(s.open("vault", b"session-1", &bad), Err(SealError::Open));
        assert_eq!(
            s.open("vault", b"session-1", &sealed[..10]),
            Err(SealError::Malformed)
        );
        assert_ne!(
            s.seal("vault", b"k", b"x").unwrap(),
            s.seal("vault", b"k", b"x").unwrap(),
            "nonces repeat"
        );
    }
}
