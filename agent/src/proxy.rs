//! The OpenAI-compatible proxy: clinic apps point their base URL here. Every message is redacted
//! before it goes upstream, the reply is re-identified on its way back (streamed replies through a
//! sliding window, so a tag or a risky phrase split across events is still handled), and the exchange
//! is assessed: `block` returns an OpenAI-style error, `escalate` returns the reply and raises the
//! escalation. Upstream failures become OpenAI-style errors; the upstream never sees raw PHI.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use readi_proto::agent::v1 as pb;
use readi_proto::agent::v1::gateway_server::Gateway as _;
use serde_json::{Value, json};

use crate::config::ProxyConfig;
use crate::ratelimit::RateLimiter;
use crate::services::gateway::GatewayService;
use crate::tokens::{Role, Tokens};

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// Bytes of a streamed reply held back so a tag or surrogate split across events is restored whole.
pub const REPLY_HOLD: usize = 48;

/// The proxy's state.
pub struct Proxy {
    gateway: Arc<GatewayService>,
    tokens: Tokens,
    limiter: RateLimiter,
    config: ProxyConfig,
    upstream_key: Option<readi_common::secret::Secret>,
    client: Client<Https, Full<Bytes>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("upstream", &self.config.upstream_url)
            .finish_non_exhaustive()
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[error("proxy.upstream_key: {0}")]
pub struct ProxyError(readi_common::secret::SecretError);

impl Proxy {
    /// A proxy in front of `config.upstream_url`, redacting and assessing through `gateway`.
    pub fn new(
        gateway: Arc<GatewayService>,
        tokens: Tokens,
        limiter: RateLimiter,
        config: ProxyConfig,
    ) -> Result<Arc<Proxy>, ProxyError> {
        let upstream_key = match &config.upstream_key {
            Some(source) => Some(source.load().map_err(ProxyError)?),
            None => None,
        };
        Ok(Arc::new(Proxy {
            gateway,
            tokens,
            limiter,
            config,
            upstream_key,
            client: Client::builder(TokioExecutor::new()).build(crate::webhook::connector()),
        }))
    }
}

/// The proxy's routes.
pub fn router(p: Arc<Proxy>, max_body: usize) -> axum::Router {
    axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(p)
}

/// An error answered in the OpenAI format.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    message: String,
    /// Seconds after which a refused client may retry (rate limits).
    retry_after: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "type": self.kind, "param": null, "code": self.code}});
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    }
}

fn error(
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    message: impl Into<String>,
) -> ApiError {
    ApiError {
        status,
        kind,
        code,
        message: message.into(),
        retry_after: None,
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_request",
        message,
    )
}

/// Refuses a request over its caller's rate (limits.requests_per_second) with 429 and Retry-After.
fn limited(p: &Proxy, key: &str) -> Result<(), ApiError> {
    p.limiter.check(key).map_err(|l| ApiError {
        retry_after: Some(l.retry_after.as_secs_f64().ceil().max(1.0) as u64),
        ..error(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            "rate_limit_exceeded",
            p.limiter.message(l),
        )
    })
}

/// The application and session a request belongs to.
fn caller(p: &Proxy, headers: &HeaderMap) -> Result<(String, String), ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let app = if p.tokens.enforced() {
        let Some(c) = bearer.and_then(|t| p.tokens.check(t)) else {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_api_key",
                "use an agent API token with role app as the API key",
            ));
        };
        if c.role != Role::App {
            return Err(error(
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                "permission_denied",
                "the proxy takes application tokens only",
            ));
        }
        limited(p, &c.token_id)?;
        c.app_id
    } else {
        let named = headers
            .get(self_header(&p.config.app_header))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match named.or_else(|| p.config.default_app.clone()) {
            Some(a) => a,
            None => {
                return Err(bad_request(format!(
                    "name the application in the {} header (or set proxy.default_app)",
                    p.config.app_header
                )));
            }
        }
    };
    if !p.tokens.enforced() {
        limited(p, &format!("app:{app}"))?;
    }
    let session = headers
        .get(self_header(&p.config.session_header))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| crate::escalation::new_id("px-"));
    Ok((app, session))
}

fn self_header(name: &str) -> header::HeaderName {
    header::HeaderName::from_bytes(name.as_bytes())
        .unwrap_or(header::HeaderName::from_static("x-readi-app"))
}

