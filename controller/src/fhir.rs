//! Scorecards as FHIR R4 `MeasureReport`s (summary type), the form clinic quality systems read: one
//! group per READI criterion with its status as an extension, the figures behind it as populations
//! (noised counts with their interval) and their breakdowns (language, segment, ...) as stratifiers.
//! Only what the scorecard already releases: aggregates across clinics, never text.

use std::collections::BTreeMap;

use readi_common::date::utc_timestamp;
use readi_proto::controller::v1::{self as pb, Criterion, Status};
use readi_proto::report::v1::Labels;
use serde_json::{Value, json};

use crate::render::{criterion_name, metric_name};

/// The canonical of the READI scorecard measure; codes and extensions live under the same name.
pub const MEASURE: &str = "urn:readi:fhir:Measure:readi-scorecard";
const EXT: &str = "urn:readi:fhir:StructureDefinition";

fn code(system: &str, code: &str, display: Option<&str>) -> Value {
    let mut c = json!({ "system": format!("urn:readi:fhir:CodeSystem:{system}"), "code": code });
    if let Some(d) = display {
        c["display"] = d.into();
    }
    json!({ "coding": [c] })
}

fn ext(name: &str, key: &str, value: Value) -> Value {
    json!({ "url": format!("{EXT}:{name}"), key: value })
}

fn status_code(s: i32) -> &'static str {
    match Status::try_from(s) {
        Ok(Status::Meets) => "meets",
        Ok(Status::Concern) => "concern",
        _ => "insufficient-evidence",
    }
}

fn criterion_code(c: i32) -> &'static str {
    match Criterion::try_from(c) {
        Ok(Criterion::Safety) => "safety",
        Ok(Criterion::Privacy) => "privacy",
        Ok(Criterion::Equity) => "equity",
        Ok(Criterion::Engagement) => "engagement",
        Ok(Criterion::Effectiveness) => "effectiveness",
        Ok(Criterion::Implementation) => "implementation",
        _ => "unspecified",
    }
}

/// The breakdown of a figure as (dimension, value) pairs; empty for a total.
fn dimensions(l: &Option<Labels>) -> Vec<(&'static str, String)> {
    let Some(l) = l else { return Vec::new() };
    let mut out: Vec<(&'static str, String)> = [
        ("category", l.category),
        ("severity", l.severity),
        ("phi-type", l.phi_type),
        ("measure", l.measure),
        ("arm", l.arm),
        ("kind", l.kind),
    ]
    .into_iter()
    .filter(|(_, v)| *v != 0)
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    if !l.language.is_empty() {
        out.push(("language", l.language.clone()));
    }
    if !l.segment_id.is_empty() {
        out.push(("segment", l.segment_id.clone()));
    }
    out
}

/// A noised figure as a population: the count rounded, its 95% noise interval and clinics beside it.
fn population(e: &pb::Evidence) -> Value {
    let metric = metric_name(e.metric);
    json!({
        "code": code("metric", &metric, None),
        "count": e.value.round() as i64,
        "extension": [
            ext("noise-interval-95", "valueDecimal", json!(e.error)),
            ext("contributing-clinics", "valueInteger", json!(e.clinics)),
        ],
    })
}

fn group(c: &pb::CriterionScore) -> Value {
    let mut g = json!({
        "code": code("criterion", criterion_code(c.criterion), Some(criterion_name(c.criterion))),
        "extension": [
            ext("criterion-status", "valueCode", json!(status_code(c.status))),
            ext("decided-by-rule", "valueString", json!(c.rule_id)),
            ext("explanation", "valueString", json!(c.explanation)),
            ext("marked-for-review", "valueBoolean", json!(c.review)),
        ],
    });
    let totals: Vec<Value> = c
        .evidence
        .iter()
        .filter(|e| dimensions(&e.labels).is_empty())
        .map(population)
        .collect();
    if !totals.is_empty() {
        g["population"] = totals.into();
    }
    // Broken-down figures, one stratifier per metric and set of dimensions.
    let mut strata: BTreeMap<(String, Vec<&'static str>), Vec<Value>> = BTreeMap::new();
    for e in &c.evidence {
        let dims = dimensions(&e.labels);
        if dims.is_empty() {
            continue;
        }
        let keys: Vec<&'static str> = dims.iter().map(|(k, _)| *k).collect();
        let mut stratum = json!({ "population": [population(e)] });
        if let [(k, v)] = dims.as_slice() {
            stratum["value"] = code(k, v, None);
        } else {
            stratum["component"] = dims
                .iter()
                .map(|(k, v)| json!({ "code": code("dimension", k, None), "value": code(k, v, None) }))
                .collect::<Vec<_>>()
                .into();
        }
        strata
            .entry((metric_name(e.metric), keys))
            .or_default()
            .push(stratum);
    }
    if !strata.is_empty() {
        g["stratifier"] = strata
            .into_iter()
            .map(|((metric, keys), stratum)| {
                json!({
                    "code": [{
                        "coding": keys.iter().map(|k| json!({
                            "system": "urn:readi:fhir:CodeSystem:dimension", "code": k,
                        })).collect::<Vec<_>>(),
                        "text": format!("{metric} by {}", keys.join(" and ")),
                    }],
                    "stratum": stratum,
                })
            })
            .collect::<Vec<_>>()
            .into();
    }
    g
}

/// A FHIR id: letters, digits, '-' and '.', at most 64.
fn fhir_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

/// The scorecard as a FHIR R4 `MeasureReport`, made at `generated_at` (unix seconds).
pub fn measure_report(card: &pb::Scorecard, generated_at: i64) -> Value {
    let secs = |t: &Option<prost_types::Timestamp>| t.as_ref().map_or(0, |t| t.seconds);
    let (from, until) = (secs(&card.from), secs(&card.until));
    let day = readi_common::date::ymd(until.div_euclid(86_400));
    json!({
        "resourceType": "MeasureReport",
        "id": fhir_id(&format!("readi-{}-{day}", card.app_id)),
        "status": "complete",
        "type": "summary",
        "measure": MEASURE,
        "date": utc_timestamp(generated_at),
        "period": { "start": utc_timestamp(from), "end": utc_timestamp(until) },
        "extension": [
            ext("application", "valueIdentifier",
                json!({ "system": "urn:readi:fhir:application", "value": card.app_id })),
            ext("contributing-clinics", "valueInteger", json!(card.clinics)),
            ext("released", "valueBoolean", json!(card.released)),
        ],
        "group": card.criteria.iter().map(group).collect::<Vec<_>>(),
    })
}
