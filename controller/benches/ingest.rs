//! Ingest and scorecard figures at national scale, on either backend: enrolls N agents, seeds their
//! hourly signed reports for D days through the controller's SubmitReport service (decode, signature
//! check, exactly-once store, rollups; everything but the network), then times scorecards.
//!
//! cargo bench -p readi-controller --bench ingest -- --backend sled|postgres [--agents 10000]
//!     [--days 30] [--concurrency 16]
//! PostgreSQL: READI_BENCH_POSTGRES_URL (else READI_TEST_POSTGRES_URL); the run uses a schema of its
//! own and drops it at the end (--keep keeps it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use readi_common::identity::{agent_id_of, hex};
use readi_controller::records::FileRecords;
use readi_controller::registry::Registry;
use readi_controller::scorecard::Thresholds;
use readi_controller::service::{ControllerService, Scoring};
use readi_controller::store::{AgentRecord, ReportStore};
use readi_proto::controller::v1::{self as cpb, Period, controller_server::Controller as _};
use readi_proto::report::v1 as pb;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

mod common;
use common::cells;

const APPS: [&str; 2] = ["notes-app", "chat-app"];

struct Args {
    backend: String,
    agents: usize,
    days: i64,
    concurrency: usize,
    keep: bool,
}

fn args() -> Args {
    let mut a = Args {
        backend: "sled".into(),
        agents: 10_000,
        days: 30,
        concurrency: 16,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match arg.as_str() {
            "--backend" => a.backend = value(),
            "--agents" => a.agents = value().parse().expect("--agents N"),
            "--days" => a.days = value().parse().expect("--days N"),
            "--concurrency" => a.concurrency = value().parse().expect("--concurrency N"),
            "--keep" => a.keep = true,
            // cargo bench passes --bench; anything else is a mistake worth hearing about.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

struct Agent {
    id: String,
    key: Ed25519KeyPair,
}

/// Agent `a`'s signed report for hour `h` of the run, which starts at `start`.
fn signed(agent: &Agent, a: usize, h: i64, start: i64) -> pb::SignedReport {
    let window_start = start + h * 3600;
    let report = pb::Report {
        egress_head: None,
        audit_head: None,
        schema_version: 1,
        agent_id: agent.id.clone(),
        sequence: h as u64 + 1,
        window_start: Some(prost_types::Timestamp {
            seconds: window_start,
            nanos: 0,
        }),
        window_end: Some(prost_types::Timestamp {
            seconds: window_start + 3600,
            nanos: 0,
        }),
        apps: APPS
            .iter()
            .map(|app| pb::AppMetrics {
                app_id: (*app).into(),
                cells: cells(a as u64 + h as u64),
                budget_exhausted: false,
                micro_epsilon_spent: 20_000_000,
            })
            .collect(),
        privacy: Some(common::privacy()),
    };
    let bytes = prost::Message::encode_to_vec(&report);
    pb::SignedReport {
        signature: agent.key.sign(&bytes).as_ref().to_vec(),
        report: bytes,
    }
}

/// A PostgreSQL store in a schema of its own, and a way to drop it.
fn postgres() -> (Arc<readi_controller::pgstore::PgStore>, String, String) {
    let url = std::env::var("READI_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("READI_TEST_POSTGRES_URL"))
        .expect("set READI_BENCH_POSTGRES_URL (.ci/postgres starts a server)");
    let schema = format!("bench_{}", std::process::id());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("the database");
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-csearch_path%3D{schema}");
    let ca = std::env::var("READI_TEST_POSTGRES_CA").ok();
    let store =
        readi_controller::pgstore::PgStore::open(&scoped, ca.as_deref().map(std::path::Path::new))
            .expect("open");
    (Arc::new(store), url, schema)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let (store, sled_db, pg): (Arc<dyn ReportStore>, _, _) = match args.backend.as_str() {
        "sled" => {
            let db =
                readi_common::embedded::Store::open_with_cache(dir.path(), "controller.db", 128)
                    .expect("sled");
            let s = readi_controller::store::SledStore::open(db.db()).unwrap();
            (Arc::new(s), Some(db), None)
        }
        "postgres" => {
            let (s, url, schema) = postgres();
            (s.clone(), None, Some((s, url, schema)))
        }
        other => panic!("--backend sled or postgres, not {other}"),
    };
    let records = Arc::new(FileRecords::new(dir.path()));
    let registry = Registry::new(records.clone());
    registry.add_vendor("acme", "Acme").unwrap();
    for app in APPS {
        registry.add_app(app, "acme", app).unwrap();
    }

    let started = Instant::now();
    let rng = ring::rand::SystemRandom::new();
    let agents: Vec<Agent> = (0..args.agents)
        .map(|_| {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            let public = key.public_key().as_ref().to_vec();
            let id = agent_id_of(&public);
            store
                .put_agent(&AgentRecord {
                    id: id.clone(),
                    public_key: hex(&public),
                    apps: APPS.iter().map(|a| (*a).to_owned()).collect(),
                    enrolled_at: now(),
                    certificate_sha256: String::new(),
                    revoked: false,
                })
                .unwrap();
            Agent { id, key }
        })
        .collect();
    eprintln!(
        "{} agents enrolled in {:.1} s ({})",
        args.agents,
        started.elapsed().as_secs_f64(),
        args.backend
    );

    let scoring =
        Arc::new(Scoring::load(store.as_ref(), registry, 5, Thresholds::default()).unwrap());
    let svc = Arc::new(ControllerService::new(
        store.clone(),
        records,
        None,
        scoring.clone(),
        readi_common::shutdown::Fatal::default(),
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Rollups folded alongside, as every replica does.
    let stop = Arc::new(AtomicBool::new(false));
    let folder = store.rollups().is_some().then(|| {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                while store.rollups().unwrap().compact().unwrap() > 0 {}
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    });

    let hours = args.days * 24;
    let start = (now() / 86_400 - args.days) * 86_400;
    let (mut ingest_time, mut stored) = (Duration::ZERO, 0usize);
    let mut slowest = Duration::ZERO;
    for h in 0..hours {
        // Sign the hour's reports (the agents' work, not timed).
        let batch: Vec<pb::SignedReport> = std::thread::scope(|s| {
            let half = agents.len() / 2;
            let (x, y) = agents.split_at(half);
            let hx = s.spawn(|| {
                x.iter()
                    .enumerate()
                    .map(|(i, a)| signed(a, i, h, start))
                    .collect::<Vec<_>>()
            });
            let ys: Vec<_> = y
                .iter()
                .enumerate()
                .map(|(i, a)| signed(a, half + i, h, start))
                .collect();
            let mut all = hx.join().unwrap();
            all.extend(ys);
            all
        });
        let batch = Arc::new(batch);
        let next = Arc::new(AtomicUsize::new(0));
        let t = Instant::now();
        let worst = runtime.block_on(async {
            let tasks: Vec<_> = (0..args.concurrency)
                .map(|_| {
                    let (svc, batch, next) = (svc.clone(), batch.clone(), next.clone());
                    tokio::spawn(async move {
                        let mut worst = Duration::ZERO;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(r) = batch.get(i) else { break };
                            let t = Instant::now();
                            let out = svc
                                .submit_report(tonic::Request::new(cpb::SubmitReportRequest {
                                    report: Some(r.clone()),
                                }))
                                .await
                                .expect("stored");
                            assert!(!out.get_ref().duplicate);
                            worst = worst.max(t.elapsed());
                        }
                        worst
                    })
                })
                .collect();
            let mut worst = Duration::ZERO;
            for t in tasks {
                worst = worst.max(t.await.unwrap());
            }
            worst
        });
        ingest_time += t.elapsed();
        slowest = slowest.max(worst);
        stored += batch.len();
        if (h + 1) % 24 == 0 {
            eprintln!(
                "day {:>2}: {stored} reports, {:.0} reports/s so far (slowest call {:.0} ms)",
                (h + 1) / 24,
                stored as f64 / ingest_time.as_secs_f64(),
                slowest.as_secs_f64() * 1e3
            );
        }
    }
    let rate = stored as f64 / ingest_time.as_secs_f64();
    println!(
        "ingest: {stored} reports from {} agents over {} days in {:.0} s of ingest: {rate:.0} reports/s, slowest call {:.0} ms",
        args.agents,
        args.days,
        ingest_time.as_secs_f64(),
        slowest.as_secs_f64() * 1e3
    );

    if let Some(f) = folder {
        let t = Instant::now();
        stop.store(true, Ordering::Relaxed);
        f.join().unwrap();
        while store.rollups().unwrap().compact().unwrap() > 0 {}
        println!(
            "rollups: pending reports folded {:.1} s after the last report",
            t.elapsed().as_secs_f64()
        );
    }

    let until = now() + 86_400;
    for (name, period) in [("30 days", Period::Days30), ("7 days", Period::Week)] {
        let mut times = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let card = scoring
                .scorecard(store.as_ref(), "notes-app", period, until)
                .unwrap();
            times.push(t.elapsed());
            assert!(card.released, "{card:?}");
            assert_eq!(card.clinics as usize, args.agents);
        }
        times.sort();
        println!(
            "scorecard {name}: median {:.0} ms, slowest {:.0} ms (7 runs, {} clinics)",
            times[3].as_secs_f64() * 1e3,
            times[6].as_secs_f64() * 1e3,
            args.agents
        );
    }
    let t = Instant::now();
    let clinics = scoring
        .clinics(store.as_ref(), "chat-app", now() / 86_400)
        .unwrap();
    println!(
        "clinics of one application (ListApplications): {clinics} in {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    if store.rollups().is_none() {
        // A restarted sled controller rebuilds its rollups from every report.
        let t = Instant::now();
        let again = Scoring::load(
            store.as_ref(),
            Registry::in_dir(dir.path()),
            5,
            Thresholds::default(),
        )
        .unwrap();
        drop(again);
        println!(
            "start-up: rollups rebuilt from {stored} reports in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    println!("peak memory of the whole run (VmHWM): {peak}");
    drop(svc);
    drop(scoring);
    drop(store);
    drop(sled_db);
    if let Some((pg, url, schema)) = pg {
        drop(pg);
        if !args.keep {
            let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            admin
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .unwrap();
        }
    }
}
