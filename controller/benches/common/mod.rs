//! What the benchmarks seed: an hour of a busy application at one clinic, as an agent reports it.

use readi_proto::report::v1::{self as pb, Metric};

fn count(metric: Metric, n: i64, labels: Option<pb::Labels>) -> pb::Cell {
    pb::Cell {
        metric: metric as i32,
        labels,
        value: Some(pb::cell::Value::Count(n)),
        suppressed: false,
    }
}

/// An hour of a busy application at one clinic: about the cells a real agent sends (40); `seed`
/// varies the counts a little (0 gives the base counts).
pub(crate) fn cells(seed: u64) -> Vec<pb::Cell> {
    let n = |base: i64| base + (seed % 7) as i64;
    let lang = |l: &str| {
        Some(pb::Labels {
            language: l.into(),
            ..Default::default()
        })
    };
    let mut out = vec![
        count(Metric::Exchanges, n(40), None),
        count(Metric::Exchanges, n(30), lang("en")),
        count(Metric::Exchanges, n(10), lang("es")),
        count(Metric::FlaggedExchanges, n(4), None),
        count(Metric::MissedEscalations, 0, None),
        count(Metric::EscalationsRaised, 1, None),
        count(Metric::Requests, n(90), None),
        count(Metric::Errors, 0, None),
        count(Metric::Sessions, n(6), None),
        count(Metric::OverUse, 0, None),
        count(Metric::PhiRedacted, n(70), None),
    ];
    for c in 1..=9 {
        out.push(count(
            Metric::SafetyFindings,
            1,
            Some(pb::Labels {
                category: c,
                ..Default::default()
            }),
        ));
    }
    for t in 1..=18 {
        out.push(count(
            Metric::PhiRedacted,
            n(4),
            Some(pb::Labels {
                phi_type: t,
                ..Default::default()
            }),
        ));
    }
    out.push(pb::Cell {
        metric: Metric::AgentLatencyUs as i32,
        labels: None,
        value: Some(pb::cell::Value::Histogram(pb::Histogram {
            upper_bounds: vec![500, 1000, 2000],
            counts: vec![20, 40, 20, 10],
        })),
        suppressed: false,
    });
    out
}

/// The privacy parameters agents report with by default: k 11, epsilon 0.5 per cell.
pub(crate) fn privacy() -> pb::PrivacyParameters {
    pb::PrivacyParameters {
        k: 11,
        mechanism: 1,
        micro_epsilon: 500_000,
        scale_numerator: 1_000_000,
        scale_denominator: 500_000,
    }
}
