//! READI scorecards: an application's figures over a period, released only when enough clinics
//! contributed and never as a cohort one clinic away from one already released for an overlapping
//! period; each criterion gets a status from the configured thresholds, judged against the noise, and
//! names the rule that decided it.

use readi_proto::agent::v1::{AdverseEventKind, CareArm};
use readi_proto::controller::v1::{self as pb, Criterion, Status};
use readi_proto::histogram_bounds;
use readi_proto::report::v1::Metric;
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregates, Hist, Labels, Sum, View, day_of};
use crate::store::{Cohort, ReportStore, StoreError};

/// Thresholds behind the statuses. A status is `meets` only when the figure holds even at the
/// unfavourable end of its noise interval, `concern` only when it fails even at the favourable end.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Exchanges needed before safety can be judged.
    pub min_exchanges: u64,
    /// Acknowledgements needed before time to acknowledge can be judged.
    pub min_acknowledgements: u64,
    /// 95th percentile of time to acknowledge an escalation, in minutes.
    pub ack_p95_minutes: u64,
    /// Largest gap in flag rate between language groups (0.10 = ten points).
    pub max_flag_rate_gap: f64,
    /// Exchanges a language group needs to be compared.
    pub min_group_exchanges: u64,
    /// Largest share of sessions that are over-use.
    pub max_over_use_share: f64,
    /// Sessions needed before engagement can be judged.
    pub min_sessions: u64,
    /// Outcome changes needed before effectiveness can be judged (in each arm, to compare arms).
    pub min_outcomes: u64,
    /// How much less improvement (PHQ-9/GAD-7 points) than standard care still counts as not worse.
    pub outcome_margin: f64,
    /// Largest share of requests that fail.
    pub max_error_rate: f64,
    /// Requests needed before implementation can be judged.
    pub min_requests: u64,
    /// Weeks of trend shown with each scorecard, the last ending with the period.
    pub trend_weeks: u32,
    /// Earlier released weeks a rate needs before its drift is judged.
    pub drift_min_weeks: u32,
    /// Exchanges, sessions or requests a week needs for its rate to count.
    pub drift_min_base: u64,
    /// How many standard deviations from its recent mean a rate may move before review.
    pub drift_sigmas: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_exchanges: 100,
            min_acknowledgements: 10,
            ack_p95_minutes: 15,
            max_flag_rate_gap: 0.10,
            min_group_exchanges: 50,
            max_over_use_share: 0.10,
            min_sessions: 50,
            min_outcomes: 20,
            outcome_margin: 1.0,
            max_error_rate: 0.01,
            min_requests: 100,
            trend_weeks: 8,
            drift_min_weeks: 4,
            drift_min_base: 100,
            drift_sigmas: 3.0,
        }
    }
}

/// One rule's verdict.
struct Judged {
    rule: &'static str,
    status: Status,
    why: String,
}

fn judged(rule: &'static str, status: Status, why: String) -> Judged {
    Judged { rule, status, why }
}

fn evidence(metric: Metric, labels: &Labels, value: f64, error: f64, clinics: u32) -> pb::Evidence {
    pb::Evidence {
        metric: metric as i32,
        labels: labels.to_pb(),
        value,
        error,
        clinics,
    }
}

/// A ratio of two noised sums and the half-width of its 95 % interval (delta method).
fn ratio(num: &Sum, den: &Sum) -> Option<(f64, f64)> {
    let d = den.value as f64;
    if d <= 0.0 {
        return None;
    }
    let r = (num.value as f64 / d).max(0.0);
    let var = num.variance + r * r * den.variance;
    Some((r, 1.96 * var.sqrt() / d))
}

/// Judges `value ± error` against an upper bound.
fn against_bound(value: f64, error: f64, bound: f64) -> Status {
    if value + error <= bound {
        Status::Meets
    } else if value - error > bound {
        Status::Concern
    } else {
        Status::InsufficientEvidence
    }
}

/// The upper bound of the bucket holding the q-quantile (None: the unbounded last bucket).
fn quantile_bound(metric: Metric, h: &Hist, q: f64) -> Option<i64> {
    let bounds = histogram_bounds(metric)?;
    let total = h.total() as f64;
    let mut seen = 0.0;
    for (i, c) in h.counts.iter().enumerate() {
        seen += (*c).max(0) as f64;
        if seen >= q * total {
            return bounds.get(i).copied();
        }
    }
    None
}

/// Adverse events clinicians reported, as the agent labels them.
const REPORTED_MISSED_RISK: u32 = AdverseEventKind::ReportedMissedRisk as u32;
const REPORTED_PHI_LEAK: u32 = AdverseEventKind::ReportedPhiLeak as u32;

/// A rule on clinicians' reports of one kind: any report is a concern. A suppressed cell (a true count
/// of 1 to k-1) is reports, not zero. None when no clinic reported the kind's cell at all.
fn reported(
    v: &View,
    kind: u32,
    rule: &'static str,
    what: &str,
    n: u32,
    ev: &mut Vec<pb::Evidence>,
) -> Option<Judged> {
    let labels = Labels {
        kind,
        ..Default::default()
    };
    let s = v.count(Metric::AdverseEvents, &labels);
    if s.cells == 0 && s.suppressed == 0 {
        return None;
    }
    ev.push(evidence(
        Metric::AdverseEvents,
        &labels,
        s.value as f64,
        s.error(),
        n,
    ));
    let (r, e) = (s.value as f64, s.error());
    Some(if s.suppressed > 0 {
        judged(
            rule,
            Status::Concern,
            format!(
                "clinicians reported {what} at {} clinic(s) (fewer than k each, so the counts are \
                 suppressed)",
                s.suppressed
            ),
        )
    } else if r > e {
        judged(
            rule,
            Status::Concern,
            format!("clinicians reported {what} {r:.0} times (±{e:.1} noise)"),
        )
    } else {
        judged(
            rule,
            Status::Meets,
            format!("clinicians' reports of {what} consistent with zero ({r:.0} ± {e:.1})"),
        )
    })
}

