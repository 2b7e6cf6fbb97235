//! Agent identity as both ends see it: an agent is known by a hash of its Ed25519 reporting key, so
//! the id in a report can be checked against the key that signed it.

/// Lower-case hex of bytes.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes of lower-case or upper-case hex; None when it is not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The agent id of a public key: `agt-` and the first 16 hex digits of its SHA-256.
pub fn agent_id_of(public_key: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, public_key);
    format!("agt-{}", hex(&d.as_ref()[..8]))
}

/// Whether a string has the shape of an agent id (safe as a file name).
pub fn is_agent_id(s: &str) -> bool {
    s.len() == 20 && s.starts_with("agt-") && s[4..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_shaped() {
        let id = agent_id_of(&[7u8; 32]);
        assert_eq!(id, agent_id_of(&[7u8; 32]));
        assert!(is_agent_id(&id));
        assert!(!is_agent_id("agt-../../etc/passwd"));
        assert_eq!(unhex(&hex(&[0, 255, 16])), Some(vec![0, 255, 16]));
        assert_eq!(unhex("zz"), None);
    }
}
