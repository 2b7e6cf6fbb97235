//! The tour: a controller and two clinic agents on loopback with temporary stores, sample
//! note-taking and patient-chat traffic with PHI and risk in it, and a narrated tour of what happened:
//! redactions with their rules, findings and escalations, what left each clinic (the egress ledger,
//! decoded), and the controller's scorecards. Everything here is sample data.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use readi_common::secret::SecretSource;
use readi_proto::agent::v1::{
    self as pb, compliance_client::ComplianceClient, gateway_client::GatewayClient,
};
use readi_proto::controller::v1::{self as cpb, controller_client::ControllerClient};
use tokio::sync::watch;

use readi_agent::config::{ControllerLink, ReportingConfig};

/// The applications the sample traffic belongs to.
const APPS: [&str; 2] = ["notes-app", "chat-app"];

/// Sample traffic: (clinic, application, kind, text, language, segment). All names and numbers are
/// invented.
const TRAFFIC: &[(usize, &str, Kind, &str, &str, &str)] = &[
    (
        0,
        "notes-app",
        Kind::Note,
        "Pt Zebulon Quackenbush (MRN 4471920), 34 y/o, seen 3/14 by Dr. Whitfield. Lives with wife Mary at 42 Elm St, Springfield. Phone 617-555-0142. Reports low mood; denies SI.",
        "en",
        "adult",
    ),
    (
        0,
        "notes-app",
        Kind::Assess,
        "Pt reports passive SI, wishes she could sleep and not wake up; no plan or intent. Safety plan reviewed.",
        "en",
        "adult",
    ),
    (
        0,
        "chat-app",
        Kind::Assess,
        "I can't do this anymore. I have the pills saved up and I'm going to take them all tonight.",
        "en",
        "adult",
    ),
    (
        0,
        "chat-app",
        Kind::Assess,
        "Slept better this week and went for a walk with my sister.",
        "en",
        "adult",
    ),
    (
        0,
        "chat-app",
        Kind::Assess,
        "Me siento mejor esta semana, gracias.",
        "es-MX",
        "adolescent",
    ),
    (
        1,
        "notes-app",
        Kind::Note,
        "Maria Delgado-Ruiz, DOB 04/12/1961, called from 508-555-0199 about her refill; email maria.dr@example.org. Son Tomas drove her to the Brookline clinic.",
        "en",
        "adult",
    ),
    (
        1,
        "notes-app",
        Kind::Assess,
        "Hx of cutting, none since 2019. Denies current SI/HI.",
        "en",
        "adult",
    ),
    (
        1,
        "chat-app",
        Kind::Assess,
        "My stepdad hits me when he drinks and I'm scared to go home.",
        "en",
        "adolescent",
    ),
    (
        1,
        "chat-app",
        Kind::Assess,
        "Work has been stressful but I'm managing with the breathing exercises.",
        "en",
        "adult",
    ),
    (
        1,
        "chat-app",
        Kind::Assess,
        "Estoy durmiendo mejor.",
        "es",
        "adolescent",
    ),
];

#[derive(Clone, Copy)]
enum Kind {
    Note,
    Assess,
}

