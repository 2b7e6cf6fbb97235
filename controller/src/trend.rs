//! Evaluation after deployment: every criterion week by week, and the flag, detection, feedback and
//! error rates watched for drift, marked for review when the last week leaves the range of the weeks
//! before it.

use readi_proto::controller::v1::{self as pb, Criterion, Status};
use readi_proto::report::v1::Metric;

use crate::aggregate::{Aggregates, Labels, Sum, View};
use crate::scorecard::{Thresholds, criteria, released_view};
use crate::store::{ReportStore, StoreError};

/// One week: its first and last day, and its figures when they may be released.
#[derive(Debug)]
pub struct Week {
    /// First day (days since the epoch).
    pub from: i64,
    /// Last day, inclusive.
    pub to: i64,
    /// The week's figures; None when withheld.
    pub view: Option<View>,
}

/// The `n` weeks ending with day `last`, oldest first, each released under the same rules as a
/// scorecard (enough clinics, never one clinic away from a cohort already released).
pub fn weeks(
    aggregates: &Aggregates,
    store: &dyn ReportStore,
    app: &str,
    last: i64,
    n: u32,
    min_clinics: u32,
) -> Result<Vec<Week>, StoreError> {
    let mut out = Vec::with_capacity(n as usize);
    for i in (0..i64::from(n)).rev() {
        let to = last - 7 * i;
        let from = to - 6;
        let (view, withheld) = released_view(aggregates, store, app, from, to, min_clinics)?;
        out.push(Week {
            from,
            to,
            view: withheld.is_none().then_some(view),
        });
    }
    Ok(out)
}

/// A rate watched for drift.
struct Watched {
    criterion: Criterion,
    rule: &'static str,
    description: &'static str,
    /// What the base counts, for explanations.
    unit: &'static str,
    /// (numerator, base) in a view.
    rate: fn(&View) -> (Sum, Sum),
}

/// The sum of a metric's cells over `kinds`.
fn kinds(v: &View, metric: Metric, kinds: std::ops::RangeInclusive<u32>) -> Sum {
    let mut s = Sum::default();
    for kind in kinds {
        s.merge(&v.count(
            metric,
            &Labels {
                kind,
                ..Default::default()
            },
        ));
    }
    s
}

const WATCHED: [Watched; 6] = [
    Watched {
        criterion: Criterion::Safety,
        rule: "drift.safety.flag_rate",
        description: "flagged exchanges per exchange",
        unit: "exchanges",
        rate: |v| {
            (
                v.total(Metric::FlaggedExchanges),
                v.total(Metric::Exchanges),
            )
        },
    },
    Watched {
        criterion: Criterion::Safety,
        rule: "drift.safety.escalation_rate",
        description: "escalations raised per exchange",
        unit: "exchanges",
        rate: |v| {
            (
                v.total(Metric::EscalationsRaised),
                v.total(Metric::Exchanges),
            )
        },
    },
    Watched {
        criterion: Criterion::Safety,
        rule: "drift.safety.feedback_rate",
        description: "clinicians' reports (missed risk, false alarm, leaked PHI, unexpected \
                      behaviour) per exchange",
        unit: "exchanges",
        rate: |v| {
            (
                kinds(v, Metric::AdverseEvents, 4..=7),
                v.total(Metric::Exchanges),
            )
        },
    },
    Watched {
        criterion: Criterion::Privacy,
        rule: "drift.privacy.detection_rate",
        description: "PHI spans redacted per exchange",
        unit: "exchanges",
        rate: |v| (v.total(Metric::PhiRedacted), v.total(Metric::Exchanges)),
    },
    Watched {
        criterion: Criterion::Engagement,
        rule: "drift.engagement.over_use_rate",
        description: "over-use sessions per session",
        unit: "sessions",
        rate: |v| (v.total(Metric::OverUse), v.total(Metric::Sessions)),
    },
    Watched {
        criterion: Criterion::Implementation,
        rule: "drift.implementation.error_rate",
        description: "failed requests per request",
        unit: "requests",
        rate: |v| (v.total(Metric::Errors), v.total(Metric::Requests)),
    },
];