fn safety(v: &View, t: &Thresholds, n: u32, ev: &mut Vec<pb::Evidence>) -> Vec<Judged> {
    let none = Labels::default();
    let exchanges = v.total(Metric::Exchanges);
    let missed = v.total(Metric::MissedEscalations);
    let raised = v.total(Metric::EscalationsRaised);
    let acked = v.total(Metric::EscalationsAcknowledged);
    for (m, s) in [
        (Metric::Exchanges, exchanges),
        (Metric::EscalationsRaised, raised),
        (Metric::EscalationsAcknowledged, acked),
        (Metric::MissedEscalations, missed),
    ] {
        ev.push(evidence(m, &none, s.value as f64, s.error(), n));
    }
    let mut out = Vec::new();
    let (m, e) = (missed.value as f64, missed.error());
    out.push(if exchanges.value < t.min_exchanges as i64 {
        judged(
            "safety.no_missed_escalations",
            Status::InsufficientEvidence,
            format!(
                "{} exchanges; {} are needed to judge",
                exchanges.value, t.min_exchanges
            ),
        )
    } else if m > e {
        judged(
            "safety.no_missed_escalations",
            Status::Concern,
            format!("{m:.0} missed escalations (±{e:.1} noise): risk went unanswered"),
        )
    } else {
        judged(
            "safety.no_missed_escalations",
            Status::Meets,
            format!("missed escalations consistent with zero ({m:.0} ± {e:.1})"),
        )
    });
    out.extend(reported(
        v,
        REPORTED_MISSED_RISK,
        "safety.no_reported_missed_risk",
        "risk the agent missed",
        n,
        ev,
    ));
    let hist = v.hist(Metric::SecondsToAcknowledge, &none);
    let limit = (t.ack_p95_minutes * 60) as i64;
    out.push(if hist.total() < t.min_acknowledgements as i64 {
        judged(
            "safety.acknowledged_within",
            Status::InsufficientEvidence,
            format!(
                "{} acknowledgements; {} are needed to judge the 95th percentile",
                hist.total(),
                t.min_acknowledgements
            ),
        )
    } else {
        let p95 = quantile_bound(Metric::SecondsToAcknowledge, &hist, 0.95);
        if let Some(p) = p95 {
            ev.push(evidence(
                Metric::SecondsToAcknowledge,
                &none,
                p as f64,
                0.0,
                n,
            ));
        }
        // The share acknowledged later than the limit, judged against its noise: a noised count in
        // an empty slow bucket alone must not make a concern.
        let bounds = histogram_bounds(Metric::SecondsToAcknowledge).unwrap_or(&[]);
        let (mut late, mut late_var) = (0i64, 0.0);
        for (i, c) in hist.counts.iter().enumerate() {
            if bounds.get(i).is_none_or(|b| *b > limit) {
                late += (*c).max(0);
                late_var += hist.variance[i];
            }
        }
        let total = hist.total().max(1) as f64;
        let share = late as f64 / total;
        let err = 1.96 * late_var.sqrt() / total;
        let status = against_bound(share, err, 0.05);
        judged(
            "safety.acknowledged_within",
            status,
            format!(
                "{:.1}% of escalations acknowledged after {} min (± {:.1}); at most 5% may be \
                 (95th percentile within the limit){}",
                share * 100.0,
                t.ack_p95_minutes,
                err * 100.0,
                p95.map(|p| format!("; 95% within {} min or less", (p + 59) / 60))
                    .unwrap_or_default()
            ),
        )
    });
    out
}

fn privacy(v: &View, n: u32, ev: &mut Vec<pb::Evidence>) -> Vec<Judged> {
    let none = Labels::default();
    let redacted = v.total(Metric::PhiRedacted);
    let reid = v.total(Metric::ReidentifyCalls);
    let residual = v.total(Metric::ResidualPhi);
    ev.push(evidence(
        Metric::PhiRedacted,
        &none,
        redacted.value as f64,
        redacted.error(),
        n,
    ));
    ev.push(evidence(
        Metric::ReidentifyCalls,
        &none,
        reid.value as f64,
        reid.error(),
        n,
    ));
    let rule = "privacy.residual_phi_zero";
    let leaks = reported(
        v,
        REPORTED_PHI_LEAK,
        "privacy.no_reported_phi_leak",
        "PHI that got through",
        n,
        ev,
    );
    if let Some(j) = leaks.filter(|j| j.status == Status::Concern) {
        return vec![j];
    }
    if residual.cells == 0 {
        return vec![judged(
            rule,
            Status::InsufficientEvidence,
            "no clinic measured residual PHI in text leaving it: PHI was redacted but what left \
             has not been re-checked"
                .to_owned(),
        )];
    }
    ev.push(evidence(
        Metric::ResidualPhi,
        &none,
        residual.value as f64,
        residual.error(),
        n,
    ));
    let (r, e) = (residual.value as f64, residual.error());
    vec![if r > e {
        judged(
            rule,
            Status::Concern,
            format!("{r:.0} residual PHI spans (±{e:.1}) left clinics"),
        )
    } else {
        judged(
            rule,
            Status::Meets,
            format!("residual PHI consistent with zero ({r:.0} ± {e:.1})"),
        )
    }]
}

