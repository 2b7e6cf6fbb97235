//! Aggregate reporting end to end with real processes: agents enroll with a controller, close metric
//! windows into signed, noised reports, and deliver them exactly once through outages and crashes;
//! no seeded PHI canary reaches the controller, its logs, its store or the wire.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use readi_proto::agent::v1::{
    self as apb, compliance_client::ComplianceClient, gateway_client::GatewayClient,
};
use readi_proto::controller::v1::{self as cpb, controller_client::ControllerClient};
use readi_proto::report::v1 as pb;
use readi_tests::{Process, binary, run_to_end, start_served_env};

/// PHI seeded into traffic: none of it may leave the agent.
const CANARIES: &[&str] = &[
    "Quackenbush",
    "zq.canary@example.org",
    "617-555-0199",
    "88412093",
];

const APPS: &[&str] = &["notes-app", "chat-app"];

fn controller_config(dir: &Path, listen: &str, tls: bool) -> PathBuf {
    controller_config_with(dir, listen, tls, "")
}

/// As `controller_config`, with `storage` added to its `[storage]` section.
fn controller_config_with(dir: &Path, listen: &str, tls: bool, storage: &str) -> PathBuf {
    let path = dir.join("controller.toml");
    let mut text = format!(
        "[server]\nlisten = \"{listen}\"\nshutdown_grace_secs = 5\n[storage]\ndata_dir = \"{}\"\n{storage}\
         [dashboard]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
         [release]\nmin_clinics = 2\n",
        dir.join("data").display()
    );
    if tls {
        text.push_str("[server.tls]\nnames = [\"127.0.0.1\", \"localhost\"]\n");
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn start_controller(dir: &Path, listen: &str, tls: bool) -> (Process, SocketAddr) {
    let cfg = controller_config(dir, listen, tls);
    let p = Process::start(
        &binary("readi-controller"),
        &["run", "--log-json", "--config", cfg.to_str().unwrap()],
        dir,
    );
    let addr = p.wait_serving();
    (p, addr)
}

fn enroll_token(dir: &Path) -> String {
    enroll_token_env(dir, &[])
}

/// An enrollment token from the controller configured in `dir` (`env` for its database URL), for
/// APPS, registered first to vendor `acme` when they are not yet (tokens name registered apps only).
fn enroll_token_env(dir: &Path, env: &[(&str, &str)]) -> String {
    let cfg = dir.join("controller.toml");
    let ctl = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--config", cfg.to_str().unwrap()]);
        let (code, out, err) =
            readi_tests::run_to_end_env(&binary("readi-controller"), &full, dir, env);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    let listed = ctl(&["app", "list"]);
    if !APPS
        .iter()
        .all(|a| listed.lines().any(|l| l.starts_with(&format!("{a}\t"))))
    {
        if !ctl(&["vendor", "list"])
            .lines()
            .any(|l| l.starts_with("acme\t"))
        {
            ctl(&["vendor", "add", "--id", "acme", "--name", "Acme"]);
        }
        for app in APPS {
            ctl(&["app", "add", "--id", app, "--vendor", "acme", "--name", app]);
        }
    }
    let mut args = vec!["enroll-token", "--config", cfg.to_str().unwrap()];
    for app in APPS {
        args.extend(["--app", app]);
    }
    let (code, out, err) =
        readi_tests::run_to_end_env(&binary("readi-controller"), &args, dir, env);
    assert_eq!(code, 0, "{err}");
    let token = out.trim().to_owned();
    assert!(token.starts_with("rde_"), "{out}");
    token
}

/// The agent's `[controller]` and `[reporting]` sections. epsilon 10 makes noise almost always zero so
/// totals can be checked; k = 2 keeps single-call windows suppressed.
fn agent_extra(url: &str, ca: Option<&Path>, window_secs: u64) -> String {
    let mut s = format!(
        "[controller]\nurl = \"{url}\"\nenrollment_token = {{ env = \"READI_ENROLL_TOKEN\" }}\n\
         retry_min_ms = 100\nretry_max_secs = 1\n"
    );
    if let Some(ca) = ca {
        s.push_str(&format!("ca = \"{}\"\n", ca.display()));
    }
    s.push_str(&format!(
        "[reporting]\nwindow_secs = {window_secs}\napps = [\"notes-app\", \"chat-app\"]\n\
         segments = [\"seg-a\"]\nk = 2\nepsilon_per_cell = 10\ndaily_epsilon_budget = 100000\n"
    ));
    s
}

fn start_agent(dir: &Path, extra: &str, token: &str) -> (Process, SocketAddr) {
    start_served_env("readi-agent", dir, extra, &[("READI_ENROLL_TOKEN", token)])
}

/// Calls made by `traffic`, per application.
#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    redacts: i64,
    risky: i64,
    benign: i64,
}

/// Redactions with PHI and assessments with suicide risk, under canary session ids and labels.
async fn traffic(addr: SocketAddr, app: &str, n: i64) -> Sent {
    let mut gw = GatewayClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut sent = Sent::default();
    for i in 0..n {
        let text = format!(
            "Zebulon Quackenbush (MRN 88412093) called from 617-555-0199, email \
             zq.canary@example.org, visit {i}."
        );
        let r = gw
            .redact(apb::RedactRequest {
                text,
                app_id: app.into(),
                session_id: format!("sess-Quackenbush-{}", i % 3),
                style: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!r.redacted_text.contains("Quackenbush"));
        sent.redacts += 1;
    }
    for i in 0..n {
        let risky = i % 2 == 0;
        let text = if risky {
            "I want to kill myself tonight, I have the pills ready"
        } else {
            "I slept better this week and went for a walk"
        };
        gw.assess(apb::AssessRequest {
            app_id: app.into(),
            session_id: format!("sess-Quackenbush-{}", i % 3),
            input: vec![apb::Turn {
                role: apb::Role::User as i32,
                text: text.into(),
            }],
            language: if i % 3 == 0 { "es-mx" } else { "Quackenbush" }.into(),
            segment_id: if i % 2 == 0 {
                "seg-a"
            } else {
                "Quackenbush-seg"
            }
            .into(),
            llm_latency_ms: 800,
            llm_tokens: 100,
            ..Default::default()
        })
        .await
        .unwrap();
        if risky {
            sent.risky += 1;
        } else {
            sent.benign += 1;
        }
    }
    sent
}

/// Reports of each feedback kind a clinician files per agent.
const FEEDBACK: i64 = 4;

/// Clinicians' feedback of every kind on notes-app, FEEDBACK of each; the free text and the ids
/// carry canaries, which must stay in the clinic.
async fn feedback(addr: SocketAddr) {
    use apb::submit_feedback_request::Kind;
    let mut gw = GatewayClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    for i in 0..FEEDBACK {
        for kind in [
            Kind::MissedRisk(apb::Category::SuicidalIdeation as i32),
            Kind::FalseAlarmFindingId(format!("ex-{i}-f0")),
            Kind::LeakedPhi(apb::PhiType::Phone as i32),
            Kind::UnexpectedBehavior(
                "The model greeted Zebulon Quackenbush by name and read out 617-555-0199.".into(),
            ),
        ] {
            gw.submit_feedback(apb::SubmitFeedbackRequest {
                app_id: "notes-app".into(),
                session_id: format!("sess-Quackenbush-{i}"),
                exchange_id: format!("ex-{i}"),
                kind: Some(kind),
            })
            .await
            .unwrap();
        }
    }
}

/// Baseline and follow-up PHQ-9 scores for a few episodes; returns how many changes were recorded.
async fn record_outcomes(addr: SocketAddr, app: &str) -> i64 {
    let mut gw = GatewayClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let score = |score, at| apb::OutcomeScore {
        measure: apb::Measure::Phq9 as i32,
        score,
        taken_at: Some(prost_types::Timestamp {
            seconds: at,
            nanos: 0,
        }),
    };
    let episodes = 4;
    for e in 0..episodes {
        for (value, at) in [(19, now - 86_400 * 40), (11 - e as i32, now - 3600)] {
            gw.record_outcome(apb::RecordOutcomeRequest {
                app_id: app.into(),
                session_id: "sess-Quackenbush-0".into(),
                episode_id: format!("episode-Quackenbush-{e}"),
                arm: apb::CareArm::AiAssisted as i32,
                observation: Some(apb::record_outcome_request::Observation::Score(score(
                    value, at,
                ))),
            })
            .await
            .unwrap();
        }
    }
    // Out of range and missing arm are the caller's errors.
    let err = gw
        .record_outcome(apb::RecordOutcomeRequest {
            app_id: app.into(),
            session_id: "s".into(),
            episode_id: "e".into(),
            arm: apb::CareArm::AiAssisted as i32,
            observation: Some(apb::record_outcome_request::Observation::Score(score(
                28, now,
            ))),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    episodes
}

/// Waits until the agent has written at least `min` reports and delivered every one.
async fn wait_delivered(addr: SocketAddr, min: usize, timeout: Duration) -> Vec<apb::EgressEntry> {
    let mut c = ComplianceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        let r = c
            .list_egress(apb::ListEgressRequest {
                from_sequence: 1,
                limit: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.chain_ok, "the egress ledger's chain must verify");
        if r.entries.len() >= min && r.entries.iter().all(|e| e.delivered_at.is_some()) {
            return r.entries;
        }
        assert!(
            Instant::now() < deadline,
            "reports not delivered within {timeout:?}: {} written, {} delivered",
            r.entries.len(),
            r.entries
                .iter()
                .filter(|e| e.delivered_at.is_some())
                .count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn ledger(addr: SocketAddr) -> Vec<apb::EgressEntry> {
    let mut c = ComplianceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    c.list_egress(apb::ListEgressRequest {
        from_sequence: 1,
        limit: 0,
    })
    .await
    .unwrap()
    .into_inner()
    .entries
}

fn stop(p: &mut Process) {
    p.terminate();
    assert!(
        p.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        p.output()
    );
}

/// The controller's stored reports (the controller must be stopped), decoded.
/// A controller in `cdir` and an agent in `adir` reporting to it every second, after `n` rounds of
/// traffic and one delivered report: (controller, its listen address, agent, its address, the
/// agent's reporting config).
async fn reporting_pair(
    cdir: &Path,
    adir: &Path,
    n: i64,
) -> (Process, String, Process, SocketAddr, String) {
    let (controller, caddr) = start_controller(cdir, "127.0.0.1:0", false);
    let token = enroll_token(cdir);
    let extra = agent_extra(&format!("http://{caddr}"), None, 1);
    let (agent, aaddr) = start_agent(adir, &extra, &token);
    traffic(aaddr, "notes-app", n).await;
    wait_delivered(aaddr, 1, Duration::from_secs(30)).await;
    (controller, caddr.to_string(), agent, aaddr, extra)
}

/// The sequences the controller configured in `dir` holds for `agent`, sorted (`env` for its
/// database URL).
fn stored_sequences(dir: &Path, agent: &str, env: &[(&str, &str)]) -> Vec<u64> {
    let mut seqs: Vec<u64> = stored_reports_env(dir, env)
        .iter()
        .filter(|r| r["agent_id"] == agent)
        .map(|r| r["sequence"].as_u64().unwrap())
        .collect();
    seqs.sort_unstable();
    seqs
}

fn stored_reports(dir: &Path) -> Vec<serde_json::Value> {
    stored_reports_env(dir, &[])
}

fn stored_reports_env(dir: &Path, env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let cfg = dir.join("controller.toml");
    let (code, out, err) = readi_tests::run_to_end_env(
        &binary("readi-controller"),
        &["reports", "--json", "--config", cfg.to_str().unwrap()],
        dir,
        env,
    );
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).expect("JSON report"))
        .collect()
}

/// Sum over reports of one agent of a released count cell.
fn total(
    reports: &[serde_json::Value],
    agent: &str,
    app: &str,
    metric: &str,
    labels: Option<serde_json::Value>,
) -> i64 {
    reports
        .iter()
        .filter(|r| r["agent_id"] == agent)
        .flat_map(|r| r["apps"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["app_id"] == app)
        .flat_map(|a| a["cells"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["metric"] == metric && c.get("labels").cloned() == labels)
        .map(|c| c["count"].as_i64().unwrap_or(0))
        .sum()
}

fn assert_near(got: i64, want: i64, what: &str) {
    // One suppressed single-call window, or a rare unit of noise at epsilon 10.
    assert!((got - want).abs() <= 2, "{what}: got {got}, want {want}");
}

fn assert_no_canary(what: &str, bytes: &[u8]) {
    for c in CANARIES {
        assert!(
            !bytes.windows(c.len()).any(|w| w == c.as_bytes()),
            "canary {c:?} found in {what}"
        );
    }
}

fn agent_id_of(entries: &[apb::EgressEntry]) -> String {
    entries[0].report.as_ref().unwrap().agent_id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_report_aggregates_over_mtls_and_no_canary_leaves() {
    let cdir = tempfile::tempdir().unwrap();
    let (mut controller, caddr) = start_controller(cdir.path(), "127.0.0.1:0", true);
    let ca = cdir.path().join("data/tls/ca.pem");
    let url = format!("https://127.0.0.1:{}", caddr.port());

    let mut agents = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let token = enroll_token(cdir.path());
        let (p, addr) = start_agent(dir.path(), &agent_extra(&url, Some(&ca), 2), &token);
        p.wait_for_log("Enrolled with the controller", Duration::from_secs(30));
        agents.push((dir, p, addr));
    }
    let mut sent = Vec::new();
    for (i, (_, _, addr)) in agents.iter().enumerate() {
        sent.push(traffic(*addr, APPS[i % 2], 20 + 4 * i as i64).await);
    }
    let outcomes = record_outcomes(agents[0].2, APPS[0]).await;
    for (_, _, addr) in &agents {
        feedback(*addr).await;
    }
    // Let the last windows close, then wait for every report to arrive.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut ids = Vec::new();
    let mut wire = Vec::new();
    for (_, _, addr) in &agents {
        let entries = wait_delivered(*addr, 1, Duration::from_secs(60)).await;
        ids.push(agent_id_of(&entries));
        for e in &entries {
            wire.extend_from_slice(&e.payload);
        }
    }
    assert_ne!(ids[0], ids[1]);
    assert_no_canary("the reports' bytes", &wire);

    // Without a client certificate nothing can be submitted, even over TLS.
    let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(
        tonic::transport::Certificate::from_pem(std::fs::read(&ca).unwrap()),
    );
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let entry = ledger(agents[0].2).await.remove(0);
    let err = ControllerClient::new(channel)
        .submit_report(cpb::SubmitReportRequest {
            report: Some(pb::SignedReport::decode(entry.payload.as_slice()).unwrap()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");

    // The compliance officer sees what left and what the privacy budget paid for today.
    let mut comp = ComplianceClient::connect(format!("http://{}", agents[0].2))
        .await
        .unwrap();
    let sg = comp
        .safeguards(apb::SafeguardsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sg.agent_id, ids[0]);
    let egress = sg
        .safeguards
        .iter()
        .find(|g| g.id == "egress.reports")
        .unwrap();
    assert_eq!(
        egress.status,
        apb::CheckStatus::Pass as i32,
        "{}",
        egress.evidence
    );
    assert!(
        egress.evidence.contains("mutual TLS"),
        "{}",
        egress.evidence
    );
    let budget = sg
        .privacy_budgets
        .iter()
        .find(|b| b.app_id == APPS[0])
        .expect("a budget line per reported application");
    assert!(
        budget.spent_micro_epsilon > 0 && budget.spent_micro_epsilon <= budget.budget_micro_epsilon
    );

    let mut agent_logs = String::new();
    for (_, p, _) in &mut agents {
        stop(p);
        agent_logs.push_str(&p.output());
    }
    stop(&mut controller);
    let controller_log = controller.output();
    assert_no_canary("the controller's log", controller_log.as_bytes());
    assert_no_canary("the agents' logs", agent_logs.as_bytes());
    for path in readi_tests::files_under(cdir.path()) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert_no_canary(&path.display().to_string(), &bytes);
    }

    let reports = stored_reports(cdir.path());
    assert_no_canary(
        "the stored reports",
        serde_json::to_string(&reports).unwrap().as_bytes(),
    );
    for (i, id) in ids.iter().enumerate() {
        let app = APPS[i % 2];
        let s = sent[i];
        let requests = s.redacts + s.risky + s.benign;
        assert_near(
            total(&reports, id, app, "METRIC_REQUESTS", None),
            requests,
            "requests",
        );
        assert_near(
            total(&reports, id, app, "METRIC_ESCALATIONS_RAISED", None),
            s.risky + if app == "notes-app" { 2 * FEEDBACK } else { 0 },
            "escalations, detected and reported by clinicians",
        );
        assert_near(
            total(
                &reports,
                id,
                app,
                "METRIC_PHI_REDACTED",
                Some(serde_json::json!({"phi_type": 1})),
            ),
            s.redacts,
            "names redacted",
        );
        assert_near(
            total(
                &reports,
                id,
                app,
                "METRIC_EXCHANGES",
                Some(serde_json::json!({"segment_id": "seg-a"})),
            ),
            s.risky,
            "exchanges in the registered segment",
        );
        let tokens = total(&reports, id, app, "METRIC_TOKENS", None);
        assert!(
            (tokens - 100 * (s.risky + s.benign)).abs() <= 4,
            "tokens {tokens}"
        );
        // The other application saw no traffic from this agent: only zeros or nothing.
        let other = APPS[(i + 1) % 2];
        assert_eq!(total(&reports, id, other, "METRIC_REQUESTS", None), 0);
    }
    // Clinicians' feedback: counted per kind in both clinics' windows for notes-app; reported missed
    // risk and leaked PHI were escalated like detected risk.
    for (i, id) in ids.iter().enumerate() {
        for kind in 4..=7 {
            assert_near(
                total(
                    &reports,
                    id,
                    "notes-app",
                    "METRIC_ADVERSE_EVENTS",
                    Some(serde_json::json!({ "kind": kind })),
                ),
                FEEDBACK,
                &format!("feedback of kind {kind}"),
            );
        }
        let detected = if i == 0 { sent[0].risky } else { 0 };
        assert_near(
            total(&reports, id, "notes-app", "METRIC_ESCALATIONS_RAISED", None),
            detected + 2 * FEEDBACK,
            "escalations, detected and reported",
        );
    }
    // And they reach the vendor's scorecard: two clinics reported missed risk and leaked PHI.
    let cfg = cdir.path().join("controller.toml");
    let cfg = cfg.to_str().unwrap();
    let ctl = |args: &[&str]| {
        let (code, out, err) = run_to_end(&binary("readi-controller"), args, cdir.path());
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    // Registered when the tokens were issued; renamed here, which issues no new token.
    ctl(&[
        "vendor", "add", "--update", "--config", cfg, "--id", "acme", "--name", "Acme",
    ]);
    ctl(&[
        "app",
        "add",
        "--update",
        "--config",
        cfg,
        "--id",
        "notes-app",
        "--vendor",
        "acme",
        "--name",
        "Notes",
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let tomorrow = readi_common::date::ymd(now / 86_400 + 1);
    let out = ctl(&[
        "scorecard",
        "--config",
        cfg,
        "--app",
        "notes-app",
        "--period",
        "day",
        "--until",
        &tomorrow,
        "--format",
        "json",
    ]);
    let card: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(card["released"], true, "{card}");
    assert_eq!(card["clinics"], 2, "{card}");
    let criterion = |name: &str| {
        card["criteria"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["criterion"] == name)
            .cloned()
            .unwrap()
    };
    let safety = criterion("Safety");
    assert_eq!(safety["status"], "concern", "{safety}");
    assert_eq!(
        safety["rule_id"], "safety.no_reported_missed_risk",
        "{safety}"
    );
    let privacy = criterion("Privacy & confidentiality");
    assert_eq!(privacy["status"], "concern", "{privacy}");
    assert_eq!(
        privacy["rule_id"], "privacy.no_reported_phi_leak",
        "{privacy}"
    );
    let reported = |c: &serde_json::Value, kind: i64| {
        c["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["metric"] == "adverse_events" && e["labels"] == format!("{{kind={kind}}}"))
            .map(|e| e["value"].as_f64().unwrap())
    };
    let missed = reported(&safety, 4).expect("reported missed risk as evidence");
    assert!((missed - 2.0 * FEEDBACK as f64).abs() <= 4.0, "{safety}");
    assert!(reported(&privacy, 6).is_some(), "{privacy}");
    // The week's feedback rate is watched for drift.
    let rate = safety["rates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == "drift.safety.feedback_rate")
        .cloned()
        .unwrap();
    let last = rate["points"].as_array().unwrap().last().cloned().unwrap();
    assert!(
        last["released"] == true && last["value"].as_f64().unwrap() > 0.0,
        "{rate}"
    );
    assert_no_canary("the scorecard", out.as_bytes());

    // Effectiveness: change over each episode, by measure and arm, never the episode.
    let changes: i64 = reports
        .iter()
        .filter(|r| r["agent_id"] == ids[0].as_str())
        .flat_map(|r| r["apps"].as_array().cloned().unwrap_or_default())
        .flat_map(|a| a["cells"].as_array().cloned().unwrap_or_default())
        .filter(|c| {
            c["metric"] == "METRIC_OUTCOME_CHANGE"
                && c["labels"] == serde_json::json!({"measure": 1, "arm": 1})
        })
        .map(|c| {
            c["histogram"]["counts"]
                .as_array()
                .map_or(0, |v| v.iter().map(|x| x.as_i64().unwrap()).sum())
        })
        .sum();
    assert_near(changes, outcomes, "PHQ-9 changes in the AI-assisted arm");
    // Labels are only the normalised language and the registered segment.
    let text = serde_json::to_string(&reports).unwrap();
    assert!(
        text.contains("\"language\":\"es-MX\""),
        "languages are normalised"
    );
    assert!(!text.contains("Quackenbush-seg"));
}

/// Relays TCP to `target`, recording every byte in both directions.
fn recording_relay(target: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { break };
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        log.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_bytes_hold_no_canary_and_tampered_replayed_or_revoked_reports_are_refused() {
    let cdir = tempfile::tempdir().unwrap();
    let (mut controller, caddr) = start_controller(cdir.path(), "127.0.0.1:0", false);
    let (relay, wire) = recording_relay(caddr);
    let adir = tempfile::tempdir().unwrap();
    let token = enroll_token(cdir.path());
    let (mut agent, aaddr) = start_agent(
        adir.path(),
        &agent_extra(&format!("http://{relay}"), None, 1),
        &token,
    );
    traffic(aaddr, "notes-app", 15).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let entries = wait_delivered(aaddr, 1, Duration::from_secs(60)).await;
    assert_no_canary("the bytes on the wire", &wire.lock().unwrap());
    assert!(
        !wire.lock().unwrap().is_empty(),
        "the relay saw the reports"
    );

    let mut c = ControllerClient::connect(format!("http://{caddr}"))
        .await
        .unwrap();
    let submit = |signed: pb::SignedReport| cpb::SubmitReportRequest {
        report: Some(signed),
    };
    let original = pb::SignedReport::decode(entries[0].payload.as_slice()).unwrap();

    // A replay of the same bytes is acknowledged as a duplicate and stored nothing new.
    let r = c
        .submit_report(submit(original.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(r.duplicate);

    // One flipped byte: the signature no longer verifies.
    let mut tampered = original.clone();
    let at = tampered.report.len() - 3;
    tampered.report[at] ^= 0x01;
    let err = c.submit_report(submit(tampered)).await.unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::Unauthenticated | tonic::Code::InvalidArgument
        ),
        "{err:?}"
    );

    // An unknown field appended: refused before anything else.
    let mut extended = original.clone();
    extended.report.extend_from_slice(&[0x98, 0x06, 0x01]);
    let err = c.submit_report(submit(extended)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("unknown"), "{}", err.message());

    // A different report under a used sequence number from a key enrolled for it: a replay.
    let rng = ring::rand::SystemRandom::new();
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let key = ring::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    let public = ring::signature::KeyPair::public_key(&key).as_ref().to_vec();
    let enrolled = c
        .enroll(cpb::EnrollRequest {
            enrollment_token: enroll_token(cdir.path()),
            public_key: public,
        })
        .await
        .unwrap()
        .into_inner();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let own = |start: i64| {
        let report = pb::Report {
            egress_head: None,
            audit_head: None,
            schema_version: 1,
            agent_id: enrolled.agent_id.clone(),
            sequence: 1,
            window_start: Some(prost_types::Timestamp {
                seconds: start,
                nanos: 0,
            }),
            window_end: Some(prost_types::Timestamp {
                seconds: start + 60,
                nanos: 0,
            }),
            apps: Vec::new(),
            privacy: None,
        }
        .encode_to_vec();
        pb::SignedReport {
            signature: key.sign(&report).as_ref().to_vec(),
            report,
        }
    };
    c.submit_report(submit(own(now - 600))).await.unwrap();
    let err = c.submit_report(submit(own(now - 300))).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err:?}");
    // An enrollment token works once.
    let token_again = enroll_token(cdir.path());
    c.enroll(cpb::EnrollRequest {
        enrollment_token: token_again.clone(),
        public_key: vec![7u8; 32],
    })
    .await
    .unwrap();
    let err = c
        .enroll(cpb::EnrollRequest {
            enrollment_token: token_again,
            public_key: vec![8u8; 32],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    // Revoked: the agent's next report is refused and stays in its outbox.
    let id = agent_id_of(&entries);
    let cfg = cdir.path().join("controller.toml");
    let (code, _, err_text) = run_to_end(
        &binary("readi-controller"),
        &["agents", "revoke", "--config", cfg.to_str().unwrap(), &id],
        cdir.path(),
    );
    assert_eq!(code, 0, "{err_text}");
    let err = c.submit_report(submit(original)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let before = ledger(aaddr).await.len();
    traffic(aaddr, "notes-app", 3).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let undelivered = loop {
        let l = ledger(aaddr).await;
        if l.len() > before {
            break l.into_iter().filter(|e| e.delivered_at.is_none()).count();
        }
        assert!(Instant::now() < deadline, "no report after revocation");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(undelivered >= 1);
    assert!(
        ledger(aaddr).await.iter().any(|e| e.delivered_at.is_none()),
        "a refused report stays in the outbox"
    );

    // The controller's own metrics count the refusals, and say nothing of what was in the reports.
    let out = controller.output();
    let line = out
        .lines()
        .find(|l| l.contains("\"message\":\"Self-metrics\""))
        .expect("the controller's metrics address is logged");
    let metrics: SocketAddr = readi_tests::log_field(line, "metrics_addr")
        .parse()
        .unwrap();
    let text = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(metrics).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
    .await
    .unwrap();
    for want in [
        "readi_controller_events_total{event=\"rejected.replay\"} 1",
        "readi_controller_events_total{event=\"rejected.unknown_fields\"} 1",
        "readi_controller_agents ",
        "readi_controller_reports_stored ",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    assert_no_canary("the controller's metrics", text.as_bytes());

    stop(&mut agent);
    stop(&mut controller);
    let (code, _, counters) = run_to_end(
        &binary("readi-controller"),
        &["reports", "--json", "--config", cfg.to_str().unwrap()],
        cdir.path(),
    );
    assert_eq!(code, 0);
    for counter in [
        "duplicates: ",
        "rejected.unknown_fields: 1",
        "rejected.replay: 1",
        "rejected.enrollment: 1",
    ] {
        assert!(counters.contains(counter), "{counter} in {counters}");
    }
    assert!(counters.contains("rejected.revoked"), "{counters}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_and_crashes_deliver_every_report_exactly_once() {
    let cdir = tempfile::tempdir().unwrap();
    let adir = tempfile::tempdir().unwrap();
    let (mut controller, listen, mut agent, aaddr, extra) =
        reporting_pair(cdir.path(), adir.path(), 4).await;

    // The controller goes away for several windows; every window with traffic makes a report.
    stop(&mut controller);
    for _ in 0..4 {
        traffic(aaddr, "chat-app", 2).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let queued = ledger(aaddr).await;
    let waiting = queued.iter().filter(|e| e.delivered_at.is_none()).count();
    assert!(
        waiting >= 3,
        "reports wait in the outbox while the controller is down: {waiting}"
    );

    let (mut controller, _) = start_controller(cdir.path(), &listen, false);
    let delivered = wait_delivered(aaddr, queued.len(), Duration::from_secs(60)).await;
    assert!(delivered.len() >= queued.len());

    // The agent dies hard right after writing a report, with its upload likely in flight.
    traffic(aaddr, "notes-app", 3).await;
    agent.wait_for_log(
        "Report written to the egress ledger",
        Duration::from_secs(20),
    );
    agent.kill_hard();
    let (mut agent, aaddr) = start_agent(adir.path(), &extra, "");
    traffic(aaddr, "notes-app", 2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let entries = wait_delivered(aaddr, delivered.len() + 1, Duration::from_secs(60)).await;
    let id = agent_id_of(&entries);

    stop(&mut agent);
    stop(&mut controller);
    let stored = stored_sequences(cdir.path(), &id, &[]);
    let written: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
    assert_eq!(
        stored, written,
        "every written report stored exactly once, no gaps"
    );
    assert_eq!(written, (1..=written.len() as u64).collect::<Vec<_>>());
}

/// The controller comes and goes for over a minute, killed hard mid-upload as often as not, while
/// the agent keeps writing a report every window: when it stays up, it holds every report once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_controller_gets_every_report_exactly_once() {
    let cdir = tempfile::tempdir().unwrap();
    let adir = tempfile::tempdir().unwrap();
    let (mut controller, listen, mut agent, aaddr, _) =
        reporting_pair(cdir.path(), adir.path(), 2).await;

    let started = Instant::now();
    let mut cycle = 0u64;
    while started.elapsed() < Duration::from_secs(70) {
        // Up for 0.3-2.7 s, then killed without warning; down for 0.5-2.5 s. Traffic throughout.
        let up = Duration::from_millis(300 + (cycle * 700) % 2400);
        let down = Duration::from_millis(500 + (cycle * 900) % 2000);
        traffic(
            aaddr,
            if cycle.is_multiple_of(2) {
                "notes-app"
            } else {
                "chat-app"
            },
            2,
        )
        .await;
        tokio::time::sleep(up).await;
        controller.kill_hard();
        traffic(aaddr, "notes-app", 1).await;
        tokio::time::sleep(down).await;
        controller = start_controller(cdir.path(), &listen, false).0;
        cycle += 1;
    }
    traffic(aaddr, "notes-app", 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let written = ledger(aaddr).await.len();
    let entries = wait_delivered(aaddr, written, Duration::from_secs(90)).await;
    let id = agent_id_of(&entries);
    stop(&mut agent);
    stop(&mut controller);

    let stored = stored_sequences(cdir.path(), &id, &[]);
    let sequences: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
    assert!(
        sequences.len() >= 20,
        "{} reports over {cycle} cycles",
        sequences.len()
    );
    assert_eq!(sequences, (1..=sequences.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        stored, sequences,
        "every report stored exactly once over {cycle} cycles"
    );
}

/// The controller's disk fills while reports arrive: it refuses them UNAVAILABLE and stops non-zero
/// for its supervisor; the agent keeps them in its outbox, and once space returns and the controller
/// is restarted it holds every report exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_whose_disk_fills_stops_and_loses_no_report() {
    let cdir = tempfile::tempdir().unwrap();
    let data = cdir.path().join("data");
    if readi_tests::mount_tmpfs(&data, 24).is_none() {
        readi_tests::skipped("this host does not allow mounting a tmpfs (needs CAP_SYS_ADMIN)");
        return;
    }
    let _unmount = readi_tests::Unmount(data.clone());
    let adir = tempfile::tempdir().unwrap();
    let (mut controller, listen, mut agent, aaddr, _) =
        reporting_pair(cdir.path(), adir.path(), 2).await;

    let filler = readi_tests::fill(&data);
    let started = Instant::now();
    while !controller.output().contains("Stopping: ") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the controller never noticed its full disk:\n{}",
            controller.output()
        );
        traffic(aaddr, "notes-app", 1).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let status = controller.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "the controller must exit non-zero");
    assert!(controller.output().contains("full disk"));
    traffic(aaddr, "chat-app", 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waiting = ledger(aaddr).await;
    assert!(waiting.iter().any(|e| e.delivered_at.is_none()));

    std::fs::remove_file(&filler).unwrap();
    let (mut controller, _) = start_controller(cdir.path(), &listen, false);
    let entries = wait_delivered(aaddr, waiting.len(), Duration::from_secs(60)).await;
    let id = agent_id_of(&entries);
    stop(&mut agent);
    stop(&mut controller);
    let stored = stored_sequences(cdir.path(), &id, &[]);
    let sequences: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=sequences.len() as u64).collect::<Vec<_>>());
    assert_eq!(stored, sequences, "every report stored exactly once");
}

/// A controller in `dir` on the test's PostgreSQL database (its URL in `env`), serving on `listen`.
fn start_pg_controller(dir: &Path, listen: &str, env: &[(&str, &str)]) -> (Process, SocketAddr) {
    let mut storage =
        "backend = \"postgres\"\npostgres_url = { env = \"READI_CONTROLLER_DATABASE_URL\" }\n"
            .to_owned();
    if let Ok(ca) = std::env::var("READI_TEST_POSTGRES_CA") {
        storage.push_str(&format!("postgres_ca = \"{ca}\"\n"));
    }
    let cfg = controller_config_with(dir, listen, false, &storage);
    let p = Process::start_env(
        &binary("readi-controller"),
        &["run", "--log-json", "--config", cfg.to_str().unwrap()],
        dir,
        env,
    );
    let addr = p.wait_serving();
    (p, addr)
}

/// Two controller replicas over one PostgreSQL database: an agent enrolled on one later reports to
/// the other, which knows it from the database; every report is stored once and both replicas list
/// the same reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_share_agents_and_store_each_report_once() {
    let Some(url) = readi_tests::postgres_schema_url() else {
        return;
    };
    let env = [("READI_CONTROLLER_DATABASE_URL", url.as_str())];
    let start = |dir: &Path| start_pg_controller(dir, "127.0.0.1:0", &env);
    let (adir, bdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, a_addr) = start(adir.path());
    let (mut b, b_addr) = start(bdir.path());
    assert!(
        a.output().contains("Applied database migration")
            || b.output().contains("Applied database migration")
    );

    let agent_dir = tempfile::tempdir().unwrap();
    let token = enroll_token_env(adir.path(), &env);
    let (mut agent, aaddr) = start_agent(
        agent_dir.path(),
        &agent_extra(&format!("http://{a_addr}"), None, 1),
        &token,
    );
    traffic(aaddr, "notes-app", 3).await;
    let first = wait_delivered(aaddr, 1, Duration::from_secs(30)).await;
    stop(&mut agent);

    // The same agent (same identity, no token) now reports to the other replica.
    let (mut agent, aaddr) = start_agent(
        agent_dir.path(),
        &agent_extra(&format!("http://{b_addr}"), None, 1),
        "",
    );
    traffic(aaddr, "chat-app", 3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let entries = wait_delivered(aaddr, first.len() + 1, Duration::from_secs(60)).await;
    let id = agent_id_of(&entries);
    stop(&mut agent);
    stop(&mut a);
    stop(&mut b);

    let listed = |dir: &Path| stored_sequences(dir, &id, &env);
    let sequences: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=sequences.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        listed(adir.path()),
        sequences,
        "replica A lists every report once"
    );
    assert_eq!(listed(bdir.path()), sequences, "replica B lists the same");
}

/// PostgreSQL's newest installed `bin` directory, if any.
fn postgres_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Runs `pg_ctl` on the cluster in `data` as the postgres user.
fn pg_ctl(bin: &Path, data: &Path, args: &[&str]) {
    let status = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("pg_ctl"))
        .arg("-D")
        .arg(data)
        .args(args)
        .status()
        .expect("running pg_ctl");
    assert!(status.success(), "pg_ctl {args:?} failed");
}

/// The database goes away under a controller for several windows: submissions are refused
/// UNAVAILABLE and the agent keeps its reports; the database comes back and the controller uses it
/// again by itself, with no restart; every report is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_rides_out_losing_its_database() {
    if std::env::var("READI_TEST_POSTGRES_URL").is_err() {
        readi_tests::skipped("READI_TEST_POSTGRES_URL is not set (.ci/postgres starts a server)");
        return;
    }
    let Some(bin) = postgres_bin() else {
        readi_tests::skipped("no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    // A cluster of its own, since this test stops it.
    let pg = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        pg.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/postgres");
    let cluster = pg.path().join("pg");
    let out = std::process::Command::new(&script)
        .env("READI_PG_PORT", port.to_string())
        .env("READI_PG_DIR", &cluster)
        .output()
        .expect("starting a cluster");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let data = cluster.join("data");
    struct Stop(PathBuf, PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.0.join("pg_ctl"))
                .arg("-D")
                .arg(&self.1)
                .args(["stop", "-m", "immediate"])
                .status();
        }
    }
    let _stop = Stop(bin.clone(), data.clone());

    let env = [("READI_CONTROLLER_DATABASE_URL", url.as_str())];
    let storage = format!(
        "backend = \"postgres\"\npostgres_url = {{ env = \"READI_CONTROLLER_DATABASE_URL\" }}\npostgres_ca = \"{}\"\n",
        cluster.join("tls/ca.pem").display()
    );
    let cdir = tempfile::tempdir().unwrap();
    let cfg = controller_config_with(cdir.path(), "127.0.0.1:0", false, &storage);
    let mut controller = Process::start_env(
        &binary("readi-controller"),
        &["run", "--log-json", "--config", cfg.to_str().unwrap()],
        cdir.path(),
        &env,
    );
    let caddr = controller.wait_serving();
    let adir = tempfile::tempdir().unwrap();
    let token = enroll_token_env(cdir.path(), &env);
    let (mut agent, aaddr) = start_agent(
        adir.path(),
        &agent_extra(&format!("http://{caddr}"), None, 1),
        &token,
    );
    traffic(aaddr, "notes-app", 2).await;
    wait_delivered(aaddr, 1, Duration::from_secs(30)).await;

    pg_ctl(&bin, &data, &["stop", "-m", "fast", "-w"]);
    for _ in 0..4 {
        traffic(aaddr, "chat-app", 2).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    let waiting = ledger(aaddr).await;
    assert!(
        waiting.iter().filter(|e| e.delivered_at.is_none()).count() >= 2,
        "reports wait in the outbox while the database is down"
    );
    controller.wait_for_log("Controller store failure", Duration::from_secs(10));

    // pg_ctl restart starts a stopped cluster with the options it last ran with.
    pg_ctl(
        &bin,
        &data,
        &["restart", "-w", "-l", cluster.join("log").to_str().unwrap()],
    );
    let entries = wait_delivered(aaddr, waiting.len(), Duration::from_secs(60)).await;
    let id = agent_id_of(&entries);
    stop(&mut agent);
    stop(&mut controller);
    let stored = stored_sequences(cdir.path(), &id, &env);
    let sequences: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=sequences.len() as u64).collect::<Vec<_>>());
    assert_eq!(stored, sequences, "every report stored exactly once");
}

/// A TCP balancer in front of controller replicas, as a Kubernetes Service is: each connection goes
/// to the next replica that accepts one.
fn balancer(targets: Vec<SocketAddr>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (next, conn) in listener.incoming().enumerate() {
            let Ok(client) = conn else { break };
            let server = (0..targets.len()).find_map(|i| {
                let t = targets[(next + i) % targets.len()];
                TcpStream::connect_timeout(&t, Duration::from_millis(300)).ok()
            });
            let Some(server) = server else { continue };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    addr
}

/// Two controller replicas over one PostgreSQL database behind a balancer, three agents reporting
/// every second under load; one replica is killed mid-load and later restarted. Registry and
/// enrollment tokens made through one replica's CLI serve at both; every report is stored exactly
/// once; both replicas give identical scorecards, counting every clinic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_survive_a_killed_replica_and_agree_on_scorecards() {
    let Some(url) = readi_tests::postgres_schema_url() else {
        return;
    };
    let env = [("READI_CONTROLLER_DATABASE_URL", url.as_str())];
    // Fixed ports, so the balancer finds a restarted replica where it was.
    let free = || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let (a_listen, b_listen) = (free(), free());
    let start = |dir: &Path, listen: &str| start_pg_controller(dir, listen, &env);
    let cli = |dir: &Path, args: &[&str]| {
        let cfg = dir.join("controller.toml");
        let mut all = args.to_vec();
        all.extend(["--config", cfg.to_str().unwrap()]);
        let (code, out, err) =
            readi_tests::run_to_end_env(&binary("readi-controller"), &all, dir, &env);
        assert_eq!(code, 0, "{args:?}: {err}");
        out.trim().to_owned()
    };
    let (adir, bdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, a_addr) = start(adir.path(), &a_listen);
    let (mut b, b_addr) = start(bdir.path(), &b_listen);
    let lb = balancer(vec![a_addr, b_addr]);

    // Registered through A's CLI, seen by B: the registry lives in the database.
    cli(
        adir.path(),
        &["vendor", "add", "--id", "acme", "--name", "Acme"],
    );
    for app in APPS {
        cli(
            adir.path(),
            &["app", "add", "--id", app, "--vendor", "acme", "--name", app],
        );
    }
    let operator = cli(bdir.path(), &["token", "add", "--operator"]);

    let mut agents = Vec::new();
    let mut dirs = Vec::new();
    for i in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        // Tokens issued through either replica's CLI, redeemed through the balancer.
        let token = enroll_token_env(if i % 2 == 0 { adir.path() } else { bdir.path() }, &env);
        let (p, addr) = start_agent(
            dir.path(),
            &agent_extra(&format!("http://{lb}"), None, 1),
            &token,
        );
        agents.push((p, addr));
        dirs.push(dir);
    }
    let load = |rounds: usize| {
        let addrs: Vec<SocketAddr> = agents.iter().map(|(_, a)| *a).collect();
        async move {
            for _ in 0..rounds {
                let calls: Vec<_> = addrs
                    .iter()
                    .map(|a| tokio::spawn(traffic(*a, "notes-app", 2)))
                    .collect();
                for c in calls {
                    c.await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    };
    load(4).await;
    for (_, addr) in &agents {
        wait_delivered(*addr, 1, Duration::from_secs(30)).await;
    }

    // Mid-load: replica A dies without warning; the balancer sends everything to B.
    let loading = tokio::spawn(load(8));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.kill_hard();
    loading.await.unwrap();
    // A comes back on its address and takes its share again.
    let (mut a, _) = start(adir.path(), &a_listen);
    load(4).await;

    let mut ledgers = Vec::new();
    for (mut p, addr) in agents {
        let mut entries = ledger(addr).await;
        let want = entries.len();
        entries = wait_delivered(addr, want, Duration::from_secs(60)).await;
        stop(&mut p);
        ledgers.push(entries);
    }

    // Identical scorecards from both replicas (today included), once folding has settled.
    let card = |addr: SocketAddr| {
        let token = operator.clone();
        async move {
            let mut c = ControllerClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
            let req = cpb::GetScorecardRequest {
                app_id: "notes-app".into(),
                period: cpb::Period::Days30 as i32,
                until: Some(prost_types::Timestamp {
                    seconds: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs() as i64
                        + 86_400,
                    nanos: 0,
                }),
            };
            c.get_scorecard(readi_tests::with_token(req, &token))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (from_a, from_b) = loop {
        let (x, y) = (card(a_addr).await, card(b_addr).await);
        if x == y || Instant::now() > deadline {
            break (x, y);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(from_a, from_b, "both replicas give the same scorecard");
    assert_eq!(from_a.clinics, 3, "every clinic counted: {from_a:?}");
    stop(&mut a);
    stop(&mut b);

    for entries in &ledgers {
        let id = agent_id_of(entries);
        let sequences: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
        assert!(sequences.len() >= 5, "{} reports", sequences.len());
        assert_eq!(sequences, (1..=sequences.len() as u64).collect::<Vec<_>>());
        assert_eq!(
            stored_sequences(bdir.path(), &id, &env),
            sequences,
            "every report of {id} stored exactly once"
        );
    }
}

/// The newest audit records cut with their checkpoints and the high-water mark file rolled back
/// with them: nothing on the clinic host shows the cut any more, but the audit chain head that
/// rode in a delivered report does, and `audit verify` names the missing range from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_a_cut_tail_from_the_controllers_anchor() {
    let (cdir, adir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut controller, _, mut agent, aaddr, _) =
        reporting_pair(cdir.path(), adir.path(), 2).await;
    let token = enroll_token(cdir.path());
    // The mark as it stood before the records to be cut.
    let old_mark = std::fs::read(adir.path().join("data/hwm")).unwrap();
    let old_seq: u64 = {
        let text = String::from_utf8(old_mark.clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        v["audit_seq"].as_u64().unwrap()
    };
    let mut gw = GatewayClient::connect(format!("http://{aaddr}"))
        .await
        .unwrap();
    let red = gw
        .redact(apb::RedactRequest {
            text: "Pt Zebulon Quackenbush called.".into(),
            app_id: "notes-app".into(),
            session_id: "s-anchor".into(),
            style: 0,
        })
        .await
        .unwrap()
        .into_inner();
    for _ in 0..6 {
        gw.reidentify(apb::ReidentifyRequest {
            text: red.redacted_text.clone(),
            app_id: "notes-app".into(),
            session_id: "s-anchor".into(),
        })
        .await
        .unwrap();
    }
    // A report written after those records carries a head past them (a window with traffic).
    let written = ledger(aaddr).await.len();
    traffic(aaddr, "notes-app", 2).await;
    wait_delivered(aaddr, written + 1, Duration::from_secs(30)).await;
    stop(&mut agent);

    let last = {
        let db = sled::open(adir.path().join("data/agent.db")).unwrap();
        let tree = db.open_tree("audit").unwrap();
        let checkpoints = db.open_tree("audit_checkpoints").unwrap();
        for k in tree.range((old_seq + 1).to_be_bytes()..).keys() {
            tree.remove(k.unwrap()).unwrap();
        }
        for k in checkpoints.range((old_seq + 1).to_be_bytes()..).keys() {
            checkpoints.remove(k.unwrap()).unwrap();
        }
        db.flush().unwrap();
        old_seq
    };
    std::fs::write(adir.path().join("data/hwm"), &old_mark).unwrap();
    let cfg = adir.path().join("readi-agent.toml");
    let verify = || {
        readi_tests::run_to_end_env(
            &binary("readi-agent"),
            &["audit", "verify", "--config", cfg.to_str().unwrap()],
            adir.path(),
            &[("READI_ENROLL_TOKEN", token.as_str())],
        )
    };
    let (code, out, err) = verify();
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains(&format!("records #{} to #", last + 1))
            && out.contains("the controller's anchor says"),
        "{out}"
    );
    assert!(!out.contains("Quackenbush"), "{out}");

    // With the controller away, the local checks pass and the output says the anchor was not
    // checked rather than claiming more than it knows.
    stop(&mut controller);
    let (code, out, err) = verify();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("controller anchor: not checked"), "{out}");
}
