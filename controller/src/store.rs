//! The controller's storage: enrolled agents and their signed reports, stored exactly once per
//! (agent id, sequence). A trait, so a PostgreSQL backend can stand in for the embedded sled one.

use serde::{Deserialize, Serialize};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed.
    #[error("controller store: {0}")]
    Backend(String),
    /// The backend failed in a way that lasts until it is reopened (sled after an I/O error, a
    /// full disk among them): the controller stops for its supervisor to restart it.
    #[error("controller store failed: {0}")]
    Failed(String),
    /// A stored record does not decode.
    #[error("controller store record {0} is damaged")]
    Damaged(String),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(_) => StoreError::Failed(e.to_string()),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

/// An enrolled agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Its id (derived from its public key).
    pub id: String,
    /// Its Ed25519 public key, hex.
    pub public_key: String,
    /// Applications it may report on.
    pub apps: Vec<String>,
    /// When it enrolled, unix seconds.
    pub enrolled_at: i64,
    /// SHA-256 of the client certificate issued to it, hex; empty without TLS.
    pub certificate_sha256: String,
    /// Refused from now on.
    pub revoked: bool,
}

/// What happened to a submitted report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Stored now.
    New,
    /// The same bytes were already stored under this (agent, sequence).
    Duplicate,
    /// Different bytes are already stored under this (agent, sequence).
    Conflict,
}

/// A stored report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReport {
    /// The agent.
    pub agent_id: String,
    /// Its sequence number.
    pub sequence: u64,
    /// Start of its window (Unix seconds): where a partitioned backend files it.
    pub window_start: i64,
    /// The signed report exactly as received.
    pub signed: Vec<u8>,
}

/// The clinics behind figures released for an application over some days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cohort {
    /// First UTC day (inclusive).
    pub from_day: i64,
    /// Last UTC day (inclusive).
    pub to_day: i64,
    /// Agent ids, sorted.
    pub agents: Vec<String>,
}

impl Cohort {
    /// How many clinics are in one cohort and not the other.
    pub fn symmetric_difference(&self, other: &Cohort) -> usize {
        let a: std::collections::BTreeSet<&String> = self.agents.iter().collect();
        let b: std::collections::BTreeSet<&String> = other.agents.iter().collect();
        a.symmetric_difference(&b).count()
    }

    pub(crate) fn key(&self, app: &str) -> Vec<u8> {
        let mut k = app.as_bytes().to_vec();
        k.push(0);
        k.extend_from_slice(&self.from_day.to_be_bytes());
        k.extend_from_slice(&self.to_day.to_be_bytes());
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for a in &self.agents {
            ctx.update(a.as_bytes());
            ctx.update(b"\0");
        }
        k.extend_from_slice(&ctx.finish().as_ref()[..8]);
        k
    }
}

thread_local! {
    /// Set on threads of tokio's blocking pool that `spawn_blocking` below started work on.
    static MAY_BLOCK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs store work on tokio's blocking pool, marking the thread as one where a store may block:
/// the PostgreSQL client then runs there directly, not on a thread of its own per call.
pub async fn spawn_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || {
        // Blocking-pool threads only ever run blocking work, so the mark may stay.
        MAY_BLOCK.set(true);
        f()
    })
    .await
}

/// Whether this thread is one `spawn_blocking` runs work on.
pub(crate) fn may_block() -> bool {
    MAY_BLOCK.get()
}