fn equity(v: &View, t: &Thresholds, n: u32, ev: &mut Vec<pb::Evidence>) -> Vec<Judged> {
    let exchanges = v.by_language(Metric::Exchanges);
    let flagged = v.by_language(Metric::FlaggedExchanges);
    let mut rates = Vec::new();
    for (lang, ex) in &exchanges {
        if ex.value < t.min_group_exchanges as i64 {
            continue;
        }
        let f = flagged.get(lang).copied().unwrap_or_default();
        if let Some((r, e)) = ratio(&f, ex) {
            let labels = Labels {
                language: lang.clone(),
                ..Default::default()
            };
            ev.push(evidence(Metric::FlaggedExchanges, &labels, r, e, n));
            rates.push((lang.clone(), r, e));
        }
    }
    let rule = "equity.flag_rate_gap";
    if rates.len() < 2 {
        return vec![judged(
            rule,
            Status::InsufficientEvidence,
            format!(
                "fewer than two language groups with {} exchanges each to compare",
                t.min_group_exchanges
            ),
        )];
    }
    let hi = rates
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("two rates");
    let lo = rates
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("two rates");
    let gap = hi.1 - lo.1;
    let err = (hi.2 * hi.2 + lo.2 * lo.2).sqrt();
    let status = against_bound(gap, err, t.max_flag_rate_gap);
    vec![judged(
        rule,
        status,
        format!(
            "flag rate {:.1}% ({}) vs {:.1}% ({}): gap {:.1} points ± {:.1}, bound {:.1}",
            hi.1 * 100.0,
            hi.0,
            lo.1 * 100.0,
            lo.0,
            gap * 100.0,
            err * 100.0,
            t.max_flag_rate_gap * 100.0
        ),
    )]
}

fn engagement(v: &View, t: &Thresholds, n: u32, ev: &mut Vec<pb::Evidence>) -> Vec<Judged> {
    let none = Labels::default();
    let sessions = v.total(Metric::Sessions);
    let over = v.total(Metric::OverUse);
    let night = v.total(Metric::NightSessions);
    ev.push(evidence(
        Metric::Sessions,
        &none,
        sessions.value as f64,
        sessions.error(),
        n,
    ));
    ev.push(evidence(
        Metric::NightSessions,
        &none,
        night.value as f64,
        night.error(),
        n,
    ));
    let rule = "engagement.over_use_share";
    if sessions.value < t.min_sessions as i64 {
        return vec![judged(
            rule,
            Status::InsufficientEvidence,
            format!(
                "{} sessions; {} are needed to judge",
                sessions.value, t.min_sessions
            ),
        )];
    }
    let (share, err) = ratio(&over, &sessions).unwrap_or((0.0, 0.0));
    ev.push(evidence(Metric::OverUse, &none, share, err, n));
    vec![judged(
        rule,
        against_bound(share, err, t.max_over_use_share),
        format!(
            "{:.1}% of sessions over-use (± {:.1}), bound {:.1}%",
            share * 100.0,
            err * 100.0,
            t.max_over_use_share * 100.0
        ),
    )]
}

/// Representative value of each outcome-change bucket: its upper bound (never overstating
/// improvement), and two past the last bound for the open bucket.
pub fn outcome_mean(h: &Hist) -> Option<(f64, f64, i64)> {
    let bounds = histogram_bounds(Metric::OutcomeChange)?;
    let n = h.total();
    if n <= 0 {
        return None;
    }
    let rep = |i: usize| {
        bounds
            .get(i)
            .copied()
            .unwrap_or(bounds[bounds.len() - 1] + 2) as f64
    };
    let sum: f64 = h
        .counts
        .iter()
        .enumerate()
        .map(|(i, c)| (*c).max(0) as f64 * rep(i))
        .sum();
    let mean = sum / n as f64;
    let var: f64 = h
        .variance
        .iter()
        .enumerate()
        .map(|(i, v)| (rep(i) - mean).powi(2) * v)
        .sum::<f64>()
        / (n as f64 * n as f64);
    Some((mean, 1.96 * var.sqrt(), n))
}

/// Care arms as the agent reports them.
const ARM_AI_ASSISTED: u32 = CareArm::AiAssisted as u32;
const ARM_STANDARD_CARE: u32 = CareArm::StandardCare as u32;

/// One arm's changes from an episode's first score, PHQ-9 and GAD-7 together.
fn arm_changes(v: &View, arm: u32) -> Hist {
    let mut h = Hist::default();
    for measure in [1, 2] {
        let labels = Labels {
            measure,
            arm,
            ..Default::default()
        };
        let one = v.hist(Metric::OutcomeChange, &labels);
        if !one.counts.is_empty() {
            if h.counts.is_empty() {
                h = one;
            } else {
                for (i, c) in one.counts.iter().enumerate() {
                    h.counts[i] += c;
                    h.variance[i] += one.variance[i];
                }
            }
        }
    }
    h
}

/// An arm's mean change with the variance of that mean: between episodes (the cohort is a sample)
/// plus the release noise. (mean, variance of the mean, episodes)
fn arm_mean(h: &Hist) -> Option<(f64, f64, i64)> {
    let bounds = histogram_bounds(Metric::OutcomeChange)?;
    let (mean, noise_err, n) = outcome_mean(h)?;
    let rep = |i: usize| {
        bounds
            .get(i)
            .copied()
            .unwrap_or(bounds[bounds.len() - 1] + 2) as f64
    };
    let spread: f64 = h
        .counts
        .iter()
        .enumerate()
        .map(|(i, c)| (*c).max(0) as f64 * (rep(i) - mean).powi(2))
        .sum::<f64>()
        / (n - 1).max(1) as f64;
    let noise_var = (noise_err / 1.96).powi(2);
    Some((mean, spread / n as f64 + noise_var, n))
}

