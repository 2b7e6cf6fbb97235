//! Both binaries as real processes: start on ephemeral ports, answer health checks, refuse bad
//! configs without creating anything, and exit cleanly on SIGTERM.

use std::time::Duration;

use readi_tests::{Process, binary, ephemeral_config, run_to_end, start_served};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

async fn health(addr: std::net::SocketAddr, service: &str) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut client = HealthClient::new(channel);
    let resp = client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("health check");
    resp.into_inner().status()
}

#[tokio::test]
async fn agent_and_controller_serve_health_and_stop_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let agent_cfg = ephemeral_config(&tempfile_dir(&dir, "agent"), "agent.toml");
    let ctl_cfg = ephemeral_config(&tempfile_dir(&dir, "controller"), "controller.toml");

    let mut agent = Process::start(
        &binary("readi-agent"),
        &["run", "--log-json", "--config", agent_cfg.to_str().unwrap()],
        dir.path(),
    );
    let mut controller = Process::start(
        &binary("readi-controller"),
        &["run", "--log-json", "--config", ctl_cfg.to_str().unwrap()],
        dir.path(),
    );
    let agent_addr = agent.wait_serving();
    let ctl_addr = controller.wait_serving();
    assert_ne!(agent_addr.port(), 0);

    assert_eq!(health(agent_addr, "").await, ServingStatus::Serving);
    assert_eq!(
        health(agent_addr, "readi.agent.v1.Gateway").await,
        ServingStatus::Serving
    );
    assert_eq!(
        health(agent_addr, "readi.agent.v1.Compliance").await,
        ServingStatus::Serving
    );
    assert_eq!(
        health(ctl_addr, "readi.controller.v1.Controller").await,
        ServingStatus::Serving
    );

    agent.terminate();
    controller.terminate();
    let a = agent.wait_exit(Duration::from_secs(15));
    let c = controller.wait_exit(Duration::from_secs(15));
    assert!(a.success(), "agent exit {a}:\n{}", agent.output());
    assert!(c.success(), "controller exit {c}:\n{}", controller.output());
    assert!(
        agent.output().contains("\"message\":\"Stopped\""),
        "{}",
        agent.output()
    );
    assert!(dir.path().join("agent/data/agent.db").exists());
    assert!(dir.path().join("controller/data/controller.db").exists());
}

fn tempfile_dir(root: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
    let d = root.path().join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn bad_configs_fail_fast_naming_the_key_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let cases = [
        (
            "unknown.toml",
            "[server]\nlisten = \"127.0.0.1:0\"\nlistne = \"x\"\n".to_owned(),
            "listne",
        ),
        (
            "addr.toml",
            "[server]\nlisten = \"127.0.0.1\"\n".to_owned(),
            "server.listen",
        ),
        (
            "datadir.toml",
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}/db\"\n",
                blocker.display()
            ),
            "storage.data_dir",
        ),
    ];
    for bin in ["readi-agent", "readi-controller"] {
        for (file, text, key) in &cases {
            let path = dir.path().join(file);
            std::fs::write(&path, text).unwrap();
            for cmd in ["validate", "run"] {
                let (code, _, stderr) = run_to_end(
                    &binary(bin),
                    &[cmd, "--config", path.to_str().unwrap()],
                    dir.path(),
                );
                assert_ne!(code, 0, "{bin} {cmd} {file} must fail");
                assert!(
                    stderr.contains(key),
                    "{bin} {cmd} {file}: stderr does not name {key}:\n{stderr}"
                );
            }
        }
        assert!(
            !dir.path().join("readi-data").exists()
                && !dir.path().join("readi-controller-data").exists()
        );
    }
    let leftover: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".toml") && n != "not-a-dir")
        .collect();
    assert!(leftover.is_empty(), "bad configs created {leftover:?}");
}

#[test]
fn init_writes_a_config_that_validates_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    for bin in ["readi-agent", "readi-controller"] {
        let path = dir.path().join(format!("{bin}.toml"));
        let p = path.to_str().unwrap();
        let (code, _, stderr) = run_to_end(&binary(bin), &["init", "--output", p], dir.path());
        assert_eq!(code, 0, "{stderr}");
        let (code, stdout, stderr) =
            run_to_end(&binary(bin), &["validate", "--config", p], dir.path());
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("ok"));
        std::fs::write(&path, "# mine\n").unwrap();
        let (code, _, stderr) = run_to_end(&binary(bin), &["init", "--output", p], dir.path());
        assert_ne!(code, 0);
        assert!(stderr.contains("--force"), "{stderr}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    }
}

