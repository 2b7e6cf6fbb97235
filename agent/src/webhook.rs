//! Webhook delivery of escalations to the clinic's on-call tool: JSON without text, retried with
//! backoff, every failure recorded in the audit log.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use readi_proto::agent::v1 as pb;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::audit::Audit;
use crate::config::WebhookConfig;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A configured webhook with its secret loaded.
#[derive(Clone)]
struct Hook {
    url: hyper::Uri,
    token: Option<readi_common::secret::Secret>,
    timeout: Duration,
    attempts: u32,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("host", &self.url.host())
            .finish_non_exhaustive()
    }
}

/// Why webhooks could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A token's secret source failed.
    #[error("escalation.webhooks[{0}].token: {1}")]
    Token(usize, readi_common::secret::SecretError),
    /// The URL did not parse (validation should have caught it).
    #[error("escalation.webhooks[{0}].url is not a URL")]
    Url(usize),
}

/// Hands escalations to the delivery task; never blocks a request.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    tx: mpsc::Sender<(pb::Escalation, bool)>,
}

#[derive(Serialize)]
struct FindingOut<'a> {
    id: &'a str,
    category: &'static str,
    severity: &'static str,
    rule_id: &'a str,
    turn: i32,
    start: u32,
    end: u32,
    negated: bool,
    historical: bool,
    hypothetical: bool,
    experiencer: &'static str,
}

#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    app_id: &'a str,
    session_id: &'a str,
    exchange_id: &'a str,
    raised_at_unix: i64,
    severity: &'static str,
    source: &'static str,
    resent: bool,
    findings: Vec<FindingOut<'a>>,
}

/// The JSON body for one escalation: identifiers, categories, rules and spans; never text.
pub(crate) fn payload(e: &pb::Escalation, resent: bool) -> Vec<u8> {
    let name = |s: Option<&'static str>| s.unwrap_or("UNSPECIFIED");
    let p = Payload {
        id: &e.id,
        app_id: &e.app_id,
        session_id: &e.session_id,
        exchange_id: &e.exchange_id,
        raised_at_unix: e.raised_at.map_or(0, |t| t.seconds),
        severity: name(
            pb::Severity::try_from(e.severity)
                .ok()
                .map(|s| s.as_str_name()),
        ),
        source: name(
            pb::EventSource::try_from(e.source)
                .ok()
                .map(|s| s.as_str_name()),
        ),
        resent,
        findings: e
            .findings
            .iter()
            .map(|f| FindingOut {
                id: &f.id,
                category: name(
                    pb::Category::try_from(f.category)
                        .ok()
                        .map(|c| c.as_str_name()),
                ),
                severity: name(
                    pb::Severity::try_from(f.severity)
                        .ok()
                        .map(|s| s.as_str_name()),
                ),
                rule_id: &f.rule_id,
                turn: f.turn,
                start: f.start,
                end: f.end,
                negated: f.negated,
                historical: f.historical,
                hypothetical: f.hypothetical,
                experiencer: name(
                    pb::Experiencer::try_from(f.experiencer)
                        .ok()
                        .map(|x| x.as_str_name()),
                ),
            })
            .collect(),
    };
    serde_json::to_vec(&p).expect("payload serializes")
}

impl Dispatcher {
    /// Starts the delivery task for `configs`; `None` when there are none.
    pub fn start(
        configs: &[WebhookConfig],
        audit: Arc<Audit>,
    ) -> Result<Option<Dispatcher>, WebhookError> {
        if configs.is_empty() {
            return Ok(None);
        }
        let mut hooks = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            let token = match &c.token {
                Some(src) => Some(src.load().map_err(|e| WebhookError::Token(i, e))?),
                None => None,
            };
            hooks.push(Hook {
                url: c.url.parse().map_err(|_| WebhookError::Url(i))?,
                token,
                timeout: Duration::from_secs(c.timeout_secs),
                attempts: c.max_attempts,
            });
        }
        let client = Client::builder(TokioExecutor::new()).build(connector());
        let (tx, mut rx) = mpsc::channel::<(pb::Escalation, bool)>(1024);
        tokio::spawn(async move {
            while let Some((e, resent)) = rx.recv().await {
                let body = Bytes::from(payload(&e, resent));
                for hook in &hooks {
                    let (client, hook, body, audit) = (
                        client.clone(),
                        hook.clone(),
                        body.clone(),
                        Arc::clone(&audit),
                    );
                    let (id, app) = (e.id.clone(), e.app_id.clone());
                    tokio::spawn(async move {
                        deliver(&client, &hook, body, &id, &app, &audit).await;
                    });
                }
            }
        });
        Ok(Some(Dispatcher { tx }))
    }

    /// Queues an escalation for every webhook. A full queue is recorded; the resend loop retries.
    pub fn deliver(&self, e: &pb::Escalation, resent: bool) {
        if self.tx.try_send((e.clone(), resent)).is_err() {
            tracing::error!(escalation = %e.id, "Webhook queue full; escalation will be re-sent");
        }
    }
}

/// An HTTPS (or loopback HTTP) client connector with the host's CA store.
pub(crate) fn connector() -> Https {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_native_roots() {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "No CA certificates found; https webhooks will fail");
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
        }
    };
    // No Nagle delay: streamed replies go out event by event.
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    builder.https_or_http().enable_http1().wrap_connector(http)
}

async fn deliver(
    client: &Client<Https, Full<Bytes>>,
    hook: &Hook,
    body: Bytes,
    id: &str,
    app: &str,
    audit: &Audit,
) {
    let host = hook.url.host().unwrap_or("?").to_owned();
    let mut backoff = Duration::from_secs(1);
    let mut last = String::new();
    for attempt in 1..=hook.attempts {
        let mut req = hyper::Request::post(hook.url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "readi-agent")
            .header("x-readi-escalation", id)
            .header("x-readi-attempt", attempt.to_string());
        if let Some(t) = &hook.token {
            req = req.header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", t.expose()),
            );
        }
        let req = req
            .body(Full::new(body.clone()))
            .expect("a request from a parsed URI and static headers builds");
        match tokio::time::timeout(hook.timeout, client.request(req)).await {
            Ok(Ok(resp)) if resp.status().is_success() => {
                // Drain so the connection can be reused.
                let _ = resp.into_body().collect().await;
                tracing::info!(escalation = %id, host = %host, attempt, "Webhook delivered");
                return;
            }
            Ok(Ok(resp)) => last = format!("HTTP {}", resp.status().as_u16()),
            Ok(Err(e)) => last = format!("connection: {e}"),
            Err(_) => last = format!("no answer within {}s", hook.timeout.as_secs()),
        }
        tracing::warn!(escalation = %id, host = %host, attempt, problem = %last, "Webhook attempt failed");
        if attempt < hook.attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }
    let outcome = format!(
        "escalation {id} not delivered to {host} after {} attempts: {last}",
        hook.attempts
    );
    if let Err(e) = audit.record("webhook_failed", app, &outcome) {
        tracing::error!(error = %e, "Audit write failed");
    }
    tracing::error!(escalation = %id, host = %host, problem = %last, "Webhook delivery failed");
}