fn step(n: usize, total: usize, what: &str) {
    println!("\n[{n}/{total}] {what}");
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

fn write_secret(path: &Path, value: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(value.as_bytes())?;
    Ok(())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs the demo; with `exit`, stops after the tour instead of waiting for Ctrl-C.
pub(crate) async fn run(exit: bool) -> anyhow::Result<()> {
    let total = 7;
    let dir = tempfile::Builder::new().prefix("readi-demo-").tempdir()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    step(
        1,
        total,
        "Starting a controller (temporary store, loopback)",
    );
    let cdir = dir.path().join("controller");
    let mut cconfig = readi_controller::Config::default();
    cconfig.storage.data_dir = cdir.join("data");
    let dashboard = free_port()?;
    cconfig.dashboard.listen = dashboard.to_string();
    // Demo settings: two clinics are enough to release figures, and small samples can be judged.
    cconfig.release.min_clinics = 2;
    cconfig.thresholds = readi_controller::scorecard::Thresholds {
        min_exchanges: 5,
        min_acknowledgements: 1,
        min_group_exchanges: 2,
        min_sessions: 2,
        min_outcomes: 2,
        min_requests: 5,
        ..Default::default()
    };
    let clistener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let caddr = clistener.local_addr()?;
    tokio::spawn(readi_controller::run(
        clistener,
        cconfig.clone(),
        stopped(stop_rx.clone()),
    ));
    let records = readi_controller::records::FileRecords::new(&cconfig.storage.data_dir);
    let registry = readi_controller::registry::Registry::in_dir(&cconfig.storage.data_dir);
    registry.add_vendor("acme", "Acme Behavioral AI")?;
    for (app, name) in APPS
        .iter()
        .zip(["Acme Notes (ambient scribe)", "Acme Chat (patient chat)"])
    {
        registry.add_app(app, "acme", name)?;
    }
    let operator = registry.add_token(readi_controller::registry::Principal::Operator)?;
    let vendor =
        registry.add_token(readi_controller::registry::Principal::Vendor("acme".into()))?;
    println!("  controller gRPC {caddr}, dashboard http://{dashboard}");
    println!("  vendor acme registered with notes-app and chat-app");

    step(2, total, "Starting two clinic agents and enrolling them");
    let mut agents = Vec::new();
    for clinic in 0..2 {
        let adir = dir.path().join(format!("clinic-{clinic}"));
        std::fs::create_dir_all(&adir)?;
        let apps: Vec<String> = APPS.iter().map(|a| (*a).to_owned()).collect();
        let token = readi_controller::enrollment::issue(&records, &apps, 3600, now())?;
        let token_file = adir.join("enrollment-token");
        write_secret(&token_file, &token)?;
        let mut config = readi_agent::Config::default();
        config.storage.data_dir = adir.join("data");
        config.controller = Some(ControllerLink {
            url: format!("http://{caddr}"),
            enrollment_token: Some(SecretSource::File(token_file)),
            ca: None,
            retry_min_ms: 200,
            retry_max_secs: 2,
        });
        config.reporting = ReportingConfig {
            window_secs: 2,
            apps,
            segments: vec!["adult".into(), "adolescent".into()],
            k: 2,
            epsilon_per_cell: 2.0,
            session_idle_secs: 1,
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(readi_agent::run(listener, config, stopped(stop_rx.clone())));
        agents.push(addr);
        println!("  clinic {} agent at {addr}", ["A", "B"][clinic]);
    }
    println!(
        "  demo privacy settings: k = 2, epsilon 2 per cell, 2-second windows (production defaults: \
         k = 11, epsilon 0.5, hourly)"
    );
    let connect = |a: SocketAddr| async move {
        for _ in 0..100 {
            if let Ok(c) = GatewayClient::connect(format!("http://{a}")).await {
                return Ok(c);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("agent at {a} did not start")
    };
    let mut gateways = Vec::new();
    for a in &agents {
        gateways.push(connect(*a).await?);
    }

    step(
        3,
        total,
        "Playing sample traffic: notes are redacted, every exchange is assessed",
    );
    let mut escalations = Vec::new();
    for (i, (clinic, app, kind, text, language, segment)) in TRAFFIC.iter().enumerate() {
        let gw = &mut gateways[*clinic];
        let session = format!("visit-{clinic}-{}", i % 3);
        let clinic_name = ["A", "B"][*clinic];
        match kind {
            Kind::Note => {
                let r = gw
                    .redact(pb::RedactRequest {
                        text: (*text).to_owned(),
                        app_id: (*app).to_owned(),
                        session_id: session.clone(),
                        style: pb::RedactionStyle::Tag as i32,
                    })
                    .await?
                    .into_inner();
                println!(
                    "  clinic {clinic_name} {app} note:\n    in:  {text}\n    out: {}",
                    r.redacted_text
                );
                for s in &r.spans {
                    let kind = pb::PhiType::try_from(s.r#type).map_or("?", |t| t.as_str_name());
                    println!(
                        "         {} -> {} (rule {})",
                        kind.trim_start_matches("PHI_TYPE_"),
                        s.replacement,
                        s.rule_id
                    );
                }
            }
            Kind::Assess => {
                let r = gw
                    .assess(pb::AssessRequest {
                        app_id: (*app).to_owned(),
                        session_id: session.clone(),
                        input: vec![pb::Turn {
                            role: if *app == "notes-app" {
                                pb::Role::Note
                            } else {
                                pb::Role::User
                            } as i32,
                            text: (*text).to_owned(),
                        }],
                        language: (*language).to_owned(),
                        segment_id: (*segment).to_owned(),
                        llm_latency_ms: 700 + 40 * i as u32,
                        llm_tokens: 120,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                let verdict = r
                    .verdict()
                    .as_str_name()
                    .trim_start_matches("VERDICT_")
                    .to_ascii_lowercase();
                println!(
                    "  clinic {clinic_name} {app} [{language}]: \"{text}\"\n    verdict {verdict}"
                );
                for f in r.findings.iter().filter(|f| !f.negated) {
                    let cat = pb::Category::try_from(f.category).map_or("?", |c| c.as_str_name());
                    println!(
                        "      finding {} (rule {}, span {}..{}{})",
                        cat.trim_start_matches("CATEGORY_").to_ascii_lowercase(),
                        f.rule_id,
                        f.start,
                        f.end,
                        if f.escalates { ", escalates" } else { "" }
                    );
                }
                if !r.escalation_id.is_empty() {
                    println!(
                        "      -> escalation {} raised to the clinic's on-call clinician",
                        r.escalation_id
                    );
                    escalations.push((*clinic, r.escalation_id));
                }
            }
        }
    }

    // The same clinics keep working: more visits like these, without the narration, so the
    // reports have enough in them to clear k and the scorecards have something to judge.
    let rounds = 12;
    print!(
        "  ... and {} more exchanges like these",
        rounds * TRAFFIC.len()
    );
    for round in 1..=rounds {
        for (i, (clinic, app, kind, text, language, segment)) in TRAFFIC.iter().enumerate() {
            let gw = &mut gateways[*clinic];
            let session = format!("visit-{clinic}-{round}-{}", i % 3);
            match kind {
                Kind::Note => {
                    gw.redact(pb::RedactRequest {
                        text: (*text).to_owned(),
                        app_id: (*app).to_owned(),
                        session_id: session,
                        style: pb::RedactionStyle::Tag as i32,
                    })
                    .await?;
                }
                Kind::Assess => {
                    let r = gw
                        .assess(pb::AssessRequest {
                            app_id: (*app).to_owned(),
                            session_id: session,
                            input: vec![pb::Turn {
                                role: if *app == "notes-app" { pb::Role::Note } else { pb::Role::User }
                                    as i32,
                                text: (*text).to_owned(),
                            }],
                            output: Some(pb::Turn {
                                role: pb::Role::Assistant as i32,
                                text: "Thank you for telling me. If you are in danger, call or text 988 now; \
                                       I am letting your care team know."
                                    .into(),
                            }),
                            language: (*language).to_owned(),
                            segment_id: (*segment).to_owned(),
                            llm_latency_ms: 600 + 35 * (i as u32 % 7),
                            llm_tokens: 140,
                            ..Default::default()
                        })
                        .await?
                        .into_inner();
                    if !r.escalation_id.is_empty() {
                        escalations.push((*clinic, r.escalation_id));
                    }
                }
            }
        }
        // PHQ-9 at intake and at follow-up for two episodes per clinic and round: one whose care
        // used the application, one in standard care, so the arms can be compared.
        let r = round as i32;
        let episodes = [
            (pb::CareArm::AiAssisted, "ai", 18 - r % 3, 10 - r % 4),
            (pb::CareArm::StandardCare, "std", 17 - r % 3, 15 - r % 3),
        ];
        for (clinic, gw) in gateways.iter_mut().enumerate() {
            for (arm, tag, intake, follow_up) in episodes {
                for (score, days_ago) in [(intake, 42), (follow_up, 1)] {
                    gw.record_outcome(pb::RecordOutcomeRequest {
                        app_id: "chat-app".into(),
                        session_id: format!("visit-{clinic}-{round}-0"),
                        episode_id: format!("episode-{tag}-{clinic}-{round}"),
                        arm: arm as i32,
                        observation: Some(pb::record_outcome_request::Observation::Score(
                            pb::OutcomeScore {
                                measure: pb::Measure::Phq9 as i32,
                                score,
                                taken_at: Some(prost_types::Timestamp {
                                    seconds: now() - days_ago * 86_400,
                                    nanos: 0,
                                }),
                            },
                        )),
                    })
                    .await?;
                }
            }
        }
    }
    println!();

    step(4, total, "A clinician acknowledges the escalations");
    for (shown, (clinic, id)) in escalations.iter().enumerate() {
        let r = gateways[*clinic]
            .acknowledge_escalation(pb::AcknowledgeEscalationRequest {
                escalation_id: id.clone(),
                clinician_id: "dr-on-call".into(),
                disposition: pb::Disposition::Actioned as i32,
            })
            .await?
            .into_inner();
        if shown < 3 {
            println!(
                "  {id} acknowledged after {} s (audited)",
                r.seconds_to_acknowledge
            );
        }
    }
    println!(
        "  {} escalation(s) acknowledged by dr-on-call",
        escalations.len()
    );
    // The clinician also disagrees with one flag: feedback becomes an adverse event, counted in the
    // window like everything else, so the scorecards see how often clinicians push back.
    if let Some((clinic, id)) = escalations.first() {
        let r = gateways[*clinic]
            .submit_feedback(pb::SubmitFeedbackRequest {
                app_id: "chat-app".into(),
                session_id: format!("visit-{clinic}-1-0"),
                exchange_id: String::new(),
                kind: Some(pb::submit_feedback_request::Kind::FalseAlarmFindingId(
                    format!("{id}-finding"),
                )),
            })
            .await?
            .into_inner();
        println!(
            "  dr-on-call reports a false alarm: adverse event {} recorded (audited; only its count \
             leaves)",
            r.adverse_event_id
        );
    }

    step(
        5,
        total,
        "Closing metric windows and delivering reports (only aggregates leave)",
    );
    let started = Instant::now();
    let mut ledgers = Vec::new();
    for a in &agents {
        let mut c = ComplianceClient::connect(format!("http://{a}")).await?;
        let entries = loop {
            let r = c
                .list_egress(pb::ListEgressRequest {
                    from_sequence: 1,
                    limit: 0,
                })
                .await?
                .into_inner();
            let delivered =
                !r.entries.is_empty() && r.entries.iter().all(|e| e.delivered_at.is_some());
            if delivered && started.elapsed() > Duration::from_secs(5) {
                break r.entries;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "reports were not delivered within a minute"
            );
            print!(".");
            use std::io::Write as _;
            std::io::stdout().flush().ok();
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        ledgers.push(entries);
    }
    println!();

    step(
        6,
        total,
        "What left each clinic (the egress ledger, decoded)",
    );
    for (clinic, entries) in ledgers.iter().enumerate() {
        println!(
            "  clinic {}: {} report(s), hash chain verified",
            ["A", "B"][clinic],
            entries.len()
        );
        for e in entries {
            let Some(r) = &e.report else { continue };
            println!(
                "    #{} {} bytes, agent {}, window {}..{}",
                e.sequence,
                e.payload.len(),
                r.agent_id,
                r.window_start.map_or(0, |t| t.seconds),
                r.window_end.map_or(0, |t| t.seconds)
            );
            for app in &r.apps {
                let released = app.cells.iter().filter(|c| !c.suppressed).count();
                let suppressed = app.cells.len() - released;
                let mut shown = Vec::new();
                for c in app.cells.iter().filter(|c| c.labels.is_none()) {
                    if let Some(readi_proto::report::v1::cell::Value::Count(n)) = c.value {
                        let m = readi_proto::report::v1::Metric::try_from(c.metric)
                            .map_or("?", |m| m.as_str_name());
                        if n > 0 {
                            shown.push(format!(
                                "{}~{n}",
                                m.trim_start_matches("METRIC_").to_ascii_lowercase()
                            ));
                        }
                    }
                }
                println!(
                    "      {}: {released} cells released (noised), {suppressed} suppressed under k; {}",
                    app.app_id,
                    shown.join(" ")
                );
            }
        }
    }
    println!(
        "  (`readi-agent egress` prints every byte; no text, names or session ids are in them)"
    );

    step(
        7,
        total,
        "The controller's READI scorecards (today, both clinics)",
    );
    let mut ctl = ControllerClient::connect(format!("http://{caddr}")).await?;
    for app in APPS {
        let mut req = tonic::Request::new(cpb::GetScorecardRequest {
            app_id: app.to_owned(),
            period: cpb::Period::Day as i32,
            until: Some(prost_types::Timestamp {
                seconds: now() + 86_400,
                nanos: 0,
            }),
        });
        req.metadata_mut()
            .insert("authorization", format!("Bearer {operator}").parse()?);
        let card = ctl.get_scorecard(req).await?.into_inner();
        for line in readi_controller::render::text(&card).lines() {
            println!("  {line}");
        }
    }

    if exit {
        println!("\nDone. Stopping everything and removing the temporary stores.");
    } else {
        println!(
            "\nDashboard: http://{dashboard}  (log in with the vendor token below)\n  {vendor}\nCtrl-C stops the demo and removes its temporary stores."
        );
        readi_common::shutdown::signal().await;
    }
    let _ = stop_tx.send(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(dir);
    Ok(())
}
