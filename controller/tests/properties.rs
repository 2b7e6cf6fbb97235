//! Properties over hostile report bytes, run with the normal tests: decoding never panics and refuses
//! anything prost would not have written, and a signed report altered in any byte is refused.

use proptest::prelude::*;
use prost::Message as _;
use readi_controller::ingest::{decode_canonical, verify};
use readi_controller::store::AgentRecord;
use readi_proto::report::v1 as pb;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const NOW: i64 = 1_790_000_000;

fn report() -> pb::Report {
    pb::Report {
        egress_head: None,
        audit_head: None,
        schema_version: 1,
        agent_id: "agt-1".into(),
        sequence: 7,
        window_start: Some(prost_types::Timestamp {
            seconds: NOW - 3600,
            nanos: 0,
        }),
        window_end: Some(prost_types::Timestamp {
            seconds: NOW,
            nanos: 0,
        }),
        apps: vec![pb::AppMetrics {
            app_id: "notes-app".into(),
            cells: vec![pb::Cell {
                metric: pb::Metric::Exchanges as i32,
                labels: None,
                value: Some(pb::cell::Value::Count(42)),
                suppressed: false,
            }],
            budget_exhausted: false,
            micro_epsilon_spent: 10,
        }],
        privacy: Some(pb::PrivacyParameters {
            k: 11,
            mechanism: 1,
            micro_epsilon: 1_000_000,
            scale_numerator: 1,
            scale_denominator: 1,
        }),
    }
}

fn key() -> Ed25519KeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key")
}

fn agent(key: &Ed25519KeyPair) -> AgentRecord {
    AgentRecord {
        id: "agt-1".into(),
        public_key: readi_common::identity::hex(key.public_key().as_ref()),
        apps: vec!["notes-app".into()],
        enrolled_at: NOW - 86_400,
        certificate_sha256: String::new(),
        revoked: false,
    }
}

#[test]
fn the_untouched_report_is_accepted() {
    let key = key();
    let bytes = report().encode_to_vec();
    let signed = pb::SignedReport {
        signature: key.sign(&bytes).as_ref().to_vec(),
        report: bytes,
    };
    let decoded = decode_canonical(&signed.report).expect("canonical");
    verify(&signed, &decoded, &agent(&key), NOW).expect("a good report verifies");
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn arbitrary_bytes_never_panic_and_decode_only_canonically(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(r) = decode_canonical(&bytes) {
            prop_assert_eq!(r.encode_to_vec(), bytes);
        }
    }

    #[test]
    fn a_report_altered_in_any_byte_is_refused(
        in_signature in any::<bool>(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let key = key();
        let bytes = report().encode_to_vec();
        let mut signed = pb::SignedReport {
            signature: key.sign(&bytes).as_ref().to_vec(),
            report: bytes,
        };
        let target = if in_signature { &mut signed.signature } else { &mut signed.report };
        let i = at.index(target.len());
        target[i] ^= flip;
        // Either it no longer decodes, or the signature no longer verifies.
        if let Ok(decoded) = decode_canonical(&signed.report) {
            let err = verify(&signed, &decoded, &agent(&key), NOW)
                .expect_err("an altered report must be refused");
            prop_assert_eq!(err.counter, "rejected.signature");
        }
    }

    #[test]
    fn any_config_text_parses_or_is_refused_with_a_message(text in "\\PC{0,200}") {
        if let Err(problems) = readi_controller::Config::from_toml(&text) {
            prop_assert!(!problems.to_string().is_empty());
        }
    }
}
