//! Every limit, hit over the real wire: requests per token per second (gRPC and proxy share one
//! bucket per token), streams open at once, text per stream, message size, webhook and upstream
//! timeouts. Each answers with a clear status naming its setting, and never echoes the text.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use readi_proto::agent::v1::{
    AssessRequest, RedactRequest, Role, TranscriptChunk, Turn, WatchEscalationsRequest,
    gateway_client::GatewayClient,
};
use readi_tests::{binary, run_to_end, start_served, start_served_with, with_token};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

const CANARY: &str = "Zebulon Quackenbush";

fn redact(text: &str) -> RedactRequest {
    RedactRequest {
        text: text.into(),
        app_id: "scribe".into(),
        session_id: "s1".into(),
        style: 0,
    }
}

async fn client(addr: SocketAddr) -> GatewayClient<Channel> {
    let ch = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    GatewayClient::new(ch).max_decoding_message_size(usize::MAX)
}

fn add_token(dir: &std::path::Path, app: &str) -> String {
    let cfg = dir.join("readi-agent.toml");
    let (code, out, err) = run_to_end(
        &binary("readi-agent"),
        &[
            "tokens",
            "add",
            "--config",
            cfg.to_str().unwrap(),
            "--role",
            "app",
            "--app",
            app,
        ],
        dir,
    );
    assert_eq!(code, 0, "{out}{err}");
    out.trim().to_owned()
}

/// A raw HTTP/1.1 GET to the proxy: (status, Retry-After, body).
fn proxy_get(proxy: SocketAddr, path: &str, token: &str) -> (u16, Option<String>, String) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap();
    let retry = raw.lines().find_map(|l| {
        let (name, value) = l.split_once(": ")?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.to_owned())
    });
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, retry, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_a_tokens_rate_are_refused_with_when_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, _) = start_served("readi-agent", dir.path());
    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(15)).success());
    let scribe = add_token(dir.path(), "scribe");
    let other = add_token(dir.path(), "scribe");

    // The upstream is never reached by a refused request; an unreachable one answers the rest.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = gone.local_addr().unwrap();
    drop(gone);
    let (agent, addr) = start_served_with(
        "readi-agent",
        dir.path(),
        &format!(
            "[limits]\nrequests_per_second = 4\nrequest_burst = 6\n[proxy]\nlisten = \"127.0.0.1:0\"\nupstream_url = \"http://{upstream}\"\ntimeout_secs = 2\n"
        ),
    );
    let proxy: SocketAddr = readi_tests::log_field(
        &agent.wait_for_log("OpenAI-compatible proxy", Duration::from_secs(10)),
        "proxy_addr",
    )
    .parse()
    .unwrap();
    let mut gw = client(addr).await;
    let note = format!("Pt {CANARY} called.");

    // A burst of six is accepted, the seventh refused with the setting and a retry hint.
    let started = Instant::now();
    let mut accepted = 0;
    let refused = loop {
        match gw.redact(with_token(redact(&note), &scribe)).await {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 50, "the rate limit never refused");
    };
    let refilled = (started.elapsed().as_secs_f64() * 4.0).ceil() as i32;
    assert!(
        (6..=6 + refilled).contains(&accepted),
        "{accepted} accepted before the first refusal ({refilled} refilled)"
    );
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("limits.requests_per_second"),
        "{}",
        refused.message()
    );
    assert!(!refused.message().contains(CANARY));
    let pushback: u64 = refused
        .metadata()
        .get("grpc-retry-pushback-ms")
        .expect("retry hint")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=250).contains(&pushback), "{pushback} ms");

    // Another token has its own bucket.
    for _ in 0..3 {
        gw.redact(with_token(redact(&note), &other)).await.unwrap();
    }
    // The proxy shares the token's bucket: refused with 429, Retry-After and an OpenAI error.
    let (status, retry, body) = proxy_get(proxy, "/v1/models", &scribe);
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");

    // After the hinted wait the token is served again.
    tokio::time::sleep(Duration::from_millis(pushback + 300)).await;
    gw.redact(with_token(redact(&note), &scribe)).await.unwrap();
    let (status, _, body) = proxy_get(proxy, "/v1/models", &other);
    assert_eq!(
        status, 502,
        "an accepted request reaches the (absent) upstream: {body}"
    );
    assert!(!agent.output().contains(CANARY), "canary in the agent log");
}

