//! The metric windows, checked on small ones: counts, closing on the boundary, sessions, snapshots,
//! clock jumps, histograms.

use super::*;

fn rules() -> EngagementRules {
    EngagementRules {
        session_idle_secs: 60,
        night_start_hour: 22,
        night_end_hour: 6,
        utc_offset_minutes: 0,
        under_use_messages: 2,
        over_use_messages: 3,
    }
}

fn metrics(now: u64) -> Metrics {
    Metrics::new(
        3600,
        vec!["app".into()],
        vec!["seg-a".into()],
        rules(),
        b"secret",
        None,
        now,
    )
}

fn count(w: &ClosedWindow, metric: Metric, labels: LabelKey) -> u64 {
    match w.apps["app"].get(&CellKey {
        metric: metric as i32,
        labels,
    }) {
        Some(Value::Count(c)) => *c,
        _ => 0,
    }
}

#[test]
fn a_window_closes_on_its_boundary_with_its_counts() {
    let t0 = 7200;
    let m = metrics(t0);
    m.redact("app", "s1", &[1, 1, 5], 300, t0 + 1);
    m.redact("unregistered", "s1", &[1], 300, t0 + 1);
    let facts = AssessFacts {
        findings: vec![(1, 3)],
        flagged: true,
        escalated: true,
        ..Default::default()
    };
    m.assess("app", "s1", "es-mx", "seg-a", &facts, 900, t0 + 2);
    m.assess(
        "app",
        "s1",
        "",
        "not-registered",
        &AssessFacts::default(),
        900,
        t0 + 3,
    );
    assert!(m.close_if_due(t0 + 3599).is_none());
    let w = m.close_if_due(t0 + 3600).unwrap();
    assert_eq!((w.start, w.end), (t0, t0 + 3600));
    assert!(!w.apps.contains_key("unregistered"));
    let phi = |t| LabelKey {
        phi_type: t,
        ..Default::default()
    };
    assert_eq!(count(&w, Metric::PhiRedacted, phi(1)), 2);
    assert_eq!(count(&w, Metric::PhiRedacted, LabelKey::default()), 3);
    assert_eq!(count(&w, Metric::Exchanges, LabelKey::default()), 2);
    let lang = |l: &str| LabelKey {
        language: l.into(),
        ..Default::default()
    };
    assert_eq!(count(&w, Metric::Exchanges, lang("es-MX")), 1);
    assert_eq!(count(&w, Metric::Exchanges, lang("und")), 1);
    assert_eq!(count(&w, Metric::FlaggedExchanges, lang("es-MX")), 1);
    let seg = LabelKey {
        segment: "seg-a".into(),
        ..Default::default()
    };
    assert_eq!(count(&w, Metric::Exchanges, seg), 1);
    assert_eq!(count(&w, Metric::EscalationsRaised, LabelKey::default()), 1);
    let latency = CellKey {
        metric: Metric::AgentLatencyUs as i32,
        labels: lang("es-MX"),
    };
    assert!(matches!(&w.apps["app"][&latency], Value::Histogram(h) if h.iter().sum::<u64>() == 1));
    assert!(
        w.apps["app"]
            .keys()
            .all(|k| k.labels.segment != "not-registered")
    );
    // The session is still open (not idle yet at the boundary? it is: idle 60s) and counted.
    assert_eq!(count(&w, Metric::Sessions, LabelKey::default()), 1);
    assert!(m.close_if_due(t0 + 3601).is_none());
}

#[test]
fn sessions_are_keyed_hashes_and_judged_when_they_end() {
    let t0 = 0;
    let m = metrics(t0);
    for i in 0..5 {
        m.redact("app", "patient-session-Quackenbush", &[], 10, t0 + i);
    }
    m.redact("app", "other", &[], 10, t0 + 10);
    let snap = m.snapshot();
    let text = serde_json::to_string(&snap).unwrap();
    assert!(!text.contains("Quackenbush"), "{text}");
    let w = m.close_if_due(t0 + 3600).unwrap();
    let none = LabelKey::default();
    assert_eq!(count(&w, Metric::Sessions, none.clone()), 2);
    assert_eq!(count(&w, Metric::OverUse, none.clone()), 1);
    assert_eq!(count(&w, Metric::UnderUse, none.clone()), 1);
    // 00:00 UTC is night.
    assert_eq!(count(&w, Metric::NightSessions, none), 2);
}

#[test]
fn a_snapshot_resumes_the_same_window() {
    let m = metrics(100);
    m.redact("app", "s", &[2], 10, 101);
    let snap = m.snapshot();
    let again = Metrics::new(
        3600,
        vec!["app".into()],
        vec![],
        rules(),
        b"secret",
        Some(serde_json::from_str(&serde_json::to_string(&snap).unwrap()).unwrap()),
        200,
    );
    assert_eq!(again.snapshot(), snap);
    assert_eq!(again.sessions_in_flight(), 1);
}

#[test]
fn a_clock_that_jumps_back_keeps_the_window_open() {
    let m = metrics(10_000);
    m.redact("app", "s", &[], 10, 10_001);
    assert!(m.close_if_due(5).is_none());
    assert!(m.close_if_due(7200 + 3600).is_some());
}

#[test]
fn clinicians_reports_count_as_adverse_events_of_their_kind() {
    let m = metrics(0);
    m.feedback("app", 4, true);
    m.feedback("app", 7, false);
    m.feedback("unregistered", 4, true);
    let w = m.close_if_due(3600).unwrap();
    let kind = |k| LabelKey {
        kind: k,
        ..Default::default()
    };
    assert_eq!(count(&w, Metric::AdverseEvents, LabelKey::default()), 2);
    assert_eq!(count(&w, Metric::AdverseEvents, kind(4)), 1);
    assert_eq!(count(&w, Metric::AdverseEvents, kind(7)), 1);
    assert_eq!(count(&w, Metric::EscalationsRaised, LabelKey::default()), 1);
    assert!(!w.apps.contains_key("unregistered"));
}

#[test]
fn a_measured_zero_of_residual_phi_is_reported() {
    let m = metrics(0);
    m.residual_phi("app", 0);
    let w = m.close_if_due(3600).unwrap();
    let key = CellKey {
        metric: Metric::ResidualPhi as i32,
        labels: LabelKey::default(),
    };
    assert_eq!(w.apps["app"].get(&key), Some(&Value::Count(0)));
}

#[test]
fn histograms_bucket_by_upper_bound() {
    let m = metrics(0);
    m.acknowledged("app", 60);
    m.acknowledged("app", 61);
    m.acknowledged("app", 1_000_000);
    let w = m.close_if_due(3600).unwrap();
    let key = CellKey {
        metric: Metric::SecondsToAcknowledge as i32,
        labels: LabelKey::default(),
    };
    assert_eq!(
        w.apps["app"][&key],
        Value::Histogram(vec![1, 1, 0, 0, 0, 0, 0, 1])
    );
}