async fn models(State(p): State<Arc<Proxy>>, headers: HeaderMap) -> Response {
    if let Err(r) = caller(&p, &headers) {
        return r.into_response();
    }
    match upstream(&p, hyper::Method::GET, "/v1/models", Bytes::new()).await {
        Ok((status, body)) if status.is_success() => {
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Ok((status, _)) => upstream_status(status).into_response(),
        Err(r) => r.into_response(),
    }
}

fn upstream_status(status: StatusCode) -> ApiError {
    error(
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        "upstream_status",
        format!("the upstream model answered HTTP {}", status.as_u16()),
    )
}

/// Sends a request upstream and collects the whole reply.
async fn upstream(
    p: &Proxy,
    method: hyper::Method,
    path: &str,
    body: Bytes,
) -> Result<(StatusCode, Bytes), ApiError> {
    let resp = send(p, method, path, body).await?;
    let status = resp.status();
    let timeout = Duration::from_secs(p.config.timeout_secs);
    match tokio::time::timeout(timeout, resp.into_body().collect()).await {
        Ok(Ok(b)) => Ok((status, b.to_bytes())),
        Ok(Err(_)) => Err(error(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "upstream_broken",
            "the upstream reply broke off",
        )),
        Err(_) => Err(timed_out()),
    }
}

fn timed_out() -> ApiError {
    error(
        StatusCode::GATEWAY_TIMEOUT,
        "upstream_error",
        "upstream_timeout",
        "the upstream model did not answer in time (proxy.timeout_secs)",
    )
}

async fn send(
    p: &Proxy,
    method: hyper::Method,
    path: &str,
    body: Bytes,
) -> Result<hyper::Response<hyper::body::Incoming>, ApiError> {
    let url = format!("{}{path}", p.config.upstream_url.trim_end_matches('/'));
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream");
    if let Some(key) = &p.upstream_key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {}", key.expose()));
    }
    let req = req.body(Full::new(body)).map_err(|_| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "proxy",
            "bad upstream URL",
        )
    })?;
    let timeout = Duration::from_secs(p.config.timeout_secs);
    match tokio::time::timeout(timeout, p.client.request(req)).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Upstream unreachable");
            Err(error(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                "upstream_unreachable",
                "the upstream model could not be reached",
            ))
        }
        Err(_) => Err(timed_out()),
    }
}

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

async fn redact_text(p: &Proxy, app: &str, session: &str, text: &str) -> Result<String, ApiError> {
    let r = p
        .gateway
        .redact(tonic::Request::new(pb::RedactRequest {
            text: text.to_owned(),
            app_id: app.to_owned(),
            session_id: session.to_owned(),
            style: 0,
        }))
        .await
        .map_err(|s| {
            // Fail closed: nothing goes upstream when redaction fails.
            let status = if s.code() == tonic::Code::InvalidArgument
                || s.code() == tonic::Code::ResourceExhausted
            {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            error(
                status,
                "readi_error",
                "redaction_failed",
                format!("not sent upstream: {}", s.message()),
            )
        })?;
    let r = r.into_inner();
    // What leaves is checked once more: PHI found outside the replacements is residual PHI, the
    // privacy criterion's measure. Counted (zero included) only where outbound text is known.
    if let Some(m) = p.gateway.metrics() {
        let replaced: Vec<(u32, u32)> = r
            .spans
            .iter()
            .map(|s| (s.redacted_start, s.redacted_end))
            .collect();
        let outbound = r.redacted_text.clone();
        let residual = tokio::task::spawn_blocking(move || residual_spans(&outbound, &replaced))
            .await
            .unwrap_or(0);
        if residual > 0 {
            tracing::warn!(residual, "PHI found in redacted text on its way upstream");
        }
        m.residual_phi(app, residual as u64);
    }
    Ok(r.redacted_text)
}

/// Spans the detector finds in redacted text outside the replacements (character ranges).
fn residual_spans(redacted: &str, replaced: &[(u32, u32)]) -> usize {
    let mut chars = crate::phi::CharOffsets::new(redacted);
    crate::phi::Detector::global()
        .detect(redacted)
        .iter()
        .map(|s| (chars.at(s.start) as u32, chars.at(s.end) as u32))
        .filter(|(a, b)| !replaced.iter().any(|(x, y)| a < y && x < b))
        .count()
}

async fn reidentify(p: &Proxy, app: &str, session: &str, text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    match p
        .gateway
        .reidentify(tonic::Request::new(pb::ReidentifyRequest {
            text: text.to_owned(),
            app_id: app.to_owned(),
            session_id: session.to_owned(),
        }))
        .await
    {
        Ok(r) => r.into_inner().text,
        // Nothing to restore in this session (no PHI was redacted): the text is as it came.
        Err(_) => text.to_owned(),
    }
}

/// Assesses the exchange: (verdict, escalation id).
async fn assess(
    p: &Proxy,
    app: &str,
    session: &str,
    inputs: &[String],
    output: &str,
    latency_ms: u64,
    tokens: u64,
) -> Result<(pb::Verdict, String, Vec<i32>), ApiError> {
    let r = p
        .gateway
        .assess(tonic::Request::new(pb::AssessRequest {
            app_id: app.to_owned(),
            session_id: session.to_owned(),
            input: inputs
                .iter()
                .map(|t| pb::Turn {
                    role: pb::Role::User as i32,
                    text: t.clone(),
                })
                .collect(),
            output: (!output.is_empty()).then(|| pb::Turn {
                role: pb::Role::Assistant as i32,
                text: output.to_owned(),
            }),
            llm_latency_ms: latency_ms.min(u64::from(u32::MAX)) as u32,
            llm_tokens: tokens.min(u64::from(u32::MAX)) as u32,
            ..Default::default()
        }))
        .await
        .map_err(|s| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "readi_error",
                "assessment_failed",
                format!("the exchange could not be assessed: {}", s.message()),
            )
        })?
        .into_inner();
    let blocked: Vec<i32> = r.findings.iter().map(|f| f.category).collect();
    Ok((r.verdict(), r.escalation_id, blocked))
}

