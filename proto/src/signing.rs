//! Report signing, both halves: the agent signs a report's canonical bytes (prost's own encoding)
//! with its Ed25519 key, and the controller decodes only canonical bytes and checks the signature
//! against the agent's enrolled key.

use prost::Message as _;
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};

use crate::report::v1 as pb;

/// Why signed report bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The bytes are not a report.
    #[error("the report does not decode: {0}")]
    Malformed(String),
    /// The bytes decode, but not as prost writes them: unknown, duplicated or reordered fields, or
    /// non-minimal varints.
    #[error("the report carries unknown or non-canonically encoded fields")]
    NotCanonical,
    /// The signature is not the key's over these bytes.
    #[error("the signature does not verify against the agent's enrolled key")]
    Signature,
}

/// Encodes `report` canonically and signs exactly those bytes.
pub fn sign(report: &pb::Report, key: &Ed25519KeyPair) -> pb::SignedReport {
    let bytes = report.encode_to_vec();
    pb::SignedReport {
        signature: key.sign(&bytes).as_ref().to_vec(),
        report: bytes,
    }
}

/// Decodes report bytes, refusing anything prost would not have written itself.
pub fn decode_canonical(bytes: &[u8]) -> Result<pb::Report, Refused> {
    let report = pb::Report::decode(bytes).map_err(|e| Refused::Malformed(e.to_string()))?;
    if report.encode_to_vec() != bytes {
        return Err(Refused::NotCanonical);
    }
    Ok(report)
}

/// Checks that `signed` carries `public_key`'s (raw Ed25519) signature of its report bytes.
pub fn verify(signed: &pb::SignedReport, public_key: &[u8]) -> Result<(), Refused> {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&signed.report, &signed.signature)
        .map_err(|_| Refused::Signature)
}

#[cfg(test)]
mod tests {
    use ring::signature::KeyPair as _;

    use super::*;

    #[test]
    fn a_signed_report_verifies_and_a_changed_one_does_not() {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let report = pb::Report {
            schema_version: 1,
            sequence: 7,
            ..Default::default()
        };
        let mut signed = sign(&report, &key);
        let public = key.public_key().as_ref().to_vec();
        assert_eq!(verify(&signed, &public), Ok(()));
        assert_eq!(decode_canonical(&signed.report), Ok(report));
        signed.report.push(0);
        assert_eq!(verify(&signed, &public), Err(Refused::Signature));
        assert!(decode_canonical(&signed.report).is_err());
    }
}
