//! Scorecards for people and scripts: text for a terminal, JSON with names instead of numbers.

use readi_proto::controller::v1::{self as pb, Criterion, Status};
use readi_proto::report::v1::Metric;
use serde_json::json;

use crate::aggregate::{day_of, ymd};

/// A criterion's display name.
pub fn criterion_name(c: i32) -> &'static str {
    match Criterion::try_from(c) {
        Ok(Criterion::Safety) => "Safety",
        Ok(Criterion::Privacy) => "Privacy & confidentiality",
        Ok(Criterion::Equity) => "Equity",
        Ok(Criterion::Engagement) => "Engagement",
        Ok(Criterion::Effectiveness) => "Effectiveness",
        Ok(Criterion::Implementation) => "Implementation",
        _ => "?",
    }
}

/// A status's display name.
pub fn status_name(s: i32) -> &'static str {
    match Status::try_from(s) {
        Ok(Status::Meets) => "meets",
        Ok(Status::Concern) => "concern",
        Ok(Status::InsufficientEvidence) => "insufficient evidence",
        _ => "?",
    }
}

/// A metric's short name.
pub fn metric_name(m: i32) -> String {
    Metric::try_from(m)
        .map(|m| {
            m.as_str_name()
                .trim_start_matches("METRIC_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| m.to_string())
}

fn labels(l: &Option<readi_proto::report::v1::Labels>) -> String {
    let Some(l) = l else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (k, v) in [
        ("category", l.category),
        ("severity", l.severity),
        ("phi_type", l.phi_type),
        ("measure", l.measure),
        ("arm", l.arm),
        ("kind", l.kind),
    ] {
        if v != 0 {
            parts.push(format!("{k}={v}"));
        }
    }
    if !l.language.is_empty() {
        parts.push(format!("language={}", l.language));
    }
    if !l.segment_id.is_empty() {
        parts.push(format!("segment={}", l.segment_id));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// An evidence figure as text: `exchanges 512 ± 5.5`.
pub fn evidence_text(e: &pb::Evidence) -> String {
    let value = if e.value.fract() == 0.0 {
        format!("{:.0}", e.value)
    } else {
        format!("{:.3}", e.value)
    };
    let error = if e.error > 0.0 {
        format!(" \u{b1} {:.2}", e.error)
    } else {
        String::new()
    };
    format!(
        "{}{} {value}{error}",
        metric_name(e.metric),
        labels(&e.labels)
    )
}

/// A week's status in one word, for a trend strip (`-` when withheld).
pub fn week_word(w: &pb::TrendPoint) -> &'static str {
    if !w.released {
        return "-";
    }
    match Status::try_from(w.status) {
        Ok(Status::Meets) => "meets",
        Ok(Status::Concern) => "concern",
        Ok(Status::InsufficientEvidence) => "insufficient",
        _ => "?",
    }
}

fn day_text(t: &Option<prost_types::Timestamp>) -> String {
    ymd(t.as_ref().map_or(0, |t| day_of(t.seconds)))
}

fn span(card: &pb::Scorecard) -> (String, String) {
    let from = card.from.map_or(0, |t| day_of(t.seconds));
    let until = card.until.map_or(0, |t| day_of(t.seconds) - 1);
    (ymd(from), ymd(until))
}

/// The scorecard as text.
pub fn text(card: &pb::Scorecard) -> String {
    let (from, until) = span(card);
    let mut s = format!(
        "{} READI scorecard, {from} to {until}: {} clinic(s), {}\n\n",
        card.app_id,
        card.clinics,
        if card.released {
            "released"
        } else {
            "figures withheld"
        }
    );
    for c in &card.criteria {
        s.push_str(&format!(
            "{:<26} {:<22} {}\n    {}\n",
            criterion_name(c.criterion),
            status_name(c.status).to_uppercase(),
            c.rule_id,
            c.explanation
        ));
        for e in &c.evidence {
            s.push_str(&format!("    - {}\n", evidence_text(e)));
        }
        if let Some(first) = c.trend.first() {
            s.push_str(&format!(
                "    weekly from {}: {}\n",
                day_text(&first.from),
                c.trend.iter().map(week_word).collect::<Vec<_>>().join(" ")
            ));
        }
        for r in &c.rates {
            s.push_str(&format!(
                "    {} {}: {}\n",
                if r.drift { "REVIEW" } else { "watch " },
                r.rule_id,
                r.explanation
            ));
        }
        s.push('\n');
    }
    s
}

/// The scorecard as JSON.
pub fn json(card: &pb::Scorecard) -> serde_json::Value {
    let (from, until) = span(card);
    json!({
        "app_id": card.app_id,
        "from": from,
        "until": until,
        "clinics": card.clinics,
        "released": card.released,
        "criteria": card.criteria.iter().map(|c| json!({
            "criterion": criterion_name(c.criterion),
            "status": status_name(c.status),
            "rule_id": c.rule_id,
            "explanation": c.explanation,
            "evidence": c.evidence.iter().map(|e| json!({
                "metric": metric_name(e.metric),
                "labels": labels(&e.labels),
                "value": e.value,
                "error": e.error,
                "clinics": e.clinics,
            })).collect::<Vec<_>>(),
            "review": c.review,
            "trend": c.trend.iter().map(|w| json!({
                "from": day_text(&w.from),
                "released": w.released,
                "status": w.released.then(|| status_name(w.status)),
                "rule_id": w.rule_id,
            })).collect::<Vec<_>>(),
            "rates": c.rates.iter().map(|r| json!({
                "rule_id": r.rule_id,
                "description": r.description,
                "drift": r.drift,
                "explanation": r.explanation,
                "points": r.points.iter().map(|p| json!({
                    "from": day_text(&p.from),
                    "released": p.released,
                    "value": p.value,
                    "error": p.error,
                    "base": p.base,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