/// Storage for a controller.
pub trait ReportStore: Send + Sync + std::fmt::Debug + 'static {
    /// Adds or replaces an agent.
    fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError>;
    /// An agent by id.
    fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError>;
    /// Every agent, by id.
    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError>;
    /// Stores a report once; durable before it returns `New`.
    fn insert_report(&self, report: &StoredReport) -> Result<Stored, StoreError>;
    /// Every stored report of an agent (all agents when `None`), in (agent, sequence) order.
    fn reports(&self, agent: Option<&str>) -> Result<Vec<StoredReport>, StoreError>;
    /// How many reports are stored.
    fn report_count(&self) -> Result<usize, StoreError> {
        Ok(self.reports(None)?.len())
    }
    /// Calls `f` with every stored report (agent, sequence, signed bytes) in (agent, sequence)
    /// order, holding one at a time: what a restart reads to rebuild rollups.
    fn each_report(&self, f: &mut dyn FnMut(&str, u64, &[u8])) -> Result<(), StoreError> {
        for r in self.reports(None)? {
            f(&r.agent_id, r.sequence, &r.signed);
        }
        Ok(())
    }
    /// Cohorts already released for an application.
    fn released_cohorts(&self, app: &str) -> Result<Vec<Cohort>, StoreError>;
    /// Records a released cohort (idempotent).
    fn record_cohort(&self, app: &str, cohort: &Cohort) -> Result<(), StoreError>;
    /// Adds one to a named counter (rejections, duplicates) and returns the new value.
    fn bump(&self, counter: &str) -> Result<u64, StoreError>;
    /// Every counter.
    fn counters(&self) -> Result<Vec<(String, u64)>, StoreError>;
    /// The scorecard rollups the store keeps itself, shared by every controller on it; `None` when
    /// the controller keeps them in memory, rebuilt from the reports at start.
    fn rollups(&self) -> Option<&dyn Rollups> {
        None
    }
}

/// Scorecard rollups kept in the store, current with every report it has committed.
pub trait Rollups: Send + Sync {
    /// An application's figures per day over days `from..=to`, as of one moment.
    fn snapshot(
        &self,
        app: &str,
        from: i64,
        to: i64,
    ) -> Result<crate::aggregate::Aggregates, StoreError>;
    /// Folds reports committed since the last call into the rollups (one controller at a time;
    /// the others return at once); returns how many it folded.
    fn compact(&self) -> Result<usize, StoreError>;
}

/// The embedded sled store.
#[derive(Clone, Debug)]
pub struct SledStore {
    db: sled::Db,
    agents: sled::Tree,
    reports: sled::Tree,
    counters: sled::Tree,
    cohorts: sled::Tree,
}

impl SledStore {
    /// Opens the trees in `db`.
    pub fn open(db: &sled::Db) -> Result<SledStore, StoreError> {
        Ok(SledStore {
            db: db.clone(),
            agents: db.open_tree("agents")?,
            reports: db.open_tree("reports")?,
            counters: db.open_tree("counters")?,
            cohorts: db.open_tree("released_cohorts")?,
        })
    }
}

/// The window start inside stored signed-report bytes (0 where they do not decode).
fn window_start_of(signed: &[u8]) -> i64 {
    use prost::Message as _;
    readi_proto::report::v1::SignedReport::decode(signed)
        .ok()
        .and_then(|s| readi_proto::report::v1::Report::decode(s.report.as_slice()).ok())
        .and_then(|r| r.window_start)
        .map_or(0, |t| t.seconds)
}

/// (agent, sequence) from a key written by `report_key`.
fn parse_report_key(k: &[u8]) -> Result<(std::borrow::Cow<'_, str>, u64), StoreError> {
    let split = k.len().checked_sub(9).filter(|&i| k[i] == 0);
    let Some(i) = split else {
        return Err(StoreError::Damaged("report key".into()));
    };
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&k[i + 1..]);
    Ok((String::from_utf8_lossy(&k[..i]), u64::from_be_bytes(seq)))
}

fn report_key(agent: &str, sequence: u64) -> Vec<u8> {
    let mut k = agent.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&sequence.to_be_bytes());
    k
}

