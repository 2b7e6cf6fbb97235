//! Writes acknowledged to a caller survive `kill -9`: the agent is killed mid-load, restarted on the
//! same store, and every acknowledged session map and escalation is still there.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use readi_proto::agent::v1::{
    AssessRequest, RedactRequest, ReidentifyRequest, Role, Turn, WatchEscalationsRequest,
    gateway_client::GatewayClient,
};
use readi_tests::start_served;
use tonic::transport::Channel;

async fn connect(addr: std::net::SocketAddr) -> GatewayClient<Channel> {
    GatewayClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, addr) = start_served("readi-agent", dir.path());
    let redacted: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let escalations: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Instant::now() + Duration::from_millis(1500);
    let mut workers = Vec::new();
    for w in 0..4 {
        let mut gw = connect(addr).await;
        let (redacted, escalations) = (Arc::clone(&redacted), Arc::clone(&escalations));
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            // Keep calling past the kill: calls in flight then fail, which is fine; only
            // acknowledged ones are recorded.
            while Instant::now() < stop + Duration::from_secs(2) {
                i += 1;
                let session = format!("w{w}-s{i}");
                let text = format!(
                    "Pt Zebulon Quackenbush{w}x{i} called 617-555-01{:02}.",
                    i % 100
                );
                if let Ok(r) = gw
                    .redact(RedactRequest {
                        text: text.clone(),
                        app_id: "scribe".into(),
                        session_id: session.clone(),
                        style: 0,
                    })
                    .await
                {
                    redacted.lock().unwrap().push((
                        session.clone(),
                        text,
                        r.into_inner().redacted_text,
                    ));
                }
                if i % 5 == 0
                    && let Ok(r) = gw
                        .assess(AssessRequest {
                            app_id: "chat".into(),
                            session_id: session,
                            input: vec![Turn {
                                role: Role::User as i32,
                                text: "I'm going to kill myself tonight.".into(),
                            }],
                            ..Default::default()
                        })
                        .await
                {
                    escalations
                        .lock()
                        .unwrap()
                        .push(r.into_inner().escalation_id);
                }
                if Instant::now() > stop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    agent.kill_hard();
    for w in workers {
        w.await.unwrap();
    }
    let redacted = redacted.lock().unwrap().clone();
    let escalations = escalations.lock().unwrap().clone();
    assert!(
        redacted.len() > 20,
        "too little load before the kill: {}",
        redacted.len()
    );
    assert!(!escalations.is_empty());

    let (_agent, addr) = start_served("readi-agent", dir.path());
    let mut gw = connect(addr).await;
    for (session, original, red) in &redacted {
        assert!(!red.contains("Quackenbush"));
        let back = gw
            .reidentify(ReidentifyRequest {
                text: red.clone(),
                app_id: "scribe".into(),
                session_id: session.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("session {session} lost after kill -9: {e}"))
            .into_inner();
        assert_eq!(&back.text, original, "session {session}");
    }
    let mut watch = gw
        .watch_escalations(WatchEscalationsRequest {
            app_id: "chat".into(),
            include_pending: true,
        })
        .await
        .unwrap()
        .into_inner();
    let mut pending = std::collections::HashSet::new();
    while pending.len() < escalations.len() {
        match tokio::time::timeout(Duration::from_secs(5), watch.message()).await {
            Ok(Ok(Some(e))) => {
                pending.insert(e.id);
            }
            _ => break,
        }
    }
    for id in &escalations {
        assert!(pending.contains(id), "escalation {id} lost after kill -9");
    }
}
