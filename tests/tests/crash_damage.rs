//! A crash, then a damaged byte: the agent is killed with SIGKILL under load (twice, restarting in
//! between), then one byte of its stopped store is changed at each of many positions spread over
//! the database files, on a fresh copy each time. Every copy must either be refused with a message
//! saying what to do, or open with every acknowledged session map, escalation and audit record
//! intact: no panic, no silent loss. Each copy is opened in process along the agent's start-up path
//! (store, keys, logs, high-water mark); a smaller sample is started as the real binary.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use readi_agent::audit::Audit;
use readi_agent::escalation::Escalations;
use readi_agent::keys::Keys;
use readi_agent::mark::Mark;
use readi_agent::vault::Vault;
use readi_proto::agent::v1::{
    AssessRequest, RedactRequest, ReidentifyRequest, Role, Turn, gateway_client::GatewayClient,
};
use readi_tests::{Process, binary, start_served};

/// Positions damaged, each on a fresh copy, opened in process.
const POSITIONS: usize = 240;
/// Of those, how many are also started as the real agent process.
const SPAWNED: usize = 8;
/// Kill-and-restart rounds of load before the damage.
const ROUNDS: usize = 2;

/// What callers were told was stored.
#[derive(Default)]
struct Acknowledged {
    /// (session, original text, redacted text).
    sessions: Vec<(String, String, String)>,
    escalations: Vec<String>,
    /// Reidentify calls answered; each wrote an audit record first.
    reidentified: usize,
}

