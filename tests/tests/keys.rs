//! Key rotation over real processes: data sealed before `readi-agent keys rotate` is still readable
//! after it, new data goes under the new epoch, and the rotation is in the verified audit log.

use std::time::Duration;

use readi_proto::agent::v1::{RedactRequest, ReidentifyRequest, gateway_client::GatewayClient};
use readi_tests::{binary, run_to_end, start_served};

async fn redact(addr: std::net::SocketAddr, session: &str, text: &str) -> String {
    let mut gw = GatewayClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    gw.redact(RedactRequest {
        text: text.into(),
        app_id: "scribe".into(),
        session_id: session.into(),
        style: 0,
    })
    .await
    .unwrap()
    .into_inner()
    .redacted_text
}

async fn reidentify(addr: std::net::SocketAddr, session: &str, text: &str) -> String {
    let mut gw = GatewayClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    gw.reidentify(ReidentifyRequest {
        text: text.into(),
        app_id: "scribe".into(),
        session_id: session.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_old_data_readable_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("readi-agent.toml");
    let (mut agent, addr) = start_served("readi-agent", dir.path());
    let before = redact(addr, "s1", "Pt Zebulon Quackenbush, MRN 8837261.").await;
    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(15)).success());

    let args = ["keys", "rotate", "--config", cfg.to_str().unwrap()];
    let (code, out, err) = run_to_end(&binary("readi-agent"), &args, dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("vault: now epoch 2"), "{out}");

    let (_agent, addr) = start_served("readi-agent", dir.path());
    assert_eq!(
        reidentify(addr, "s1", &before).await,
        "Pt Zebulon Quackenbush, MRN 8837261."
    );
    let after = redact(addr, "s2", "Pt Mary Quackenbush called.").await;
    assert_eq!(
        reidentify(addr, "s2", &after).await,
        "Pt Mary Quackenbush called."
    );
    drop(_agent);

    let list = ["keys", "list", "--config", cfg.to_str().unwrap()];
    let (code, out, err) = run_to_end(&binary("readi-agent"), &list, dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("vault") && l.contains("epoch    2") && l.contains("current")),
        "{out}"
    );
    assert!(!out.contains("Quackenbush"));

    let verify = [
        "audit",
        "verify",
        "--config",
        cfg.to_str().unwrap(),
        "--json",
    ];
    let (code, out, err) = run_to_end(&binary("readi-agent"), &verify, dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let records = readi_tests::audit_records(dir.path());
    assert!(
        records
            .iter()
            .any(|r| r.contains("key_rotate") && r.contains("vault epoch 2")),
        "{records:?}"
    );
    // The first start recorded its configuration's digest; restarts with the same config do not.
    assert_eq!(
        records
            .iter()
            .filter(|r| r.contains("config_change"))
            .count(),
        1,
        "{records:?}"
    );
}
