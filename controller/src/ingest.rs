//! Report ingest: a signed report is accepted only if it decodes canonically (no unknown fields),
//! comes from an enrolled, unrevoked agent whose key signed these exact bytes, names only the
//! applications that agent was enrolled for, and carries no value outside the schema's closed sets.

use readi_proto::report::v1 as pb;
use readi_proto::rules::{is_language, is_registered_id as is_id};
use readi_proto::signing::{self, Refused};

use readi_common::identity::unhex as hex_decode;

use crate::store::AgentRecord;

/// Why a report was refused: the gRPC code, a counter name and a message without report contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The status code to answer with.
    pub code: tonic::Code,
    /// The counter it is counted under (`rejected.<reason>`).
    pub counter: &'static str,
    /// Why.
    pub message: String,
}

fn reject(code: tonic::Code, counter: &'static str, message: impl Into<String>) -> Rejection {
    Rejection {
        code,
        counter,
        message: message.into(),
    }
}

/// Decodes the report bytes, refusing anything prost would not have written itself: unknown fields,
/// duplicated or reordered fields, non-minimal varints.
pub fn decode_canonical(bytes: &[u8]) -> Result<pb::Report, Rejection> {
    signing::decode_canonical(bytes).map_err(|e| {
        let counter = match e {
            Refused::NotCanonical => "rejected.unknown_fields",
            _ => "rejected.malformed",
        };
        reject(tonic::Code::InvalidArgument, counter, e.to_string())
    })
}

/// Checks the signature and the content of a report from `agent`. `now` bounds the window end.
pub fn verify(
    signed: &pb::SignedReport,
    report: &pb::Report,
    agent: &AgentRecord,
    now: i64,
) -> Result<(), Rejection> {
    let key = hex_decode(&agent.public_key).ok_or_else(|| {
        reject(
            tonic::Code::Internal,
            "rejected.agent_key",
            "the enrolled key is damaged",
        )
    })?;
    signing::verify(signed, &key).map_err(|e| {
        reject(
            tonic::Code::Unauthenticated,
            "rejected.signature",
            e.to_string(),
        )
    })?;
    if report.schema_version != 1 {
        return Err(reject(
            tonic::Code::InvalidArgument,
            "rejected.schema",
            format!(
                "schema_version {} is not supported (1 is)",
                report.schema_version
            ),
        ));
    }
    if report.sequence == 0 {
        return Err(reject(
            tonic::Code::InvalidArgument,
            "rejected.schema",
            "sequence starts at 1",
        ));
    }
    let (start, end) = match (&report.window_start, &report.window_end) {
        (Some(s), Some(e)) => (s.seconds, e.seconds),
        _ => {
            return Err(reject(
                tonic::Code::InvalidArgument,
                "rejected.schema",
                "window_start and window_end are required",
            ));
        }
    };
    if end <= start || end > now + 300 {
        return Err(reject(
            tonic::Code::InvalidArgument,
            "rejected.window",
            "the window must end after it starts and not in the future",
        ));
    }
    for app in &report.apps {
        if !agent.apps.contains(&app.app_id) {
            return Err(reject(
                tonic::Code::PermissionDenied,
                "rejected.app",
                "the report names an application this agent was not enrolled for",
            ));
        }
        for cell in &app.cells {
            if pb::Metric::try_from(cell.metric).is_err() || cell.metric == 0 {
                return Err(reject(
                    tonic::Code::InvalidArgument,
                    "rejected.schema",
                    format!("metric {} is unknown", cell.metric),
                ));
            }
            if let Some(l) = &cell.labels
                && ((!l.language.is_empty() && !is_language(&l.language))
                    || (!l.segment_id.is_empty() && !is_id(&l.segment_id)))
            {
                return Err(reject(
                    tonic::Code::InvalidArgument,
                    "rejected.schema",
                    "a language or segment label is not a registered identifier",
                ));
            }
            if cell.suppressed && cell.value.is_some() {
                return Err(reject(
                    tonic::Code::InvalidArgument,
                    "rejected.schema",
                    "a suppressed cell carries a value",
                ));
            }
        }
    }
    Ok(())
}

/// The kind under which the latest audit chain head of each agent is kept in the records store.
pub const AUDIT_HEAD: &str = "audit_head";
/// The same for the head of each agent's egress ledger.
pub const EGRESS_HEAD: &str = "egress_head";

