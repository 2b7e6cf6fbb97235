//! Faults a clinic host meets, against the real agent process: a damaged or emptied store is refused
//! with what to do (never started empty); a full disk gives clear errors, stops the agent for its
//! supervisor to restart, loses nothing that was acknowledged and serves again when space returns.

use std::path::Path;
use std::time::Duration;

use readi_proto::agent::v1::{RedactRequest, ReidentifyRequest, gateway_client::GatewayClient};
use readi_tests::{Process, Unmount, binary, fill, mount_tmpfs, start_served_with};
use tonic::Code;
use tonic::transport::Channel;

const NOTE: &str = "Pt Zebulon Quackenbush (MRN 8837261) called from 617-555-0199.";

fn redact(session: &str) -> RedactRequest {
    RedactRequest {
        text: NOTE.into(),
        app_id: "scribe".into(),
        session_id: session.into(),
        style: 0,
    }
}

async fn client(addr: std::net::SocketAddr) -> GatewayClient<Channel> {
    let ch = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    GatewayClient::new(ch)
}

/// Whether `tagged`, redacted in `session`, is restored to the note.
async fn restores(gw: &mut GatewayClient<Channel>, session: &str, tagged: &str) -> bool {
    match gw
        .reidentify(ReidentifyRequest {
            text: tagged.into(),
            app_id: "scribe".into(),
            session_id: session.into(),
        })
        .await
    {
        Ok(r) => r.into_inner().text == NOTE,
        Err(_) => false,
    }
}

fn stop(mut agent: Process) {
    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(20)).success());
}

/// Starts the agent on the config written before and expects it to refuse; returns (exit code,
/// stderr). A start that serves fails the test (after 30 s) instead of hanging it.
fn start_fails(dir: &Path) -> (i32, String) {
    let cfg = dir.join("readi-agent.toml");
    let mut p = Process::start(
        &binary("readi-agent"),
        &["run", "--config", cfg.to_str().unwrap()],
        dir,
    );
    let status = p.wait_exit(Duration::from_secs(30));
    (status.code().unwrap_or(-1), p.output())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_emptied_store_is_refused_and_a_restored_backup_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, addr) = start_served_with("readi-agent", dir.path(), "");
    let mut gw = client(addr).await;
    let mut tagged = Vec::new();
    for i in 0..40 {
        let session = format!("s{i}");
        let r = gw.redact(redact(&session)).await.unwrap().into_inner();
        tagged.push((session, r.redacted_text));
    }
    stop(agent);
    let data = dir.path().join("data");
    let backup = dir.path().join("backup");
    copy_dir(&data, &backup);

    // Bytes in the middle of the log overwritten (as a bad disk or a bad copy would).
    let db = data.join("agent.db/db");
    let mut raw = std::fs::read(&db).unwrap();
    let used = raw.iter().rposition(|&b| b != 0).unwrap();
    raw[used / 2..used / 2 + 256].fill(0x5a);
    std::fs::write(&db, raw).unwrap();
    let (code, stderr) = start_fails(dir.path());
    assert_ne!(code, 0, "a damaged store must not start");
    assert!(stderr.contains("damaged"), "{stderr}");
    assert!(stderr.contains("Restore the data directory"), "{stderr}");
    assert!(!stderr.contains("Zebulon"), "{stderr}");

    // The database removed, its key and identity left: refused, not recreated empty.
    std::fs::remove_dir_all(data.join("agent.db")).unwrap();
    let (code, stderr) = start_fails(dir.path());
    assert_ne!(code, 0);
    assert!(stderr.contains("missing"), "{stderr}");
    assert!(
        !data.join("agent.db").exists(),
        "an empty store was created"
    );

    // What the message says to do works: the backup serves every session it held.
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&backup, &data);
    let (agent, addr) = start_served_with("readi-agent", dir.path(), "");
    let mut gw = client(addr).await;
    for (session, text) in &tagged {
        assert!(restores(&mut gw, session, text).await, "{session} lost");
    }
    stop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_clear_errors_loses_nothing_and_recovers_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The agent's data directory is the small file system.
    let mnt = dir.path().join("data");
    if mount_tmpfs(&mnt, 24).is_none() {
        readi_tests::skipped("this host does not allow mounting a tmpfs (needs CAP_SYS_ADMIN)");
        return;
    }
    let _unmount = Unmount(mnt.clone());
    let (agent, addr) = start_served_with("readi-agent", dir.path(), "");
    let mut gw = client(addr).await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let session = format!("before{i}");
        let r = gw.redact(redact(&session)).await.unwrap().into_inner();
        acknowledged.push((session, r.redacted_text));
    }

    let filler = fill(&mnt);
    let mut refused = None;
    for i in 0..2000 {
        let session = format!("full{i}");
        match gw.redact(redact(&session)).await {
            Ok(r) => acknowledged.push((session, r.into_inner().redacted_text)),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("a full disk never refused a write");
    eprintln!("refused: {:?} {}", refused.code(), refused.message());
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("disk"), "{}", refused.message());
    assert!(!refused.message().contains("Zebulon"));

    // The store cannot write again until reopened: the agent stops, non-zero, so its supervisor
    // (systemd's Restart=on-failure) restarts it.
    let mut agent = agent;
    let status = agent.wait_exit(Duration::from_secs(30));
    assert!(
        !status.success(),
        "the agent must exit non-zero for its supervisor"
    );
    let log = agent.output();
    assert!(log.contains("disk is full"), "{log}");
    // A restart while the disk is still full fails clearly.
    let (code, stderr) = start_fails(dir.path());
    assert_ne!(code, 0);
    assert!(stderr.contains("No space left"), "{stderr}");

    // Space returns: the next restart serves, and nothing acknowledged was lost.
    std::fs::remove_file(&filler).unwrap();
    let (agent, addr) = start_served_with("readi-agent", dir.path(), "");
    let mut gw = client(addr).await;
    let r = gw.redact(redact("after")).await.unwrap().into_inner();
    acknowledged.push(("after".into(), r.redacted_text));
    // Nothing acknowledged was lost, then or after another restart.
    for (session, text) in &acknowledged {
        assert!(restores(&mut gw, session, text).await, "{session} lost");
    }
    stop(agent);
    let (agent, addr) = start_served_with("readi-agent", dir.path(), "");
    let mut gw = client(addr).await;
    for (session, text) in &acknowledged {
        assert!(
            restores(&mut gw, session, text).await,
            "{session} lost after restart"
        );
    }
    assert!(!agent.output().contains("Zebulon"));
    stop(agent);
}
