//! Scorecard latency with a realistic history: 1,000 clinics' hourly reports for 30 days (720,000
//! reports) rolled up in memory, then a 30-day scorecard, a 7-day one and one day's trend point.

use criterion::{Criterion, criterion_group, criterion_main};
use readi_controller::aggregate::Aggregates;
use readi_controller::scorecard::{Thresholds, scorecard};
use readi_controller::store::SledStore;
use readi_proto::controller::v1::Period;
use readi_proto::report::v1 as pb;

mod common;
use common::cells;

const AGENTS: usize = 1000;
const DAYS: i64 = 30;

fn bench(c: &mut Criterion) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = now / 86_400;
    let aggregates = Aggregates::default();
    let template = pb::Report {
        egress_head: None,
        audit_head: None,
        schema_version: 1,
        agent_id: String::new(),
        sequence: 0,
        window_start: None,
        window_end: None,
        apps: vec![pb::AppMetrics {
            app_id: "notes-app".into(),
            cells: cells(0),
            budget_exhausted: false,
            micro_epsilon_spent: 0,
        }],
        privacy: Some(common::privacy()),
    };
    let started = std::time::Instant::now();
    let mut report = template.clone();
    for a in 0..AGENTS {
        report.agent_id = format!("agt-{a:016x}");
        for hour in 0..DAYS * 24 {
            let start = (today - DAYS) * 86_400 + hour * 3600;
            report.window_start = Some(prost_types::Timestamp {
                seconds: start,
                nanos: 0,
            });
            aggregates.add(&report);
        }
    }
    eprintln!(
        "rolled up {} reports in {:.1} s",
        AGENTS as i64 * DAYS * 24,
        started.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    let store = SledStore::open(&db).unwrap();
    let t = Thresholds::default();
    let mut group = c.benchmark_group("scorecard_1000_clinics_30_days");
    for (name, period) in [
        ("30_days", Period::Days30),
        ("7_days", Period::Week),
        ("1_day", Period::Day),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let card = scorecard(&aggregates, &store, "notes-app", period, now, 5, &t).unwrap();
                assert!(card.released);
                card
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
