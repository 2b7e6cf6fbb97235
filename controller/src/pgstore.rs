//! The PostgreSQL store: several stateless controller replicas over one database. Exactly-once
//! holds across replicas through a primary key on (agent id, sequence); reports live in monthly
//! partitions by window, created ahead; the schema moves only through the numbered migrations
//! below, applied under an advisory lock and never skipped.

use readi_common::clock;
use std::sync::Mutex;

use postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::aggregate::{Aggregates, View, decode_stored};
use crate::records::{RecordError, Records};
use crate::store::{AgentRecord, Cohort, ReportStore, Rollups, StoreError, Stored, StoredReport};

/// The schema's history: (version, name, SQL). Append only; an applied migration never changes.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "reports, agents, cohorts, counters",
        r"
CREATE TABLE agents (
    id text PRIMARY KEY,
    record text NOT NULL
);
-- The exactly-once arbiter: one row per (agent, sequence), whatever partition holds the report.
CREATE TABLE report_keys (
    agent_id text NOT NULL,
    sequence bigint NOT NULL,
    digest bytea NOT NULL,
    window_start timestamptz NOT NULL,
    PRIMARY KEY (agent_id, sequence)
);
CREATE TABLE reports (
    agent_id text NOT NULL,
    sequence bigint NOT NULL,
    window_start timestamptz NOT NULL,
    signed bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, sequence, window_start)
) PARTITION BY RANGE (window_start);
CREATE TABLE released_cohorts (
    app text NOT NULL,
    key bytea NOT NULL,
    cohort text NOT NULL,
    PRIMARY KEY (app, key)
);
CREATE TABLE counters (
    name text PRIMARY KEY,
    value bigint NOT NULL
);
",
    ),
    (
        2,
        "scorecard rollups",
        r"
-- One row per (application, UTC day of the window): the day's figures from every report folded in
-- so far (a protobuf View), and how many reports that is.
CREATE TABLE rollups (
    app text NOT NULL,
    day integer NOT NULL,
    view bytea NOT NULL,
    reports bigint NOT NULL,
    PRIMARY KEY (app, day)
);
-- Reports committed but not yet folded into the rollups; written in the report's own transaction,
-- so a scorecard reading rollups and pending together in one snapshot counts every report once.
CREATE TABLE rollup_pending (
    agent_id text NOT NULL,
    sequence bigint NOT NULL,
    window_start timestamptz NOT NULL,
    PRIMARY KEY (agent_id, sequence)
);
CREATE INDEX rollup_pending_window ON rollup_pending (window_start);
INSERT INTO rollup_pending SELECT agent_id, sequence, window_start FROM report_keys;
",
    ),
    (
        3,
        "registry and enrollment records",
        r"
-- Vendors, applications, access tokens (digests), enrollment tokens (digests), revocations: what
-- each controller kept in files under its data directory, shared here by every replica.
CREATE TABLE records (
    kind text NOT NULL,
    id text NOT NULL,
    value bytea NOT NULL,
    taken_at timestamptz,
    PRIMARY KEY (kind, id)
);
",
    ),
];

/// Serialises migrations between replicas starting at once.
const MIGRATION_LOCK: i64 = 0x7265_6164_695f_6d67;

/// Lets one replica at a time fold pending reports into the rollups.
const ROLLUP_LOCK: i64 = 0x7265_6164_695f_726f;

/// Pending reports folded per rollup transaction.
const ROLLUP_BATCH: i64 = 2_000;

/// Months of partitions kept created ahead of the current one.
const MONTHS_AHEAD: i64 = 2;

/// Connections a controller opens at most, by default (`storage.postgres_connections`).
pub const DEFAULT_CONNECTIONS: usize = 16;

/// How long a call waits for a connection when all are busy before it fails.
const CONNECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A PostgreSQL-backed store. Blocking; safe to call anywhere: on an async runtime's thread each
/// call runs on a scoped thread of its own, since the blocking client drives its own runtime.
#[derive(Debug)]
pub struct PgStore(Db);

/// Runs `f` where the blocking client may block: here, or on a scoped thread when this thread
/// belongs to an async runtime.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() || crate::store::may_block() {
        return f();
    }
    std::thread::scope(|s| s.spawn(f).join()).unwrap_or_else(|p| std::panic::resume_unwind(p))
}

impl PgStore {
    /// Connects to `url`, applies any migration not yet applied and creates the partitions ahead.
    /// TLS follows the URL's `sslmode` (`prefer` by default; use `require` off the host), checking
    /// the server's certificate against `ca` (PEM) or, without one, the system's roots.
    pub fn open(url: &str, ca: Option<&std::path::Path>) -> Result<PgStore, StoreError> {
        PgStore::open_with(url, ca, DEFAULT_CONNECTIONS)
    }

