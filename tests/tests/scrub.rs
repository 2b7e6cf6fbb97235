//! `readi-agent scrub` on a stopped store: every sealed value opens and every chain verifies, or
//! each damaged record is named by tree and key, never by content, with exit code 3.

use std::time::Duration;

use readi_proto::agent::v1::{RedactRequest, gateway_client::GatewayClient};
use readi_tests::{binary, run_to_end, start_served};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrub_names_a_damaged_sealed_value_by_tree_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, addr) = start_served("readi-agent", dir.path());
    let cfg = dir.path().join("readi-agent.toml");
    let cfg = cfg.to_str().unwrap();
    let mut gw = GatewayClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    for i in 0..30 {
        gw.redact(RedactRequest {
            text: format!("Pt Zebulon Quackenbush{i} called 617-555-0199."),
            app_id: "scribe".into(),
            session_id: format!("sess-Quackenbush-{i}"),
            style: 0,
        })
        .await
        .unwrap();
    }
    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(15)).success());

    let scrub = || {
        run_to_end(
            &binary("readi-agent"),
            &["scrub", "--config", cfg, "--json"],
            dir.path(),
        )
    };
    let (code, out, err) = scrub();
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["records"].as_u64().unwrap() >= 30, "{out}");

    // One bit of one sealed map changed through sled itself: its checksums stay valid, the
    // value's authentication tag does not.
    let key = {
        let db = sled::open(dir.path().join("data/agent.db")).unwrap();
        let tree = db.open_tree("vault").unwrap();
        let (k, v) = tree.iter().nth(11).unwrap().unwrap();
        let mut bad = v.to_vec();
        let at = bad.len() / 2;
        bad[at] ^= 0x04;
        tree.insert(&k, bad).unwrap();
        db.flush().unwrap();
        k.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let (code, out, err) = run_to_end(
        &binary("readi-agent"),
        &["scrub", "--config", cfg],
        dir.path(),
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains(&format!("DAMAGED: vault {key}")), "{out}");
    assert_eq!(out.matches("DAMAGED: vault").count(), 1, "{out}");
    // The map no longer opens, so the store no longer holds every acknowledged map either.
    assert!(out.contains("DAMAGED: hwm"), "{out}");
    for canary in ["Quackenbush", "617-555", "Zebulon"] {
        assert!(
            !out.contains(canary) && !err.contains(canary),
            "{canary}: {out}{err}"
        );
    }
    let (code, out, _) = scrub();
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["damaged"][0]["tree"], "vault");
    assert_eq!(v["damaged"][0]["key"], key.as_str());
}
