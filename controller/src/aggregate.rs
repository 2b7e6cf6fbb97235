//! Aggregates: stored reports rolled up per application and UTC day, with the noise variance of every
//! sum and the set of clinics (agents) behind it. Rebuilt from the store at start-up and kept current at
//! ingest, so a scorecard reads thirty small rollups instead of decoding thousands of reports.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;

use readi_proto::histogram_bounds;
use readi_proto::report::v1::{self as pb, Metric};

/// A cell's breakdown, as reported.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels {
    /// Category number.
    pub category: u32,
    /// Severity number.
    pub severity: u32,
    /// PHI type number.
    pub phi_type: u32,
    /// Language tag.
    pub language: String,
    /// Segment id.
    pub segment: String,
    /// Measure number.
    pub measure: u32,
    /// Care arm number.
    pub arm: u32,
    /// Kind number.
    pub kind: u32,
}

impl Labels {
    fn of(l: Option<&pb::Labels>) -> Labels {
        match l {
            None => Labels::default(),
            Some(l) => Labels {
                category: l.category,
                severity: l.severity,
                phi_type: l.phi_type,
                language: l.language.clone(),
                segment: l.segment_id.clone(),
                measure: l.measure,
                arm: l.arm,
                kind: l.kind,
            },
        }
    }

    /// The labels as the report carries them.
    pub fn to_pb(&self) -> Option<pb::Labels> {
        (*self != Labels::default()).then(|| pb::Labels {
            category: self.category,
            severity: self.severity,
            phi_type: self.phi_type,
            language: self.language.clone(),
            segment_id: self.segment.clone(),
            measure: self.measure,
            arm: self.arm,
            kind: self.kind,
        })
    }
}

/// A sum of noised counts and the variance of its noise.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sum {
    /// The sum of released (noised) values.
    pub value: i64,
    /// The variance of the noise in it.
    pub variance: f64,
    /// Released cells summed.
    pub cells: u32,
    /// Cells that were suppressed (true count 1..k-1) and are not in the sum.
    pub suppressed: u32,
}

impl Sum {
    fn add(&mut self, value: i64, variance: f64) {
        self.value += value;
        self.variance += variance;
        self.cells += 1;
    }

    /// Adds another sum (cells of other labels, other clinics or other days).
    pub fn merge(&mut self, other: &Sum) {
        self.value += other.value;
        self.variance += other.variance;
        self.cells += other.cells;
        self.suppressed += other.suppressed;
    }

    /// Half-width of the 95 % interval of the noise.
    pub fn error(&self) -> f64 {
        1.96 * self.variance.sqrt()
    }
}

/// A histogram summed over reports, on the metric's fixed buckets; a merged bucket's mass sits at its
/// upper bound (so percentiles read from it never understate).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hist {
    /// Count per fixed bucket (one more than the bounds).
    pub counts: Vec<i64>,
    /// Noise variance per bucket.
    pub variance: Vec<f64>,
}

impl Hist {
    fn add(&mut self, bounds: &[i64], h: &pb::Histogram, variance: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
            self.variance = vec![0.0; bounds.len() + 1];
        }
        for (i, &c) in h.counts.iter().enumerate() {
            let slot = match h.upper_bounds.get(i) {
                Some(ub) => bounds.iter().position(|b| b == ub).unwrap_or(bounds.len()),
                None => bounds.len(),
            };
            self.counts[slot] += c;
            self.variance[slot] += variance;
        }
    }

    fn merge(&mut self, other: &Hist) {
        if self.counts.is_empty() {
            *self = other.clone();
            return;
        }
        for (i, c) in other.counts.iter().enumerate() {
            self.counts[i] += c;
            self.variance[i] += other.variance[i];
        }
    }

    /// Observations (noised).
    pub fn total(&self) -> i64 {
        self.counts.iter().map(|c| (*c).max(0)).sum()
    }
}

/// Everything reported for one application over some days.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    /// Clinics (agents) that contributed.
    pub agents: BTreeSet<String>,
    /// Count sums by (metric, labels).
    pub counts: HashMap<(i32, Labels), Sum>,
    /// Histograms by (metric, labels).
    pub hists: HashMap<(i32, Labels), Hist>,
}

