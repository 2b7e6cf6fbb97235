//! Serving: `run` takes a bound listener, a config and a shutdown future, and serves until shutdown.

use std::future::Future;

use readi_common::shutdown::{Fatal, Trigger, with_grace};
use readi_proto::agent::v1::{compliance_server::ComplianceServer, gateway_server::GatewayServer};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;

use std::sync::Arc;

use crate::Config;
use crate::adverse::{AdverseError, AdverseEvents};
use crate::audit::{Audit, AuditError};
use crate::egress::{Egress, EgressError};
use crate::escalation::{EscalationError, Escalations};
use crate::keys::{KeyError, Keys};
use crate::pipeline::{Pipeline, Sinks};
use crate::reporting::Reporter;
use crate::services::{compliance::ComplianceService, gateway::GatewayService};
use crate::vault::{Vault, VaultError};
use crate::webhook::{Dispatcher, WebhookError};
use readi_common::embedded::{Store, StoreError};

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store could not be opened or flushed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The listener is unusable.
    #[error("listener: {0}")]
    Listener(std::io::Error),
    /// Keys are missing or wrong.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The vault could not be opened.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The audit log could not be opened.
    #[error("audit log: {0}")]
    Audit(#[from] AuditError),
    /// The escalation store could not be opened.
    #[error("escalations: {0}")]
    Escalations(#[from] EscalationError),
    /// The feedback log could not be opened.
    #[error("feedback: {0}")]
    Feedback(crate::feedback::FeedbackError),
    /// The adverse-event log could not be opened.
    #[error("adverse events: {0}")]
    Adverse(AdverseError),
    /// TLS material could not be loaded.
    #[error("server.tls: {0}")]
    Tls(String),
    /// The token store could not be opened.
    #[error("tokens: {0}")]
    Tokens(String),
    /// A webhook could not be set up.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// The outcome store could not be opened.
    #[error(transparent)]
    Outcomes(crate::outcomes::OutcomeError),
    /// The proxy could not be set up.
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),
    /// The agent stopped itself on a fault it cannot serve through.
    #[error("stopped: {0}")]
    Fatal(String),
    /// The egress ledger could not be opened.
    #[error(transparent)]
    Egress(#[from] EgressError),
    /// The high-water mark is missing, forged, or ahead of the store.
    #[error(transparent)]
    Mark(#[from] crate::mark::MarkError),
}

/// Serves the agent's gRPC API and health service on `listener` until `shutdown` resolves, then lets
/// in-flight calls finish within the configured grace period and flushes the store.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let store = Store::open_with_cache(
        &config.storage.data_dir,
        "agent.db",
        config.storage.cache_mib,
    )?;
    let addr = listener.local_addr().map_err(Error::Listener)?;
    let keys = Arc::new(Keys::load(
        config.keys.kek.as_ref(),
        &config.storage.data_dir,
        store.db(),
    )?);
    let ttl = std::time::Duration::from_secs(config.redaction.vault_ttl_secs);
    let vault = Arc::new(Vault::open(store.db(), Arc::clone(&keys), ttl)?);
    let audit = Arc::new(Audit::open(store.db(), &keys, AUDIT_CHECKPOINT_EVERY)?);
    let fatal = Fatal::default();
    let trigger = Trigger::spawn_or_fatal(shutdown, &fatal);
    let hooks = Dispatcher::start(&config.escalation.webhooks, Arc::clone(&audit))?;
    let escalations = Arc::new(Escalations::open(store.db(), Arc::clone(&keys), hooks)?);
    // Nothing is written before the store is known to hold everything acknowledged before.
    let mark =
        crate::mark::Mark::open_checked(&config.storage.data_dir, &keys, store.db(), &audit)?;
    audit.attach(Arc::clone(&mark));
    vault.attach(Arc::clone(&mark));
    escalations.attach(mark);
    record_config_change(store.db(), &audit, &config)?;
    let adverse =
        Arc::new(AdverseEvents::open(store.db(), Arc::clone(&keys)).map_err(Error::Adverse)?);
    let feedback = Arc::new(
        crate::feedback::Feedback::open(store.db(), Arc::clone(&keys)).map_err(Error::Feedback)?,
    );
    let reporter = match &config.controller {
        Some(link) => {
            let egress = Arc::new(Egress::open(store.db(), Arc::clone(&keys), &link.url)?);
            let reporter = Arc::new(Reporter::open(egress, &config.reporting)?);
            reporter.anchor(Arc::clone(&audit));
            spawn_reporting(link.clone(), Arc::clone(&reporter), &trigger);
            tracing::info!(
                agent_id = %reporter.egress().agent_id(),
                controller = %link.url,
                window_secs = config.reporting.window_secs,
                "Reporting aggregate metrics"
            );
            Some(reporter)
        }
        None => None,
    };
    let last_scrub = Arc::new(crate::scrub::Last::default());
    spawn_scrub(
        store.db().clone(),
        Arc::clone(&keys),
        Arc::clone(&audit),
        Arc::clone(&last_scrub),
        &trigger,
    );
    spawn_maintenance(
        &config,
        Arc::clone(&vault),
        Arc::clone(&keys),
        Arc::clone(&audit),
        Arc::clone(&escalations),
        &trigger,
    );

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<GatewayServer<GatewayService>>().await;
    health
        .set_serving::<ComplianceServer<ComplianceService>>()
        .await;

    let tokens = crate::tokens::Tokens::open(store.db(), config.auth.required)
        .map_err(|e| Error::Tokens(e.to_string()))?;
    let max = config.limits.max_message_bytes;
    let limiter = crate::ratelimit::RateLimiter::new(
        config.limits.requests_per_second,
        config.limits.request_burst,
    );
    let pending = Arc::clone(&escalations);
    let pipeline = Arc::new(Pipeline::new(
        vault,
        Arc::clone(&audit),
        config.redaction.clone(),
        &config.limits,
        Sinks {
            escalations,
            adverse: Arc::clone(&adverse),
            shutdown: trigger.clone(),
            fatal: fatal.clone(),
            metrics: reporter.as_ref().map(|r| Arc::clone(r.metrics())),
            feedback: Arc::clone(&feedback),
            outcomes: match &reporter {
                Some(_) => Some(Arc::new(
                    crate::outcomes::Outcomes::open(store.db(), Arc::clone(&keys))
                        .map_err(Error::Outcomes)?,
                )),
                None => None,
            },
        },
    ));
    if !config.proxy.listen.is_empty() {
        let proxy = crate::proxy::Proxy::new(
            Arc::clone(&pipeline),
            tokens.clone(),
            limiter.clone(),
            config.proxy.clone(),
        )?;
        let l = TcpListener::bind(&config.proxy.listen)
            .await
            .map_err(Error::Listener)?;
        let proxy_addr = l.local_addr().map_err(Error::Listener)?;
        let app = crate::proxy::router(proxy, config.limits.max_message_bytes);
        readi_common::http::spawn(l, app, &trigger, "Proxy");
        tracing::info!(proxy_addr = %proxy_addr, upstream = %config.proxy.upstream_url, "OpenAI-compatible proxy");
    }
    if !config.metrics.listen.is_empty() {
        let l = TcpListener::bind(&config.metrics.listen)
            .await
            .map_err(Error::Listener)?;
        let metrics_addr = l.local_addr().map_err(Error::Listener)?;
        let app = crate::selfmetrics::router(crate::selfmetrics::SelfMetrics::new(
            reporter.clone(),
            pending,
            Arc::clone(&last_scrub),
        ));
        readi_common::http::spawn(l, app, &trigger, "Metrics listener");
        tracing::info!(metrics_addr = %metrics_addr, "Self-metrics");
    }
    let gateway = GatewayServer::new(GatewayService::new(pipeline))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let compliance = ComplianceServer::new(ComplianceService::new(
        adverse,
        feedback,
        Arc::clone(&audit),
        crate::services::compliance::Evidence {
            config: config.clone(),
            keys: Arc::clone(&keys),
            listen: addr.to_string(),
            tokens: tokens.clone(),
            db: store.db().clone(),
            scrub: Arc::clone(&last_scrub),
        },
    ))
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);

    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let stop = trigger.clone();
    let health_on_stop = health.clone();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.server.tls {
        builder = builder.tls_config(server_tls(tls)?)?;
    }
    let server = builder
        .add_service(health_service)
        .add_service(InterceptedService::new(
            gateway,
            crate::tokens::interceptor(tokens.clone(), Arc::clone(&audit), limiter.clone()),
        ))
        .add_service(InterceptedService::new(
            compliance,
            crate::tokens::interceptor(tokens.clone(), Arc::clone(&audit), limiter.clone()),
        ))
        .serve_with_incoming_shutdown(incoming, async move {
            stop.fired().await;
            health_on_stop
                .set_not_serving::<GatewayServer<GatewayService>>()
                .await;
        });
    tracing::info!(
        grpc_addr = %addr,
        tls = config.server.tls.is_some(),
        client_certificates = config.server.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        data_dir = %config.storage.data_dir.display(),
        "Serving"
    );

    let result = with_grace(server, trigger, config.shutdown_grace()).await;
    // Sign what was written since the last checkpoint, so a cut-off tail is detectable.
    if let Err(e) = audit.checkpoint() {
        tracing::error!(error = %e, "Final audit checkpoint failed");
    }
    if let Some(r) = &reporter
        && let Err(e) = r.egress().save_window(&r.metrics().snapshot())
    {
        tracing::error!(error = %e, "The open metric window could not be saved");
    }
    if let Some(reason) = fatal.reason() {
        if let Err(e) = store.flush().await {
            tracing::error!(error = %e, "The store could not be flushed");
        }
        return Err(Error::Fatal(reason.to_owned()));
    }
    store.flush().await?;
    tracing::info!("Stopped");
    match result {
        Some(r) => r.map_err(Error::from),
        None => Ok(()),
    }
}