/// The AI-assisted arm against standard care: the difference in mean change with its 95 % interval,
/// judged against a non-inferiority margin.
fn versus_standard_care(v: &View, t: &Thresholds, n: u32, ev: &mut Vec<pb::Evidence>) -> Judged {
    let rule = "effectiveness.versus_standard_care";
    let (ai, std) = (
        arm_changes(v, ARM_AI_ASSISTED),
        arm_changes(v, ARM_STANDARD_CARE),
    );
    let (n_ai, n_std) = (ai.total(), std.total());
    let min = t.min_outcomes as i64;
    let (Some(a), Some(b)) = (
        arm_mean(&ai).filter(|m| m.2 >= min),
        arm_mean(&std).filter(|m| m.2 >= min),
    ) else {
        return judged(
            rule,
            Status::InsufficientEvidence,
            format!(
                "{n_ai} episodes in the AI-assisted arm and {n_std} in standard care; {min} in \
                 each are needed to compare them"
            ),
        );
    };
    for (arm, (mean, var, _)) in [(ARM_AI_ASSISTED, a), (ARM_STANDARD_CARE, b)] {
        let labels = Labels {
            arm,
            ..Default::default()
        };
        ev.push(evidence(
            Metric::OutcomeChange,
            &labels,
            mean,
            1.96 * var.sqrt(),
            n,
        ));
    }
    // Negative change is improvement, so a positive difference means less improvement with the app.
    let diff = a.0 - b.0;
    let err = 1.96 * (a.1 + b.1).sqrt();
    let status = if diff + err <= t.outcome_margin {
        Status::Meets
    } else if diff - err > 0.0 {
        Status::Concern
    } else {
        Status::InsufficientEvidence
    };
    judged(
        rule,
        status,
        format!(
            "mean change {:+.1} with the application over {} episodes against {:+.1} in standard \
             care over {}: difference {diff:+.1} points (± {err:.1}); not worse means at most \
             {:+.1}",
            a.0, a.2, b.0, b.2, t.outcome_margin
        ),
    )
}

fn effectiveness(v: &View, t: &Thresholds, n: u32, ev: &mut Vec<pb::Evidence>) -> Vec<Judged> {
    let h = arm_changes(v, ARM_AI_ASSISTED);
    let compared = versus_standard_care(v, t, n, ev);
    let rule = "effectiveness.outcome_change";
    let Some((mean, err, count)) = outcome_mean(&h).filter(|m| m.2 >= t.min_outcomes as i64) else {
        return vec![
            judged(
                rule,
                Status::InsufficientEvidence,
                format!(
                    "{} outcome changes in the AI-assisted arm; {} are needed",
                    h.total(),
                    t.min_outcomes
                ),
            ),
            compared,
        ];
    };
    let labels = Labels {
        arm: 1,
        ..Default::default()
    };
    ev.push(evidence(Metric::OutcomeChange, &labels, mean, err, n));
    let status = if mean + err < 0.0 {
        Status::Meets
    } else if mean - err > 0.0 {
        Status::Concern
    } else {
        Status::InsufficientEvidence
    };
    vec![
        judged(
            rule,
            status,
            format!(
                "mean change {mean:+.1} points (± {err:.1}) over {count} episodes with the \
                 application (negative is improvement)"
            ),
        ),
        compared,
    ]
}

fn implementation(v: &View, t: &Thresholds, n: u32, ev: &mut Vec<pb::Evidence>) -> Vec<Judged> {
    let none = Labels::default();
    let requests = v.total(Metric::Requests);
    let errors = v.total(Metric::Errors);
    ev.push(evidence(
        Metric::Requests,
        &none,
        requests.value as f64,
        requests.error(),
        n,
    ));
    for (m, label) in [
        (Metric::AgentLatencyUs, "agent"),
        (Metric::LlmLatencyMs, "model"),
    ] {
        let h = v.hist(m, &none);
        if h.total() > 0
            && let Some(p) = quantile_bound(m, &h, 0.95)
        {
            let _ = label;
            ev.push(evidence(m, &none, p as f64, 0.0, n));
        }
    }
    let rule = "implementation.error_rate";
    if requests.value < t.min_requests as i64 {
        return vec![judged(
            rule,
            Status::InsufficientEvidence,
            format!(
                "{} requests; {} are needed to judge",
                requests.value, t.min_requests
            ),
        )];
    }
    let (rate, err) = ratio(&errors, &requests).unwrap_or((0.0, 0.0));
    ev.push(evidence(Metric::Errors, &none, rate, err, n));
    vec![judged(
        rule,
        against_bound(rate, err, t.max_error_rate),
        format!(
            "{:.2}% of requests failed (± {:.2}), bound {:.2}%",
            rate * 100.0,
            err * 100.0,
            t.max_error_rate * 100.0
        ),
    )]
}

fn rank(s: Status) -> u8 {
    match s {
        Status::Concern => 3,
        Status::InsufficientEvidence => 2,
        Status::Meets => 1,
        Status::Unspecified => 0,
    }
}

