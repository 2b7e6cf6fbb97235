//! The audit log over real processes: records from Reidentify and acknowledgements, `VerifyAudit`
//! over gRPC, `readi-agent audit verify` against the running agent and against the stopped store,
//! and tampering on disk named by record.

use std::time::Duration;

use readi_proto::agent::v1::{
    AcknowledgeEscalationRequest, AssessRequest, RedactRequest, ReidentifyRequest, Role, Turn,
    VerifyAuditRequest, compliance_client::ComplianceClient, gateway_client::GatewayClient,
};
use readi_tests::{binary, run_to_end, start_served};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_passes_untouched_and_names_a_tampered_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, addr) = start_served("readi-agent", dir.path());
    let cfg = dir.path().join("readi-agent.toml");
    let cfg = cfg.to_str().unwrap();
    let url = format!("http://{addr}");
    let mut gw = GatewayClient::connect(url.clone()).await.unwrap();
    let mut compliance = ComplianceClient::connect(url).await.unwrap();

    let red = gw
        .redact(RedactRequest {
            text: "Pt Zebulon Quackenbush called.".into(),
            app_id: "scribe".into(),
            session_id: "s1".into(),
            style: 0,
        })
        .await
        .unwrap()
        .into_inner();
    for _ in 0..3 {
        gw.reidentify(ReidentifyRequest {
            text: red.redacted_text.clone(),
            app_id: "scribe".into(),
            session_id: "s1".into(),
        })
        .await
        .unwrap();
    }
    let esc = gw
        .assess(AssessRequest {
            app_id: "chat".into(),
            session_id: "s2".into(),
            input: vec![Turn {
                role: Role::User as i32,
                text: "I want to kill myself".into(),
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .escalation_id;
    gw.acknowledge_escalation(AcknowledgeEscalationRequest {
        escalation_id: esc,
        clinician_id: "dr-lee".into(),
        disposition: 1,
    })
    .await
    .unwrap();

    let v = compliance
        .verify_audit(VerifyAuditRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{}", v.problem);
    assert!(v.records >= 4, "{}", v.records);

    // While the agent holds the store, the CLI asks it.
    let (code, out, err) = run_to_end(
        &binary("readi-agent"),
        &[
            "audit",
            "verify",
            "--config",
            cfg,
            "--addr",
            &addr.to_string(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("agent at {addr}")) && out.contains("OK"),
        "{out}"
    );

    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(15)).success());

    // Stopped: the CLI reads the store itself; the final checkpoint covers every record.
    let (code, out, err) = run_to_end(
        &binary("readi-agent"),
        &["audit", "verify", "--config", cfg, "--json"],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["signed_through"], report["records"], "{out}");
    let records = report["records"].as_u64().unwrap();
    assert!(!out.contains("Quackenbush"), "PHI in the audit log: {out}");

    // Edit record #2 on disk: the verifier names it and exits 3.
    {
        let db = sled::open(dir.path().join("data/agent.db")).unwrap();
        let tree = db.open_tree("audit").unwrap();
        let raw = tree.get(2u64.to_be_bytes()).unwrap().unwrap();
        let text = String::from_utf8(raw.to_vec()).unwrap();
        assert!(!text.contains("Quackenbush"));
        let edited = text.replace("restored", "restoreD");
        assert_ne!(edited, text);
        tree.insert(2u64.to_be_bytes(), edited.as_bytes()).unwrap();
        // And cut off the last record.
        tree.remove(records.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let (code, out, _) = run_to_end(
        &binary("readi-agent"),
        &["audit", "verify", "--config", cfg],
        dir.path(),
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("record #2 was edited"), "{out}");
    assert!(out.contains("truncated"), "{out}");
}

/// The newest audit records removed together with their signed checkpoints, through sled itself
/// (so its checksums stay valid): the chain alone looks whole, the high-water mark does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_cut_with_its_checkpoints_is_named_from_the_high_water_mark() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, addr) = start_served("readi-agent", dir.path());
    let cfg = dir.path().join("readi-agent.toml");
    let cfg = cfg.to_str().unwrap();
    let mut gw = GatewayClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let red = gw
        .redact(RedactRequest {
            text: "Pt Zebulon Quackenbush called.".into(),
            app_id: "scribe".into(),
            session_id: "s1".into(),
            style: 0,
        })
        .await
        .unwrap()
        .into_inner();
    for _ in 0..12 {
        gw.reidentify(ReidentifyRequest {
            text: red.redacted_text.clone(),
            app_id: "scribe".into(),
            session_id: "s1".into(),
        })
        .await
        .unwrap();
    }
    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(15)).success());

    let (last, cut_from) = {
        let db = sled::open(dir.path().join("data/agent.db")).unwrap();
        let tree = db.open_tree("audit").unwrap();
        let checkpoints = db.open_tree("audit_checkpoints").unwrap();
        let last = u64::from_be_bytes(tree.last().unwrap().unwrap().0.as_ref().try_into().unwrap());
        let cut_from = last - 4;
        for seq in cut_from..=last {
            tree.remove(seq.to_be_bytes()).unwrap();
            checkpoints.remove(seq.to_be_bytes()).unwrap();
        }
        // Any checkpoint past the new end would give the cut away by itself; remove those too.
        for k in checkpoints.range(cut_from.to_be_bytes()..).keys() {
            checkpoints.remove(k.unwrap()).unwrap();
        }
        // Re-sign nothing: the chain that is left is whole up to #cut_from - 1.
        db.flush().unwrap();
        (last, cut_from)
    };
    let (code, out, err) = run_to_end(
        &binary("readi-agent"),
        &["audit", "verify", "--config", cfg],
        dir.path(),
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains(&format!("records #{cut_from} to #{last} are missing")),
        "{out}"
    );
    assert!(out.contains("high-water mark"), "{out}");

    // And the agent refuses to start on it, saying what to do.
    let (code, _, err) = run_to_end(
        &binary("readi-agent"),
        &["run", "--config", cfg],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("high-water mark") && err.contains("backup"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
