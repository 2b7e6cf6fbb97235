//! Escalation end to end: a real agent process, a watcher on WatchEscalations, a real local webhook
//! receiver; a risky exchange reaches both, is re-sent until acknowledged, is acknowledged once, and
//! its adverse events are listed. No message text reaches the watcher, the webhook or the logs.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use readi_proto::agent::v1::{
    AcknowledgeEscalationRequest, AdverseEventKind, AssessRequest, Category, Disposition,
    Escalation, ListAdverseEventsRequest, Role, Turn, Verdict, WatchEscalationsRequest,
    compliance_client::ComplianceClient, gateway_client::GatewayClient,
};
use readi_tests::start_served_with;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::Code;
use tonic::transport::Channel;

const RISK: &str = "I'm going to kill myself tonight, I have the pills ready.";
const REPLY: &str = "Okay, sounds like a plan.";
const TOKEN: &str = "hook-token-5f1c";

#[derive(Debug, Clone)]
struct Delivery {
    authorization: String,
    body: serde_json::Value,
    raw: String,
}

/// A minimal HTTP/1.1 server that records every POST and answers 200.
async fn webhook_receiver() -> (SocketAddr, Arc<Mutex<Vec<Delivery>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::clone(&got);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let Some(head_end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let head = text[..head_end].to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap_or(0));
                    if buf.len() < head_end + 4 + len {
                        continue;
                    }
                    let body = &text[head_end + 4..head_end + 4 + len];
                    let authorization = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .starts_with("authorization:")
                                .then(|| l["authorization:".len()..].trim().to_owned())
                        })
                        .unwrap_or_default();
                    store.lock().unwrap().push(Delivery {
                        authorization,
                        body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
                        raw: text.clone(),
                    });
                    let _ = sock
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    return;
                }
            });
        }
    });
    (addr, got)
}

