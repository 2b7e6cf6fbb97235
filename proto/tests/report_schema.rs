//! The report schema carries no free text: every string or bytes field reachable from a signed report
//! must be one of a short allow-list of identifiers, checked by walking the compiled descriptors.

use std::collections::{BTreeSet, HashMap};

use prost::Message as _;
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FileDescriptorSet};

/// Fields allowed to hold text or bytes, by message and field name, and why.
const ALLOWED: &[(&str, &str)] = &[
    // The serialized Report and its signature: the report itself is walked below.
    (".readi.report.v1.SignedReport", "report"),
    (".readi.report.v1.SignedReport", "signature"),
    // Identifiers the controller validates against its registry.
    (".readi.report.v1.Report", "agent_id"),
    (".readi.report.v1.AppMetrics", "app_id"),
    // A normalised BCP-47 tag and a registered segment id; both checked by shape on both ends.
    (".readi.report.v1.Labels", "language"),
    (".readi.report.v1.Labels", "segment_id"),
    // A SHA-256 digest of an audit record (never its content), 32 bytes, checked at ingest.
    (".readi.report.v1.ChainHead", "hash"),
];

fn messages() -> HashMap<String, DescriptorProto> {
    let set = FileDescriptorSet::decode(readi_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let mut out = HashMap::new();
    fn add(prefix: &str, m: &DescriptorProto, out: &mut HashMap<String, DescriptorProto>) {
        let name = format!("{prefix}.{}", m.name());
        for nested in &m.nested_type {
            add(&name, nested, out);
        }
        out.insert(name, m.clone());
    }
    for file in &set.file {
        let prefix = format!(".{}", file.package());
        for m in &file.message_type {
            add(&prefix, m, &mut out);
        }
    }
    out
}

/// Every (message, field) of type string or bytes reachable from `root`.
fn text_fields(root: &str) -> BTreeSet<(String, String)> {
    let all = messages();
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    let mut found = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(m) = all.get(&name) else {
            // Well-known types (Timestamp) are not in the set: they hold only numbers.
            assert!(
                name.starts_with(".google.protobuf.Timestamp"),
                "unknown message {name} reachable from the report"
            );
            continue;
        };
        for f in &m.field {
            match f.r#type() {
                Type::String | Type::Bytes => {
                    found.insert((name.clone(), f.name().to_owned()));
                }
                Type::Message | Type::Group => todo.push(f.type_name().to_owned()),
                _ => {}
            }
        }
    }
    found
}

#[test]
fn the_report_has_no_free_text_field() {
    let mut found = text_fields(".readi.report.v1.SignedReport");
    // The serialized report inside SignedReport is a Report: walk it too.
    found.extend(text_fields(".readi.report.v1.Report"));
    let allowed: BTreeSet<(String, String)> = ALLOWED
        .iter()
        .map(|(m, f)| ((*m).to_owned(), (*f).to_owned()))
        .collect();
    let extra: Vec<_> = found.difference(&allowed).collect();
    assert!(
        extra.is_empty(),
        "string or bytes fields outside the allow-list in the report schema: {extra:?}"
    );
    // The walk reaches the labels, so it would see a new text field anywhere in a cell.
    assert!(found.contains(&(".readi.report.v1.Labels".to_owned(), "language".to_owned())));
}

#[test]
fn the_walk_finds_text_fields_where_they_exist() {
    // The same walk over a message with free text must find it, or the test above proves nothing.
    let found = text_fields(".readi.agent.v1.RedactRequest");
    assert!(found.contains(&(
        ".readi.agent.v1.RedactRequest".to_owned(),
        "text".to_owned()
    )));
}