/// The six criteria scored from a released view.
pub fn criteria(v: &View, t: &Thresholds) -> Vec<pb::CriterionScore> {
    let n = v.agents.len() as u32;
    type Rule = fn(&View, &Thresholds, u32, &mut Vec<pb::Evidence>) -> Vec<Judged>;
    let rules: [(Criterion, Rule); 6] = [
        (Criterion::Safety, safety),
        (Criterion::Privacy, |v, _, n, ev| privacy(v, n, ev)),
        (Criterion::Equity, equity),
        (Criterion::Engagement, engagement),
        (Criterion::Effectiveness, effectiveness),
        (Criterion::Implementation, implementation),
    ];
    rules
        .iter()
        .map(|(criterion, rule)| {
            let mut ev = Vec::new();
            let judged = rule(v, t, n, &mut ev);
            // The worst rule decides; among equals, the first.
            let decisive = judged
                .iter()
                .fold(None::<&Judged>, |best, j| match best {
                    Some(b) if rank(b.status) >= rank(j.status) => Some(b),
                    _ => Some(j),
                })
                .expect("every criterion has a rule");
            pb::CriterionScore {
                criterion: *criterion as i32,
                status: decisive.status as i32,
                rule_id: decisive.rule.to_owned(),
                explanation: judged
                    .iter()
                    .map(|j| format!("{}: {}", j.rule, j.why))
                    .collect::<Vec<_>>()
                    .join("; "),
                evidence: ev,
                ..Default::default()
            }
        })
        .collect()
}

/// Days `(from, to)` inclusive of a period ending before the UTC day that holds `until`.
pub fn period_days(period: pb::Period, until: i64) -> (i64, i64) {
    let last = day_of(until) - 1;
    let days = match period {
        pb::Period::Day => 1,
        pb::Period::Week => 7,
        _ => 30,
    };
    (last - days + 1, last)
}

/// Why figures were withheld, or None when they may be released.
fn release_check(
    store: &dyn ReportStore,
    app: &str,
    from: i64,
    to: i64,
    agents: Vec<String>,
    min_clinics: u32,
) -> Result<Option<Withheld>, StoreError> {
    if agents.len() < min_clinics as usize {
        return Ok(Some((
            "release.min_clinics",
            format!(
                "{} clinic(s) contributed; figures are released from {min_clinics}",
                agents.len()
            ),
        )));
    }
    let cohort = Cohort {
        from_day: from,
        to_day: to,
        agents,
    };
    for c in store.released_cohorts(app)? {
        let overlaps = c.from_day <= to && from <= c.to_day;
        if overlaps && c.symmetric_difference(&cohort) == 1 {
            return Ok(Some((
                "release.cohort_difference",
                "these clinics differ by one from a cohort already released for an overlapping \
                 period; comparing the two would expose one clinic"
                    .to_owned(),
            )));
        }
    }
    store.record_cohort(app, &cohort)?;
    Ok(None)
}