/// A chain head (audit log or egress ledger) the controller holds for an agent: from the report
/// with the highest sequence number seen, so a duplicate or older report is never compared against
/// a newer head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldHead {
    /// The report it came from.
    pub report_sequence: u64,
    /// The chain record's sequence number.
    pub chain_sequence: u64,
    /// SHA-256 of that record.
    pub hash: Vec<u8>,
}

impl HeldHead {
    /// As stored: report sequence, audit sequence (big-endian), then the hash.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.report_sequence.to_be_bytes().to_vec();
        out.extend_from_slice(&self.chain_sequence.to_be_bytes());
        out.extend_from_slice(&self.hash);
        out
    }

    /// Reads what `encode` wrote; `None` when damaged.
    pub fn decode(b: &[u8]) -> Option<HeldHead> {
        if b.len() != 48 {
            return None;
        }
        Some(HeldHead {
            report_sequence: u64::from_be_bytes(b[..8].try_into().ok()?),
            chain_sequence: u64::from_be_bytes(b[8..16].try_into().ok()?),
            hash: b[16..].to_vec(),
        })
    }
}

/// Checks a report's audit chain head against the one held for its agent: a later report whose
/// head is behind it (or at the same record with another hash) means the agent's audit log was cut
/// or rolled back, and is refused. Returns the head to hold from now on, if it changes.
pub fn audit_head(
    report: &pb::Report,
    held: Option<&HeldHead>,
) -> Result<Option<HeldHead>, Rejection> {
    chain_head(
        report,
        report.audit_head.as_ref(),
        held,
        "audit log",
        "rejected.audit_rollback",
    )
}

/// As `audit_head`, for the head of the agent's egress ledger.
pub fn egress_head(
    report: &pb::Report,
    held: Option<&HeldHead>,
) -> Result<Option<HeldHead>, Rejection> {
    chain_head(
        report,
        report.egress_head.as_ref(),
        held,
        "egress ledger",
        "rejected.egress_rollback",
    )
}

