//! The report schema carries no free text: only allowed identifier fields may be strings or bytes.

use prost::Message as _;
use prost_types::{DescriptorProto, FileDescriptorSet, field_descriptor_proto::Type};

/// (message, field) pairs allowed to be string or bytes, each with its reason.
const ALLOWED: &[(&str, &str)] = &[
    ("SignedReport", "report"),    // the canonical encoding of Report itself
    ("SignedReport", "signature"), // Ed25519 signature
    ("Report", "agent_id"),        // assigned by the controller at enrollment
    ("AppMetrics", "app_id"),      // registered with the controller
    ("Labels", "language"),        // BCP-47 tag, validated on ingest
    ("Labels", "segment_id"),      // registered with the application
];

fn walk(msg: &DescriptorProto, prefix: &str, found: &mut Vec<String>) {
    let name = format!("{prefix}{}", msg.name());
    for f in &msg.field {
        if matches!(f.r#type(), Type::String | Type::Bytes)
            && !ALLOWED.contains(&(name.as_str(), f.name()))
        {
            found.push(format!("{name}.{}", f.name()));
        }
    }
    for nested in &msg.nested_type {
        walk(nested, &format!("{name}."), found);
    }
}

#[test]
fn report_has_no_free_text_fields() {
    let fds = FileDescriptorSet::decode(readi_proto::FILE_DESCRIPTOR_SET).unwrap();
    let report_files: Vec<_> = fds
        .file
        .iter()
        .filter(|f| f.package() == "readi.report.v1")
        .collect();
    assert_eq!(report_files.len(), 1, "one report schema file");
    let mut found = Vec::new();
    for file in &report_files {
        assert!(
            file.dependency
                .iter()
                .all(|d| d.starts_with("google/protobuf/")),
            "report schema must not import other readi messages: {:?}",
            file.dependency
        );
        for msg in &file.message_type {
            walk(msg, "", &mut found);
        }
    }
    assert!(
        found.is_empty(),
        "string/bytes fields not allowed in a report: {found:?}"
    );
    // The guard itself must see the allowed fields, or it would pass on an empty schema.
    let mut all = Vec::new();
    for msg in &report_files[0].message_type {
        walk(msg, "", &mut all);
        for f in &msg.field {
            if matches!(f.r#type(), Type::String | Type::Bytes) {
                all.push(format!("{}.{}", msg.name(), f.name()));
            }
        }
    }
    assert!(all.iter().any(|f| f == "Report.agent_id"), "{all:?}");
}

#[test]
fn every_rpc_of_the_design_is_declared() {
    let fds = FileDescriptorSet::decode(readi_proto::FILE_DESCRIPTOR_SET).unwrap();
    let rpcs: Vec<String> = fds
        .file
        .iter()
        .flat_map(|f| {
            f.service.iter().flat_map(move |s| {
                s.method
                    .iter()
                    .map(move |m| format!("{}.{}", s.name(), m.name()))
            })
        })
        .collect();
    for want in [
        "Gateway.Redact",
        "Gateway.Reidentify",
        "Gateway.Assess",
        "Gateway.StreamRedact",
        "Gateway.RecordOutcome",
        "Gateway.WatchEscalations",
        "Gateway.AcknowledgeEscalation",
        "Compliance.Safeguards",
        "Compliance.VerifyAudit",
        "Compliance.ListEgress",
        "Compliance.ListAdverseEvents",
        "Controller.Enroll",
        "Controller.SubmitReport",
        "Controller.GetScorecard",
        "Controller.ListApplications",
    ] {
        assert!(
            rpcs.iter().any(|r| r == want),
            "{want} missing from {rpcs:?}"
        );
    }
}
