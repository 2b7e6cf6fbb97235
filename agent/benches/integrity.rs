//! Integrity costs, measured on real sled stores in temp dirs: `scrub` over 100,000 records with
//! one damaged value (it must be found by tree and key), and what the high-water mark adds to an
//! acknowledged session-map write (flush + mark), one writer and four.
//! Run: `cargo bench -p readi-agent --bench integrity` (add `--profile eval` for a quicker build).

use std::sync::Arc;
use std::time::{Duration, Instant};

use readi_agent::audit::Audit;
use readi_agent::keys::Keys;
use readi_agent::mark::Mark;
use readi_agent::phi::PhiType;
use readi_agent::vault::Vault;

const RECORDS: usize = 100_000;
const AUDIT_SHARE: usize = 10;
const WRITES: usize = 800;

fn store() -> (tempfile::TempDir, sled::Db, Arc<Keys>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::open(dir.path().join("db")).expect("sled");
    let keys = Arc::new(Keys::load(None, dir.path(), &db).expect("keys"));
    (dir, db, keys)
}

fn scrub_100k() {
    let (dir, db, keys) = store();
    let audit = Audit::open(&db, &keys, 64).expect("audit");
    let vault = Vault::open(&db, Arc::clone(&keys), Duration::from_secs(3600)).expect("vault");
    let mark = Arc::new(Mark::open(dir.path(), &keys, &db).expect("mark"));
    vault.attach(Arc::clone(&mark));
    let audits = RECORDS / AUDIT_SHARE;
    for i in 0..RECORDS - audits {
        vault
            .update("app", &format!("session-{i}"), |t| {
                t.tag(PhiType::Name, &format!("Person Number{i}"));
                t.tag(PhiType::Phone, &format!("617-555-{:04}", i % 10_000));
                Some(())
            })
            .expect("vault write");
    }
    for i in 0..audits {
        audit
            .record_by("reidentify", "token-1", "app", &format!("restored {i}"))
            .expect("audit write");
    }
    audit.checkpoint().expect("checkpoint");
    vault.flush().expect("flush");
    let started = Instant::now();
    mark.behind(&keys, &audit)
        .expect("the store covers its mark");
    println!(
        "start-up check against the high-water mark, {} maps and {audits} audit records: {:.2} s",
        RECORDS - audits,
        started.elapsed().as_secs_f64()
    );
    let tree = db.open_tree("vault").expect("tree");
    let (k, v) = tree
        .iter()
        .nth((RECORDS - audits) / 2)
        .expect("a record")
        .expect("readable");
    let mut bad = v.to_vec();
    let at = bad.len() - 3;
    bad[at] ^= 1;
    tree.insert(&k, bad).expect("damage");
    let started = Instant::now();
    let r = readi_agent::scrub::scrub(&db, &keys, &audit);
    let took = started.elapsed();
    assert_eq!(r.damaged.len(), 1, "{:?}", r.damaged);
    assert_eq!(r.damaged[0].tree, "vault");
    assert_eq!(
        r.damaged[0].key,
        readi_agent::scrub::key_label("vault", &k),
        "the damaged record is named by its key"
    );
    println!(
        "scrub: {} records in {:.2} s ({:.0} records/s); found {} {}",
        r.records,
        took.as_secs_f64(),
        r.records as f64 / took.as_secs_f64(),
        r.damaged[0].tree,
        r.damaged[0].key
    );
}

/// Median time of one acknowledged map write (update + flush) per writer over `threads` writers,
/// and writes per second overall.
fn write_cost(threads: usize, marked: bool) -> (Duration, f64) {
    let (dir, db, keys) = store();
    let vault =
        Arc::new(Vault::open(&db, Arc::clone(&keys), Duration::from_secs(3600)).expect("vault"));
    if marked {
        vault.attach(Arc::new(Mark::open(dir.path(), &keys, &db).expect("mark")));
    }
    let per = WRITES / threads;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|w| {
            let vault = Arc::clone(&vault);
            std::thread::spawn(move || {
                let mut took = Vec::with_capacity(per);
                for i in 0..per {
                    let started = Instant::now();
                    vault
                        .update("app", &format!("w{w}-s{i}"), |t| {
                            t.tag(PhiType::Name, "Person Name");
                            Some(())
                        })
                        .expect("write");
                    vault.flush().expect("flush");
                    took.push(started.elapsed());
                }
                took
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("writer"))
        .collect();
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (all[all.len() / 2], rate)
}

fn main() {
    // `cargo test --benches` runs bench binaries with no `--bench`; keep that run quick.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    scrub_100k();
    for threads in [1, 4, 8] {
        let (plain, plain_rate) = write_cost(threads, false);
        let (marked, marked_rate) = write_cost(threads, true);
        println!(
            "acknowledged map write, {threads} writer(s): median {:.2} ms, {plain_rate:.0}/s without the mark; {:.2} ms, {marked_rate:.0}/s with it",
            plain.as_secs_f64() * 1e3,
            marked.as_secs_f64() * 1e3
        );
    }
}