impl ReportStore for SledStore {
    fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        let v = serde_json::to_vec(agent).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.agents.insert(agent.id.as_bytes(), v)?;
        self.db.flush()?;
        Ok(())
    }

    fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
        match self.agents.get(id.as_bytes())? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|_| StoreError::Damaged(format!("agent {id}"))),
            None => Ok(None),
        }
    }

    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        self.agents
            .iter()
            .map(|item| {
                let (k, v) = item?;
                serde_json::from_slice(&v).map_err(|_| {
                    StoreError::Damaged(format!("agent {}", String::from_utf8_lossy(&k)))
                })
            })
            .collect()
    }

    fn insert_report(&self, report: &StoredReport) -> Result<Stored, StoreError> {
        let key = report_key(&report.agent_id, report.sequence);
        // Compare-and-swap from absent: two concurrent submissions of one report store it once.
        match self
            .reports
            .compare_and_swap(&key, None::<&[u8]>, Some(report.signed.as_slice()))?
        {
            Ok(()) => {
                self.db.flush()?;
                Ok(Stored::New)
            }
            Err(e) if e.current.as_deref() == Some(report.signed.as_slice()) => {
                Ok(Stored::Duplicate)
            }
            Err(_) => Ok(Stored::Conflict),
        }
    }

    fn reports(&self, agent: Option<&str>) -> Result<Vec<StoredReport>, StoreError> {
        let iter = match agent {
            Some(a) => {
                let mut prefix = a.as_bytes().to_vec();
                prefix.push(0);
                self.reports.scan_prefix(prefix)
            }
            None => self.reports.iter(),
        };
        iter.map(|item| {
            let (k, v) = item?;
            let (agent_id, sequence) = parse_report_key(&k)?;
            let signed = v.to_vec();
            Ok(StoredReport {
                agent_id: agent_id.into_owned(),
                sequence,
                window_start: window_start_of(&signed),
                signed,
            })
        })
        .collect()
    }

    fn report_count(&self) -> Result<usize, StoreError> {
        Ok(self.reports.len())
    }

    fn each_report(&self, f: &mut dyn FnMut(&str, u64, &[u8])) -> Result<(), StoreError> {
        for item in self.reports.iter() {
            let (k, v) = item?;
            let (agent_id, sequence) = parse_report_key(&k)?;
            f(&agent_id, sequence, &v);
        }
        Ok(())
    }

    fn released_cohorts(&self, app: &str) -> Result<Vec<Cohort>, StoreError> {
        let mut prefix = app.as_bytes().to_vec();
        prefix.push(0);
        self.cohorts
            .scan_prefix(prefix)
            .map(|item| {
                let (_, v) = item?;
                serde_json::from_slice(&v).map_err(|_| StoreError::Damaged("cohort".into()))
            })
            .collect()
    }

    fn record_cohort(&self, app: &str, cohort: &Cohort) -> Result<(), StoreError> {
        let v = serde_json::to_vec(cohort).map_err(|e| StoreError::Backend(e.to_string()))?;
        // Must be durable before the figures are shown: a restart must not forget what was released.
        if self.cohorts.insert(cohort.key(app), v)?.is_none() {
            self.db.flush()?;
        }
        Ok(())
    }

    fn bump(&self, counter: &str) -> Result<u64, StoreError> {
        let v = self.counters.update_and_fetch(counter.as_bytes(), |old| {
            let n = old.map_or(0, |b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(&b[..8.min(b.len())]);
                u64::from_be_bytes(a)
            });
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        let mut a = [0u8; 8];
        if let Some(b) = v {
            a.copy_from_slice(&b[..8]);
        }
        Ok(u64::from_be_bytes(a))
    }

    fn counters(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.counters
            .iter()
            .map(|item| {
                let (k, v) = item?;
                let mut a = [0u8; 8];
                a.copy_from_slice(&v[..8.min(v.len())]);
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    u64::from_be_bytes(a),
                ))
            })
            .collect()
    }
}

/// What a copy between stores did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Agents written.
    pub agents: usize,
    /// Reports stored anew.
    pub new: usize,
    /// Reports the target already held, byte for byte.
    pub already: usize,
    /// Released cohorts recorded.
    pub cohorts: usize,
}