impl View {
    /// Adds another view's figures (other days, or reports not yet rolled up).
    pub fn merge(&mut self, other: &View) {
        self.agents.extend(other.agents.iter().cloned());
        for (k, s) in &other.counts {
            self.counts.entry(k.clone()).or_default().merge(s);
        }
        for (k, h) in &other.hists {
            self.hists.entry(k.clone()).or_default().merge(h);
        }
    }

    /// The sum of a count cell (zero when nothing was reported).
    pub fn count(&self, metric: Metric, labels: &Labels) -> Sum {
        self.counts
            .get(&(metric as i32, labels.clone()))
            .copied()
            .unwrap_or_default()
    }

    /// The total of a metric (its cell without labels).
    pub fn total(&self, metric: Metric) -> Sum {
        self.count(metric, &Labels::default())
    }

    /// A histogram (empty when nothing was reported).
    pub fn hist(&self, metric: Metric, labels: &Labels) -> Hist {
        self.hists
            .get(&(metric as i32, labels.clone()))
            .cloned()
            .unwrap_or_default()
    }

    /// Count cells of a metric broken down by language: (language, sum).
    pub fn by_language(&self, metric: Metric) -> BTreeMap<String, Sum> {
        self.counts
            .iter()
            .filter(|((m, l), _)| *m == metric as i32 && !l.language.is_empty())
            .map(|((_, l), s)| (l.language.clone(), *s))
            .collect()
    }
}