#[tokio::test]
async fn agent_without_config_starts_on_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Process::start(&binary("readi-agent"), &["run", "--log-json"], dir.path());
    let addr = agent.wait_serving();
    assert!(
        addr.ip().is_loopback(),
        "default must be loopback only, got {addr}"
    );
    assert!(dir.path().join("readi-data/agent.db").is_dir());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("readi-data"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700, "data dir must be private");
    assert_eq!(health(addr, "").await, ServingStatus::Serving);
    agent.terminate();
    assert!(
        agent.wait_exit(Duration::from_secs(15)).success(),
        "{}",
        agent.output()
    );
}

#[tokio::test]
async fn empty_requests_get_clear_errors_on_both_services() {
    use readi_proto::agent::v1::{SubmitFeedbackRequest, gateway_client::GatewayClient};
    use readi_proto::controller::v1::{
        ListApplicationsRequest, controller_client::ControllerClient,
    };
    let dir = tempfile::tempdir().unwrap();
    let (_agent, agent_addr) = start_served("readi-agent", dir.path());
    let (_controller, ctl_addr) = start_served("readi-controller", &tempfile_dir(&dir, "ctl"));
    let mut gw = GatewayClient::connect(format!("http://{agent_addr}"))
        .await
        .unwrap();
    let err = gw
        .submit_feedback(SubmitFeedbackRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("app_id"), "{}", err.message());
    let mut ctl = ControllerClient::connect(format!("http://{ctl_addr}"))
        .await
        .unwrap();
    let err = ctl
        .list_applications(ListApplicationsRequest {})
        .await
        .unwrap_err();
    // The controller's vendor API needs a token before anything else.
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert!(err.message().contains("bearer token"), "{}", err.message());
}

#[test]
fn systemd_units_validate_the_config_they_run() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd");
    for unit in ["readi-agent.service", "readi-controller.service"] {
        let text = std::fs::read_to_string(deploy.join(unit)).unwrap();
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{unit}: no {prefix}"))
                .to_owned()
        };
        let pre = line("ExecStartPre=");
        let start = line("ExecStart=");
        let config = start
            .split("--config ")
            .nth(1)
            .expect("ExecStart names a config");
        assert!(
            pre.contains(" validate ") && pre.ends_with(config),
            "{unit}: {pre} vs {start}"
        );
        for hardening in [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "ReadWritePaths=",
        ] {
            assert!(text.contains(hardening), "{unit} lacks {hardening}");
        }
    }
}

/// `systemd-analyze verify` on a unit, its binary paths pointed at the built binaries: (success, messages).
fn systemd_verify(dir: &std::path::Path, name: &str, text: &str) -> (bool, String) {
    let mut text = text.to_owned();
    for bin in ["readi-agent", "readi-controller"] {
        let built = readi_tests::binary(bin);
        text = text.replace(
            &format!("/usr/local/bin/{bin}"),
            &built.display().to_string(),
        );
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("running systemd-analyze");
    let messages = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), messages)
}

#[test]
fn systemd_analyze_verifies_the_units() {
    let available = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        readi_tests::skipped("systemd-analyze is not installed on this machine");
        return;
    }
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd");
    let dir = tempfile::tempdir().unwrap();
    for unit in ["readi-agent.service", "readi-controller.service"] {
        let text = std::fs::read_to_string(deploy.join(unit)).unwrap();
        let (ok, messages) = systemd_verify(dir.path(), unit, &text);
        // Unknown or misspelt directives are only warnings to systemd: any message fails the unit.
        assert!(ok && messages.trim().is_empty(), "{unit}: {messages}");
        // The control: a misspelt hardening directive is reported.
        let bad = text.replace("ProtectSystem=", "ProtectSytem=");
        let (_, messages) = systemd_verify(dir.path(), &format!("bad-{unit}"), &bad);
        assert!(messages.contains("ProtectSytem"), "{unit}: {messages}");
    }
}