/// Audits a start with a configuration different from the last one (by digest; secrets are never in
/// a config, only where they come from).
fn record_config_change(db: &sled::Db, audit: &Audit, config: &Config) -> Result<(), Error> {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{config:?}").as_bytes());
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let meta = db
        .open_tree("meta")
        .map_err(|e| Error::Audit(AuditError::Store(e)))?;
    let last = meta
        .get(b"config-digest")
        .map_err(|e| Error::Audit(AuditError::Store(e)))?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    if last.as_deref() != Some(hex.as_str()) {
        let outcome = match &last {
            Some(old) => format!("config {old} -> {hex}"),
            None => format!("config {hex} (first start)"),
        };
        audit.record("config_change", "", &outcome)?;
        meta.insert(b"config-digest", hex.as_bytes())
            .map_err(|e| Error::Audit(AuditError::Store(e)))?;
    }
    Ok(())
}

/// The listener's TLS settings: certificate chain, private key, and the client CA for mTLS.
fn server_tls(tls: &crate::config::TlsConfig) -> Result<tonic::transport::ServerTlsConfig, Error> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let cert = std::fs::read(&tls.cert)
        .map_err(|e| Error::Tls(format!("cert {}: {e}", tls.cert.display())))?;
    let key = tls
        .key
        .load()
        .map_err(|e| Error::Tls(format!("key: {e}")))?;
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key.expose()));
    if let Some(ca) = &tls.client_ca {
        let pem = std::fs::read(ca)
            .map_err(|e| Error::Tls(format!("client_ca {}: {e}", ca.display())))?;
        config = config.client_ca_root(Certificate::from_pem(pem));
    }
    Ok(config)
}