    /// As `open`, with at most `connections` connections open at once (calls beyond wait).
    pub fn open_with(
        url: &str,
        ca: Option<&std::path::Path>,
        connections: usize,
    ) -> Result<PgStore, StoreError> {
        let tls = tls(ca)?;
        off_runtime(|| Db::open(url, tls, connections.max(1))).map(PgStore)
    }

    /// Applies every migration not yet applied (see `Db::migrate`); returns what is applied.
    pub fn migrate(&self) -> Result<Applied, StoreError> {
        off_runtime(|| self.0.migrate())
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing a connection blocks too.
        let idle = std::mem::take(&mut self.0.pool.lock().unwrap_or_else(|p| p.into_inner()).idle);
        off_runtime(move || drop(idle));
    }
}

impl ReportStore for PgStore {
    fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        off_runtime(|| self.0.put_agent(agent))
    }
    fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
        off_runtime(|| self.0.agent(id))
    }
    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        off_runtime(|| self.0.agents())
    }
    fn insert_report(&self, report: &StoredReport) -> Result<Stored, StoreError> {
        off_runtime(|| self.0.insert_report(report))
    }
    fn reports(&self, agent: Option<&str>) -> Result<Vec<StoredReport>, StoreError> {
        off_runtime(|| self.0.reports(agent))
    }
    fn report_count(&self) -> Result<usize, StoreError> {
        off_runtime(|| self.0.report_count())
    }
    fn released_cohorts(&self, app: &str) -> Result<Vec<Cohort>, StoreError> {
        off_runtime(|| self.0.released_cohorts(app))
    }
    fn record_cohort(&self, app: &str, cohort: &Cohort) -> Result<(), StoreError> {
        off_runtime(|| self.0.record_cohort(app, cohort))
    }
    fn bump(&self, counter: &str) -> Result<u64, StoreError> {
        off_runtime(|| self.0.bump(counter))
    }
    fn counters(&self) -> Result<Vec<(String, u64)>, StoreError> {
        off_runtime(|| self.0.counters())
    }
    fn rollups(&self) -> Option<&dyn Rollups> {
        Some(self)
    }
}