fn blocked_response(categories: &[i32]) -> ApiError {
    let names: Vec<&str> = categories
        .iter()
        .filter_map(|c| pb::Category::try_from(*c).ok())
        .filter(|c| {
            matches!(
                c,
                pb::Category::HarmfulInstructions
                    | pb::Category::EncouragesHarm
                    | pb::Category::Inflammatory
            )
        })
        .map(|c| c.as_str_name())
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

async fn chat(State(p): State<Arc<Proxy>>, headers: HeaderMap, body: Bytes) -> Response {
    let (app, session) = match caller(&p, &headers) {
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
        match redact_text(&p, &app, &session, text).await {
            Ok(r) => *text = r,
            Err(resp) => return resp.into_response(),
        }
    }
    let stream = req["stream"].as_bool().unwrap_or(false);
    let outbound = Bytes::from(req.to_string());
    let started = Instant::now();
    if stream {
        return chat_stream(p, app, session, inputs, outbound, started).await;
    }
    let (status, reply) =
        match upstream(&p, hyper::Method::POST, "/v1/chat/completions", outbound).await {
            Ok(r) => r,
            Err(r) => return r.into_response(),
        };
    if !status.is_success() {
        return upstream_status(status).into_response();
    }
    let latency = started.elapsed().as_millis() as u64;
    let Ok(mut reply) = serde_json::from_slice::<Value>(&reply) else {
        return error(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "upstream_malformed",
            "the upstream reply is not JSON",
        )
        .into_response();
    };
    let Some(choices) = reply.get_mut("choices").and_then(Value::as_array_mut) else {
        return error(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "upstream_malformed",
            "the upstream reply has no choices",
        )
        .into_response();
    };
    let mut first = None;
    for c in choices.iter_mut() {
        if let Some(Value::String(s)) = c.pointer_mut("/message/content") {
            *s = reidentify(&p, &app, &session, s).await;
            first.get_or_insert_with(|| s.clone());
        }
    }
    let tokens = reply["usage"]["total_tokens"].as_u64().unwrap_or(0);
    let output = first.unwrap_or_default();
    let (verdict, escalation, categories) =
        match assess(&p, &app, &session, &inputs, &output, latency, tokens).await {
            Ok(v) => v,
            Err(r) => return r.into_response(),
        };
    if verdict == pb::Verdict::Block {
        return blocked_response(&categories).into_response();
    }
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        reply.to_string(),
    )
        .into_response();
    let h = resp.headers_mut();
    if let Ok(v) = verdict.as_str_name().parse() {
        h.insert("x-readi-verdict", v);
    }
    if !escalation.is_empty()
        && let Ok(v) = escalation.parse()
    {
        h.insert("x-readi-escalation", v);
    }
    resp
}

