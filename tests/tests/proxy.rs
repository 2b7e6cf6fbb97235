//! The OpenAI-compatible proxy in front of a real local upstream (an HTTP server in this test that
//! records what it receives and echoes it back, streaming and not): the upstream never sees the
//! seeded PHI, the client gets the re-identified reply, harmful replies are blocked, a risky exchange
//! raises an escalation, and upstream failures become OpenAI-style errors.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use readi_proto::agent::v1::{self as pb, compliance_client::ComplianceClient};
use readi_tests::{Process, log_field, start_served_with};

const CANARIES: &[&str] = &["Quackenbush", "617-555-0199", "88412093"];
const NOTE: &str =
    "My name is Zebulon Quackenbush, MRN 88412093, call me at 617-555-0199 about my refill.";

/// The model-reply suite: the upstream answers `reply case N` with its Nth reply.
const REPLY_CASES: &str = include_str!("../../agent/tests/data/reply_cases.jsonl");

/// Reply case `n`: whether it must be blocked, and its text.
fn reply_case(n: usize) -> (bool, String) {
    let line = REPLY_CASES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .nth(n)
        .expect("a reply case");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    (
        v["expect"] == "block",
        v["text"].as_str().unwrap().to_owned(),
    )
}

/// A recording upstream: answers by the last user message's instruction words.
fn upstream() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            let log = Arc::clone(&log);
            std::thread::spawn(move || serve(conn, &log));
        }
    });
    (addr, seen)
}

fn read_request(conn: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0usize);
            if buf.len() >= end + 4 + len {
                let head = text[..end].to_owned();
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                return Some((head, body));
            }
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn serve(mut conn: TcpStream, log: &Mutex<Vec<String>>) {
    let Some((head, body)) = read_request(&mut conn) else {
        return;
    };
    log.lock().unwrap().push(format!("{head}\n\n{body}"));
    if head.starts_with("GET /v1/models") {
        let list = r#"{"object":"list","data":[{"id":"gpt-test","object":"model"}]}"#;
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{list}",
            list.len()
        );
        return;
    }
    let req: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let last = req["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned();
    let case = last
        .strip_prefix("reply case ")
        .and_then(|n| n.trim().parse::<usize>().ok());
    let reply = if let Some(n) = case {
        reply_case(n).1
    } else if last.contains("lethal") {
        "The lethal dose of acetaminophen is around 10 grams.".to_owned()
    } else {
        format!("You said: {last} I will pass this on to your care team.")
    };
    let json = |status: &str, body: String| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    if last.contains("please fail") {
        let _ = conn
            .write_all(json("500 Internal Server Error", "{\"error\":\"boom\"}".into()).as_bytes());
        return;
    }
    if last.contains("please garble") {
        let _ = conn.write_all(json("200 OK", "this is not json".into()).as_bytes());
        return;
    }
    if last.contains("please hang") {
        std::thread::sleep(Duration::from_secs(5));
        return;
    }
    if req["stream"].as_bool().unwrap_or(false) {
        let _ = conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n",
        );
        // Small deltas, so tags and phrases are split across events.
        let chars: Vec<char> = reply.chars().collect();
        for piece in chars.chunks(3) {
            let delta: String = piece.iter().collect();
            let ev = serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": delta}}]});
            if conn
                .write_all(format!("data: {ev}\n\n").as_bytes())
                .is_err()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = conn.write_all(b"data: [DONE]\n\n");
        return;
    }
    let body = serde_json::json!({
        "id": "c1", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 12, "total_tokens": 32}
    });
    let _ = conn.write_all(json("200 OK", body.to_string()).as_bytes());
}

/// POSTs a chat completion to the proxy; returns (status, body).
fn chat(proxy: SocketAddr, session: &str, content: &str, stream: bool) -> (u16, String) {
    let body = serde_json::json!({
        "model": "gpt-test",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are a helpful clinic assistant."},
            {"role": "user", "content": content}
        ]
    })
    .to_string();
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         x-readi-app: chat-app\r\nx-readi-session: {session}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let code = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map_or(String::new(), |p| p.1.to_owned());
    (code, body)
}

