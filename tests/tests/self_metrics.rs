//! The agent's own metrics and health on their loopback listener: the outbox depth and the age of the
//! oldest unsent report show while the controller is unreachable, and nothing about patients appears.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use readi_proto::agent::v1::{RedactRequest, gateway_client::GatewayClient};
use readi_tests::{log_field, start_served_env};

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n")
        .map(|p| p.1.to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_shows_the_outbox_while_the_controller_is_away() {
    let dir = tempfile::tempdir().unwrap();
    // A controller that is not there: reports wait in the outbox.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let extra = format!(
        "[controller]\nurl = \"http://{dead}\"\nenrollment_token = {{ env = \"READI_ENROLL_TOKEN\" }}\n\
         retry_min_ms = 100\nretry_max_secs = 1\n[reporting]\nwindow_secs = 1\napps = [\"notes-app\"]\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n"
    );
    let (mut agent, grpc) = start_served_env(
        "readi-agent",
        dir.path(),
        &extra,
        &[("READI_ENROLL_TOKEN", "rde_00_00")],
    );
    let out = agent.output();
    let line = out
        .lines()
        .find(|l| l.contains("\"message\":\"Self-metrics\""))
        .expect("the metrics address is logged");
    let metrics: SocketAddr = log_field(line, "metrics_addr").parse().unwrap();

    let mut gw = GatewayClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    for i in 0..5 {
        gw.redact(RedactRequest {
            text: format!("Zebulon Quackenbush called from 617-555-0199 ({i})."),
            app_id: "notes-app".into(),
            session_id: "sess-Quackenbush".into(),
            style: 0,
        })
        .await
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        let body = tokio::task::spawn_blocking(move || get(metrics, "/healthz"))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["outbox_reports"].as_u64().unwrap_or(0) >= 1
            && v["outbox_oldest_age_seconds"].as_u64().unwrap_or(0) >= 1
        {
            break v;
        }
        assert!(Instant::now() < deadline, "the outbox never showed: {body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(health["status"], "serving");
    assert_eq!(health["reporting"], true);
    // The background scrub runs once at start; an undamaged store shows no damage.
    assert_eq!(health["scrub"]["ok"], true, "{health}");
    assert!(health["scrub"]["finished_unix"].as_u64().unwrap() > 0);
    let text = tokio::task::spawn_blocking(move || get(metrics, "/metrics"))
        .await
        .unwrap();
    for want in [
        "readi_agent_build_info{version=",
        "# TYPE readi_agent_outbox_reports gauge",
        "readi_agent_outbox_oldest_age_seconds",
        "readi_agent_egress_reports_total",
        "readi_agent_escalations_pending 0",
        "readi_agent_scrub_damaged_records 0",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    for canary in ["Quackenbush", "617-555-0199", "notes-app"] {
        assert!(!text.contains(canary), "{canary} in /metrics");
    }
    readi_tests::promtool_check(&text);
    agent.terminate();
    agent.wait_exit(Duration::from_secs(30));
}