impl PgStore {
    /// Runs one statement for the records, off the async runtime.
    fn record_call<T: Send>(
        &self,
        f: impl FnOnce(&mut Pooled<'_>) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, RecordError> {
        off_runtime(|| {
            let mut c = self.0.client().map_err(record_error)?;
            f(&mut c).map_err(|e| record_error(backend(e)))
        })
    }
}

impl Records for PgStore {
    fn get(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, RecordError> {
        off_runtime(|| {
            let mut c = self.0.client().map_err(record_error)?;
            let get = c
                .prepared(
                    "SELECT value FROM records WHERE kind = $1 AND id = $2 AND taken_at IS NULL",
                )
                .map_err(record_error)?;
            let row = c
                .get()
                .query_opt(&get, &[&kind, &id])
                .map_err(|e| record_error(backend(e)))?;
            Ok(row.map(|r| r.get(0)))
        })
    }
    fn put(&self, kind: &str, id: &str, value: &[u8]) -> Result<(), RecordError> {
        self.record_call(|c| {
            c.get().execute(
                "INSERT INTO records (kind, id, value) VALUES ($1, $2, $3)
                 ON CONFLICT (kind, id) DO UPDATE SET value = EXCLUDED.value, taken_at = NULL",
                &[&kind, &id, &value],
            )
        })
        .map(drop)
    }
    fn create(&self, kind: &str, id: &str, value: &[u8]) -> Result<bool, RecordError> {
        self.record_call(|c| {
            c.get().execute(
                "INSERT INTO records (kind, id, value) VALUES ($1, $2, $3)
                 ON CONFLICT (kind, id) DO NOTHING",
                &[&kind, &id, &value],
            )
        })
        .map(|n| n == 1)
    }
    fn list(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>, RecordError> {
        self.record_call(|c| {
            c.get().query(
                "SELECT id, value FROM records WHERE kind = $1 AND taken_at IS NULL ORDER BY id",
                &[&kind],
            )
        })
        .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
    fn remove(&self, kind: &str, id: &str) -> Result<bool, RecordError> {
        self.record_call(|c| {
            c.get().execute(
                "DELETE FROM records WHERE kind = $1 AND id = $2 AND taken_at IS NULL",
                &[&kind, &id],
            )
        })
        .map(|n| n == 1)
    }
    fn take(&self, kind: &str, id: &str) -> Result<bool, RecordError> {
        // One UPDATE decides: a second caller (on any replica) waits for the first's commit and
        // then finds the record taken. The taken record stays for the audit trail.
        self.record_call(|c| {
            c.get().execute(
                "UPDATE records SET taken_at = now()
                 WHERE kind = $1 AND id = $2 AND taken_at IS NULL",
                &[&kind, &id],
            )
        })
        .map(|n| n == 1)
    }
}

fn record_error(e: StoreError) -> RecordError {
    RecordError::Backend(e.to_string())
}

impl Rollups for PgStore {
    fn snapshot(&self, app: &str, from: i64, to: i64) -> Result<Aggregates, StoreError> {
        off_runtime(|| self.0.snapshot(app, from, to))
    }
    fn compact(&self) -> Result<usize, StoreError> {
        off_runtime(|| self.0.compact(ROLLUP_BATCH))
    }
}

/// The TLS connector: rustls on ring, trusting `ca` or the system's roots.
fn tls(ca: Option<&std::path::Path>) -> Result<MakeRustlsConnect, StoreError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let bad = |why: String| StoreError::Backend(format!("storage.postgres_ca: {why}"));
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| bad(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("{}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(bad(format!("{} holds no certificate", path.display())));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // One unusable system certificate must not stop the others.
                let _ = roots.add(cert);
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Backend(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The connections and the queries, called only where blocking is allowed.
struct Db {
    config: postgres::Config,
    tls: MakeRustlsConnect,
    pool: Mutex<Pool>,
    /// Signalled when a connection returns to the pool or closes.
    freed: std::sync::Condvar,
    /// Connections open at most.
    max: usize,
    /// First days of months whose partition is known to exist.
    months: Mutex<std::collections::BTreeSet<i64>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: name only where it points.
        f.debug_struct("Db")
            .field("hosts", &self.config.get_hosts().len())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

fn backend(e: postgres::Error) -> StoreError {
    // A database error never carries report contents: values are bound as parameters. Its causes
    // (a refused certificate, a lost connection) say what to fix.
    let mut message = format!("PostgreSQL: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    StoreError::Backend(message)
}

/// Connections open now: idle ones, and how many exist in all (idle or lent out).
#[derive(Default)]
struct Pool {
    idle: Vec<Conn>,
    open: usize,
}

/// A connection and the statements prepared on it, so a hot query is parsed and planned once per
/// connection instead of once per call (a round trip saved each time).
struct Conn {
    client: Client,
    prepared: std::collections::HashMap<&'static str, postgres::Statement>,
}

/// The applied migrations, oldest first, as (version, name).
pub type Applied = Vec<(i32, String)>;

impl Db {
    fn open(url: &str, tls: MakeRustlsConnect, max: usize) -> Result<Db, StoreError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|_| StoreError::Backend("the PostgreSQL URL does not parse".into()))?;
        let store = Db {
            config,
            tls,
            pool: Mutex::default(),
            freed: std::sync::Condvar::new(),
            max,
            months: Mutex::default(),
        };
        store.migrate()?;
        let now = clock::unix_secs_i64();
        for ahead in 0..=MONTHS_AHEAD {
            store.ensure_partition(add_months(month_start(now), ahead))?;
        }
        Ok(store)
    }

    /// A connection: an idle one, a new one while fewer than `max` are open, else the next one
    /// returned. Connecting costs a server process and a TLS handshake, so connections are kept.
    fn client(&self) -> Result<Pooled<'_>, StoreError> {
        let deadline = std::time::Instant::now() + CONNECTION_WAIT;
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            while let Some(c) = pool.idle.pop() {
                if !c.client.is_closed() {
                    return Ok(Pooled {
                        store: self,
                        client: Some(c),
                    });
                }
                pool.open -= 1;
            }
            if pool.open < self.max {
                pool.open += 1;
                drop(pool);
                return match self.config.connect(self.tls.clone()) {
                    Ok(client) => Ok(Pooled {
                        store: self,
                        client: Some(Conn {
                            client,
                            prepared: Default::default(),
                        }),
                    }),
                    Err(e) => {
                        self.closed();
                        Err(backend(e))
                    }
                };
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(StoreError::Backend(format!(
                    "all {} database connections stayed busy for {} s (storage.postgres_connections)",
                    self.max,
                    CONNECTION_WAIT.as_secs()
                )));
            }
            pool = self
                .freed
                .wait_timeout(pool, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// A lent connection broke or failed to open: its place is free.
    fn closed(&self) {
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).open -= 1;
        self.freed.notify_one();
    }

    /// Applies every migration not yet applied, in order, in one transaction under an advisory
    /// lock; refuses a database migrated by a newer controller. Returns what is applied.
    fn migrate(&self) -> Result<Applied, StoreError> {
        let mut c = self.client()?;
        let c = c.get();
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .map_err(backend)?;
        let mut tx = c.transaction().map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(backend)?;
        let newest: Option<i32> = tx
            .query_one("SELECT max(version) FROM schema_migrations", &[])
            .map_err(backend)?
            .get(0);
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if let Some(v) = newest
            && v > known
        {
            return Err(StoreError::Backend(format!(
                "the database's schema is at version {v}, newer than this controller knows ({known}): upgrade the controller"
            )));
        }
        for (version, name, sql) in MIGRATIONS {
            if newest.is_some_and(|v| v >= *version) {
                continue;
            }
            tx.batch_execute(sql).map_err(backend)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .map_err(backend)?;
            tracing::info!(version, name, "Applied database migration");
        }
        let applied = tx
            .query(
                "SELECT version, name FROM schema_migrations ORDER BY version",
                &[],
            )
            .map_err(backend)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        tx.commit().map_err(backend)?;
        Ok(applied)
    }

    /// Creates the partition holding windows that start in the month beginning at `start`.
    fn ensure_partition(&self, start: i64) -> Result<(), StoreError> {
        if self
            .months
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&start)
        {
            return Ok(());
        }
        let (y, m, _) = readi_common::date::civil_from_days(start.div_euclid(86_400));
        let (ny, nm, _) =
            readi_common::date::civil_from_days(add_months(start, 1).div_euclid(86_400));
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS reports_{y:04}_{m:02} PARTITION OF reports \
             FOR VALUES FROM ('{y:04}-{m:02}-01 00:00:00+00') TO ('{ny:04}-{nm:02}-01 00:00:00+00')"
        );
        let mut c = self.client()?;
        match c.get().batch_execute(&sql) {
            Ok(()) => {}
            // Another replica created it between our check and our statement.
            Err(e) if e.code() == Some(&postgres::error::SqlState::DUPLICATE_TABLE) => {}
            Err(e) => return Err(backend(e)),
        }
        self.months
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(start);
        Ok(())
    }
}

impl Db {
    /// Rollups and pending reports read in one repeatable-read snapshot, so a report being folded
    /// meanwhile is counted once: in the rollup or as pending, never both or neither.
    fn snapshot(&self, app: &str, from: i64, to: i64) -> Result<Aggregates, StoreError> {
        let day = |d: i64| {
            i32::try_from(d).map_err(|_| StoreError::Backend(format!("day {d} out of range")))
        };
        let (first, last) = (day(from)?, day(to)?);
        let mut c = self.client()?;
        let mut tx = c
            .get()
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(backend)?;
        let rolled = tx
            .query(
                "SELECT day, view FROM rollups WHERE app = $1 AND day BETWEEN $2 AND $3",
                &[&app, &first, &last],
            )
            .map_err(backend)?;
        let pending = tx
            .query(
                "SELECT r.signed FROM rollup_pending p
                 JOIN reports r USING (agent_id, sequence, window_start)
                 WHERE p.window_start >= to_timestamp($1::bigint)
                   AND p.window_start < to_timestamp($2::bigint)
                 ORDER BY p.agent_id, p.sequence",
                &[&(from * 86_400), &((to + 1) * 86_400)],
            )
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        let out = Aggregates::default();
        for row in &rolled {
            let d: i32 = row.get(0);
            let view = View::decode(row.get(1))
                .ok_or_else(|| StoreError::Damaged(format!("rollup {app} day {d}")))?;
            out.merge_day(app, i64::from(d), &view);
        }
        for row in &pending {
            match decode_stored(row.get(0)) {
                Some(r) => out.add(&r),
                None => tracing::error!("Stored report does not decode; left out of scorecards"),
            }
        }
        Ok(out)
    }

    /// Folds up to a batch of pending reports into the rollups, in one transaction under an
    /// advisory lock (another replica folding meanwhile: returns 0). Returns how many it folded.
    fn compact(&self, batch: i64) -> Result<usize, StoreError> {
        let mut c = self.client()?;
        let mut tx = c.get().transaction().map_err(backend)?;
        let ours: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&ROLLUP_LOCK])
            .map_err(backend)?
            .get(0);
        if !ours {
            return Ok(0);
        }
        let taken = tx
            .query(
                "WITH taken AS (
                    DELETE FROM rollup_pending WHERE (agent_id, sequence) IN (
                        SELECT agent_id, sequence FROM rollup_pending
                        ORDER BY window_start LIMIT $1)
                    RETURNING agent_id, sequence, window_start)
                 SELECT r.signed FROM taken t
                 JOIN reports r USING (agent_id, sequence, window_start)
                 ORDER BY t.agent_id, t.sequence",
                &[&batch],
            )
            .map_err(backend)?;
        if taken.is_empty() {
            return Ok(0);
        }
        let batch = Aggregates::default();
        let mut per_day: std::collections::HashMap<(String, i64), i64> = Default::default();
        for row in &taken {
            match decode_stored(row.get(0)) {
                Some(r) => {
                    let day =
                        crate::aggregate::day_of(r.window_start.as_ref().map_or(0, |t| t.seconds));
                    for a in &r.apps {
                        *per_day.entry((a.app_id.clone(), day)).or_default() += 1;
                    }
                    batch.add(&r);
                }
                None => tracing::error!("Stored report does not decode; left out of scorecards"),
            }
        }
        for (app, day, mut view) in batch.into_days() {
            let d = i32::try_from(day)
                .map_err(|_| StoreError::Backend(format!("day {day} out of range")))?;
            let held = tx
                .query_opt(
                    "SELECT view FROM rollups WHERE app = $1 AND day = $2",
                    &[&app, &d],
                )
                .map_err(backend)?;
            if let Some(row) = held {
                let before = View::decode(row.get(0))
                    .ok_or_else(|| StoreError::Damaged(format!("rollup {app} day {day}")))?;
                let mut merged = before;
                merged.merge(&view);
                view = merged;
            }
            let n = per_day.get(&(app.clone(), day)).copied().unwrap_or(0);
            tx.execute(
                "INSERT INTO rollups (app, day, view, reports) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (app, day)
                 DO UPDATE SET view = EXCLUDED.view, reports = rollups.reports + EXCLUDED.reports",
                &[&app, &d, &view.encode(), &n],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(taken.len())
    }
}

/// A connection borrowed from the pool, returned on drop unless it broke.
struct Pooled<'a> {
    store: &'a Db,
    client: Option<Conn>,
}

impl Pooled<'_> {
    fn get(&mut self) -> &mut Client {
        &mut self.client.as_mut().expect("present until dropped").client
    }

    /// `sql` prepared on this connection (once; then from its cache).
    fn prepared(&mut self, sql: &'static str) -> Result<postgres::Statement, StoreError> {
        let conn = self.client.as_mut().expect("present until dropped");
        if let Some(s) = conn.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = conn.client.prepare(sql).map_err(backend)?;
        conn.prepared.insert(sql, s.clone());
        Ok(s)
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        match self.client.take() {
            Some(c) if !c.client.is_closed() => {
                self.store
                    .pool
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .idle
                    .push(c);
                self.store.freed.notify_one();
            }
            // A broken connection is dropped; dropping never blocks on a closed socket.
            _ => self.store.closed(),
        }
    }
}

/// Unix seconds of the first instant of the UTC month holding `t`.
fn month_start(t: i64) -> i64 {
    let (y, m, _) = readi_common::date::civil_from_days(t.div_euclid(86_400));
    readi_common::date::days_from_civil(y, m, 1) * 86_400
}

/// The month start `n` months after the month start `start`.
fn add_months(start: i64, n: i64) -> i64 {
    let (y, m, _) = readi_common::date::civil_from_days(start.div_euclid(86_400));
    let months = y * 12 + i64::from(m) - 1 + n;
    readi_common::date::days_from_civil(
        months.div_euclid(12),
        (months.rem_euclid(12) + 1) as u32,
        1,
    ) * 86_400
}

fn digest(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

fn seq(s: u64) -> Result<i64, StoreError> {
    i64::try_from(s).map_err(|_| StoreError::Backend("sequence out of range".into()))
}

impl ReportStore for Db {
    fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        let v = serde_json::to_string(agent).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.client()?
            .get()
            .execute(
                "INSERT INTO agents (id, record) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
                &[&agent.id, &v],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let mut c = self.client()?;
        let get = c.prepared("SELECT record FROM agents WHERE id = $1")?;
        let row = c.get().query_opt(&get, &[&id]).map_err(backend)?;
        row.map(|r| {
            serde_json::from_str(r.get(0)).map_err(|_| StoreError::Damaged(format!("agent {id}")))
        })
        .transpose()
    }

    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        self.client()?
            .get()
            .query("SELECT id, record FROM agents ORDER BY id", &[])
            .map_err(backend)?
            .iter()
            .map(|r| {
                serde_json::from_str(r.get(1))
                    .map_err(|_| StoreError::Damaged(format!("agent {}", r.get::<_, &str>(0))))
            })
            .collect()
    }

    fn insert_report(&self, report: &StoredReport) -> Result<Stored, StoreError> {
        self.ensure_partition(month_start(report.window_start))?;
        let sequence = seq(report.sequence)?;
        let hash = digest(&report.signed);
        let mut c = self.client()?;
        // One statement, so one round trip and one implicit transaction: the key row decides (a
        // second submission, on any replica, waits for the first's commit, then finds the key
        // taken), and the report and its pending-rollup mark are written only with a new key.
        let insert = c.prepared(
            "WITH k AS (
                INSERT INTO report_keys (agent_id, sequence, digest, window_start)
                VALUES ($1, $2, $3, to_timestamp($4::bigint))
                ON CONFLICT (agent_id, sequence) DO NOTHING
                RETURNING agent_id, sequence, window_start),
             stored AS (
                INSERT INTO reports (agent_id, sequence, window_start, signed)
                SELECT agent_id, sequence, window_start, $5 FROM k),
             pending AS (
                INSERT INTO rollup_pending (agent_id, sequence, window_start)
                SELECT agent_id, sequence, window_start FROM k)
             SELECT count(*) FROM k",
        )?;
        let inserted: i64 = c
            .get()
            .query_one(
                &insert,
                &[
                    &report.agent_id,
                    &sequence,
                    &hash,
                    &report.window_start,
                    &report.signed,
                ],
            )
            .map_err(backend)?
            .get(0);
        if inserted == 1 {
            return Ok(Stored::New);
        }
        let existing: Vec<u8> = c
            .get()
            .query_one(
                "SELECT digest FROM report_keys WHERE agent_id = $1 AND sequence = $2",
                &[&report.agent_id, &sequence],
            )
            .map_err(backend)?
            .get(0);
        Ok(if existing == hash {
            Stored::Duplicate
        } else {
            Stored::Conflict
        })
    }

