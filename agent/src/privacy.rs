//! Privacy before egress: a closed window's true counts become releasable cells. Small cells are
//! suppressed (with secondary suppression so no suppressed count can be recovered by subtraction),
//! histograms are coarsened until every bucket is empty or at least k, and every released number gets
//! exact discrete Laplace noise paid for from a per-application daily privacy budget.

use std::collections::BTreeMap;

use readi_proto::report::v1::{self as pb, Metric};

use crate::metrics::{AppCells, CellKey, ClosedWindow, LabelKey, Value, bounds};
use crate::noise::{Scale, Uniform, discrete_laplace};

/// The privacy parameters in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Cells with a true count in 1..k are suppressed.
    pub k: u32,
    /// Epsilon of each cell's noise, in millionths.
    pub micro_epsilon: u64,
    /// Epsilon an application may spend per UTC day, in millionths.
    pub daily_micro_budget: u64,
}

impl Params {
    /// The report's description of the mechanism.
    pub fn describe(&self) -> pb::PrivacyParameters {
        let scale = Scale::for_micro_epsilon(self.micro_epsilon);
        pb::PrivacyParameters {
            k: self.k,
            mechanism: pb::NoiseMechanism::DiscreteLaplace as i32,
            micro_epsilon: self.micro_epsilon,
            scale_numerator: scale.t,
            scale_denominator: scale.s,
        }
    }
}

/// Enumerated breakdowns reported even when empty, so a missing cell never reveals a true zero.
fn domain(metric: Metric) -> &'static [(&'static str, std::ops::RangeInclusive<u32>)] {
    match metric {
        Metric::SafetyFindings => &[("category", 1..=9), ("severity", 1..=7)],
        Metric::OutputFlags => &[("category", 6..=8)],
        Metric::PhiRedacted => &[("phi_type", 1..=18)],
        Metric::AdverseEvents => &[("kind", 1..=7)],
        _ => &[],
    }
}

/// Counters reported for every active application, even at zero.
const ALWAYS: &[Metric] = &[
    Metric::SafetyFindings,
    Metric::EscalationsRaised,
    Metric::EscalationsAcknowledged,
    Metric::MissedEscalations,
    Metric::OutputFlags,
    Metric::AdverseEvents,
    Metric::PhiRedacted,
    Metric::ReidentifyCalls,
    Metric::Exchanges,
    Metric::FlaggedExchanges,
    Metric::Sessions,
    Metric::NightSessions,
    Metric::UnderUse,
    Metric::OverUse,
    Metric::Requests,
];

fn labelled(dimension: &str, v: u32) -> LabelKey {
    let mut l = LabelKey::default();
    match dimension {
        "category" => l.category = v,
        "severity" => l.severity = v,
        "phi_type" => l.phi_type = v,
        _ => l.kind = v,
    }
    l
}

/// Adds the zero cells of the fixed domain.
fn fill_domain(cells: &mut AppCells) {
    for &metric in ALWAYS {
        let total = CellKey {
            metric: metric as i32,
            labels: LabelKey::default(),
        };
        cells.entry(total).or_insert(Value::Count(0));
        for (dimension, values) in domain(metric) {
            for v in values.clone() {
                let key = CellKey {
                    metric: metric as i32,
                    labels: labelled(dimension, v),
                };
                cells.entry(key).or_insert(Value::Count(0));
            }
        }
    }
}

