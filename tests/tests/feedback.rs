//! Clinicians' feedback end to end through a real agent process: each kind becomes an adverse event
//! (reported, not detected), missed risk and leaked PHI raise escalations a clinician can acknowledge,
//! every report is audited, bad reports get clear errors, and the free text stays sealed: it is in no
//! file, log line or listing.

use std::time::Duration;

use readi_proto::agent::v1::{
    AcknowledgeEscalationRequest, AdverseEventKind, Category, Disposition, EventSource,
    ExportFeedbackRequest, ListAdverseEventsRequest, PhiType, SubmitFeedbackRequest,
    compliance_client::ComplianceClient, gateway_client::GatewayClient,
    submit_feedback_request::Kind,
};
use readi_tests::{audit_records, binary, files_containing, run_to_end_env, start_served};
use tonic::Code;

const CANARY: &str = "Zebulon Quaggard";

fn report(kind: Kind) -> SubmitFeedbackRequest {
    SubmitFeedbackRequest {
        app_id: "chat-app".into(),
        session_id: "sess-7".into(),
        exchange_id: "ex-41".into(),
        kind: Some(kind),
    }
}

#[tokio::test]
async fn each_kind_of_feedback_becomes_an_audited_adverse_event_and_risk_is_escalated() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, addr) = start_served("readi-agent", dir.path());
    let mut gw = GatewayClient::connect(format!("http://{addr}"))
        .await
        .unwrap();

    let missed = gw
        .submit_feedback(report(Kind::MissedRisk(Category::SuicidalIdeation as i32)))
        .await
        .unwrap()
        .into_inner();
    let false_alarm = gw
        .submit_feedback(report(Kind::FalseAlarmFindingId("ex-40-f0".into())))
        .await
        .unwrap()
        .into_inner();
    let leak = gw
        .submit_feedback(report(Kind::LeakedPhi(PhiType::Name as i32)))
        .await
        .unwrap()
        .into_inner();
    let odd = gw
        .submit_feedback(report(Kind::UnexpectedBehavior(format!(
            "The model called the patient {CANARY} and told him to stop his lithium."
        ))))
        .await
        .unwrap()
        .into_inner();

    // Missed risk and leaked PHI go to a human; a false alarm and odd behaviour are recorded only.
    assert!(!missed.escalation_id.is_empty());
    assert!(!leak.escalation_id.is_empty());
    assert!(false_alarm.escalation_id.is_empty());
    assert!(odd.escalation_id.is_empty());
    let ids = [
        &missed.adverse_event_id,
        &false_alarm.adverse_event_id,
        &leak.adverse_event_id,
        &odd.adverse_event_id,
    ];
    assert!(ids.iter().all(|id| id.starts_with("ae-")), "{ids:?}");

    // The escalation a person raised is acknowledged like any other.
    let ack = gw
        .acknowledge_escalation(AcknowledgeEscalationRequest {
            escalation_id: missed.escalation_id.clone(),
            clinician_id: "rn-12".into(),
            disposition: Disposition::Actioned as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ack.acknowledged_at.is_some());

    // Adverse events: one per report, of the reported kinds, marked as reported by a person.
    let mut compliance = ComplianceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let events = compliance
        .list_adverse_events(ListAdverseEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    let kinds: Vec<i32> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            AdverseEventKind::ReportedMissedRisk as i32,
            AdverseEventKind::ReportedFalseAlarm as i32,
            AdverseEventKind::ReportedPhiLeak as i32,
            AdverseEventKind::ReportedUnexpected as i32,
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.source == EventSource::Reported as i32 && e.app_id == "chat-app")
    );
    assert_eq!(events[0].escalation_id, missed.escalation_id);
    assert_eq!(events[0].categories, [Category::SuicidalIdeation as i32]);
    assert_eq!(events[2].categories, [Category::ResidualPhi as i32]);

    // Bad reports: clear errors, nothing recorded.
    let bad = [
        (
            report(Kind::MissedRisk(Category::MissedEscalation as i32)),
            "risk category",
        ),
        (report(Kind::MissedRisk(77)), "risk category"),
        (report(Kind::LeakedPhi(0)), "PHI type"),
        (
            report(Kind::UnexpectedBehavior("   ".into())),
            "description",
        ),
        (
            report(Kind::FalseAlarmFindingId(String::new())),
            "false_alarm_finding_id",
        ),
        (
            SubmitFeedbackRequest {
                kind: None,
                ..report(Kind::LeakedPhi(1))
            },
            "kind is required",
        ),
        (
            SubmitFeedbackRequest {
                session_id: String::new(),
                ..report(Kind::LeakedPhi(1))
            },
            "session_id",
        ),
    ];
    for (req, says) in bad {
        let err = gw.submit_feedback(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(err.message().contains(says), "{}", err.message());
    }
    let after = compliance
        .list_adverse_events(ListAdverseEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(after.len(), 4, "a refused report left a record");

    // The detail is decrypted for a compliance token only, even though this agent enforces none.
    let err = compliance
        .export_feedback(ExportFeedbackRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("compliance token"),
        "{}",
        err.message()
    );

    let logs = agent.output();
    agent.terminate();
    let mut agent = agent;
    agent.wait_exit(Duration::from_secs(20));

    // Every report is in the audit log, with its adverse event; the text is not.
    let audit = audit_records(dir.path());
    let feedback: Vec<&String> = audit
        .iter()
        .filter(|r| r.contains("\"feedback\""))
        .collect();
    assert_eq!(feedback.len(), 4, "{audit:#?}");
    for id in ids {
        assert!(
            feedback.iter().any(|r| r.contains(id.as_str())),
            "{id} not audited"
        );
    }
    // The free text is sealed: in no file of the data directory, no log line, no audit record.
    let holding = files_containing(dir.path(), b"Quaggard");
    assert!(
        holding.is_empty(),
        "feedback text in the clear in {holding:?}"
    );
    assert!(
        !logs.contains("Quaggard"),
        "the feedback text reached the logs"
    );
    assert!(logs.contains("Feedback recorded"), "{logs}");
    export_needs_a_compliance_token(dir.path(), &missed.escalation_id);
}

/// The clinic's quality review: `feedback export` with a compliance token, from the stopped store.
fn export_needs_a_compliance_token(dir: &std::path::Path, escalation_id: &str) {
    let agent_bin = binary("readi-agent");
    let cfg = dir.join("readi-agent.toml");
    let cfg = cfg.to_str().unwrap();
    let token_for = |role: &str| {
        let mut args = vec!["tokens", "add", "--role", role, "--config", cfg];
        if role == "app" {
            args.extend(["--app", "chat-app"]);
        }
        let (code, out, err) = run_to_end_env(&agent_bin, &args, dir, &[]);
        assert_eq!(code, 0, "{err}");
        out.trim().to_owned()
    };
    let compliance_token = token_for("compliance");
    let app_token = token_for("app");
    let export = |token: &str, since: &str| {
        let mut env = vec![];
        if !token.is_empty() {
            env.push(("READI_TOKEN", token));
        }
        run_to_end_env(
            &agent_bin,
            &["feedback", "export", "--since", since, "--config", cfg],
            dir,
            &env,
        )
    };
    let (code, out, err) = export(&compliance_token, "2000-01-01");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[0]["kind"], "missed_risk");
    assert_eq!(lines[0]["category"], "CATEGORY_SUICIDAL_IDEATION");
    assert_eq!(lines[0]["escalation_id"], escalation_id);
    assert_eq!(lines[2]["phi_type"], "PHI_TYPE_NAME");
    assert!(lines[3]["text"].as_str().unwrap().contains(CANARY));
    assert!(lines.iter().all(|l| l["session_id"] == "sess-7"));
    // A later date holds nothing; other roles, no token and a bad date are refused.
    let (code, out, _) = export(&compliance_token, "2999-01-01");
    assert_eq!((code, out.as_str()), (0, ""));
    for (token, since, says) in [
        (app_token.as_str(), "2000-01-01", "compliance token"),
        ("", "2000-01-01", "READI_TOKEN"),
        (compliance_token.as_str(), "2000-13-01", "YYYY-MM-DD"),
    ] {
        let (code, out, err) = export(token, since);
        assert_ne!(code, 0, "{out}");
        assert!(err.contains(says), "{err}");
        assert!(!out.contains("Quaggard"));
    }
    let audit = audit_records(dir);
    assert_eq!(
        audit
            .iter()
            .filter(|r| r.contains("feedback_export"))
            .count(),
        2,
        "each export is audited"
    );
}