/// A week's rate. A suppressed numerator cell (a true count of 1 to k-1) counts as 1, the least it
/// can be, so rare events still register.
fn point(week: &Week, w: &Watched) -> pb::RatePoint {
    let from = ts(week.from);
    let Some(v) = &week.view else {
        return pb::RatePoint {
            from,
            ..Default::default()
        };
    };
    let (num, base) = (w.rate)(v);
    if base.value <= 0 {
        return pb::RatePoint {
            from,
            ..Default::default()
        };
    }
    let b = base.value as f64;
    let r = ((num.value + i64::from(num.suppressed)) as f64 / b).max(0.0);
    let error = 1.96 * (num.variance + r * r * base.variance).sqrt() / b;
    pb::RatePoint {
        from,
        released: true,
        value: r,
        error,
        base: b,
    }
}

fn ts(day: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: day * 86_400,
        nanos: 0,
    })
}

/// Whether the last point lies beyond the range of the points before it: its distance from their
/// mean, in standard deviations that add the week-to-week spread, the last week's sampling error
/// (counts as Poisson) and its noise. Returns the verdict and a sentence with the figures.
pub fn drift(points: &[pb::RatePoint], unit: &str, t: &Thresholds) -> (bool, String) {
    let Some((last, before)) = points.split_last() else {
        return (false, "no weeks to compare".to_owned());
    };
    let min_base = t.drift_min_base as f64;
    if !last.released {
        return (
            false,
            "the last week's figures are withheld, so drift cannot be judged".to_owned(),
        );
    }
    if last.base < min_base {
        return (
            false,
            format!(
                "{:.0} {unit} in the last week; {} are needed to judge drift",
                last.base, t.drift_min_base
            ),
        );
    }
    let history: Vec<f64> = before
        .iter()
        .filter(|p| p.released && p.base >= min_base)
        .map(|p| p.value)
        .collect();
    let m = history.len();
    if m < t.drift_min_weeks as usize {
        return (
            false,
            format!(
                "{m} earlier week(s) with {} {unit} or more; {} are needed to know the rate's own \
                 range",
                t.drift_min_base, t.drift_min_weeks
            ),
        );
    }
    let mean = history.iter().sum::<f64>() / m as f64;
    let spread = history.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m - 1) as f64;
    let noise = last.error / 1.96;
    let sd = (spread + last.value / last.base + noise * noise).sqrt();
    let diff = last.value - mean;
    let z = if sd > 0.0 {
        diff / sd
    } else if diff == 0.0 {
        0.0
    } else {
        f64::INFINITY.copysign(diff)
    };
    let drifted = z.abs() > t.drift_sigmas;
    let per100 = |x: f64| x * 100.0;
    let why = format!(
        "last week {:.2} per 100 {unit} against {:.2} ± {:.2} over the {m} weeks before: {} {:.1} \
         standard deviations{}",
        per100(last.value),
        per100(mean),
        per100(sd),
        if diff >= 0.0 { "up" } else { "down" },
        z.abs(),
        if drifted {
            format!("; beyond {}: marked for review", t.drift_sigmas)
        } else {
            format!("; within {}", t.drift_sigmas)
        }
    );
    (drifted, why)
}

