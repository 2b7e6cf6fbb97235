//! Reports as JSON for people and scripts: metric and enum names instead of numbers, every field
//! shown, nothing added. Used by `readi-agent egress` and `readi-controller reports`.

use serde_json::{Value, json};

use crate::report::v1 as pb;

fn labels(l: &pb::Labels) -> Value {
    let mut m = serde_json::Map::new();
    let mut num = |k: &str, v: u32| {
        if v != 0 {
            m.insert(k.to_owned(), json!(v));
        }
    };
    num("category", l.category);
    num("severity", l.severity);
    num("phi_type", l.phi_type);
    num("measure", l.measure);
    num("arm", l.arm);
    num("kind", l.kind);
    if !l.language.is_empty() {
        m.insert("language".into(), json!(l.language));
    }
    if !l.segment_id.is_empty() {
        m.insert("segment_id".into(), json!(l.segment_id));
    }
    Value::Object(m)
}

fn cell(c: &pb::Cell) -> Value {
    let metric = pb::Metric::try_from(c.metric)
        .map(|m| m.as_str_name().to_owned())
        .unwrap_or_else(|_| c.metric.to_string());
    let mut v = json!({ "metric": metric });
    if let Some(l) = &c.labels {
        v["labels"] = labels(l);
    }
    match &c.value {
        Some(pb::cell::Value::Count(n)) => v["count"] = json!(n),
        Some(pb::cell::Value::Histogram(h)) => {
            v["histogram"] = json!({ "upper_bounds": h.upper_bounds, "counts": h.counts })
        }
        None => {}
    }
    if c.suppressed {
        v["suppressed"] = json!(true);
    }
    v
}

/// A report as a JSON value.
pub fn report(r: &pb::Report) -> Value {
    let ts = |t: &Option<prost_types::Timestamp>| t.as_ref().map_or(0, |t| t.seconds);
    json!({
        "schema_version": r.schema_version,
        "agent_id": r.agent_id,
        "sequence": r.sequence,
        "window_start": ts(&r.window_start),
        "window_end": ts(&r.window_end),
        "privacy": r.privacy.as_ref().map(|p| json!({
            "k": p.k,
            "mechanism": pb::NoiseMechanism::try_from(p.mechanism)
                .map(|m| m.as_str_name())
                .unwrap_or("unknown"),
            "micro_epsilon_per_cell": p.micro_epsilon,
            "scale": format!("{}/{}", p.scale_numerator, p.scale_denominator),
        })),
        "apps": r.apps.iter().map(|a| json!({
            "app_id": a.app_id,
            "budget_exhausted": a.budget_exhausted,
            "micro_epsilon_spent": a.micro_epsilon_spent,
            "cells": a.cells.iter().map(cell).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