    fn reports(&self, agent: Option<&str>) -> Result<Vec<StoredReport>, StoreError> {
        let mut c = self.client()?;
        let rows = match agent {
            Some(a) => c.get().query(
                "SELECT agent_id, sequence, extract(epoch FROM window_start)::bigint, signed
                 FROM reports WHERE agent_id = $1 ORDER BY agent_id, sequence",
                &[&a],
            ),
            None => c.get().query(
                "SELECT agent_id, sequence, extract(epoch FROM window_start)::bigint, signed
                 FROM reports ORDER BY agent_id, sequence",
                &[],
            ),
        }
        .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|r| StoredReport {
                agent_id: r.get(0),
                sequence: r.get::<_, i64>(1) as u64,
                window_start: r.get(2),
                signed: r.get(3),
            })
            .collect())
    }

    fn report_count(&self) -> Result<usize, StoreError> {
        let n: i64 = self
            .client()?
            .get()
            .query_one("SELECT count(*) FROM report_keys", &[])
            .map_err(backend)?
            .get(0);
        Ok(n as usize)
    }

    fn released_cohorts(&self, app: &str) -> Result<Vec<Cohort>, StoreError> {
        self.client()?
            .get()
            .query(
                "SELECT cohort FROM released_cohorts WHERE app = $1 ORDER BY key",
                &[&app],
            )
            .map_err(backend)?
            .iter()
            .map(|r| {
                serde_json::from_str(r.get(0)).map_err(|_| StoreError::Damaged("cohort".into()))
            })
            .collect()
    }

    fn record_cohort(&self, app: &str, cohort: &Cohort) -> Result<(), StoreError> {
        let v = serde_json::to_string(cohort).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.client()?
            .get()
            .execute(
                "INSERT INTO released_cohorts (app, key, cohort) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&app, &cohort.key(app), &v],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn bump(&self, counter: &str) -> Result<u64, StoreError> {
        let v: i64 = self
            .client()?
            .get()
            .query_one(
                "INSERT INTO counters (name, value) VALUES ($1, 1)
                 ON CONFLICT (name) DO UPDATE SET value = counters.value + 1
                 RETURNING value",
                &[&counter],
            )
            .map_err(backend)?
            .get(0);
        Ok(v as u64)
    }

    fn counters(&self) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(self
            .client()?
            .get()
            .query("SELECT name, value FROM counters ORDER BY name", &[])
            .map_err(backend)?
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh schema in the test database named by READI_TEST_POSTGRES_URL (`.ci/postgres` starts
    /// one); `None`, with a note, where no database is given.
    fn fresh() -> Option<PgStore> {
        let url = fresh_url()?;
        Some(PgStore::open(&url, test_ca().as_deref().map(std::path::Path::new)).expect("open"))
    }

    fn test_ca() -> Option<String> {
        std::env::var("READI_TEST_POSTGRES_CA").ok()
    }

    /// The URL of a fresh schema (see `fresh`).
    fn fresh_url() -> Option<String> {
        let Ok(url) = std::env::var("READI_TEST_POSTGRES_URL") else {
            eprintln!("SKIPPED: READI_TEST_POSTGRES_URL is not set (.ci/postgres starts a server)");
            return None;
        };
        let schema = format!(
            "t{}_{}",
            std::process::id(),
            SCHEMAS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("test database");
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        Some(format!("{url}{sep}options=-csearch_path%3D{schema}"))
    }

    /// Two replicas (two stores, two pools) submit the same reports at once: each is stored once.
    #[test]
    fn two_replicas_submitting_the_same_reports_store_each_once() {
        let Some(url) = fresh_url() else { return };
        let ca = test_ca();
        let open =
            || PgStore::open_with(&url, ca.as_deref().map(std::path::Path::new), 4).expect("open");
        let (a, b) = (open(), open());
        let outcomes: Vec<(u64, Stored)> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let store = if t % 2 == 0 { &a } else { &b };
                    s.spawn(move || {
                        (1..=60_u64)
                            .map(|seq| {
                                let r = crate::store::test_report("agt-r", seq, 20_000, 1);
                                (seq, store.insert_report(&r).unwrap())
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        for seq in 1..=60 {
            let new = outcomes
                .iter()
                .filter(|(s, o)| *s == seq && *o == Stored::New)
                .count();
            assert_eq!(new, 1, "sequence {seq}");
        }
        assert!(outcomes.iter().all(|(_, o)| *o != Stored::Conflict));
        assert_eq!(a.report_count().unwrap(), 60);
        let total = b
            .snapshot("app", 20_000, 20_000)
            .unwrap()
            .view("app", 20_000, 20_000)
            .total(readi_proto::report::v1::Metric::Requests);
        assert_eq!(total.value, 60, "each counted once in the rollups");
    }

    static SCHEMAS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    #[test]
    fn postgres_backend_stores_each_report_once() {
        let Some(store) = fresh() else { return };
        crate::store::check_backend(&store);
    }

    #[test]
    fn concurrent_submissions_of_one_report_store_it_once() {
        let Some(store) = fresh() else { return };
        crate::store::check_concurrent(std::sync::Arc::new(store));
    }

    #[test]
    fn rollups_hold_every_report_however_far_folded() {
        let Some(store) = fresh() else { return };
        // Fold in small batches, so the checks meet rollups part folded, part pending.
        crate::store::check_rollups(&store, &|| {
            store.0.compact(25).unwrap();
        });
        while store.0.compact(25).unwrap() > 0 {}
        let pending: i64 = store
            .0
            .client()
            .unwrap()
            .get()
            .query_one("SELECT count(*) FROM rollup_pending", &[])
            .unwrap()
            .get(0);
        assert_eq!(pending, 0);
        let all = store.snapshot("app", 20_000, 20_004).unwrap();
        let total = all
            .view("app", 20_000, 20_004)
            .total(readi_proto::report::v1::Metric::Requests);
        assert_eq!(total.value, (0..120).sum::<i64>());
    }

    #[test]
    fn postgres_holds_records() {
        let Some(store) = fresh() else { return };
        crate::records::check_records(&store);
        crate::records::check_taken_once(&store);
    }

    /// Scorecards read while another replica folds: every snapshot counts every report once.
    #[test]
    fn snapshots_taken_while_folding_count_each_report_once() {
        let Some(store) = fresh() else { return };
        for i in 0..400_u64 {
            store
                .insert_report(&crate::store::test_report(
                    &format!("agt-{}", i % 10),
                    i / 10 + 1,
                    20_000 + (i % 3) as i64,
                    1,
                ))
                .unwrap();
        }
        std::thread::scope(|s| {
            let folding = s.spawn(|| while store.0.compact(7).unwrap() > 0 {});
            let mut seen = 0;
            while !folding.is_finished() || seen < 3 {
                let snap = store.snapshot("app", 20_000, 20_002).unwrap();
                let total = snap
                    .view("app", 20_000, 20_002)
                    .total(readi_proto::report::v1::Metric::Requests);
                assert_eq!((total.value, total.cells), (400, 400));
                seen += 1;
            }
        });
        // Two replicas folding at once: one folds, the other steps aside.
        for i in 0..50_u64 {
            store
                .insert_report(&crate::store::test_report("agt-x", i + 1, 20_001, 2))
                .unwrap();
        }
        let folded: usize = std::thread::scope(|s| {
            let a = s.spawn(|| store.compact().unwrap());
            let b = s.spawn(|| store.compact().unwrap());
            a.join().unwrap() + b.join().unwrap()
        }) + store.compact().unwrap();
        assert_eq!(folded, 50);
        let total = store
            .snapshot("app", 20_000, 20_002)
            .unwrap()
            .view("app", 20_000, 20_002)
            .total(readi_proto::report::v1::Metric::Requests);
        assert_eq!(total.value, 500);
    }

    #[test]
    fn migrations_apply_once_and_a_newer_schema_is_refused() {
        let Some(store) = fresh() else { return };
        let applied = store.migrate().unwrap();
        assert_eq!(applied.len(), MIGRATIONS.len());
        assert_eq!(
            store.migrate().unwrap(),
            applied,
            "re-applying changes nothing"
        );
        store
            .0
            .client()
            .unwrap()
            .get()
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')",
                &[],
            )
            .unwrap();
        let err = store.migrate().unwrap_err().to_string();
        assert!(err.contains("newer than this controller"), "{err}");
    }

    /// TLS to the database, with the CA `.ci/postgres` made (READI_TEST_POSTGRES_CA): the server's
    /// certificate checked against it, and refused against the system's roots.
    #[test]
    fn tls_checks_the_servers_certificate() {
        let (Ok(url), Ok(ca)) = (
            std::env::var("READI_TEST_POSTGRES_URL"),
            std::env::var("READI_TEST_POSTGRES_CA"),
        ) else {
            eprintln!("SKIPPED: READI_TEST_POSTGRES_URL or READI_TEST_POSTGRES_CA is not set");
            return;
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let required = format!("{url}{sep}sslmode=require");
        let store = PgStore::open(&required, Some(std::path::Path::new(&ca))).expect("TLS");
        let ssl: bool = store
            .0
            .client()
            .unwrap()
            .get()
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(ssl, "the connection is not encrypted");
        let err = PgStore::open(&required, None).unwrap_err().to_string();
        assert!(
            err.contains("certificate") || err.contains("UnknownIssuer"),
            "{err}"
        );
        let bad = std::env::temp_dir().join(format!("readi-no-ca-{}", std::process::id()));
        std::fs::write(&bad, "not a certificate").unwrap();
        let err = PgStore::open(&required, Some(&bad))
            .unwrap_err()
            .to_string();
        assert!(err.contains("storage.postgres_ca"), "{err}");
    }

    #[test]
    fn a_sled_store_moves_to_postgres_and_a_second_run_changes_nothing() {
        let Some(pg) = fresh() else { return };
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let sled = crate::store::SledStore::open(&db).unwrap();
        crate::store::check_backend(&sled);
        let first = crate::store::copy(&sled, &pg).unwrap();
        assert_eq!(
            (first.agents, first.new, first.already, first.cohorts),
            (1, 2, 0, 1)
        );
        assert_eq!(pg.reports(None).unwrap(), sled.reports(None).unwrap());
        assert_eq!(pg.agents().unwrap(), sled.agents().unwrap());
        assert_eq!(
            pg.released_cohorts("app").unwrap(),
            sled.released_cohorts("app").unwrap()
        );
        let again = crate::store::copy(&sled, &pg).unwrap();
        assert_eq!((again.new, again.already), (0, 2));
        assert_eq!(pg.report_count().unwrap(), 2);

        // The registry and enrollment files move too, and work from the database.
        let files = crate::registry::Registry::in_dir(dir.path());
        files.add_vendor("acme", "Acme").unwrap();
        files.add_app("notes", "acme", "Notes").unwrap();
        let token = files
            .add_token(crate::registry::Principal::Operator)
            .unwrap();
        let enroll = crate::enrollment::issue(
            &crate::records::FileRecords::new(dir.path()),
            &["notes".into()],
            3600,
            100,
        )
        .unwrap();
        crate::enrollment::revoke(&crate::records::FileRecords::new(dir.path()), "agt-1").unwrap();
        let copied =
            crate::records::copy(&crate::records::FileRecords::new(dir.path()), &pg).unwrap();
        assert_eq!(copied, 5);
        let pg = std::sync::Arc::new(pg);
        let moved = crate::registry::Registry::new(pg.clone());
        assert_eq!(moved.apps().unwrap(), files.apps().unwrap());
        assert_eq!(
            moved.check(&token).unwrap(),
            Some(crate::registry::Principal::Operator)
        );
        assert!(crate::enrollment::is_revoked(pg.as_ref(), "agt-1").unwrap());
        assert_eq!(
            crate::enrollment::redeem(pg.as_ref(), &enroll, 200)
                .unwrap()
                .apps,
            ["notes"]
        );
        assert!(
            crate::enrollment::redeem(pg.as_ref(), &enroll, 200).is_err(),
            "once"
        );
    }

    #[test]
    fn months_and_partitions() {
        let t = 1_795_000_000; // 2026-11-18
        assert_eq!(month_start(t), 1_793_491_200); // 2026-11-01
        assert_eq!(add_months(month_start(t), 2), 1_798_761_600); // 2027-01-01
    }
}
