//! A streamed chat completion: upstream's server-sent events read as they come, each delta
//! released through the pipeline's reply stream (tags restored whole, output checks before each
//! release), and the whole reply assessed at the end.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::chat::assess;
use super::upstream::{send, upstream_status};
use super::{Call, Proxy, error};
use crate::pipeline::{Release, Reply};
use crate::safety::Verdict;

/// One server-sent event carrying `content` as the delta of `template` (the upstream event).
fn sse_event(template: &Value, content: &str) -> Bytes {
    let mut ev = template.clone();
    if let Some(Value::String(s)) = ev.pointer_mut("/choices/0/delta/content") {
        *s = content.to_owned();
    } else if let Some(delta) = ev
        .pointer_mut("/choices/0/delta")
        .and_then(Value::as_object_mut)
    {
        delta.insert("content".into(), Value::String(content.to_owned()));
    }
    Bytes::from(format!("data: {ev}\n\n"))
}

/// An error as a server-sent event (the status line has long gone out).
fn error_event(kind: &'static str, code: &'static str, message: &str) -> Bytes {
    let e = error(axum::http::StatusCode::OK, kind, code, message);
    Bytes::from(format!("data: {}\n\n", e.body()))
}

fn withheld() -> Bytes {
    error_event(
        "readi_safety_block",
        "content_blocked",
        "readi withheld the rest of the model's reply: it was flagged as harmful and recorded for clinical review",
    )
}

fn broken(message: &str) -> Bytes {
    error_event("upstream_error", "upstream_stream", message)
}

pub(super) async fn chat_stream(
    p: Arc<Proxy>,
    c: Call,
    inputs: Vec<String>,
    outbound: Bytes,
    started: Instant,
) -> Response {
    let resp = match send(&p, hyper::Method::POST, "/v1/chat/completions", outbound).await {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    if !resp.status().is_success() {
        return upstream_status(resp.status()).into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(32);
    tokio::spawn(async move {
        let mut body = resp.into_body();
        let mut raw = Vec::new();
        let mut reply = Reply::new(c.caller.clone(), &c.app, &c.session);
        let mut first_token = None;
        let mut template = json!({"choices": [{"index": 0, "delta": {"content": ""}}]});
        loop {
            let frame = match tokio::time::timeout(p.timeout(), body.frame()).await {
                Ok(Some(Ok(f))) => f,
                Ok(None) => break,
                Ok(Some(Err(_))) | Err(_) => {
                    let _ = tx
                        .send(Ok(broken("the upstream stream broke off or stalled")))
                        .await;
                    return;
                }
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            raw.extend_from_slice(&data);
            // Complete events end with a blank line.
            while let Some(end) = find(&raw, b"\n\n") {
                let event: Vec<u8> = raw.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&event);
                for line in text.lines() {
                    let Some(payload) = line.strip_prefix("data:").map(str::trim) else {
                        continue;
                    };
                    if payload == "[DONE]" {
                        continue;
                    }
                    let Ok(ev) = serde_json::from_str::<Value>(payload) else {
                        let _ = tx
                            .send(Ok(broken("the upstream sent a malformed event")))
                            .await;
                        return;
                    };
                    let piece = ev
                        .pointer("/choices/0/delta/content")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    if piece.is_some() {
                        first_token.get_or_insert_with(|| started.elapsed());
                    }
                    template = ev;
                    match reply
                        .push(&p.pipeline, piece.as_deref().unwrap_or(""))
                        .await
                    {
                        Release::Text(out) => {
                            if tx.send(Ok(sse_event(&template, &out))).await.is_err() {
                                return;
                            }
                        }
                        Release::Blocked(so_far) => {
                            let _ = tx.send(Ok(withheld())).await;
                            let ms = started.elapsed().as_millis() as u64;
                            let _ = assess(&p, &c, &inputs, &so_far, ms, 0).await;
                            return;
                        }
                    }
                }
            }
        }
        let (rest, full) = reply.finish(&p.pipeline).await;
        let latency = started.elapsed().as_millis() as u64;
        match assess(&p, &c, &inputs, &full, latency, 0).await {
            Ok(a) if a.verdict == Verdict::Block => {
                let _ = tx.send(Ok(withheld())).await;
            }
            _ => {
                let _ = tx.send(Ok(sse_event(&template, &rest))).await;
                let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
            }
        }
        if let Some(t) = first_token {
            tracing::debug!(first_token_ms = t.as_millis() as u64, "Streamed reply");
        }
    });
    let mut r = Response::new(Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    r
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
