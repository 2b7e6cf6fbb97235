//! The proxy's way to the upstream model: requests with the configured key and timeout, failures
//! as OpenAI-style errors, and `/v1/models` passed through.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::{ApiError, Proxy, call, error};

/// `GET /v1/models`, passed through for an authenticated caller.
pub(super) async fn models(State(p): State<Arc<Proxy>>, headers: HeaderMap) -> Response {
    if let Err(r) = call(&p, &headers) {
        return r.into_response();
    }
    match collect(&p, hyper::Method::GET, "/v1/models", Bytes::new()).await {
        Ok((status, body)) if status.is_success() => {
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Ok((status, _)) => upstream_status(status).into_response(),
        Err(r) => r.into_response(),
    }
}

/// An upstream answer that was not a success.
pub(super) fn upstream_status(status: StatusCode) -> ApiError {
    error(
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        "upstream_status",
        format!("the upstream model answered HTTP {}", status.as_u16()),
    )
}

/// A reply from upstream that cannot be read.
pub(super) fn malformed(what: &str) -> ApiError {
    error(
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        "upstream_malformed",
        what.to_owned(),
    )
}

/// Sends a request upstream and collects the whole reply.
pub(super) async fn collect(
    p: &Proxy,
    method: hyper::Method,
    path: &str,
    body: Bytes,
) -> Result<(StatusCode, Bytes), ApiError> {
    let resp = send(p, method, path, body).await?;
    let status = resp.status();
    match tokio::time::timeout(p.timeout(), resp.into_body().collect()).await {
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

/// Sends a request upstream; the reply's body is the caller's to read.
pub(super) async fn send(
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
    match tokio::time::timeout(p.timeout(), p.client.request(req)).await {
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

impl Proxy {
    /// How long upstream may take to answer, and between streamed events (proxy.timeout_secs).
    pub(super) fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout_secs)
    }
}