/// One retention pass: roll, then shred; every key operation is audited.
pub(crate) fn apply_retention(
    keys: &Keys,
    audit: &Audit,
    retention: &crate::config::RetentionConfig,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let day = std::time::Duration::from_secs(86_400);
    let audit_cutoff_ms = crate::keyring::cutoff(day * retention.audit_days as u32) * 1000;
    let pruned = audit.prune_before(audit_cutoff_ms)?;
    if pruned > 0 {
        tracing::info!(records = pruned, "Audit records past retention removed");
    }
    for (class, days) in retention.classes() {
        let ring = &keys.sealer;
        if let Some(epoch) = ring.roll_if_older(
            class,
            crate::keyring::cutoff(day * retention.epoch_days as u32),
        )? {
            audit.record(
                "key_rotate",
                "",
                &format!("{class} epoch {epoch} (scheduled)"),
            )?;
            tracing::info!(class, epoch, "Data key rolled");
        }
        let gone = ring.shred_before(class, crate::keyring::cutoff(day * days as u32))?;
        for epoch in gone {
            audit.record(
                "key_shred",
                "",
                &format!("{class} epoch {epoch} (retention {days} days)"),
            )?;
            tracing::info!(
                class,
                epoch,
                "Data key destroyed: its records are unrecoverable"
            );
        }
    }
    Ok(())
}