/// Where streamed reply text may be released: at least REPLY_HOLD bytes back, after whitespace, and
/// never inside an unclosed `[TAG_n]`.
pub fn release_cut(pending: &str) -> usize {
    let mut cut = pending.len().saturating_sub(REPLY_HOLD);
    while cut > 0 && !pending.is_char_boundary(cut) {
        cut -= 1;
    }
    cut = pending[..cut].rfind(char::is_whitespace).map_or(0, |i| {
        i + pending[i..].chars().next().map_or(1, char::len_utf8)
    });
    if let Some(open) = pending[..cut].rfind('[')
        && !pending[open..cut].contains(']')
    {
        cut = open;
    }
    cut
}

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

async fn chat_stream(
    p: Arc<Proxy>,
    app: String,
    session: String,
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
        let (mut pending, mut released, mut first_token) = (String::new(), String::new(), None);
        let mut template = json!({"choices": [{"index": 0, "delta": {"content": ""}}]});
        let timeout = Duration::from_secs(p.config.timeout_secs);
        let fail = |message: &str| {
            Bytes::from(format!(
                "data: {}\n\n",
                json!({"error": {"message": message, "type": "upstream_error", "code": "upstream_stream"}})
            ))
        };
        loop {
            let frame = match tokio::time::timeout(timeout, body.frame()).await {
                Ok(Some(Ok(f))) => f,
                Ok(None) => break,
                Ok(Some(Err(_))) | Err(_) => {
                    let _ = tx
                        .send(Ok(fail("the upstream stream broke off or stalled")))
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
                            .send(Ok(fail("the upstream sent a malformed event")))
                            .await;
                        return;
                    };
                    if let Some(piece) = ev
                        .pointer("/choices/0/delta/content")
                        .and_then(Value::as_str)
                    {
                        first_token.get_or_insert_with(|| started.elapsed());
                        pending.push_str(piece);
                    }
                    template = ev;
                    let cut = release_cut(&pending);
                    let out = reidentify(&p, &app, &session, &pending[..cut]).await;
                    pending.drain(..cut);
                    // Output checks run on everything so far, before anything more is released.
                    let so_far = format!("{released}{out}{pending}");
                    let check = crate::safety::Assessor::global().assess(&[], Some(&so_far));
                    if check.verdict == crate::safety::Verdict::Block {
                        let msg = json!({"error": {"message": "readi withheld the rest of the model's reply: it was flagged as harmful and recorded for clinical review", "type": "readi_safety_block", "code": "content_blocked"}});
                        let _ = tx.send(Ok(Bytes::from(format!("data: {msg}\n\n")))).await;
                        let _ = assess(
                            &p,
                            &app,
                            &session,
                            &inputs,
                            &so_far,
                            started.elapsed().as_millis() as u64,
                            0,
                        )
                        .await;
                        return;
                    }
                    released.push_str(&out);
                    if tx.send(Ok(sse_event(&template, &out))).await.is_err() {
                        return;
                    }
                }
            }
        }
        let rest = reidentify(&p, &app, &session, &pending).await;
        released.push_str(&rest);
        let full = released.clone();
        let latency = started.elapsed().as_millis() as u64;
        match assess(&p, &app, &session, &inputs, &full, latency, 0).await {
            Ok((pb::Verdict::Block, _, _)) => {
                let msg = json!({"error": {"message": "readi withheld the rest of the model's reply: it was flagged as harmful and recorded for clinical review", "type": "readi_safety_block", "code": "content_blocked"}});
                let _ = tx.send(Ok(Bytes::from(format!("data: {msg}\n\n")))).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_outside_the_replacements_is_residual() {
        let text = "Seen by [NAME_1] today; call 617-555-0199.";
        // The tag is a replacement; the phone number was missed.
        assert_eq!(residual_spans(text, &[(8, 16)]), 1);
        assert_eq!(residual_spans(text, &[(8, 16), (29, 41)]), 0);
        assert_eq!(residual_spans("Nothing identifying here.", &[]), 0);
    }

    #[test]
    fn streamed_text_is_released_whole_words_and_whole_tags() {
        let text = "Hello [NAME_1], your appointment is confirmed for next week at the clinic [LOC";
        let cut = release_cut(text);
        assert!(cut <= text.len() - REPLY_HOLD);
        assert!(text[..cut].ends_with(' '));
        assert!(!text[..cut].contains("[LOC"));
        let open = "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii [NAME_ jjjj kkkk llll mmmm nnnn oooo pppp qqqq";
        let cut = release_cut(open);
        assert!(!open[..cut].contains('['), "{}", &open[..cut]);
        assert_eq!(release_cut("short"), 0);
    }
}