/// Copies agents, reports and released cohorts from one store to another (sled to PostgreSQL when
/// moving to replicas). Safe to re-run: reports are stored once, cohorts recorded once. A report the
/// target holds with other bytes stops the copy. Counters are operational and start afresh.
pub fn copy(from: &dyn ReportStore, to: &dyn ReportStore) -> Result<Copied, StoreError> {
    let mut done = Copied::default();
    let agents = from.agents()?;
    let mut apps = std::collections::BTreeSet::new();
    for a in &agents {
        to.put_agent(a)?;
        apps.extend(a.apps.iter().cloned());
        done.agents += 1;
    }
    for r in from.reports(None)? {
        match to.insert_report(&r)? {
            Stored::New => done.new += 1,
            Stored::Duplicate => done.already += 1,
            Stored::Conflict => {
                return Err(StoreError::Damaged(format!(
                    "report {} of {}: the target holds other bytes under it",
                    r.sequence, r.agent_id
                )));
            }
        }
    }
    for app in &apps {
        for c in from.released_cohorts(app)? {
            to.record_cohort(app, &c)?;
            done.cohorts += 1;
        }
    }
    Ok(done)
}

/// The behaviour every backend must show; run against each backend's tests.
#[cfg(test)]
pub(crate) fn check_backend(store: &dyn ReportStore) {
    let agent = AgentRecord {
        id: "agt-1".into(),
        public_key: "00".into(),
        apps: vec!["app".into()],
        enrolled_at: 1,
        certificate_sha256: String::new(),
        revoked: false,
    };
    store.put_agent(&agent).unwrap();
    assert_eq!(store.agent("agt-1").unwrap(), Some(agent.clone()));
    assert_eq!(store.agent("agt-2").unwrap(), None);
    let r = |seq, b: &[u8]| StoredReport {
        agent_id: "agt-1".into(),
        sequence: seq,
        window_start: 0,
        signed: b.to_vec(),
    };
    assert_eq!(store.insert_report(&r(1, b"one")).unwrap(), Stored::New);
    assert_eq!(
        store.insert_report(&r(1, b"one")).unwrap(),
        Stored::Duplicate
    );
    assert_eq!(
        store.insert_report(&r(1, b"other")).unwrap(),
        Stored::Conflict
    );
    assert_eq!(store.insert_report(&r(2, b"two")).unwrap(), Stored::New);
    let all = store.reports(Some("agt-1")).unwrap();
    assert_eq!(all, vec![r(1, b"one"), r(2, b"two")]);
    assert!(store.reports(Some("agt-")).unwrap().is_empty());
    assert_eq!(store.report_count().unwrap(), 2);
    let cohort = Cohort {
        from_day: 1,
        to_day: 7,
        agents: vec!["a".into(), "b".into()],
    };
    store.record_cohort("app", &cohort).unwrap();
    store.record_cohort("app", &cohort).unwrap();
    assert_eq!(store.released_cohorts("app").unwrap(), vec![cohort]);
    assert!(store.released_cohorts("ap").unwrap().is_empty());
    assert_eq!(store.bump("rejected.signature").unwrap(), 1);
    assert_eq!(store.bump("rejected.signature").unwrap(), 2);
    assert_eq!(
        store.counters().unwrap(),
        vec![("rejected.signature".to_owned(), 2)]
    );
}