/// A transcript stream fed through a channel, so the test decides when it ends.
async fn open_stream(
    gw: &mut GatewayClient<Channel>,
    session: &str,
) -> Result<
    (
        tokio::sync::mpsc::Sender<TranscriptChunk>,
        tonic::Streaming<readi_proto::agent::v1::RedactedChunk>,
    ),
    tonic::Status,
> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tx.send(TranscriptChunk {
        app_id: "scribe".into(),
        session_id: session.into(),
        text: format!("Pt {CANARY} said hello. "),
        flush: true,
    })
    .await
    .unwrap();
    let out = gw
        .stream_redact(ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok((tx, out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_stream_length_message_size_and_webhook_timeouts_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // A webhook that accepts the connection and never answers.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_addr = hang.local_addr().unwrap();
    let (agent, addr) = start_served_with(
        "readi-agent",
        dir.path(),
        &format!(
            "[limits]\nmax_text_bytes = 4096\nmax_message_bytes = 65536\nmax_streams = 2\nmax_stream_bytes = 8192\n[[escalation.webhooks]]\nurl = \"http://{hang_addr}/hook\"\ntimeout_secs = 1\nmax_attempts = 2\n"
        ),
    );
    let mut gw = client(addr).await;

    // Two streams are open (one transcript, one escalation watch); a third is refused.
    let (tx1, mut out1) = open_stream(&mut gw, "live-1").await.unwrap();
    let first = out1.message().await.unwrap().expect("first chunk");
    assert!(!first.text.contains(CANARY), "{}", first.text);
    let mut watch = gw
        .watch_escalations(WatchEscalationsRequest {
            app_id: "scribe".into(),
            include_pending: false,
        })
        .await
        .unwrap()
        .into_inner();
    let err = open_stream(&mut gw, "live-2").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("limits.max_streams"),
        "{}",
        err.message()
    );
    let err = gw
        .watch_escalations(WatchEscalationsRequest {
            app_id: "scribe".into(),
            include_pending: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    // Ending a stream frees its place.
    drop(tx1);
    while out1.message().await.unwrap().is_some() {}
    let (tx2, mut out2) = open_stream(&mut gw, "live-2").await.unwrap();

    // More text than one stream may carry ends it with a clear status, after what fitted.
    let line = format!("The patient {CANARY} reported feeling calmer this week. ");
    let mut released = 0;
    let status = loop {
        if tx2
            .send(TranscriptChunk {
                text: line.repeat(10),
                flush: true,
                ..Default::default()
            })
            .await
            .is_err()
        {
            // The agent ended the stream; its status follows.
        }
        match out2.message().await {
            Ok(Some(c)) => {
                assert!(!c.text.contains(CANARY), "{}", c.text);
                released += c.text.len();
            }
            Ok(None) => panic!("the stream ended without a status after {released} bytes"),
            Err(s) => break s,
        }
        assert!(released < 100_000, "the stream was never cut");
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("limits.max_stream_bytes"),
        "{}",
        status.message()
    );
    assert!(released > 0);

    // A message over the gRPC size limit is refused before it is decoded.
    let err = gw.redact(redact(&"x".repeat(100_000))).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(err.message().contains("65536"), "{}", err.message());

    // A webhook that never answers times out per attempt and is recorded as failed; the watcher
    // still gets the escalation.
    gw.assess(AssessRequest {
        app_id: "scribe".into(),
        session_id: "risk-1".into(),
        input: vec![Turn {
            role: Role::User as i32,
            text: format!("I am {CANARY} and I want to kill myself tonight."),
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("escalation in time")
        .unwrap()
        .expect("an escalation");
    assert_eq!(seen.app_id, "scribe");
    let line = agent.wait_for_log("Webhook delivery failed", Duration::from_secs(15));
    assert!(line.contains("no answer within 1s"), "{line}");
    let log = agent.output();
    assert!(log.contains("Webhook attempt failed"));
    assert!(!log.contains(CANARY), "canary in the agent log");
    drop(hang);
}
