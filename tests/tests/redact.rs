//! Redact and Reidentify through a real agent process over gRPC.

use std::time::Duration;

use readi_proto::agent::v1::{
    PhiType, RedactRequest, RedactionStyle, ReidentifyRequest, gateway_client::GatewayClient,
};
use readi_tests::{Process, binary, run_to_end, start_served};
use tonic::Code;
use tonic::transport::Channel;

/// Canary PHI: none of these strings may appear in logs, errors, or the store on disk.
const CANARIES: &[&str] = &[
    "Zebulon Quackenbush",
    "Quackenbush",
    "617-555-0199",
    "zq@example.org",
    "MRN 8837261",
    "8837261",
];
const NOTE: &str = "Pt Zebulon Quackenbush (MRN 8837261), seen 3/14 by Dr. Whitfield. Call 617-555-0199 or zq@example.org. Wife Mary at bedside.";

async fn client(addr: std::net::SocketAddr) -> GatewayClient<Channel> {
    GatewayClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

fn req(session: &str, text: &str) -> RedactRequest {
    RedactRequest {
        text: text.to_owned(),
        app_id: "scribe".to_owned(),
        session_id: session.to_owned(),
        style: 0,
    }
}

fn start(dir: &std::path::Path) -> (Process, std::net::SocketAddr) {
    start_served("readi-agent", dir)
}

#[tokio::test]
async fn redact_reidentify_round_trip_is_consistent_persistent_and_leaves_no_canary() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, addr) = start(dir.path());
    let mut gw = client(addr).await;

    let first = gw.redact(req("s-1", NOTE)).await.unwrap().into_inner();
    for c in CANARIES {
        assert!(
            !first.redacted_text.contains(c),
            "{c} leaked: {}",
            first.redacted_text
        );
    }
    assert!(
        first
            .spans
            .iter()
            .all(|s| !s.rule_id.is_empty() && s.start < s.end)
    );
    assert!(first.spans.iter().any(|s| s.r#type() == PhiType::Mrn));
    assert!(first.vault_expires_at.is_some());
    // Offsets are Unicode scalar values into the original and the redacted text.
    let chars: Vec<char> = NOTE.chars().collect();
    let red: Vec<char> = first.redacted_text.chars().collect();
    for s in &first.spans {
        let original: String = chars[s.start as usize..s.end as usize].iter().collect();
        assert!(NOTE.contains(&original));
        let replaced: String = red[s.redacted_start as usize..s.redacted_end as usize]
            .iter()
            .collect();
        assert_eq!(replaced, s.replacement);
    }

    // The same person gets the same tag later in the session, and what the session revealed is found
    // again even where context alone would not find it.
    let second = gw
        .redact(req(
            "s-1",
            "Zebulon Quackenbush called back. Quackenbush is anxious.",
        ))
        .await
        .unwrap()
        .into_inner();
    let tag = &first
        .spans
        .iter()
        .find(|s| s.r#type() == PhiType::Name)
        .unwrap()
        .replacement;
    assert!(
        second.redacted_text.starts_with(tag.as_str()),
        "{} vs {tag}",
        second.redacted_text
    );
    assert!(
        !second.redacted_text.contains("Quackenbush"),
        "{}",
        second.redacted_text
    );

    // A model reply with the tags comes back with the real values, inside the clinic.
    let reply = format!("Summary for {tag}: follow up.");
    let back = gw
        .reidentify(ReidentifyRequest {
            text: reply,
            app_id: "scribe".into(),
            session_id: "s-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(back.text.contains("Zebulon Quackenbush"), "{}", back.text);
    assert_eq!(back.restored, 1);

    let err = gw
        .reidentify(ReidentifyRequest {
            text: "x".into(),
            app_id: "scribe".into(),
            session_id: "never".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("expired") || err.message().contains("never"),
        "{}",
        err.message()
    );

    // Restart on the same store: the session map survives, sealed.
    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(15)).success());
    let log = agent.output();
    for c in CANARIES {
        assert!(!log.contains(c), "{c} in agent log:\n{log}");
        assert!(
            readi_tests::files_containing(dir.path(), c.as_bytes()).is_empty(),
            "{c} in plaintext on disk: {:?}",
            readi_tests::files_containing(dir.path(), c.as_bytes())
        );
    }
    let (agent2, addr2) = start(dir.path());
    let mut gw2 = client(addr2).await;
    let back = gw2
        .reidentify(ReidentifyRequest {
            text: tag.clone(),
            app_id: "scribe".into(),
            session_id: "s-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(back.text, "Zebulon Quackenbush");
    drop(agent2);
}

#[tokio::test]
async fn bad_input_gets_clear_statuses_without_echoing_text() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, addr) = start(dir.path());
    let mut gw = client(addr).await;

    let big = "Zebulon Quackenbush ".repeat(20_000);
    let err = gw.redact(req("s", &big)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("limits.max_text_bytes"));

    let mut missing = req("s", NOTE);
    missing.app_id.clear();
    let err = gw.redact(missing).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("app_id"));

    let err = gw.redact(req("has space", NOTE)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let mut surrogate = req("s-fake", NOTE);
    surrogate.style = RedactionStyle::Surrogate as i32;
    let fake = gw.redact(surrogate).await.unwrap().into_inner();
    for c in CANARIES {
        assert!(
            !fake.redacted_text.contains(c),
            "{c} leaked: {}",
            fake.redacted_text
        );
    }
    assert!(
        !fake.redacted_text.contains("[NAME"),
        "surrogates, not tags: {}",
        fake.redacted_text
    );
    let back = gw
        .reidentify(ReidentifyRequest {
            text: fake.redacted_text.clone(),
            app_id: "scribe".into(),
            session_id: "s-fake".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        back.text.contains("Zebulon Quackenbush") && back.text.contains("617-555-0199"),
        "{}",
        back.text
    );

    let mut mask = req("s", NOTE);
    mask.style = RedactionStyle::Mask as i32;
    let masked = gw.redact(mask).await.unwrap().into_inner();
    assert!(
        masked.redacted_text.contains("[REDACTED]")
            && !masked.redacted_text.contains("Quackenbush")
    );

    // No error message or log line carries the submitted text.
    for e in [&err] {
        // (the last error above)
        for c in CANARIES {
            assert!(!e.message().contains(c));
        }
    }
    let log = agent.output();
    for c in CANARIES {
        assert!(!log.contains(c), "{c} in agent log");
    }
}

#[test]
fn a_store_refuses_to_start_with_a_wrong_or_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut agent, _) = start(dir.path());
        agent.terminate();
        assert!(agent.wait_exit(Duration::from_secs(15)).success());
    }
    let kek = dir.path().join("data/kek");
    let original = std::fs::read_to_string(&kek).unwrap();
    std::fs::write(&kek, "ab".repeat(32)).unwrap();
    let cfg = dir.path().join("readi-agent.toml");
    let (code, _, stderr) = run_to_end(
        &binary("readi-agent"),
        &["run", "--config", cfg.to_str().unwrap()],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("wrong key") && stderr.contains("keys.kek"),
        "{stderr}"
    );
    std::fs::remove_file(&kek).unwrap();
    let (code, _, stderr) = run_to_end(
        &binary("readi-agent"),
        &["run", "--config", cfg.to_str().unwrap()],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("missing"), "{stderr}");
    assert!(
        !kek.exists(),
        "a missing key must not be silently regenerated"
    );
    assert!(!original.is_empty());
}

#[tokio::test]
async fn a_live_transcript_streams_out_redacted_whatever_the_chunking() {
    use readi_proto::agent::v1::TranscriptChunk;
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, addr) = start(dir.path());
    let mut c = client(addr).await;
    // Split inside the name, the MRN and the phone number.
    let cuts = [7, 18, 35, 41, 98, 103];
    let mut pieces = Vec::new();
    let mut at = 0;
    for cut in cuts {
        pieces.push(&NOTE[at..cut]);
        at = cut;
    }
    pieces.push(&NOTE[at..]);
    let chunks: Vec<TranscriptChunk> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| TranscriptChunk {
            app_id: if i == 0 {
                "scribe".into()
            } else {
                String::new()
            },
            session_id: if i == 0 {
                "live-1".into()
            } else {
                String::new()
            },
            text: (*p).to_owned(),
            flush: false,
        })
        .collect();
    let mut out = c
        .stream_redact(tokio_stream::iter(chunks))
        .await
        .unwrap()
        .into_inner();
    let mut text = String::new();
    let mut spans = Vec::new();
    while let Some(chunk) = out.message().await.unwrap() {
        assert_eq!(
            chunk.offset as usize,
            text.chars().count(),
            "offsets are contiguous"
        );
        text.push_str(&chunk.text);
        spans.extend(chunk.spans);
    }
    for canary in CANARIES {
        assert!(!text.contains(canary), "{canary} leaked: {text}");
    }
    assert!(spans.len() >= 4, "{spans:?}");
    let chars: Vec<char> = NOTE.chars().collect();
    let out_chars: Vec<char> = text.chars().collect();
    for s in &spans {
        let original: String = chars[s.start as usize..s.end as usize].iter().collect();
        assert!(NOTE.contains(&original));
        let replaced: String = out_chars[s.redacted_start as usize..s.redacted_end as usize]
            .iter()
            .collect();
        assert_eq!(replaced, s.replacement);
    }
    // The tags are the session's: Reidentify restores the transcript.
    let back = c
        .reidentify(ReidentifyRequest {
            text: text.clone(),
            app_id: "scribe".into(),
            session_id: "live-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(back.text, NOTE);

    // A stream without a first chunk naming the application is refused.
    let err = c
        .stream_redact(tokio_stream::iter(vec![TranscriptChunk {
            text: "hello".into(),
            ..Default::default()
        }]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    agent.terminate();
    agent.wait_exit(Duration::from_secs(30));
    for canary in CANARIES {
        assert!(!agent.output().contains(canary));
    }
}
