//! Bearer and enrollment tokens as both ends keep them: random secrets, stored only as SHA-256
//! digests, compared in constant time.

use crate::identity::hex;

/// `n` random bytes from the operating system, as hex.
pub fn random_hex(n: usize) -> String {
    use ring::rand::SecureRandom as _;
    let mut b = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("operating-system randomness");
    hex(&b)
}

/// The SHA-256 of a secret, as hex: what is stored instead of the secret.
pub fn digest(secret: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}

/// Compares two digests without leaking where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_and_secrets_differ() {
        assert!(same(&digest("a"), &digest("a")));
        assert!(!same(&digest("a"), &digest("b")));
        assert!(!same("ab", "abc"));
        assert_ne!(random_hex(16), random_hex(16));
        assert_eq!(random_hex(6).len(), 12);
    }
}