/// A view's stored form (the PostgreSQL rollups): protobuf, so rollups written by one controller
/// version read in the next; cells sorted so the same figures encode to the same bytes.
mod stored {
    use readi_proto::report::v1 as pb;

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct View {
        #[prost(string, repeated, tag = "1")]
        pub(super) agents: Vec<String>,
        #[prost(message, repeated, tag = "2")]
        pub(super) counts: Vec<Count>,
        #[prost(message, repeated, tag = "3")]
        pub(super) hists: Vec<Hist>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Count {
        #[prost(int32, tag = "1")]
        pub(super) metric: i32,
        #[prost(message, optional, tag = "2")]
        pub(super) labels: Option<pb::Labels>,
        #[prost(int64, tag = "3")]
        pub(super) value: i64,
        #[prost(double, tag = "4")]
        pub(super) variance: f64,
        #[prost(uint32, tag = "5")]
        pub(super) cells: u32,
        #[prost(uint32, tag = "6")]
        pub(super) suppressed: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Hist {
        #[prost(int32, tag = "1")]
        pub(super) metric: i32,
        #[prost(message, optional, tag = "2")]
        pub(super) labels: Option<pb::Labels>,
        #[prost(int64, repeated, tag = "3")]
        pub(super) counts: Vec<i64>,
        #[prost(double, repeated, tag = "4")]
        pub(super) variance: Vec<f64>,
    }
}

impl View {
    /// The view's stored form.
    pub fn encode(&self) -> Vec<u8> {
        use prost::Message as _;
        let mut counts: Vec<_> = self.counts.iter().collect();
        counts.sort_by(|a, b| a.0.cmp(b.0));
        let mut hists: Vec<_> = self.hists.iter().collect();
        hists.sort_by(|a, b| a.0.cmp(b.0));
        stored::View {
            agents: self.agents.iter().cloned().collect(),
            counts: counts
                .into_iter()
                .map(|((metric, l), s)| stored::Count {
                    metric: *metric,
                    labels: l.to_pb(),
                    value: s.value,
                    variance: s.variance,
                    cells: s.cells,
                    suppressed: s.suppressed,
                })
                .collect(),
            hists: hists
                .into_iter()
                .map(|((metric, l), h)| stored::Hist {
                    metric: *metric,
                    labels: l.to_pb(),
                    counts: h.counts.clone(),
                    variance: h.variance.clone(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// A view from its stored form; None when the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<View> {
        use prost::Message as _;
        let v = stored::View::decode(bytes).ok()?;
        let mut out = View {
            agents: v.agents.into_iter().collect(),
            ..View::default()
        };
        for c in v.counts {
            out.counts.insert(
                (c.metric, Labels::of(c.labels.as_ref())),
                Sum {
                    value: c.value,
                    variance: c.variance,
                    cells: c.cells,
                    suppressed: c.suppressed,
                },
            );
        }
        for h in v.hists {
            if h.counts.len() != h.variance.len() {
                return None;
            }
            out.hists.insert(
                (h.metric, Labels::of(h.labels.as_ref())),
                Hist {
                    counts: h.counts,
                    variance: h.variance,
                },
            );
        }
        Some(out)
    }
}

/// The report inside a stored signed report (verified when it was ingested); None when it does
/// not decode.
pub fn decode_stored(signed: &[u8]) -> Option<pb::Report> {
    use prost::Message as _;
    let s = pb::SignedReport::decode(signed).ok()?;
    pb::Report::decode(s.report.as_slice()).ok()
}

/// Noise variance of one cell of a report, from its privacy parameters (discrete Laplace, scale t/s).
pub fn cell_variance(p: Option<&pb::PrivacyParameters>) -> f64 {
    let Some(p) = p.filter(|p| p.scale_denominator > 0 && p.scale_numerator > 0) else {
        return 0.0;
    };
    let b = p.scale_numerator as f64 / p.scale_denominator as f64;
    let q = (-1.0 / b).exp();
    2.0 * q / ((1.0 - q) * (1.0 - q))
}

/// UTC day number of a unix time.
pub fn day_of(unix: i64) -> i64 {
    unix.div_euclid(86_400)
}

pub use readi_common::date::ymd;

/// The rollups.
#[derive(Debug, Default)]
pub struct Aggregates {
    apps: RwLock<HashMap<String, BTreeMap<i64, View>>>,
}

impl Aggregates {
    /// Adds one verified report.
    pub fn add(&self, r: &pb::Report) {
        let day = day_of(r.window_start.as_ref().map_or(0, |t| t.seconds));
        let variance = cell_variance(r.privacy.as_ref());
        let mut apps = self
            .apps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for a in r
            .apps
            .iter()
            .filter(|a| !a.budget_exhausted && !a.cells.is_empty())
        {
            let view = apps
                .entry(a.app_id.clone())
                .or_default()
                .entry(day)
                .or_default();
            view.agents.insert(r.agent_id.clone());
            for c in &a.cells {
                let key = (c.metric, Labels::of(c.labels.as_ref()));
                match &c.value {
                    Some(pb::cell::Value::Count(n)) => {
                        view.counts.entry(key).or_default().add(*n, variance);
                    }
                    Some(pb::cell::Value::Histogram(h)) => {
                        let metric = Metric::try_from(c.metric).unwrap_or(Metric::Unspecified);
                        if let Some(bounds) = histogram_bounds(metric) {
                            view.hists.entry(key).or_default().add(bounds, h, variance);
                        }
                    }
                    None if c.suppressed => {
                        view.counts.entry(key).or_default().suppressed += 1;
                    }
                    None => {}
                }
            }
        }
    }

    /// Adds a day's figures rolled up elsewhere (the database's rollups).
    pub fn merge_day(&self, app: &str, day: i64, view: &View) {
        self.apps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(app.to_owned())
            .or_default()
            .entry(day)
            .or_default()
            .merge(view);
    }

    /// Every (application, day, figures) held.
    pub fn into_days(self) -> Vec<(String, i64, View)> {
        let apps = self
            .apps
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::new();
        for (app, days) in apps {
            for (day, view) in days {
                out.push((app.clone(), day, view));
            }
        }
        out
    }

    /// The application's figures over days `from..=to`.
    pub fn view(&self, app: &str, from: i64, to: i64) -> View {
        let apps = self
            .apps
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = View::default();
        if let Some(days) = apps.get(app) {
            for (_, v) in days.range(from..=to) {
                out.merge(v);
            }
        }
        out
    }

    /// The application's figures per day over `from..=to` (days without reports are absent).
    pub fn daily(&self, app: &str, from: i64, to: i64) -> Vec<(i64, View)> {
        let apps = self
            .apps
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        apps.get(app)
            .map(|days| {
                days.range(from..=to)
                    .map(|(d, v)| (*d, v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Applications with any figures, and their clinics over `from..=to`.
    pub fn clinics(&self, app: &str, from: i64, to: i64) -> usize {
        self.view(app, from, to).agents.len()
    }
}

/// The privacy parameters of the tests' reports: k 11, scale 2 (noise variance 7.83 per cell).
#[cfg(test)]
pub(crate) fn test_privacy() -> pb::PrivacyParameters {
    pb::PrivacyParameters {
        k: 11,
        mechanism: 1,
        micro_epsilon: 500_000,
        scale_numerator: 1_000_000,
        scale_denominator: 500_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(agent: &str, day: i64, requests: i64, hist: Option<pb::Histogram>) -> pb::Report {
        let mut cells = vec![pb::Cell {
            metric: Metric::Requests as i32,
            labels: None,
            value: Some(pb::cell::Value::Count(requests)),
            suppressed: false,
        }];
        if let Some(h) = hist {
            cells.push(pb::Cell {
                metric: Metric::SecondsToAcknowledge as i32,
                labels: None,
                value: Some(pb::cell::Value::Histogram(h)),
                suppressed: false,
            });
        }
        pb::Report {
            egress_head: None,
            audit_head: None,
            schema_version: 1,
            agent_id: agent.into(),
            sequence: 1,
            window_start: Some(prost_types::Timestamp {
                seconds: day * 86_400 + 60,
                nanos: 0,
            }),
            window_end: None,
            apps: vec![pb::AppMetrics {
                app_id: "app".into(),
                cells,
                budget_exhausted: false,
                micro_epsilon_spent: 1,
            }],
            privacy: Some(test_privacy()),
        }
    }

    #[test]
    fn days_print_as_dates() {
        assert_eq!(ymd(0), "1970-01-01");
        assert_eq!(ymd(20_783), "2026-11-26");
        assert_eq!(ymd(11_016), "2000-02-29");
    }

    #[test]
    fn days_roll_up_with_their_clinics_and_noise() {
        let a = Aggregates::default();
        a.add(&report("agt-1", 10, 100, None));
        a.add(&report("agt-2", 10, 50, None));
        a.add(&report("agt-1", 11, 7, None));
        a.add(&report("agt-3", 20, 1000, None));
        let v = a.view("app", 10, 11);
        assert_eq!(v.agents.len(), 2);
        let s = v.total(Metric::Requests);
        assert_eq!((s.value, s.cells), (157, 3));
        // Scale 2: variance 7.83 per cell.
        assert!((s.variance - 3.0 * 7.826).abs() < 0.05, "{}", s.variance);
        assert_eq!(a.daily("app", 0, 30).len(), 3);
        assert_eq!(a.view("other", 0, 30).agents.len(), 0);
    }

    #[test]
    fn views_survive_their_stored_form() {
        let a = Aggregates::default();
        let h = pb::Histogram {
            upper_bounds: vec![300, 3600],
            counts: vec![20, 15, 12],
        };
        a.add(&report("agt-1", 1, 5, Some(h)));
        a.add(&report("agt-2", 1, 9, None));
        let v = a.view("app", 1, 1);
        let back = View::decode(&v.encode()).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.encode(), v.encode(), "one encoding per view");
        assert!(View::decode(b"\xff\xff").is_none());
        let days = a.into_days();
        assert_eq!(days.len(), 1);
        let b = Aggregates::default();
        b.merge_day("app", 1, &days[0].2);
        b.merge_day("app", 1, &days[0].2);
        assert_eq!(b.view("app", 1, 1).total(Metric::Requests).value, 28);
        assert_eq!(b.view("app", 1, 1).agents.len(), 2);
    }

    #[test]
    fn merged_histogram_buckets_land_on_their_upper_bound() {
        let a = Aggregates::default();
        let h = pb::Histogram {
            upper_bounds: vec![300, 3600],
            counts: vec![20, 15, 12],
        };
        a.add(&report("agt-1", 1, 1, Some(h)));
        let hist = a
            .view("app", 1, 1)
            .hist(Metric::SecondsToAcknowledge, &Labels::default());
        assert_eq!(hist.counts, vec![0, 20, 0, 0, 15, 0, 0, 12]);
        assert_eq!(hist.total(), 47);
    }
}