/// Eight threads submit one report at once: it is stored once, and seven hear Duplicate.
#[cfg(test)]
pub(crate) fn check_concurrent(store: std::sync::Arc<dyn ReportStore>) {
    let outcomes: Vec<Stored> = (0..8)
        .map(|_| {
            let s = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                s.insert_report(&StoredReport {
                    agent_id: "a".into(),
                    sequence: 7,
                    window_start: 1_790_000_000,
                    signed: b"same".to_vec(),
                })
                .unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(outcomes.iter().filter(|o| **o == Stored::New).count(), 1);
    assert_eq!(
        outcomes.iter().filter(|o| **o == Stored::Duplicate).count(),
        7
    );
    assert_eq!(store.reports(None).unwrap().len(), 1);
}

/// A stored report of `requests` requests (and a suppressed cell) for application "app" on `day`.
#[cfg(test)]
pub(crate) fn test_report(agent: &str, sequence: u64, day: i64, requests: i64) -> StoredReport {
    use readi_proto::report::v1 as pb;
    let window_start = day * 86_400 + 3_600 * (sequence as i64 % 24);
    let report = pb::Report {
        egress_head: None,
        audit_head: None,
        schema_version: 1,
        agent_id: agent.into(),
        sequence,
        window_start: Some(prost_types::Timestamp {
            seconds: window_start,
            nanos: 0,
        }),
        window_end: None,
        apps: vec![pb::AppMetrics {
            app_id: "app".into(),
            cells: vec![
                pb::Cell {
                    metric: pb::Metric::Requests as i32,
                    labels: None,
                    value: Some(pb::cell::Value::Count(requests)),
                    suppressed: false,
                },
                pb::Cell {
                    metric: pb::Metric::Requests as i32,
                    labels: Some(pb::Labels {
                        language: "es".into(),
                        ..Default::default()
                    }),
                    value: None,
                    suppressed: true,
                },
            ],
            budget_exhausted: false,
            micro_epsilon_spent: 1,
        }],
        privacy: Some(crate::aggregate::test_privacy()),
    };
    let signed = pb::SignedReport {
        report: prost::Message::encode_to_vec(&report),
        signature: vec![0; 64],
    };
    StoredReport {
        agent_id: agent.into(),
        sequence,
        window_start,
        signed: prost::Message::encode_to_vec(&signed),
    }
}

/// Scorecard rollups read through `Scoring` hold, day by day and over a range, what every stored
/// report says, whichever backend keeps them.
#[cfg(test)]
pub(crate) fn check_rollups(store: &dyn ReportStore, compact: &dyn Fn()) {
    use readi_proto::report::v1::Metric;
    let mut expected = std::collections::BTreeMap::<i64, (i64, usize)>::new();
    let mut seq = std::collections::HashMap::<String, u64>::new();
    for i in 0..120_i64 {
        let agent = format!("agt-{}", i % 7);
        let day = 20_000 + i % 5;
        let n = seq.entry(agent.clone()).or_default();
        *n += 1;
        assert_eq!(
            store
                .insert_report(&test_report(&agent, *n, day, i))
                .unwrap(),
            Stored::New
        );
        let e = expected.entry(day).or_default();
        e.0 += i;
        e.1 += 1;
        if i == 60 {
            compact();
        }
    }
    let scoring = crate::service::Scoring::load(
        store,
        crate::registry::Registry::in_dir(std::path::Path::new("/nonexistent")),
        1,
        crate::scorecard::Thresholds::default(),
    )
    .unwrap();
    let check = |when: &str| {
        let r = scoring.rollups(store, "app", 20_000, 20_004).unwrap();
        for (day, (sum, cells)) in &expected {
            let v = r.view("app", *day, *day);
            let t = v.total(Metric::Requests);
            assert_eq!(
                (t.value, t.cells as usize),
                (*sum, *cells),
                "{when}: day {day}"
            );
            assert_eq!(v.agents.len(), 7, "{when}: day {day}");
            let es = crate::aggregate::Labels {
                language: "es".into(),
                ..Default::default()
            };
            assert_eq!(v.count(Metric::Requests, &es).suppressed as usize, *cells);
            assert!((t.variance - *cells as f64 * 7.826).abs() < 0.01 * *cells as f64);
        }
        let all = r.view("app", 20_000, 20_004).total(Metric::Requests);
        assert_eq!(all.value, (0..120).sum::<i64>(), "{when}");
        let narrow = scoring.rollups(store, "app", 20_001, 20_002).unwrap();
        let two = narrow.view("app", 20_001, 20_002).total(Metric::Requests);
        assert_eq!(
            two.value,
            expected[&20_001].0 + expected[&20_002].0,
            "{when}"
        );
        assert!(
            scoring
                .rollups(store, "other", 20_000, 20_004)
                .unwrap()
                .view("other", 0, 99_999)
                .agents
                .is_empty()
        );
    };
    check("partly folded");
    compact();
    check("folded");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_rollups_hold_every_report() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        check_rollups(&SledStore::open(&db).unwrap(), &|| {});
    }

    #[test]
    fn sled_backend_stores_each_report_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        check_backend(&SledStore::open(&db).unwrap());
    }

    #[test]
    fn concurrent_submissions_of_one_report_store_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        check_concurrent(std::sync::Arc::new(SledStore::open(&db).unwrap()));
    }
}
