//! The safeguards report over gRPC and the CLI: a default agent shows its honest failures
//! (plaintext listener, key-encryption key next to the data, no caller authentication) and its
//! passes (encryption at rest, verified audit chain); a key file moved out of the data directory
//! but left on the same device still fails, naming the device.

use std::time::Duration;

use readi_proto::agent::v1::{CheckStatus, SafeguardsRequest, compliance_client::ComplianceClient};
use readi_tests::{binary, run_to_end, safeguard, start_served, start_served_with};

fn status(r: &readi_proto::agent::v1::SafeguardsReport, id: &str) -> CheckStatus {
    safeguard(r, id).status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_agent_reports_honest_failures_and_its_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, addr) = start_served("readi-agent", dir.path());
    let mut c = ComplianceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let r = c
        .safeguards(SafeguardsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&r, "transport.tls"), CheckStatus::Fail);
    assert_eq!(status(&r, "encryption.key_separation"), CheckStatus::Fail);
    assert_eq!(status(&r, "authentication.callers"), CheckStatus::Fail);
    assert_eq!(status(&r, "encryption.at_rest"), CheckStatus::Pass);
    assert_eq!(status(&r, "audit.chain"), CheckStatus::Pass);
    assert_eq!(status(&r, "egress.reports"), CheckStatus::Pass);
    let tls = safeguard(&r, "transport.tls");
    assert!(tls.evidence.contains(&addr.to_string()), "{}", tls.evidence);
    assert!(
        r.safeguards
            .iter()
            .all(|g| !g.regulation.is_empty() && !g.evidence.is_empty())
    );
    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(15)).success());

    // The CLI reads the stopped store: a printable page, exit code 3 because some checks fail.
    let cfg = dir.path().join("readi-agent.toml");
    let args = [
        "safeguards",
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        "html",
    ];
    let (code, out, err) = run_to_end(&binary("readi-agent"), &args, dir.path());
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.starts_with("<!doctype html>") && out.contains("164.312(e)(1)"),
        "{out}"
    );
    let args = [
        "safeguards",
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        "json",
    ];
    let (_, out, _) = run_to_end(&binary("readi-agent"), &args, dir.path());
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(json["safeguards"].as_array().unwrap().len() >= 10);

    // No store: a clear error, and nothing created.
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = run_to_end(&binary("readi-agent"), &["safeguards"], empty.path());
    assert_eq!(code, 1);
    assert!(err.contains("no agent store"), "{err}");
    assert!(!empty.path().join("readi-data").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_elsewhere_on_the_data_device_still_fails_separation() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = tempfile::tempdir().unwrap();
    let kek = credentials.path().join("readi-kek");
    std::fs::write(&kek, "ab".repeat(32)).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let extra = format!("[keys]\nkek = {{ file = \"{}\" }}\n", kek.display());
    let (_agent, addr) = start_served_with("readi-agent", dir.path(), &extra);
    let mut c = ComplianceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let r = c
        .safeguards(SafeguardsRequest {})
        .await
        .unwrap()
        .into_inner();
    let sep = safeguard(&r, "encryption.key_separation");
    // Both temp dirs share a device here: the report must say so rather than pass.
    assert_eq!(sep.status(), CheckStatus::Fail, "{}", sep.evidence);
    assert!(sep.evidence.contains("same device"), "{}", sep.evidence);
    assert!(
        !dir.path().join("data/kek").exists(),
        "no key generated next to the data"
    );
}