fn deliveries_of(got: &Arc<Mutex<Vec<Delivery>>>, id: &str) -> Vec<Delivery> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|d| d.body["id"] == id)
        .cloned()
        .collect()
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assess(app: &str, input: &[(Role, &str)], output: Option<&str>) -> AssessRequest {
    AssessRequest {
        app_id: app.into(),
        session_id: "sess-7".into(),
        exchange_id: String::new(),
        input: input
            .iter()
            .map(|(r, t)| Turn {
                role: *r as i32,
                text: (*t).into(),
            })
            .collect(),
        output: output.map(|t| Turn {
            role: Role::Assistant as i32,
            text: t.into(),
        }),
        language: "en".into(),
        segment_id: String::new(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_risky_message_reaches_watcher_and_webhook_is_acknowledged_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, got) = webhook_receiver().await;
    // A second webhook nobody listens on: its failure must be recorded, not block the first.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let token_file = dir.path().join("hook.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let extra = format!(
        "[escalation]\nresend_secs = 1\n[[escalation.webhooks]]\nurl = \"http://{hook}/readi\"\ntoken = {{ file = \"{}\" }}\ntimeout_secs = 2\nmax_attempts = 3\n[[escalation.webhooks]]\nurl = \"http://{dead_addr}/gone\"\ntimeout_secs = 1\nmax_attempts = 1\n",
        token_file.display()
    );
    let (agent, addr) = start_served_with("readi-agent", dir.path(), &extra);
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut gw = GatewayClient::new(channel.clone());
    let mut compliance = ComplianceClient::new(channel);

    let mut watch = gw
        .watch_escalations(WatchEscalationsRequest {
            app_id: "chat".into(),
            include_pending: false,
        })
        .await
        .unwrap()
        .into_inner();

    // A negated note is allowed and raises nothing.
    let calm = gw
        .assess(assess("chat", &[(Role::Note, "Pt denies SI/HI.")], None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(calm.verdict(), Verdict::Allow);
    assert!(calm.escalation_id.is_empty());
    assert!(calm.findings.iter().all(|f| f.negated && !f.escalates));

    let resp = gw
        .assess(assess("chat", &[(Role::User, RISK)], Some(REPLY)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.verdict(), Verdict::Escalate);
    assert!(!resp.exchange_id.is_empty());
    let id = resp.escalation_id.clone();
    assert!(id.starts_with("esc-"), "{id}");
    let risk = resp
        .findings
        .iter()
        .find(|f| f.category() == Category::SuicidalBehavior)
        .expect("suicidal behaviour finding");
    assert!(risk.escalates && !risk.rule_id.is_empty() && risk.end > risk.start);
    assert!(
        resp.findings
            .iter()
            .any(|f| f.category() == Category::MissedEscalation && f.turn == -1),
        "the reply ignored the risk: {:?}",
        resp.findings
    );

    // The watcher sees it.
    let seen: Escalation = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("watcher got nothing")
        .unwrap()
        .expect("stream ended");
    assert_eq!(seen.id, id);
    assert_eq!(seen.session_id, "sess-7");
    assert!(seen.acknowledged_at.is_none());
    assert!(
        seen.findings
            .iter()
            .any(|f| f.category() == Category::SuicidalBehavior)
    );

    // The webhook gets it with the bearer token, and again while nobody acknowledges it.
    wait_until("first webhook delivery", Duration::from_secs(10), || {
        !deliveries_of(&got, &id).is_empty()
    })
    .await;
    let first = deliveries_of(&got, &id)[0].clone();
    assert_eq!(first.authorization, format!("Bearer {TOKEN}"));
    assert_eq!(first.body["app_id"], "chat");
    assert!(
        first.body["findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    );
    wait_until("a re-sent delivery", Duration::from_secs(15), || {
        deliveries_of(&got, &id)
            .iter()
            .any(|d| d.body["resent"] == true)
    })
    .await;

    // A watcher that joins late asks for what is pending and gets it.
    let mut late = gw
        .watch_escalations(WatchEscalationsRequest {
            app_id: String::new(),
            include_pending: true,
        })
        .await
        .unwrap()
        .into_inner();
    let pending = tokio::time::timeout(Duration::from_secs(10), late.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pending.id, id);

    // Acknowledged once, by a named clinician.
    let ack = gw
        .acknowledge_escalation(AcknowledgeEscalationRequest {
            escalation_id: id.clone(),
            clinician_id: "dr-lee".into(),
            disposition: Disposition::Actioned as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ack.acknowledged_at.is_some());
    let again = gw
        .acknowledge_escalation(AcknowledgeEscalationRequest {
            escalation_id: id.clone(),
            clinician_id: "dr-lee".into(),
            disposition: Disposition::Actioned as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    let unknown = gw
        .acknowledge_escalation(AcknowledgeEscalationRequest {
            escalation_id: "esc-0000".into(),
            clinician_id: "dr-lee".into(),
            disposition: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // Once acknowledged, re-sending stops.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let settled = deliveries_of(&got, &id).len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        deliveries_of(&got, &id).len(),
        settled,
        "re-sent after acknowledgement"
    );

    // The adverse events are listed: the escalation and the missed escalation.
    let events = compliance
        .list_adverse_events(ListAdverseEventsRequest {
            since: None,
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let kinds: Vec<AdverseEventKind> = events.iter().map(|e| e.kind()).collect();
    assert!(kinds.contains(&AdverseEventKind::Escalation), "{kinds:?}");
    assert!(
        kinds.contains(&AdverseEventKind::MissedEscalation),
        "{kinds:?}"
    );
    assert!(events.iter().any(|e| e.escalation_id == id));

    // Bad requests get clear statuses.
    let empty = gw.assess(assess("chat", &[], None)).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    let mut no_role = assess("chat", &[(Role::User, "hello")], None);
    no_role.input[0].role = 0;
    let err = gw.assess(no_role).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("input[0].role"), "{}", err.message());
    let err = gw
        .assess(assess("chat", &[(Role::User, &"x".repeat(300_000))], None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);

    // The dead webhook's failure was recorded; no message text left the agent.
    agent.wait_for_log("Webhook delivery failed", Duration::from_secs(10));
    let logs = agent.output();
    for d in got.lock().unwrap().iter() {
        assert!(
            !d.raw.contains("pills") && !d.raw.contains("kill myself"),
            "text in webhook"
        );
    }
    assert!(
        !logs.contains("pills") && !logs.contains("kill myself"),
        "text in logs"
    );
    assert!(!logs.contains(TOKEN), "webhook token in logs");

    // Shutdown ends the watch streams.
    agent.terminate();
    let end = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(_)) = watch.message().await {}
    })
    .await;
    assert!(end.is_ok(), "watch stream did not end at shutdown");
}