/// Adds each criterion's weekly statuses and its watched rates with drift flags to `scores`.
pub fn attach(scores: &mut [pb::CriterionScore], weeks: &[Week], t: &Thresholds) {
    let weekly: Vec<Option<Vec<pb::CriterionScore>>> = weeks
        .iter()
        .map(|w| w.view.as_ref().map(|v| criteria(v, t)))
        .collect();
    for score in scores.iter_mut() {
        score.trend = weeks
            .iter()
            .zip(&weekly)
            .map(|(w, c)| {
                let found = c
                    .as_ref()
                    .and_then(|c| c.iter().find(|s| s.criterion == score.criterion));
                pb::TrendPoint {
                    from: ts(w.from),
                    until: ts(w.to + 1),
                    released: found.is_some(),
                    status: found.map_or(Status::Unspecified as i32, |s| s.status),
                    rule_id: found.map(|s| s.rule_id.clone()).unwrap_or_default(),
                }
            })
            .collect();
        for w in WATCHED
            .iter()
            .filter(|w| w.criterion as i32 == score.criterion)
        {
            let points: Vec<pb::RatePoint> = weeks.iter().map(|week| point(week, w)).collect();
            let (drifted, explanation) = drift(&points, w.unit, t);
            score.review |= drifted;
            score.rates.push(pb::RateTrend {
                rule_id: w.rule.to_owned(),
                description: w.description.to_owned(),
                points,
                drift: drifted,
                explanation,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(value: f64, base: f64) -> pb::RatePoint {
        pb::RatePoint {
            from: None,
            released: true,
            value,
            error: 0.0,
            base,
        }
    }

    #[test]
    fn a_steady_rate_is_not_drift_and_a_jump_is() {
        let t = Thresholds::default();
        let steady = [0.040, 0.043, 0.038, 0.041, 0.039, 0.042, 0.040];
        let mut points: Vec<_> = steady.iter().map(|v| p(*v, 2000.0)).collect();
        points.push(p(0.041, 2000.0));
        let (d, why) = drift(&points, "exchanges", &t);
        assert!(!d, "{why}");
        assert!(why.contains("within"), "{why}");
        // Flags fall to a quarter: the detector may have stopped firing.
        *points.last_mut().unwrap() = p(0.010, 2000.0);
        let (d, why) = drift(&points, "exchanges", &t);
        assert!(d, "{why}");
        assert!(
            why.contains("down") && why.contains("marked for review"),
            "{why}"
        );
        // And doubling is drift upwards.
        *points.last_mut().unwrap() = p(0.085, 2000.0);
        let (d, why) = drift(&points, "exchanges", &t);
        assert!(d && why.contains("up"), "{why}");
    }

    #[test]
    fn sampling_error_of_a_small_week_is_not_drift() {
        let t = Thresholds::default();
        // Zero reports for weeks, then 2 in 150 exchanges: within what chance gives.
        let mut points: Vec<_> = (0..6).map(|_| p(0.0, 2000.0)).collect();
        points.push(p(2.0 / 150.0, 150.0));
        let (d, why) = drift(&points, "exchanges", &t);
        assert!(!d, "{why}");
        // 40 in 2000 after weeks of none is.
        *points.last_mut().unwrap() = p(40.0 / 2000.0, 2000.0);
        assert!(drift(&points, "exchanges", &t).0);
    }

    #[test]
    fn too_little_history_or_a_withheld_week_is_never_drift() {
        let t = Thresholds::default();
        let mut points = vec![p(0.04, 2000.0), p(0.04, 2000.0), p(0.5, 2000.0)];
        let (d, why) = drift(&points, "exchanges", &t);
        assert!(!d && why.contains("needed to know"), "{why}");
        points = (0..7).map(|_| p(0.04, 2000.0)).collect();
        points.push(pb::RatePoint::default());
        let (d, why) = drift(&points, "exchanges", &t);
        assert!(!d && why.contains("withheld"), "{why}");
        *points.last_mut().unwrap() = p(0.5, 20.0);
        let (d, why) = drift(&points, "exchanges", &t);
        assert!(!d && why.contains("needed to judge"), "{why}");
        // Withheld weeks in the history do not count towards it.
        for q in points.iter_mut().take(5) {
            *q = pb::RatePoint::default();
        }
        *points.last_mut().unwrap() = p(0.5, 2000.0);
        assert!(!drift(&points, "exchanges", &t).0);
    }

    #[test]
    fn noise_widens_the_range() {
        let t = Thresholds::default();
        let mut points: Vec<_> = (0..7).map(|_| p(0.040, 2000.0)).collect();
        let mut last = p(0.060, 2000.0);
        assert!(drift(&[points.clone(), vec![last]].concat(), "x", &t).0);
        last.error = 0.03;
        points.push(last);
        assert!(!drift(&points, "x", &t).0);
    }
}