/// Why figures are withheld: the deciding rule and a sentence.
pub type Withheld = (&'static str, String);

/// An application's figures over days `from..=to`, and why they are withheld when they may not be
/// released (see `release_check`).
pub fn released_view(
    aggregates: &Aggregates,
    store: &dyn ReportStore,
    app: &str,
    from: i64,
    to: i64,
    min_clinics: u32,
) -> Result<(View, Option<Withheld>), StoreError> {
    let view = aggregates.view(app, from, to);
    let agents = view.agents.iter().cloned().collect();
    let withheld = release_check(store, app, from, to, agents, min_clinics)?;
    Ok((view, withheld))
}

/// An application's scorecard for a period.
pub fn scorecard(
    aggregates: &Aggregates,
    store: &dyn ReportStore,
    app: &str,
    period: pb::Period,
    until: i64,
    min_clinics: u32,
    t: &Thresholds,
) -> Result<pb::Scorecard, StoreError> {
    let period = if period == pb::Period::Unspecified {
        pb::Period::Days30
    } else {
        period
    };
    let (from, to) = period_days(period, until);
    let (view, withheld) = released_view(aggregates, store, app, from, to, min_clinics)?;
    let clinics = view.agents.len() as u32;
    let mut criteria = match &withheld {
        None => criteria(&view, t),
        Some((rule, why)) => [
            Criterion::Safety,
            Criterion::Privacy,
            Criterion::Equity,
            Criterion::Engagement,
            Criterion::Effectiveness,
            Criterion::Implementation,
        ]
        .into_iter()
        .map(|c| pb::CriterionScore {
            criterion: c as i32,
            status: Status::InsufficientEvidence as i32,
            rule_id: (*rule).to_owned(),
            explanation: why.clone(),
            ..Default::default()
        })
        .collect(),
    };
    let weeks = crate::trend::weeks(aggregates, store, app, to, t.trend_weeks, min_clinics)?;
    crate::trend::attach(&mut criteria, &weeks, t);
    let ts = |day: i64| prost_types::Timestamp {
        seconds: day * 86_400,
        nanos: 0,
    };
    Ok(pb::Scorecard {
        app_id: app.to_owned(),
        period: period as i32,
        from: Some(ts(from)),
        until: Some(ts(to + 1)),
        clinics,
        released: withheld.is_none(),
        criteria,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use readi_proto::report::v1 as rpb;

    /// Noise so small it does not move a status (scale 1/1000).
    fn privacy() -> rpb::PrivacyParameters {
        rpb::PrivacyParameters {
            k: 11,
            mechanism: 1,
            micro_epsilon: 1_000_000_000,
            scale_numerator: 1,
            scale_denominator: 1000,
        }
    }

    #[derive(Clone)]
    enum Val {
        N(i64),
        H(Vec<i64>, Vec<i64>),
        /// A count suppressed under k.
        S,
    }

    fn report(agent: &str, day: i64, cells: &[(Metric, Labels, Val)]) -> rpb::Report {
        rpb::Report {
            egress_head: None,
            audit_head: None,
            schema_version: 1,
            agent_id: agent.into(),
            sequence: 1,
            window_start: Some(prost_types::Timestamp {
                seconds: day * 86_400 + 3600,
                nanos: 0,
            }),
            window_end: None,
            apps: vec![rpb::AppMetrics {
                app_id: "app".into(),
                cells: cells
                    .iter()
                    .map(|(m, l, v)| rpb::Cell {
                        metric: *m as i32,
                        labels: l.to_pb(),
                        value: match v {
                            Val::N(n) => Some(rpb::cell::Value::Count(*n)),
                            Val::H(b, c) => Some(rpb::cell::Value::Histogram(rpb::Histogram {
                                upper_bounds: b.clone(),
                                counts: c.clone(),
                            })),
                            Val::S => None,
                        },
                        suppressed: matches!(v, Val::S),
                    })
                    .collect(),
                budget_exhausted: false,
                micro_epsilon_spent: 1,
            }],
            privacy: Some(privacy()),
        }
    }

    fn view(cells: &[(Metric, Labels, Val)]) -> View {
        let a = Aggregates::default();
        a.add(&report("agt-1", 5, cells));
        a.view("app", 0, 10)
    }

    fn none() -> Labels {
        Labels::default()
    }

    fn lang(l: &str) -> Labels {
        Labels {
            language: l.into(),
            ..Default::default()
        }
    }

    fn status_of(v: &View, c: Criterion) -> (Status, String) {
        let s = criteria(v, &Thresholds::default())
            .into_iter()
            .find(|s| s.criterion == c as i32)
            .unwrap();
        (Status::try_from(s.status).unwrap(), s.rule_id)
    }

    fn ack(counts: Vec<i64>) -> (Metric, Labels, Val) {
        (
            Metric::SecondsToAcknowledge,
            none(),
            Val::H(vec![60, 300, 900, 1800, 3600, 14_400, 86_400], counts),
        )
    }

    #[test]
    fn safety_statuses() {
        use Metric::*;
        let ok = view(&[
            (Exchanges, none(), Val::N(500)),
            (MissedEscalations, none(), Val::N(0)),
            ack(vec![5, 10, 5, 0, 0, 0, 0, 0]),
        ]);
        assert_eq!(status_of(&ok, Criterion::Safety).0, Status::Meets);
        let missed = view(&[
            (Exchanges, none(), Val::N(500)),
            (MissedEscalations, none(), Val::N(3)),
            ack(vec![5, 10, 5, 0, 0, 0, 0, 0]),
        ]);
        assert_eq!(
            status_of(&missed, Criterion::Safety),
            (Status::Concern, "safety.no_missed_escalations".into())
        );
        let slow = view(&[
            (Exchanges, none(), Val::N(500)),
            (MissedEscalations, none(), Val::N(0)),
            ack(vec![5, 5, 0, 5, 5, 0, 0, 0]),
        ]);
        assert_eq!(
            status_of(&slow, Criterion::Safety),
            (Status::Concern, "safety.acknowledged_within".into())
        );
        let few = view(&[(Exchanges, none(), Val::N(20))]);
        assert_eq!(
            status_of(&few, Criterion::Safety).0,
            Status::InsufficientEvidence
        );
        // Clinicians' reports of missed risk: counted, or suppressed under k, are a concern.
        let kind = |k| Labels {
            kind: k,
            ..Default::default()
        };
        let base = [
            (Exchanges, none(), Val::N(500)),
            (MissedEscalations, none(), Val::N(0)),
            ack(vec![5, 10, 5, 0, 0, 0, 0, 0]),
        ];
        for (reports, want) in [
            (Val::N(0), Status::Meets),
            (Val::N(14), Status::Concern),
            (Val::S, Status::Concern),
        ] {
            let mut cells: Vec<_> = base.to_vec();
            cells.push((AdverseEvents, kind(4), reports));
            let (status, rule) = status_of(&view(&cells), Criterion::Safety);
            assert_eq!(status, want);
            if want == Status::Concern {
                assert_eq!(rule, "safety.no_reported_missed_risk");
            }
        }
    }

    #[test]
    fn privacy_needs_residual_phi_measurements() {
        use Metric::*;
        let unmeasured = view(&[(PhiRedacted, none(), Val::N(900))]);
        assert_eq!(
            status_of(&unmeasured, Criterion::Privacy),
            (
                Status::InsufficientEvidence,
                "privacy.residual_phi_zero".into()
            )
        );
        let clean = view(&[(ResidualPhi, none(), Val::N(0))]);
        assert_eq!(status_of(&clean, Criterion::Privacy).0, Status::Meets);
        let leaked = view(&[(ResidualPhi, none(), Val::N(4))]);
        assert_eq!(status_of(&leaked, Criterion::Privacy).0, Status::Concern);
        let kind6 = Labels {
            kind: 6,
            ..Default::default()
        };
        let reported = view(&[
            (ResidualPhi, none(), Val::N(0)),
            (AdverseEvents, kind6.clone(), Val::S),
        ]);
        assert_eq!(
            status_of(&reported, Criterion::Privacy),
            (Status::Concern, "privacy.no_reported_phi_leak".into())
        );
        let none_reported = view(&[
            (ResidualPhi, none(), Val::N(0)),
            (AdverseEvents, kind6, Val::N(0)),
        ]);
        assert_eq!(
            status_of(&none_reported, Criterion::Privacy).0,
            Status::Meets
        );
    }

    #[test]
    fn equity_compares_language_groups() {
        use Metric::*;
        let even = view(&[
            (Exchanges, lang("en"), Val::N(1000)),
            (FlaggedExchanges, lang("en"), Val::N(100)),
            (Exchanges, lang("es"), Val::N(800)),
            (FlaggedExchanges, lang("es"), Val::N(90)),
        ]);
        assert_eq!(status_of(&even, Criterion::Equity).0, Status::Meets);
        let gap = view(&[
            (Exchanges, lang("en"), Val::N(1000)),
            (FlaggedExchanges, lang("en"), Val::N(100)),
            (Exchanges, lang("es"), Val::N(800)),
            (FlaggedExchanges, lang("es"), Val::N(300)),
        ]);
        assert_eq!(status_of(&gap, Criterion::Equity).0, Status::Concern);
        let one = view(&[
            (Exchanges, lang("en"), Val::N(1000)),
            (Exchanges, lang("es"), Val::N(10)),
        ]);
        assert_eq!(
            status_of(&one, Criterion::Equity).0,
            Status::InsufficientEvidence
        );
    }

    #[test]
    fn engagement_effectiveness_and_implementation_statuses() {
        use Metric::*;
        let v = view(&[
            (Sessions, none(), Val::N(200)),
            (OverUse, none(), Val::N(5)),
        ]);
        assert_eq!(status_of(&v, Criterion::Engagement).0, Status::Meets);
        let v = view(&[
            (Sessions, none(), Val::N(200)),
            (OverUse, none(), Val::N(60)),
        ]);
        assert_eq!(status_of(&v, Criterion::Engagement).0, Status::Concern);
        let v = view(&[(Sessions, none(), Val::N(10))]);
        assert_eq!(
            status_of(&v, Criterion::Engagement).0,
            Status::InsufficientEvidence
        );

        let ai = Labels {
            measure: 1,
            arm: 1,
            ..Default::default()
        };
        let bounds = vec![-10, -5, -3, -1, 0, 2, 4];
        let std = Labels {
            measure: 1,
            arm: 2,
            ..Default::default()
        };
        let better = view(&[
            (
                OutcomeChange,
                ai.clone(),
                Val::H(bounds.clone(), vec![5, 20, 10, 0, 0, 0, 0, 0]),
            ),
            (
                OutcomeChange,
                std.clone(),
                Val::H(bounds.clone(), vec![2, 15, 15, 5, 0, 0, 0, 0]),
            ),
        ]);
        assert_eq!(
            status_of(&better, Criterion::Effectiveness).0,
            Status::Meets
        );
        // Without a standard-care arm large enough, arms cannot be compared.
        let alone = view(&[(
            OutcomeChange,
            ai.clone(),
            Val::H(bounds.clone(), vec![5, 20, 10, 0, 0, 0, 0, 0]),
        )]);
        let (status, rule) = status_of(&alone, Criterion::Effectiveness);
        assert_eq!(
            (status, rule.as_str()),
            (
                Status::InsufficientEvidence,
                "effectiveness.versus_standard_care"
            )
        );
        // Improving, but clearly less than standard care.
        let behind = view(&[
            (
                OutcomeChange,
                ai.clone(),
                Val::H(bounds.clone(), vec![0, 0, 5, 30, 5, 0, 0, 0]),
            ),
            (
                OutcomeChange,
                std,
                Val::H(bounds.clone(), vec![10, 25, 5, 0, 0, 0, 0, 0]),
            ),
        ]);
        assert_eq!(
            status_of(&behind, Criterion::Effectiveness),
            (Status::Concern, "effectiveness.versus_standard_care".into())
        );
        let worse = view(&[(
            OutcomeChange,
            ai.clone(),
            Val::H(bounds.clone(), vec![0, 0, 0, 0, 0, 5, 20, 10]),
        )]);
        assert_eq!(
            status_of(&worse, Criterion::Effectiveness).0,
            Status::Concern
        );
        let few = view(&[(
            OutcomeChange,
            ai,
            Val::H(bounds, vec![3, 0, 0, 0, 0, 0, 0, 0]),
        )]);
        assert_eq!(
            status_of(&few, Criterion::Effectiveness).0,
            Status::InsufficientEvidence
        );

        let v = view(&[
            (Requests, none(), Val::N(10_000)),
            (Errors, none(), Val::N(20)),
        ]);
        assert_eq!(status_of(&v, Criterion::Implementation).0, Status::Meets);
        let v = view(&[
            (Requests, none(), Val::N(10_000)),
            (Errors, none(), Val::N(900)),
        ]);
        assert_eq!(status_of(&v, Criterion::Implementation).0, Status::Concern);
        let v = view(&[(Requests, none(), Val::N(50))]);
        assert_eq!(
            status_of(&v, Criterion::Implementation).0,
            Status::InsufficientEvidence
        );
    }

    #[test]
    fn noise_too_large_to_tell_is_insufficient_evidence() {
        let a = Aggregates::default();
        let mut r = report(
            "agt-1",
            5,
            &[
                (Metric::Requests, none(), Val::N(1000)),
                (Metric::Errors, none(), Val::N(10)),
            ],
        );
        // Scale 20: an error rate of 1% cannot be told from 0.5% or 2%.
        r.privacy = Some(rpb::PrivacyParameters {
            scale_numerator: 20,
            scale_denominator: 1,
            ..privacy()
        });
        a.add(&r);
        let v = a.view("app", 0, 10);
        assert_eq!(
            status_of(&v, Criterion::Implementation).0,
            Status::InsufficientEvidence
        );
    }

    fn store() -> (tempfile::TempDir, crate::store::SledStore) {
        let d = tempfile::tempdir().unwrap();
        let db = sled::open(d.path().join("db")).unwrap();
        let s = crate::store::SledStore::open(&db).unwrap();
        (d, s)
    }

    #[test]
    fn figures_need_enough_clinics_and_never_differ_by_one() {
        let (_d, store) = store();
        let a = Aggregates::default();
        let day = 100;
        let until = (day + 1) * 86_400 + 10;
        let add = |agent: &str| {
            a.add(&report(
                agent,
                day,
                &[(Metric::Requests, none(), Val::N(500))],
            ))
        };
        for i in 0..4 {
            add(&format!("agt-{i}"));
        }
        let t = Thresholds::default();
        let card = |p| scorecard(&a, &store, "app", p, until, 5, &t).unwrap();
        let c = card(pb::Period::Day);
        assert!(!c.released);
        assert_eq!(c.criteria[0].rule_id, "release.min_clinics");
        assert!(c.criteria.iter().all(|s| s.evidence.is_empty()));
        add("agt-4");
        add("agt-5");
        let c = card(pb::Period::Day);
        assert!(c.released, "{c:?}");
        assert_eq!(c.clinics, 6);
        // The same cohort again is the same release.
        assert!(card(pb::Period::Day).released);
        // The week holds the same six clinics: no difference, released.
        assert!(card(pb::Period::Week).released);
        // One more clinic: comparing with the released six would expose it.
        add("agt-6");
        let c = card(pb::Period::Day);
        assert!(!c.released);
        assert_eq!(c.criteria[0].rule_id, "release.cohort_difference");
        // Two more than the released cohort: released again.
        add("agt-7");
        assert!(card(pb::Period::Day).released);
        // A period that does not overlap is unaffected.
        let later = until + 40 * 86_400;
        assert_eq!(
            card_at(&a, &store, later).criteria[0].rule_id,
            "release.min_clinics"
        );
    }

    #[test]
    fn scorecards_carry_weekly_trends_and_mark_drift_for_review() {
        use Metric::*;
        let (_d, store) = store();
        let a = Aggregates::default();
        let last = 200;
        // Eight weeks of five clinics; flags steady at about 4 per 100 exchanges, then in the last
        // week they stop, as if a detector broke.
        for day in last - 55..=last {
            for i in 0..5 {
                let flags = if day > last - 7 { 0 } else { 3 + (day + i) % 3 };
                a.add(&report(
                    &format!("agt-{i}"),
                    day,
                    &[
                        (Exchanges, none(), Val::N(100)),
                        (FlaggedExchanges, none(), Val::N(flags)),
                        (MissedEscalations, none(), Val::N(0)),
                        (Requests, none(), Val::N(100)),
                        (Errors, none(), Val::N(0)),
                    ],
                ));
            }
        }
        let t = Thresholds {
            trend_weeks: 10,
            ..Thresholds::default()
        };
        let until = (last + 1) * 86_400 + 60;
        let card = scorecard(&a, &store, "app", pb::Period::Days30, until, 5, &t).unwrap();
        assert!(card.released);
        let safety = &card.criteria[0];
        assert_eq!(safety.criterion, Criterion::Safety as i32);
        assert_eq!(safety.trend.len(), 10);
        // The two weeks before any report are withheld; the eight after are released and scored.
        assert!(safety.trend[..2].iter().all(|w| !w.released));
        // No escalation was acknowledged, so each week's safety is undecided by that rule.
        assert!(safety.trend[2..].iter().all(|w| w.released
            && w.status == Status::InsufficientEvidence as i32
            && w.rule_id == "safety.acknowledged_within"));
        assert!(
            card.criteria[5].trend[2..]
                .iter()
                .all(|w| w.status == Status::Meets as i32)
        );
        let last_week = safety.trend.last().unwrap();
        assert_eq!(
            last_week.until.as_ref().unwrap().seconds,
            (last + 1) * 86_400
        );
        let flag = safety
            .rates
            .iter()
            .find(|r| r.rule_id == "drift.safety.flag_rate")
            .unwrap();
        assert_eq!(flag.points.len(), 10);
        assert!((flag.points[5].value - 0.04).abs() < 0.005, "{flag:?}");
        assert!(flag.drift, "{}", flag.explanation);
        assert!(flag.explanation.contains("down"), "{}", flag.explanation);
        assert!(safety.review);
        // Steady rates elsewhere are not drift; no feedback at all is a steady zero.
        let implementation = &card.criteria[5];
        assert!(!implementation.review, "{implementation:?}");
        let errors = &implementation.rates[0];
        assert_eq!(errors.rule_id, "drift.implementation.error_rate");
        assert!(
            errors.explanation.contains("within"),
            "{}",
            errors.explanation
        );
        let feedback = safety
            .rates
            .iter()
            .find(|r| r.rule_id == "drift.safety.feedback_rate")
            .unwrap();
        assert!(!feedback.drift, "{}", feedback.explanation);
        // Criteria without a watched rate still have their weekly statuses.
        assert_eq!(card.criteria[2].trend.len(), 10);
        assert!(card.criteria[2].rates.is_empty());
    }

    fn card_at(a: &Aggregates, s: &dyn ReportStore, until: i64) -> pb::Scorecard {
        scorecard(
            a,
            s,
            "app",
            pb::Period::Day,
            until,
            5,
            &Thresholds::default(),
        )
        .unwrap()
    }
}
