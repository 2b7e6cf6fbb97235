//! `POST /v1/chat/completions`: the request's texts redacted before it leaves, the reply restored,
//! the exchange assessed; a blocked reply is withheld. Streamed replies go to `stream`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use readi_proto::agent::v1 as pb;
use serde_json::Value;

use super::upstream::{collect, malformed, upstream_status};
use super::{ApiError, Call, Proxy, bad_request, call, error, pipeline_error};
use crate::pipeline::{Assessed, Exchange, records, redact::RedactIn};
use crate::safety::Verdict;

/// The text parts of a message's `content` (a string, or an array of `{type: text, text}` parts).
fn texts_mut(content: &mut Value) -> Vec<&mut String> {
    match content {
        Value::String(s) => vec![s],
        Value::Array(parts) => parts
            .iter_mut()
            .filter(|p| p["type"] == "text")
            .filter_map(|p| match p.get_mut("text") {
                Some(Value::String(s)) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A chat completion request's JSON, checked to hold a non-empty `messages` array whose every
/// message names its role.
pub fn parse_chat(body: &[u8]) -> Result<Value, ApiError> {
    let Ok(mut req) = serde_json::from_slice::<Value>(body) else {
        return Err(bad_request("the body is not JSON"));
    };
    let Some(messages) = req.get_mut("messages").and_then(Value::as_array_mut) else {
        return Err(bad_request("`messages` must be an array"));
    };
    if messages.is_empty() {
        return Err(bad_request("`messages` must not be empty"));
    }
    for (i, m) in messages.iter().enumerate() {
        if m["role"].as_str().unwrap_or("").is_empty() {
            return Err(bad_request(format!("messages[{i}].role is required")));
        }
    }
    Ok(req)
}

/// Every text the request carries in its messages, with the role of its message: what is redacted
/// before the request leaves.
pub fn message_texts(req: &mut Value) -> Vec<(String, &mut String)> {
    let Some(messages) = req.get_mut("messages").and_then(Value::as_array_mut) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in messages.iter_mut() {
        let role = m["role"].as_str().unwrap_or("").to_owned();
        if let Some(content) = m.get_mut("content") {
            out.extend(texts_mut(content).into_iter().map(|t| (role.clone(), t)));
        }
    }
    out
}

/// Redacts one text on its way upstream and checks what leaves; fails closed (nothing goes
/// upstream) when redaction fails.
async fn redact_text(p: &Proxy, c: &Call, text: &str) -> Result<String, ApiError> {
    let r = RedactIn {
        app: c.app.clone(),
        session: c.session.clone(),
        text: text.to_owned(),
        style: None,
    };
    let red = p
        .pipeline
        .redact(c.caller.as_ref(), r)
        .await
        .map_err(|e| pipeline_error(&e, "redaction_failed", "not sent upstream"))?;
    p.pipeline.check_outbound(&c.app, &red).await;
    Ok(red.text)
}

/// Assesses the exchange: the user's texts in, the model's reply out.
pub(super) async fn assess(
    p: &Proxy,
    c: &Call,
    inputs: &[String],
    output: &str,
    latency_ms: u64,
    tokens: u64,
) -> Result<Assessed, ApiError> {
    let ex = Exchange {
        app: c.app.clone(),
        session: c.session.clone(),
        input: inputs.iter().map(|t| (pb::Role::User, t.clone())).collect(),
        output: (!output.is_empty()).then(|| (pb::Role::Assistant, output.to_owned())),
        llm_latency_ms: (latency_ms > 0).then_some(latency_ms.min(u64::from(u32::MAX))),
        llm_tokens: (tokens > 0).then_some(tokens.min(u64::from(u32::MAX))),
        ..Default::default()
    };
    p.pipeline.assess(c.caller.as_ref(), ex).await.map_err(|e| {
        pipeline_error(
            &e,
            "assessment_failed",
            "the exchange could not be assessed",
        )
    })
}

fn blocked_response(a: &Assessed) -> ApiError {
    let names: Vec<&str> = a
        .output_flags()
        .map(|c| records::category(c).as_str_name())
        .collect();
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "readi_safety_block",
        "content_blocked",
        format!(
            "readi withheld the model's reply: it was flagged ({}) and recorded for clinical review",
            names.join(", ")
        ),
    )
}

pub(super) async fn chat(State(p): State<Arc<Proxy>>, headers: HeaderMap, body: Bytes) -> Response {
    let c = match call(&p, &headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let mut req = match parse_chat(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut inputs = Vec::new();
    for (role, text) in message_texts(&mut req) {
        if role == "user" {
            inputs.push(text.clone());
        }
        match redact_text(&p, &c, text).await {
            Ok(r) => *text = r,
            Err(resp) => return resp.into_response(),
        }
    }
    let stream = req["stream"].as_bool().unwrap_or(false);
    let outbound = Bytes::from(req.to_string());
    let started = Instant::now();
    if stream {
        return super::stream::chat_stream(p, c, inputs, outbound, started).await;
    }
    let (status, reply) =
        match collect(&p, hyper::Method::POST, "/v1/chat/completions", outbound).await {
            Ok(r) => r,
            Err(r) => return r.into_response(),
        };
    if !status.is_success() {
        return upstream_status(status).into_response();
    }
    let latency = started.elapsed().as_millis() as u64;
    let Ok(mut reply) = serde_json::from_slice::<Value>(&reply) else {
        return malformed("the upstream reply is not JSON").into_response();
    };
    let Some(choices) = reply.get_mut("choices").and_then(Value::as_array_mut) else {
        return malformed("the upstream reply has no choices").into_response();
    };
    let mut first = None;
    for choice in choices.iter_mut() {
        if let Some(Value::String(s)) = choice.pointer_mut("/message/content") {
            *s = p
                .pipeline
                .restore(c.caller.as_ref(), &c.app, &c.session, s)
                .await;
            first.get_or_insert_with(|| s.clone());
        }
    }
    let tokens = reply["usage"]["total_tokens"].as_u64().unwrap_or(0);
    let output = first.unwrap_or_default();
    let a = match assess(&p, &c, &inputs, &output, latency, tokens).await {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    if a.verdict == Verdict::Block {
        return blocked_response(&a).into_response();
    }
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        reply.to_string(),
    )
        .into_response();
    let h = resp.headers_mut();
    if let Ok(v) = records::verdict(a.verdict).as_str_name().parse() {
        h.insert("x-readi-verdict", v);
    }
    if !a.escalation_id.is_empty()
        && let Ok(v) = a.escalation_id.parse()
    {
        h.insert("x-readi-escalation", v);
    }
    resp
}
