//! TLS and mTLS on the agent's listener with certificates generated for the test, token and role
//! checks over the encrypted channel, and refusals for plaintext and certificate-less callers.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use readi_proto::agent::v1::{
    CheckStatus, RedactRequest, SafeguardsRequest, compliance_client::ComplianceClient,
    gateway_client::GatewayClient,
};
use readi_tests::{
    binary, run_to_end, run_to_end_env, safeguard, start_served_env, start_served_with, with_token,
};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

struct Pki {
    ca: String,
    client_cert: String,
    client_key: String,
}

fn write_private(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A CA, a server certificate for localhost and a client certificate, written under `dir`.
fn pki(dir: &std::path::Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["scribe-client".into()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("server.crt"), server.pem()).unwrap();
    write_private(&dir.join("server.key"), &server_key.serialize_pem());
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    Pki {
        ca: ca.pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

async fn tls_channel(
    addr: std::net::SocketAddr,
    pki: &Pki,
    with_cert: bool,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost");
    if with_cert {
        tls = tls.identity(Identity::from_pem(&pki.client_cert, &pki.client_key));
    }
    Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

fn redact() -> RedactRequest {
    RedactRequest {
        text: "Pt Zebulon Quackenbush called.".into(),
        app_id: "scribe".into(),
        session_id: "s1".into(),
        style: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_with_tokens_over_real_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let extra = format!(
        "[server.tls]\ncert = \"{}\"\nkey = {{ file = \"{}\" }}\nclient_ca = \"{}\"\n",
        dir.path().join("server.crt").display(),
        dir.path().join("server.key").display(),
        dir.path().join("ca.crt").display()
    );
    let (mut agent, _) = start_served_with("readi-agent", dir.path(), &extra);
    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(15)).success());
    let cfg = dir.path().join("readi-agent.toml");
    let add = |role: &[&str]| {
        let mut args = vec!["tokens", "add", "--config", cfg.to_str().unwrap()];
        args.extend_from_slice(role);
        let (code, out, err) = run_to_end(&binary("readi-agent"), &args, dir.path());
        assert_eq!(code, 0, "{out}{err}");
        out.trim().to_owned()
    };
    let app = add(&["--role", "app", "--app", "scribe"]);
    let officer = add(&["--role", "compliance"]);

    let (_agent, addr) = start_served_with("readi-agent", dir.path(), &extra);
    let channel = tls_channel(addr, &pki, true).await.expect("mTLS connects");
    let mut gw = GatewayClient::new(channel.clone());
    let mut compliance = ComplianceClient::new(channel);
    let r = gw
        .redact(with_token(redact(), &app))
        .await
        .expect("token over mTLS")
        .into_inner();
    assert!(!r.redacted_text.contains("Quackenbush"));
    assert_eq!(
        gw.redact(redact()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        gw.redact(with_token(redact(), &officer))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let report = compliance
        .safeguards(with_token(SafeguardsRequest {}, &officer))
        .await
        .unwrap()
        .into_inner();
    let tls = safeguard(&report, "transport.tls");
    assert_eq!(tls.status(), CheckStatus::Pass, "{}", tls.evidence);
    assert!(tls.evidence.contains("mTLS"), "{}", tls.evidence);

    // No client certificate: the handshake or the first call fails.
    let refused = match tls_channel(addr, &pki, false).await {
        Err(_) => true,
        Ok(ch) => GatewayClient::new(ch)
            .redact(with_token(redact(), &app))
            .await
            .is_err(),
    };
    assert!(refused, "a caller without a client certificate got in");
    // Plaintext to a TLS listener gets nowhere.
    let plain = match Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
    {
        Err(_) => true,
        Ok(ch) => GatewayClient::new(ch)
            .redact(with_token(redact(), &app))
            .await
            .is_err(),
    };
    assert!(plain, "plaintext call succeeded against a TLS listener");
}

#[test]
fn a_listener_other_hosts_can_reach_needs_tls() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, "[server]\nlisten = \"0.0.0.0:50051\"\n").unwrap();
    let (code, out, err) = run_to_end(
        &binary("readi-agent"),
        &["validate", "--config", cfg.to_str().unwrap()],
        dir.path(),
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        (out.clone() + &err).contains("server.listen") && (out + &err).contains("server.tls"),
        "the problem names its key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_properly_configured_agent_passes_the_safeguards() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let extra = format!(
        "[server.tls]\ncert = \"{}\"\nkey = {{ file = \"{}\" }}\n[keys]\nkek = {{ env = \"READI_TEST_KEK\" }}\n",
        dir.path().join("server.crt").display(),
        dir.path().join("server.key").display(),
    );
    let kek = "cd".repeat(32);
    let env = [("READI_TEST_KEK", kek.as_str())];
    let (mut agent, _) = start_served_env("readi-agent", dir.path(), &extra, &env);
    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(15)).success());
    let cfg = dir.path().join("readi-agent.toml");
    let cfg = cfg.to_str().unwrap();
    let (code, out, err) = run_to_end_env(
        &binary("readi-agent"),
        &["tokens", "add", "--config", cfg, "--role", "admin"],
        dir.path(),
        &env,
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run_to_end_env(
        &binary("readi-agent"),
        &["safeguards", "--config", cfg, "--format", "json"],
        dir.path(),
        &env,
    );
    assert_eq!(code, 0, "no safeguard may fail once configured: {out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let status = |id: &str| {
        report["safeguards"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == id)
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for id in [
        "transport.tls",
        "access.unique_ids",
        "authentication.callers",
        "audit.chain",
    ] {
        assert_eq!(status(id), "pass", "{id}: {out}");
    }
    assert_ne!(status("encryption.key_separation"), "fail", "{out}");
    assert!(!dir.path().join("data/kek").exists());
}