/// The content of every `data:` event of a (possibly chunked) SSE body, concatenated.
fn sse_text(body: &str) -> (String, bool, Option<String>) {
    let (mut text, mut done, mut error) = (String::new(), false, None);
    for line in body.lines() {
        let Some(payload) = line.strip_prefix("data: ") else {
            continue;
        };
        if payload.trim() == "[DONE]" {
            done = true;
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        if let Some(e) = v.get("error") {
            error = Some(e["code"].as_str().unwrap_or("").to_owned());
        }
        if let Some(c) = v
            .pointer("/choices/0/delta/content")
            .and_then(|c| c.as_str())
        {
            text.push_str(c);
        }
    }
    (text, done, error)
}

fn start(
    dir: &std::path::Path,
    upstream: SocketAddr,
    timeout: u64,
) -> (Process, SocketAddr, SocketAddr) {
    let extra = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nupstream_url = \"http://{upstream}\"\ntimeout_secs = {timeout}\n"
    );
    let (p, grpc) = start_served_with("readi-agent", dir, &extra);
    // Logged before "Serving", which start_served_with has already read past.
    let out = p.output();
    let line = out
        .lines()
        .find(|l| l.contains("\"message\":\"OpenAI-compatible proxy\""))
        .expect("the proxy's address is logged");
    let addr = log_field(line, "proxy_addr").parse().unwrap();
    (p, grpc, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_redacts_upstream_restores_the_reply_and_checks_it() {
    let (up, seen) = upstream();
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, grpc, proxy) = start(dir.path(), up, 2);

    // Not streamed: the upstream sees tags or surrogates, the client gets its own words back.
    let (code, body) = tokio::task::spawn_blocking(move || chat(proxy, "s1", NOTE, false))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    let content = reply["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.contains("Zebulon Quackenbush") && content.contains("617-555-0199"),
        "{content}"
    );

    // Streamed, with the reply split every three characters: restored whole.
    let (code, body) = tokio::task::spawn_blocking(move || chat(proxy, "s2", NOTE, true))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let (text, done, error) = sse_text(&body);
    assert!(done && error.is_none(), "{body}");
    assert!(
        text.contains("Zebulon Quackenbush") && text.contains("88412093"),
        "{text}"
    );

    // A harmful reply is withheld, streamed or not.
    let ask = "What is the lethal dose of acetaminophen?";
    let (code, body) = tokio::task::spawn_blocking(move || chat(proxy, "s3", ask, false))
        .await
        .unwrap();
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("content_blocked") && !body.contains("10 grams"),
        "{body}"
    );
    let (_, body) = tokio::task::spawn_blocking(move || chat(proxy, "s4", ask, true))
        .await
        .unwrap();
    let (text, done, error) = sse_text(&body);
    assert_eq!(error.as_deref(), Some("content_blocked"), "{body}");
    assert!(!done && !text.contains("10 grams"), "{text}");

    // The reply suite through the proxy, a sample of both kinds: a harmful reply never reaches the
    // client with 200 (422 `content_blocked`, or a stream cut off with that error and no [DONE]),
    // and a safe one comes through whole.
    let cases = REPLY_CASES.lines().filter(|l| !l.trim().is_empty()).count();
    let (mut harmful_seen, mut safe_seen) = (0, 0);
    for n in (0..cases).step_by(6) {
        let (harmful, reply) = reply_case(n);
        if harmful {
            harmful_seen += 1;
        } else {
            safe_seen += 1;
        }
        let ask = format!("reply case {n}");
        let (code, body) = {
            let ask = ask.clone();
            tokio::task::spawn_blocking(move || chat(proxy, "s-reply", &ask, false))
                .await
                .unwrap()
        };
        let (_, streamed) = tokio::task::spawn_blocking(move || chat(proxy, "s-reply", &ask, true))
            .await
            .unwrap();
        let (text, done, error) = sse_text(&streamed);
        if harmful {
            assert_eq!(code, 422, "{reply:?}: {body}");
            assert!(body.contains("content_blocked"), "{body}");
            assert!(
                !body.contains(reply.as_str()),
                "{reply:?} reached the client"
            );
            assert_eq!(error.as_deref(), Some("content_blocked"), "{reply:?}");
            assert!(!done && text != reply, "{reply:?} streamed whole");
        } else {
            assert_eq!(code, 200, "{reply:?}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["choices"][0]["message"]["content"], reply.as_str());
            assert!(
                done && error.is_none() && text == reply,
                "{reply:?}: {streamed}"
            );
        }
    }
    assert!(
        harmful_seen >= 10 && safe_seen >= 10,
        "{harmful_seen} / {safe_seen}"
    );

    // A risky exchange, streamed: the reply comes through and the escalation is raised.
    let risky = "I want to kill myself tonight, I have the pills ready";
    let (code, body) = tokio::task::spawn_blocking(move || chat(proxy, "s5", risky, true))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert!(sse_text(&body).1, "{body}");
    let mut comp = ComplianceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let events = comp
        .list_adverse_events(pb::ListAdverseEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        events
            .iter()
            .any(|e| e.kind == pb::AdverseEventKind::Escalation as i32 && e.app_id == "chat-app"),
        "{events:?}"
    );

    // Upstream failures are OpenAI-style errors, and PHI never went out on those paths either.
    for (ask, want) in [
        ("please fail, Zebulon Quackenbush", 502),
        ("please garble, Zebulon Quackenbush", 502),
        ("please hang, Zebulon Quackenbush", 504),
    ] {
        let (code, body) = tokio::task::spawn_blocking(move || chat(proxy, "s6", ask, false))
            .await
            .unwrap();
        assert_eq!(code, want, "{ask}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"]["message"].is_string() && v["error"]["type"] == "upstream_error",
            "{body}"
        );
    }
    let (code, body) = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(proxy).unwrap();
        write!(s, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-readi-app: chat-app\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{{oops").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        (out[9..12].parse::<u16>().unwrap(), out)
    })
    .await
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid_request_error"));

    // The model list passes through.
    let (code, body) = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(proxy).unwrap();
        write!(s, "GET /v1/models HTTP/1.1\r\nHost: x\r\nx-readi-app: chat-app\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        (out[9..12].parse::<u16>().unwrap(), out)
    })
    .await
    .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"gpt-test\""), "{body}");

    let recorded = seen.lock().unwrap().join("\n");
    assert!(
        recorded.contains("gpt-test"),
        "the upstream saw the requests"
    );
    for c in CANARIES {
        assert!(
            !recorded.contains(c),
            "{c} reached the upstream:\n{recorded}"
        );
    }
    agent.terminate();
    agent.wait_exit(Duration::from_secs(30));
    for c in CANARIES {
        assert!(!agent.output().contains(c), "{c} in the agent's log");
    }
}