/// Which count cells to suppress: primary (1..k), then secondary within each breakdown until the
/// suppressed cells of a breakdown are none, or at least two whose sum is at least k, so neither the
/// metric's total minus the released cells nor a lone suppressed cell gives a small count away.
pub fn suppressed_counts(cells: &AppCells, k: u64) -> std::collections::BTreeSet<CellKey> {
    let mut families: BTreeMap<(i32, &'static str), Vec<(&CellKey, u64)>> = BTreeMap::new();
    for (key, value) in cells {
        if let Value::Count(c) = value {
            families
                .entry((key.metric, key.labels.dimension()))
                .or_default()
                .push((key, *c));
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for ((_, dimension), mut parts) in families {
        let small = |c: u64| c > 0 && c < k;
        if dimension == "total" {
            out.extend(
                parts
                    .iter()
                    .filter(|(_, c)| small(*c))
                    .map(|(k, _)| (*k).clone()),
            );
            continue;
        }
        parts.sort_by_key(|(key, c)| (*c, (*key).clone()));
        let mut hidden: Vec<usize> = (0..parts.len()).filter(|&i| small(parts[i].1)).collect();
        loop {
            let sum: u64 = hidden.iter().map(|&i| parts[i].1).sum();
            if hidden.is_empty() || (hidden.len() >= 2 && sum >= k) {
                break;
            }
            // The smallest released non-zero cell joins the suppressed ones.
            match (0..parts.len()).find(|i| !hidden.contains(i) && parts[*i].1 > 0) {
                Some(i) => hidden.push(i),
                None => break,
            }
        }
        out.extend(hidden.into_iter().map(|i| parts[i].0.clone()));
    }
    out
}

/// Merges adjacent buckets until each is empty or holds at least k; None when the whole histogram
/// holds fewer than k observations.
pub fn coarsen(bounds: &[i64], counts: &[u64], k: u64) -> Option<(Vec<i64>, Vec<u64>)> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Some((bounds.to_vec(), counts.to_vec()));
    }
    if total < k {
        return None;
    }
    let mut out_bounds = Vec::new();
    let mut out_counts: Vec<u64> = Vec::new();
    let mut acc = 0;
    for (i, &c) in counts.iter().enumerate() {
        acc += c;
        let last = i == counts.len() - 1;
        if (acc == 0 || acc >= k) && !last {
            out_bounds.push(bounds[i]);
            out_counts.push(acc);
            acc = 0;
        } else if last {
            if acc > 0 && acc < k {
                // A small remainder joins the previous non-empty bucket, which loses its upper bound.
                while let Some(&prev) = out_counts.last() {
                    out_bounds.pop();
                    out_counts.pop();
                    acc += prev;
                    if prev > 0 {
                        break;
                    }
                }
            }
            out_counts.push(acc);
        }
    }
    Some((out_bounds, out_counts))
}

fn labels_pb(l: &LabelKey) -> Option<pb::Labels> {
    if *l == LabelKey::default() {
        return None;
    }
    Some(pb::Labels {
        category: l.category,
        severity: l.severity,
        phi_type: l.phi_type,
        language: l.language.clone(),
        segment_id: l.segment.clone(),
        measure: l.measure,
        arm: l.arm,
        kind: l.kind,
    })
}

/// The cost of releasing `cells`: one cell epsilon per breakdown (an increment touches one cell of a
/// breakdown; breakdowns compose).
fn families(cells: &[pb::Cell]) -> u64 {
    let mut set = std::collections::BTreeSet::new();
    for c in cells.iter().filter(|c| !c.suppressed) {
        let dim = c.labels.as_ref().map_or("total", |l| {
            if l.category != 0 {
                "category"
            } else if l.severity != 0 {
                "severity"
            } else if l.phi_type != 0 {
                "phi_type"
            } else if !l.language.is_empty() {
                "language"
            } else if !l.segment_id.is_empty() {
                "segment"
            } else if l.measure != 0 || l.arm != 0 {
                "measure_arm"
            } else {
                "kind"
            }
        });
        set.insert((c.metric, dim));
    }
    set.len() as u64
}

/// Turns one application's true cells into released cells (suppressed or noised). `pay` is asked for
/// the epsilon (millionths) before any noise is drawn; when it refuses, nothing is released.
pub fn release_app(
    app: &str,
    cells: &AppCells,
    params: &Params,
    pay: &mut dyn FnMut(&str, u64) -> bool,
    u: &mut impl Uniform,
) -> pb::AppMetrics {
    let mut cells = cells.clone();
    fill_domain(&mut cells);
    let k = u64::from(params.k);
    let hidden = suppressed_counts(&cells, k);
    let mut out = Vec::with_capacity(cells.len());
    for (key, value) in &cells {
        let mut cell = pb::Cell {
            metric: key.metric,
            labels: labels_pb(&key.labels),
            value: None,
            suppressed: false,
        };
        match value {
            Value::Count(c) if !hidden.contains(key) => {
                cell.value = Some(pb::cell::Value::Count(*c as i64));
            }
            Value::Count(_) => cell.suppressed = true,
            Value::Histogram(counts) => {
                let metric = Metric::try_from(key.metric).unwrap_or(Metric::Unspecified);
                let b = bounds(metric).unwrap_or(&[]);
                match coarsen(b, counts, k) {
                    Some((upper_bounds, counts)) => {
                        cell.value = Some(pb::cell::Value::Histogram(pb::Histogram {
                            upper_bounds,
                            counts: counts.into_iter().map(|c| c as i64).collect(),
                        }));
                    }
                    None => cell.suppressed = true,
                }
            }
        }
        out.push(cell);
    }
    let cost = families(&out) * params.micro_epsilon;
    if !pay(app, cost) {
        return pb::AppMetrics {
            app_id: app.to_owned(),
            cells: Vec::new(),
            budget_exhausted: true,
            micro_epsilon_spent: 0,
        };
    }
    let scale = Scale::for_micro_epsilon(params.micro_epsilon);
    for cell in &mut out {
        match &mut cell.value {
            Some(pb::cell::Value::Count(c)) => *c += discrete_laplace(u, scale),
            Some(pb::cell::Value::Histogram(h)) => {
                for c in &mut h.counts {
                    *c += discrete_laplace(u, scale);
                }
            }
            None => {}
        }
    }
    pb::AppMetrics {
        app_id: app.to_owned(),
        cells: out,
        budget_exhausted: false,
        micro_epsilon_spent: cost,
    }
}

/// Releases every application of a closed window.
pub fn release(
    window: &ClosedWindow,
    params: &Params,
    pay: &mut dyn FnMut(&str, u64) -> bool,
    u: &mut impl Uniform,
) -> Vec<pb::AppMetrics> {
    window
        .apps
        .iter()
        .map(|(app, cells)| release_app(app, cells, params, pay, u))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::tests::Seeded;

    fn count(metric: Metric, labels: LabelKey, c: u64) -> (CellKey, Value) {
        (
            CellKey {
                metric: metric as i32,
                labels,
            },
            Value::Count(c),
        )
    }

    fn lang(l: &str) -> LabelKey {
        LabelKey {
            language: l.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_lone_small_cell_takes_the_next_smallest_with_it() {
        let cells: AppCells = [
            count(Metric::Exchanges, LabelKey::default(), 140),
            count(Metric::Exchanges, lang("en"), 100),
            count(Metric::Exchanges, lang("es"), 37),
            count(Metric::Exchanges, lang("vi"), 3),
        ]
        .into_iter()
        .collect();
        let hidden = suppressed_counts(&cells, 11);
        let hidden_langs: Vec<&str> = hidden.iter().map(|k| k.labels.language.as_str()).collect();
        // `vi` alone would be 140 - 100 - 37; `es` goes with it.
        assert_eq!(hidden_langs, vec!["es", "vi"]);
    }

    #[test]
    fn two_small_cells_that_sum_under_k_take_a_third() {
        let cells: AppCells = [
            count(Metric::Exchanges, LabelKey::default(), 100),
            count(Metric::Exchanges, lang("en"), 60),
            count(Metric::Exchanges, lang("es"), 34),
            count(Metric::Exchanges, lang("vi"), 3),
            count(Metric::Exchanges, lang("zh"), 3),
        ]
        .into_iter()
        .collect();
        let hidden = suppressed_counts(&cells, 11);
        assert_eq!(hidden.len(), 3, "{hidden:?}");
        assert!(hidden.iter().any(|k| k.labels.language == "es"));
    }

    #[test]
    fn a_small_total_is_suppressed_and_so_are_its_parts() {
        let cells: AppCells = [
            count(Metric::Exchanges, LabelKey::default(), 5),
            count(Metric::Exchanges, lang("en"), 5),
            count(Metric::Exchanges, lang("es"), 0),
        ]
        .into_iter()
        .collect();
        let hidden = suppressed_counts(&cells, 11);
        assert!(hidden.contains(&CellKey {
            metric: Metric::Exchanges as i32,
            labels: LabelKey::default()
        }));
        assert!(hidden.iter().any(|k| k.labels.language == "en"));
        // A true zero is not a small cell.
        assert!(!hidden.iter().any(|k| k.labels.language == "es"));
    }

    #[test]
    fn no_released_report_lets_a_small_count_be_derived() {
        // Exhaustive over small breakdowns: whatever is released, the hidden cells' sum is 0 or >= k
        // and never a single non-zero cell.
        let k = 11;
        for a in 0..15u64 {
            for b in 0..15u64 {
                for c in [0u64, 1, 10, 11, 40] {
                    let cells: AppCells = [
                        count(Metric::Exchanges, LabelKey::default(), a + b + c),
                        count(Metric::Exchanges, lang("en"), a),
                        count(Metric::Exchanges, lang("es"), b),
                        count(Metric::Exchanges, lang("vi"), c),
                    ]
                    .into_iter()
                    .collect();
                    let hidden = suppressed_counts(&cells, k);
                    let total_hidden = hidden.iter().any(|k| k.labels.language.is_empty());
                    if total_hidden {
                        continue;
                    }
                    let parts: Vec<u64> = hidden
                        .iter()
                        .map(|key| match cells[key] {
                            Value::Count(c) => c,
                            _ => 0,
                        })
                        .collect();
                    let sum: u64 = parts.iter().sum();
                    assert!(sum == 0 || sum >= k, "{a} {b} {c}: {parts:?}");
                    assert!(
                        parts.iter().filter(|&&p| p > 0).count() != 1,
                        "{a} {b} {c}: {parts:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn histograms_merge_until_every_bucket_is_empty_or_k() {
        let bounds = [1, 2, 5, 10];
        assert_eq!(
            coarsen(&bounds, &[3, 9, 0, 20, 4], 11),
            Some((vec![2, 5], vec![12, 0, 24]))
        );
        assert_eq!(coarsen(&bounds, &[3, 3, 0, 0, 4], 11), None);
        assert_eq!(
            coarsen(&bounds, &[30, 0, 0, 0, 0], 11),
            Some((vec![1, 2, 5, 10], vec![30, 0, 0, 0, 0]))
        );
        for counts in [[5u64, 5, 5, 5, 5], [0, 0, 11, 1, 0], [12, 1, 1, 1, 1]] {
            let (b, c) = coarsen(&bounds, &counts, 11).unwrap();
            assert_eq!(b.len() + 1, c.len());
            assert_eq!(c.iter().sum::<u64>(), counts.iter().sum::<u64>());
            assert!(c.iter().all(|&x| x == 0 || x >= 11), "{counts:?} -> {c:?}");
        }
    }

    #[test]
    fn released_cells_are_noised_and_paid_for() {
        let cells: AppCells = [
            count(Metric::Exchanges, LabelKey::default(), 500),
            count(Metric::EscalationsRaised, LabelKey::default(), 4),
        ]
        .into_iter()
        .collect();
        let params = Params {
            k: 11,
            micro_epsilon: 500_000,
            daily_micro_budget: 0,
        };
        let mut paid = 0;
        let mut pay = |_: &str, cost: u64| {
            paid += cost;
            true
        };
        let mut u = Seeded(5);
        let m = release_app("app", &cells, &params, &mut pay, &mut u);
        let exchanges = m
            .cells
            .iter()
            .find(|c| c.metric == Metric::Exchanges as i32 && c.labels.is_none())
            .unwrap();
        let escalations = m
            .cells
            .iter()
            .find(|c| c.metric == Metric::EscalationsRaised as i32)
            .unwrap();
        assert!(escalations.suppressed && escalations.value.is_none());
        let Some(pb::cell::Value::Count(x)) = exchanges.value else {
            panic!("exchanges released");
        };
        assert!((x - 500).abs() < 60, "{x}");
        assert_eq!(m.micro_epsilon_spent, paid);
        assert!(paid > 0);
        // Every enumerated safety category is present, so absence never means zero.
        let categories = m
            .cells
            .iter()
            .filter(|c| {
                c.metric == Metric::SafetyFindings as i32
                    && c.labels.as_ref().is_some_and(|l| l.category != 0)
            })
            .count();
        assert_eq!(categories, 9);
    }

    #[test]
    fn an_exhausted_budget_releases_nothing() {
        let cells: AppCells = [count(Metric::Exchanges, LabelKey::default(), 500)]
            .into_iter()
            .collect();
        let params = Params {
            k: 11,
            micro_epsilon: 500_000,
            daily_micro_budget: 0,
        };
        let m = release_app("app", &cells, &params, &mut |_, _| false, &mut Seeded(1));
        assert!(m.budget_exhausted);
        assert!(m.cells.is_empty());
        assert_eq!(m.micro_epsilon_spent, 0);
    }
}
