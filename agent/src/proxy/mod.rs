//! The OpenAI-compatible proxy: clinic apps point their base URL here. Every message is redacted
//! before it goes upstream, the reply is re-identified on its way back (streamed replies through a
//! sliding window, so a tag or a risky phrase split across events is still handled), and the exchange
//! is assessed: `block` returns an OpenAI-style error, `escalate` returns the reply and raises the
//! escalation. Upstream failures become OpenAI-style errors; the upstream never sees raw PHI.
//! Everything but HTTP is the pipeline's: this door authenticates, reads JSON and calls it.

mod chat;
mod stream;
mod upstream;

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

pub use chat::{message_texts, parse_chat};

use crate::config::ProxyConfig;
use crate::pipeline::{self, Pipeline};
use crate::ratelimit::RateLimiter;
use crate::tokens::{Caller, Role, Tokens};

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// The proxy's state.
pub struct Proxy {
    pipeline: Arc<Pipeline>,
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
    /// A proxy in front of `config.upstream_url`, redacting and assessing through `pipeline`.
    pub fn new(
        pipeline: Arc<Pipeline>,
        tokens: Tokens,
        limiter: RateLimiter,
        config: ProxyConfig,
    ) -> Result<Arc<Proxy>, ProxyError> {
        let upstream_key = match &config.upstream_key {
            Some(source) => Some(source.load().map_err(ProxyError)?),
            None => None,
        };
        Ok(Arc::new(Proxy {
            pipeline,
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
        .route("/v1/chat/completions", post(chat::chat))
        .route("/v1/models", get(upstream::models))
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

impl ApiError {
    /// The error's JSON body: `{"error": {message, type, param, code}}`.
    fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": null, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body().to_string(),
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

/// A pipeline error as this door answers it: the caller's fault (malformed, too large) is 400,
/// anything else 500; `code` names the stage and `context` what did not happen.
fn pipeline_error(e: &pipeline::Error, code: &'static str, context: &str) -> ApiError {
    let status = if e.is_callers() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    error(status, "readi_error", code, format!("{context}: {e}"))
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

/// Who is calling, for which application and session.
#[derive(Debug, Clone)]
struct Call {
    /// The token's caller, when tokens are enforced; the pipeline authorizes every stage with it.
    caller: Option<Caller>,
    app: String,
    session: String,
}

/// Authenticates a request and names its application and session.
fn call(p: &Proxy, headers: &HeaderMap) -> Result<Call, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let (caller, app) = if p.tokens.enforced() {
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
        let app = c.app_id.clone();
        (Some(c), app)
    } else {
        let named = headers
            .get(self_header(&p.config.app_header))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Some(app) = named.or_else(|| p.config.default_app.clone()) else {
            return Err(bad_request(format!(
                "name the application in the {} header (or set proxy.default_app)",
                p.config.app_header
            )));
        };
        limited(p, &format!("app:{app}"))?;
        (None, app)
    };
    let session = headers
        .get(self_header(&p.config.session_header))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| crate::escalation::new_id("px-"));
    Ok(Call {
        caller,
        app,
        session,
    })
}

fn self_header(name: &str) -> header::HeaderName {
    header::HeaderName::from_bytes(name.as_bytes())
        .unwrap_or(header::HeaderName::from_static("x-readi-app"))
}