/// A signed audit checkpoint every this many records (and every minute, and at shutdown).
const AUDIT_CHECKPOINT_EVERY: u64 = 64;

/// Runs `job` off the async workers every `period` until shutdown, logging its failures as `what`.
fn spawn_every<E, F>(period: std::time::Duration, trigger: Trigger, what: &'static str, job: F)
where
    E: std::fmt::Display + Send + 'static,
    F: Fn() -> Result<(), E> + Send + Sync + 'static,
{
    let job = Arc::new(job);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = trigger.clone().fired() => return,
            }
            let job = Arc::clone(&job);
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || job()).await {
                tracing::error!(error = %e, "{what} failed");
            }
        }
    });
}

/// The periodic work of a running agent: vault sweep, audit checkpoints, retention, escalation
/// re-sends.
fn spawn_maintenance(
    config: &Config,
    vault: Arc<Vault>,
    keys: Arc<Keys>,
    audit: Arc<Audit>,
    escalations: Arc<Escalations>,
    trigger: &Trigger,
) {
    use std::time::Duration;
    spawn_every(
        Duration::from_secs(60),
        trigger.clone(),
        "Vault sweep",
        move || {
            let n = vault.sweep()?;
            if n > 0 {
                tracing::info!(removed = n, "Expired session maps deleted");
            }
            Ok::<_, crate::vault::VaultError>(())
        },
    );
    let a = Arc::clone(&audit);
    spawn_every(
        Duration::from_secs(60),
        trigger.clone(),
        "Audit checkpoint",
        move || a.checkpoint(),
    );
    let retention = config.retention.clone();
    spawn_every(
        Duration::from_secs(3600),
        trigger.clone(),
        "Retention run",
        move || apply_retention(&keys, &audit, &retention),
    );
    let after = Duration::from_secs(config.escalation.resend_secs);
    let every = (after / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    spawn_every(every, trigger.clone(), "Escalation resend", move || {
        let n = escalations.resend_due(after)?;
        if n > 0 {
            tracing::info!(resent = n, "Unacknowledged escalations re-sent");
        }
        Ok::<_, EscalationError>(())
    });
}

/// How often the background scrub runs (once at start, then at this period).
const SCRUB_EVERY: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// The background scrub: one pass at a time on a blocking thread, never overlapping the next, its
/// result kept for `/healthz`, `/metrics` and the safeguards report.
fn spawn_scrub(
    db: sled::Db,
    keys: Arc<Keys>,
    audit: Arc<Audit>,
    last: Arc<crate::scrub::Last>,
    trigger: &Trigger,
) {
    spawn_every(SCRUB_EVERY, trigger.clone(), "Scrub", move || {
        let r = crate::scrub::scrub(&db, &keys, &audit);
        for d in r.damaged.iter().take(100) {
            tracing::error!(tree = %d.tree, key = %d.key, why = %d.why, "Damaged record");
        }
        tracing::info!(
            records = r.records,
            damaged = r.damaged.len(),
            millis = r.elapsed.as_millis() as u64,
            "Scrub finished"
        );
        last.record(r);
        Ok::<_, std::convert::Infallible>(())
    });
}

/// Closes metric windows on the clock and uploads the outbox until shutdown.
fn spawn_reporting(
    link: crate::config::ControllerLink,
    reporter: Arc<Reporter>,
    trigger: &Trigger,
) {
    use std::time::Duration;
    let window = reporter.metrics().window_secs();
    let every = Duration::from_secs((window / 4).clamp(1, 15));
    let r = Arc::clone(&reporter);
    spawn_every(every, trigger.clone(), "Metric window close", move || {
        r.tick(crate::reporting::unix_now()).map(drop)
    });
    tokio::spawn(crate::reporting::upload(
        link,
        Arc::clone(reporter.egress()),
        Arc::clone(&reporter.queued),
        trigger.clone(),
    ));
}