fn chain_head(
    report: &pb::Report,
    head: Option<&pb::ChainHead>,
    held: Option<&HeldHead>,
    chain: &str,
    counter: &'static str,
) -> Result<Option<HeldHead>, Rejection> {
    let Some(head) = head else {
        return Ok(None);
    };
    if head.hash.len() != 32 {
        return Err(reject(
            tonic::Code::InvalidArgument,
            "rejected.schema",
            format!("the {chain} head's hash must be 32 bytes (SHA-256)"),
        ));
    }
    let new = HeldHead {
        report_sequence: report.sequence,
        chain_sequence: head.sequence,
        hash: head.hash.clone(),
    };
    let Some(held) = held else {
        return Ok(Some(new));
    };
    if report.sequence <= held.report_sequence {
        return Ok(None);
    }
    if head.sequence < held.chain_sequence
        || (head.sequence == held.chain_sequence && head.hash != held.hash)
    {
        return Err(reject(
            tonic::Code::FailedPrecondition,
            counter,
            format!(
                "the report's {chain} head #{} is behind #{} held from this agent's report {}: \
                 the agent's {chain} was cut or rolled back; run `readi-agent audit verify` and \
                 `readi-agent egress` on it",
                head.sequence, held.chain_sequence, held.report_sequence
            ),
        ));
    }
    Ok(Some(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use readi_common::identity::hex;
    use ring::signature::{Ed25519KeyPair, KeyPair as _};

    fn fixture() -> (Ed25519KeyPair, AgentRecord, pb::Report) {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let agent = AgentRecord {
            id: "agt-x".into(),
            public_key: hex(key.public_key().as_ref()),
            apps: vec!["notes".into()],
            enrolled_at: 0,
            certificate_sha256: String::new(),
            revoked: false,
        };
        let report = pb::Report {
            egress_head: None,
            audit_head: None,
            schema_version: 1,
            agent_id: "agt-x".into(),
            sequence: 1,
            window_start: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            window_end: Some(prost_types::Timestamp {
                seconds: 60,
                nanos: 0,
            }),
            apps: vec![pb::AppMetrics {
                app_id: "notes".into(),
                ..Default::default()
            }],
            privacy: None,
        };
        (key, agent, report)
    }

    fn sign(key: &Ed25519KeyPair, bytes: Vec<u8>) -> pb::SignedReport {
        pb::SignedReport {
            signature: key.sign(&bytes).as_ref().to_vec(),
            report: bytes,
        }
    }

    #[test]
    fn a_good_report_passes_and_a_tampered_one_fails() {
        let (key, agent, report) = fixture();
        let signed = sign(&key, report.encode_to_vec());
        let decoded = decode_canonical(&signed.report).unwrap();
        verify(&signed, &decoded, &agent, 100).unwrap();
        let mut tampered = signed.clone();
        let last = tampered.report.len() - 1;
        tampered.report[last] ^= 1;
        let err = verify(&tampered, &decoded, &agent, 100).unwrap_err();
        assert_eq!(err.counter, "rejected.signature");
    }

    #[test]
    fn unknown_fields_are_refused_even_when_signed() {
        let (key, _, report) = fixture();
        let mut bytes = report.encode_to_vec();
        // Field 99, varint 1: a field this schema does not have.
        bytes.extend_from_slice(&[0x98, 0x06, 0x01]);
        let signed = sign(&key, bytes);
        assert_eq!(
            decode_canonical(&signed.report).unwrap_err().counter,
            "rejected.unknown_fields"
        );
    }

    #[test]
    fn an_app_outside_the_enrollment_and_free_text_labels_are_refused() {
        let (key, agent, mut report) = fixture();
        report.apps[0].app_id = "other".into();
        let signed = sign(&key, report.encode_to_vec());
        assert_eq!(
            verify(&signed, &report, &agent, 100).unwrap_err().counter,
            "rejected.app"
        );
        let (key, agent, mut report) = fixture();
        report.apps[0].cells.push(pb::Cell {
            metric: pb::Metric::Exchanges as i32,
            labels: Some(pb::Labels {
                language: "John Smith".into(),
                ..Default::default()
            }),
            value: Some(pb::cell::Value::Count(1)),
            suppressed: false,
        });
        let signed = sign(&key, report.encode_to_vec());
        assert_eq!(
            verify(&signed, &report, &agent, 100).unwrap_err().counter,
            "rejected.schema"
        );
    }

    #[test]
    fn a_window_in_the_future_is_refused() {
        let (key, agent, report) = fixture();
        let signed = sign(&key, report.encode_to_vec());
        assert_eq!(
            verify(&signed, &report, &agent, -1000).unwrap_err().counter,
            "rejected.window"
        );
    }

    #[test]
    fn an_audit_head_that_goes_backwards_is_refused() {
        let (_, _, mut report) = fixture();
        let head = |seq: u64, byte: u8| pb::ChainHead {
            sequence: seq,
            hash: vec![byte; 32],
        };
        report.sequence = 5;
        report.audit_head = Some(head(100, 1));
        let held = audit_head(&report, None).unwrap().unwrap();
        assert_eq!(HeldHead::decode(&held.encode()), Some(held.clone()));
        // A later report further along the chain moves the anchor.
        report.sequence = 6;
        report.audit_head = Some(head(120, 2));
        let newer = audit_head(&report, Some(&held)).unwrap().unwrap();
        assert_eq!(newer.chain_sequence, 120);
        // A later report behind it, or at the same record with another hash: refused.
        report.sequence = 7;
        report.audit_head = Some(head(110, 3));
        let r = audit_head(&report, Some(&newer)).unwrap_err();
        assert_eq!(r.counter, "rejected.audit_rollback");
        assert!(r.message.contains("#110 is behind #120"), "{}", r.message);
        report.audit_head = Some(head(120, 9));
        assert!(audit_head(&report, Some(&newer)).is_err());
        // A duplicate or older report is not compared with a newer anchor.
        report.sequence = 6;
        report.audit_head = Some(head(120, 2));
        assert_eq!(audit_head(&report, Some(&newer)).unwrap(), None);
        // The egress ledger's head is held and checked the same way, under its own counter.
        report.sequence = 9;
        report.egress_head = Some(head(8, 4));
        let egress = egress_head(&report, None).unwrap().unwrap();
        report.sequence = 10;
        report.egress_head = Some(head(3, 4));
        let r = egress_head(&report, Some(&egress)).unwrap_err();
        assert_eq!(r.counter, "rejected.egress_rollback");
        assert!(r.message.contains("egress ledger"), "{}", r.message);
        // A hash of the wrong length is not a head.
        report.sequence = 8;
        report.audit_head = Some(pb::ChainHead {
            sequence: 130,
            hash: vec![0; 5],
        });
        assert!(audit_head(&report, Some(&newer)).is_err());
    }
}
