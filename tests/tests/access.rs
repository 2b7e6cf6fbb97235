//! Access control over real gRPC: once tokens exist every call needs one; a missing or bad token is
//! UNAUTHENTICATED, a token of the wrong role or application PERMISSION_DENIED, both audited; the
//! health service stays open; revoked tokens stop working.

use std::time::Duration;

use readi_proto::agent::v1::{
    AcknowledgeEscalationRequest, AssessRequest, CheckStatus, RedactRequest, Role,
    SafeguardsRequest, Turn, compliance_client::ComplianceClient, gateway_client::GatewayClient,
};
use readi_tests::{binary, run_to_end, safeguard, start_served, with_token};
use tonic::Code;

fn redact(app: &str) -> RedactRequest {
    RedactRequest {
        text: "Pt Zebulon Quackenbush called.".into(),
        app_id: app.into(),
        session_id: "s1".into(),
        style: 0,
    }
}

fn add_token(dir: &std::path::Path, args: &[&str]) -> String {
    let cfg = dir.join("readi-agent.toml");
    let mut all = vec!["tokens", "add", "--config", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    let (code, out, err) = run_to_end(&binary("readi-agent"), &all, dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !err.contains(out.trim()),
        "the secret is printed once, on stdout only"
    );
    out.trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_are_enforced_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, _) = start_served("readi-agent", dir.path());
    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(15)).success());

    let scribe = add_token(dir.path(), &["--role", "app", "--app", "scribe"]);
    let other = add_token(dir.path(), &["--role", "app", "--app", "other"]);
    let officer = add_token(dir.path(), &["--role", "compliance"]);
    assert!(scribe.starts_with("rdi_"));
    let (code, _, err) = run_to_end(
        &binary("readi-agent"),
        &[
            "tokens",
            "add",
            "--config",
            dir.path().join("readi-agent.toml").to_str().unwrap(),
            "--role",
            "app",
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "an app token needs --app");
    assert!(err.contains("--app"), "{err}");

    let (agent, addr) = start_served("readi-agent", dir.path());
    let url = format!("http://{addr}");
    let mut gw = GatewayClient::connect(url.clone()).await.unwrap();
    let mut compliance = ComplianceClient::connect(url.clone()).await.unwrap();

    let none = gw.redact(redact("scribe")).await.unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated, "{none:?}");
    let bad = gw
        .redact(with_token(redact("scribe"), "rdi_000000000000_deadbeef"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::Unauthenticated);
    gw.redact(with_token(redact("scribe"), &scribe))
        .await
        .expect("the scribe's token works for the scribe");
    let wrong_app = gw
        .redact(with_token(redact("scribe"), &other))
        .await
        .unwrap_err();
    assert_eq!(wrong_app.code(), Code::PermissionDenied, "{wrong_app:?}");
    let wrong_role = compliance
        .safeguards(with_token(SafeguardsRequest {}, &scribe))
        .await
        .unwrap_err();
    assert_eq!(wrong_role.code(), Code::PermissionDenied);
    assert!(
        wrong_role.message().contains("compliance"),
        "{}",
        wrong_role.message()
    );
    let report = compliance
        .safeguards(with_token(SafeguardsRequest {}, &officer))
        .await
        .unwrap()
        .into_inner();
    let ids = safeguard(&report, "access.unique_ids");
    assert_eq!(ids.status(), CheckStatus::Pass, "{}", ids.evidence);
    assert!(ids.evidence.contains("3 token(s)"), "{}", ids.evidence);

    // Health stays reachable without a token, for load balancers and systemd.
    let channel = tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health needs no token");

    // Escalations belong to their application: another app's token cannot acknowledge them.
    let esc = gw
        .assess(with_token(
            AssessRequest {
                app_id: "scribe".into(),
                session_id: "s9".into(),
                input: vec![Turn {
                    role: Role::User as i32,
                    text: "I want to kill myself".into(),
                }],
                ..Default::default()
            },
            &scribe,
        ))
        .await
        .unwrap()
        .into_inner()
        .escalation_id;
    let ack = |id: &str| AcknowledgeEscalationRequest {
        escalation_id: id.to_owned(),
        clinician_id: "dr-lee".into(),
        disposition: 1,
    };
    let denied = gw
        .acknowledge_escalation(with_token(ack(&esc), &other))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    gw.acknowledge_escalation(with_token(ack(&esc), &scribe))
        .await
        .expect("the application's own token acknowledges");

    let logs = agent.output();
    for secret in [&scribe, &other, &officer] {
        assert!(!logs.contains(secret.as_str()), "token in logs");
    }
    drop(agent);

    // Revoked: the token stops working; refusals and denials are in the verified audit log.
    let cfg = dir.path().join("readi-agent.toml");
    let id = other
        .trim_start_matches("rdi_")
        .split('_')
        .next()
        .unwrap()
        .to_owned();
    let (code, out, err) = run_to_end(
        &binary("readi-agent"),
        &["tokens", "revoke", "--config", cfg.to_str().unwrap(), &id],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run_to_end(
        &binary("readi-agent"),
        &["tokens", "list", "--config", cfg.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        !out.contains(scribe.rsplit('_').next().unwrap()),
        "secret listed"
    );
    let (code, out, err) = run_to_end(
        &binary("readi-agent"),
        &["audit", "verify", "--config", cfg.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let records = readi_tests::audit_records(dir.path());
    for action in [
        "auth_refused",
        "auth_denied",
        "token_add",
        "token_revoke",
        "token_use",
    ] {
        assert!(
            records.iter().any(|r| r.contains(action)),
            "{action} not audited"
        );
    }

    let (_agent, addr) = start_served("readi-agent", dir.path());
    let mut gw = GatewayClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let revoked = gw
        .redact(with_token(redact("other"), &other))
        .await
        .unwrap_err();
    assert_eq!(revoked.code(), Code::Unauthenticated);
}