async fn load_then_kill(dir: &Path, acked: &Arc<Mutex<Acknowledged>>, round: usize) {
    let (mut agent, addr) = start_served("readi-agent", dir);
    let stop = Instant::now() + Duration::from_millis(1500);
    let mut workers = Vec::new();
    for w in 0..4 {
        let mut gw = GatewayClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let acked = Arc::clone(acked);
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            // Calls in flight at the kill fail; only answered ones count.
            while Instant::now() < stop + Duration::from_secs(2) {
                i += 1;
                let session = format!("r{round}-w{w}-s{i}");
                let text = format!(
                    "Pt Zebulon Quackenbush{w}x{i} called 617-555-01{:02}.",
                    i % 100
                );
                let Ok(r) = gw
                    .redact(RedactRequest {
                        text: text.clone(),
                        app_id: "scribe".into(),
                        session_id: session.clone(),
                        style: 0,
                    })
                    .await
                else {
                    continue;
                };
                let red = r.into_inner().redacted_text;
                acked
                    .lock()
                    .unwrap()
                    .sessions
                    .push((session.clone(), text, red.clone()));
                if i % 3 == 0
                    && gw
                        .reidentify(ReidentifyRequest {
                            text: red,
                            app_id: "scribe".into(),
                            session_id: session.clone(),
                        })
                        .await
                        .is_ok()
                {
                    acked.lock().unwrap().reidentified += 1;
                }
                if i % 5 == 0
                    && let Ok(r) = gw
                        .assess(AssessRequest {
                            app_id: "chat".into(),
                            session_id: session,
                            input: vec![Turn {
                                role: Role::User as i32,
                                text: "I'm going to kill myself tonight.".into(),
                            }],
                            ..Default::default()
                        })
                        .await
                {
                    acked
                        .lock()
                        .unwrap()
                        .escalations
                        .push(r.into_inner().escalation_id);
                }
                if Instant::now() > stop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    agent.kill_hard();
    for w in workers {
        w.await.unwrap();
    }
}

/// The database files and how much of each was written (sled's files are larger than their log).
fn db_files(data: &Path) -> Vec<(PathBuf, usize)> {
    let mut out: Vec<(PathBuf, usize)> = readi_tests::files_under(&data.join("agent.db"))
        .into_iter()
        .filter_map(|p| {
            let raw = std::fs::read(&p).ok()?;
            let used = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            (used > 0).then_some((p, used))
        })
        .collect();
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// How a damaged copy came up.
enum Outcome {
    Refused(String),
    Opened,
}

/// Opens the copy under `data` the way the agent starts, then checks everything acknowledged.
fn open_and_check(data: &Path, acked: &Acknowledged) -> Result<Outcome, String> {
    let attempt = || -> Result<(readi_common::embedded::Store, Arc<Keys>, Audit, Vault, Escalations), String> {
        let store = readi_common::embedded::Store::open(data, "agent.db").map_err(|e| e.to_string())?;
        let keys = Arc::new(Keys::load(None, data, store.db()).map_err(|e| e.to_string())?);
        let vault = Vault::open(store.db(), Arc::clone(&keys), Duration::from_secs(3600))
            .map_err(|e| e.to_string())?;
        let audit = Audit::open(store.db(), &keys, 64).map_err(|e| e.to_string())?;
        let esc = Escalations::open(store.db(), Arc::clone(&keys), None).map_err(|e| e.to_string())?;
        let mark = Mark::open_checked(data, &keys, store.db(), &audit).map_err(|e| e.to_string())?;
        audit.attach(mark);
        Ok((store, keys, audit, vault, esc))
    };
    let (_store, _keys, audit, vault, esc) = match attempt() {
        Ok(opened) => opened,
        Err(msg) => return Ok(Outcome::Refused(msg)),
    };
    for (session, original, red) in &acked.sessions {
        match vault.reidentify("scribe", session, red) {
            Ok((back, _)) if &back == original => {}
            Ok(_) => return Err(format!("session {session} restores to other text")),
            Err(e) => return Err(format!("session {session} lost: {e}")),
        }
    }
    for id in &acked.escalations {
        esc.app_of(id)
            .map_err(|e| format!("escalation {id} lost: {e}"))?;
    }
    let v = audit
        .verify()
        .map_err(|e| format!("audit log unreadable: {e}"))?;
    if !v.ok() {
        return Err(format!("audit log opened but fails: {:?}", v.problems));
    }
    let records = audit.records().map_err(|e| e.to_string())?;
    let restored = records
        .iter()
        .filter(|r| r.contains("\"action\":\"reidentify\""))
        .count();
    if restored < acked.reidentified {
        return Err(format!(
            "{} reidentify calls answered but {restored} audited",
            acked.reidentified
        ));
    }
    Ok(Outcome::Opened)
}

/// A refusal a clinic's IT can act on.
fn says_what_to_do(msg: &str) -> bool {
    let m = msg.to_lowercase();
    m.contains("backup") || m.contains("restore")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_a_damaged_byte_is_refused_or_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let acked: Arc<Mutex<Acknowledged>> = Arc::default();
    for round in 0..ROUNDS {
        load_then_kill(dir.path(), &acked, round).await;
    }
    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    assert!(
        acked.sessions.len() > 20,
        "too little load: {}",
        acked.sessions.len()
    );
    assert!(!acked.escalations.is_empty() && acked.reidentified > 0);

    let data = dir.path().join("data");
    // Undamaged, the crashed store opens with everything (no false refusal after a crash).
    let pristine = tempfile::tempdir().unwrap();
    copy_dir(&data, &pristine.path().join("data"));
    match open_and_check(&pristine.path().join("data"), &acked) {
        Ok(Outcome::Opened) => {}
        Ok(Outcome::Refused(m)) => panic!("the undamaged crashed store was refused: {m}"),
        Err(e) => panic!("the undamaged crashed store lost data: {e}"),
    }

    let files = db_files(&data);
    let total: usize = files.iter().map(|(_, n)| n).sum();
    assert!(total > 0);
    let (mut refused, mut opened) = (0, 0);
    let mut reasons = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    let spawn_every = POSITIONS / SPAWNED;
    for i in 0..POSITIONS {
        // Evenly over the written bytes of all files, offset so positions are not block-aligned.
        let mut at = (i * total) / POSITIONS + (i * 7919) % (total / POSITIONS).max(1);
        let (file, _) = files
            .iter()
            .find(|(_, n)| {
                if at < *n {
                    true
                } else {
                    at -= n;
                    false
                }
            })
            .unwrap();
        let copy = tempfile::tempdir().unwrap();
        let copy_data = copy.path().join("data");
        copy_dir(&data, &copy_data);
        let target = copy_data.join(file.strip_prefix(&data).unwrap());
        let mut raw = std::fs::read(&target).unwrap();
        raw[at] ^= if i % 2 == 0 { 0x01 } else { 0xff };
        std::fs::write(&target, raw).unwrap();
        let place = format!("{}+{at}", file.strip_prefix(&data).unwrap().display());

        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            open_and_check(&copy_data, &acked)
        }));
        match outcome {
            Err(_) => failures.push(format!("{place}: panicked")),
            Ok(Err(loss)) => failures.push(format!("{place}: {loss}")),
            Ok(Ok(Outcome::Refused(m))) if !says_what_to_do(&m) => {
                failures.push(format!("{place}: refused without saying what to do: {m}"))
            }
            Ok(Ok(Outcome::Refused(m))) => {
                refused += 1;
                let why = if m.contains("high-water mark") {
                    "behind the high-water mark"
                } else if m.contains("failed while") {
                    "sled panicked"
                } else if m.contains("orrupt") || m.contains("damaged") {
                    "damaged or corrupt"
                } else {
                    "other"
                };
                *reasons.entry(why).or_insert(0usize) += 1;
            }
            Ok(Ok(Outcome::Opened)) => opened += 1,
        }
        if i % spawn_every == 0 {
            // The copy was opened above; damage it afresh for the real process.
            std::fs::remove_dir_all(&copy_data).unwrap();
            copy_dir(&data, &copy_data);
            let mut raw = std::fs::read(&target).unwrap();
            raw[at] ^= if i % 2 == 0 { 0x01 } else { 0xff };
            std::fs::write(&target, raw).unwrap();
            if let Some(f) = spawned(copy.path(), &acked).await {
                failures.push(format!("{place} (process): {f}"));
            }
        }
    }
    eprintln!(
        "{POSITIONS} positions over {total} bytes: {refused} refused ({reasons:?}), {opened} opened whole"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Starts the real agent on `dir/data`: it must refuse with what to do, or serve every
/// acknowledged session. `Some(what went wrong)` otherwise.
async fn spawned(dir: &Path, acked: &Acknowledged) -> Option<String> {
    let cfg = readi_tests::ephemeral_config(dir, "readi-agent.toml");
    let mut p = Process::start(
        &binary("readi-agent"),
        &["run", "--log-json", "--config", cfg.to_str().unwrap()],
        dir,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(line) = p
            .output()
            .lines()
            .find(|l| l.contains("\"Serving\""))
            .map(str::to_owned)
        {
            let addr = readi_tests::log_field(&line, "grpc_addr");
            let mut gw = GatewayClient::connect(format!("http://{addr}"))
                .await
                .ok()?;
            for (session, original, red) in &acked.sessions {
                let back = gw
                    .reidentify(ReidentifyRequest {
                        text: red.clone(),
                        app_id: "scribe".into(),
                        session_id: session.clone(),
                    })
                    .await;
                match back {
                    Ok(b) if &b.get_ref().text == original => {}
                    _ => return Some(format!("served but session {session} is lost")),
                }
            }
            return None;
        }
        if let Some(status) = p.try_exit() {
            let out = p.output();
            return if out.contains("panicked") {
                Some(format!("panicked: {out}"))
            } else if status.success() || !says_what_to_do(&out) {
                Some(format!(
                    "exited ({status}) without saying what to do: {out}"
                ))
            } else {
                None
            };
        }
        if Instant::now() > deadline {
            return Some("neither served nor refused within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
