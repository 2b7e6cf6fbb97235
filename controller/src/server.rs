//! Serving: `run` takes a bound listener, a config and a shutdown future, and serves until shutdown.

use std::future::Future;

use readi_common::embedded::{Store, StoreError};
use readi_common::shutdown::{Fatal, Trigger, with_grace};
use readi_proto::controller::v1::controller_server::ControllerServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::Config;
use crate::registry::Registry;
use crate::service::{ControllerService, Scoring};
use crate::store::SledStore;
use crate::tls::AgentCa;
use std::sync::Arc;

/// Why the controller stopped with an error.
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
    /// A configured listener could not be opened.
    #[error("{key} = {addr:?}: cannot listen there: {source}")]
    Bind {
        /// The config key naming the address.
        key: &'static str,
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The report store could not be opened.
    #[error(transparent)]
    Reports(crate::store::StoreError),
    /// The CA could not be loaded or created.
    #[error("server.tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The controller stopped itself on a fault it cannot serve through.
    #[error("stopped: {0}")]
    Fatal(String),
}

/// Where a controller keeps what it knows.
#[derive(Clone, Debug)]
pub struct Backend {
    /// Agents, reports, cohorts, counters (and rollups, when the store keeps them).
    pub reports: Arc<dyn crate::store::ReportStore>,
    /// Vendors, applications, tokens, enrollment tokens, revocations.
    pub records: Arc<dyn crate::records::Records>,
}

/// The stores the config names: the embedded database with records in files beside it, or
/// PostgreSQL (migrated on start) holding both, shared by every replica.
pub async fn open_backend(config: &Config, store: Option<&Store>) -> Result<Backend, Error> {
    match (config.storage.backend, store) {
        (crate::config::Backend::Sled, Some(store)) => Ok(Backend {
            reports: Arc::new(SledStore::open(store.db()).map_err(Error::Reports)?),
            records: Arc::new(crate::records::FileRecords::new(&config.storage.data_dir)),
        }),
        (crate::config::Backend::Sled, None) => Err(Error::Reports(
            crate::store::StoreError::Backend("the embedded store is not open".into()),
        )),
        (crate::config::Backend::Postgres, _) => {
            let source = config.storage.postgres_url.clone().ok_or_else(|| {
                Error::Reports(crate::store::StoreError::Backend(
                    "storage.postgres_url is not set".into(),
                ))
            })?;
            let ca = config.storage.postgres_ca.clone();
            let connections = config.storage.postgres_connections;
            let url = source.load().map_err(|e| {
                Error::Reports(crate::store::StoreError::Backend(format!(
                    "storage.postgres_url: {e}"
                )))
            })?;
            let pg = tokio::task::spawn_blocking(move || {
                crate::pgstore::PgStore::open_with(url.expose(), ca.as_deref(), connections)
            })
            .await
            .map_err(|_| {
                Error::Reports(crate::store::StoreError::Backend(
                    "opening the PostgreSQL store failed".into(),
                ))
            })?
            .map_err(Error::Reports)?;
            tracing::info!("Reports and registry in PostgreSQL");
            let pg = Arc::new(pg);
            Ok(Backend {
                reports: pg.clone(),
                records: pg,
            })
        }
    }
}

/// How often a replica looks for reports to fold into the store's rollups.
const ROLLUP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps the store's rollups current until shutdown: every replica tries, one at a time folds.
/// Scorecards never wait for it (they read what is pending too); it keeps their reads short.
fn spawn_rollups(reports: Arc<dyn crate::store::ReportStore>, trigger: Trigger) {
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(ROLLUP_EVERY) => {}
                () = trigger.clone().fired() => return,
            }
            let store = Arc::clone(&reports);
            let folded = crate::store::spawn_blocking(move || {
                let rollups = store.rollups().expect("checked before spawning");
                let mut total = 0;
                // Drain what is pending, batch by batch; bounded, so shutdown is never kept waiting.
                for _ in 0..50 {
                    match rollups.compact()? {
                        0 => break,
                        n => total += n,
                    }
                }
                Ok::<_, crate::store::StoreError>(total)
            })
            .await;
            match folded {
                Ok(Ok(n)) => {
                    if failing {
                        tracing::info!("Rollups current again");
                        failing = false;
                    }
                    if n > 0 {
                        tracing::debug!(reports = n, "Folded reports into the rollups");
                    }
                }
                Ok(Err(e)) => {
                    if !failing {
                        tracing::warn!(error = %e, "Rollups not folded; scorecards read the pending reports meanwhile");
                        failing = true;
                    }
                }
                Err(_) => tracing::error!("The rollup task failed"),
            }
        }
    });
}

/// Serves the controller's gRPC API and health service on `listener` until `shutdown` resolves, then
/// lets in-flight calls finish within the grace period and flushes the store.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    // On PostgreSQL a replica keeps nothing on local disk but its CA (when TLS is on).
    let store = match config.storage.backend {
        crate::config::Backend::Sled => Some(Store::open_with_cache(
            &config.storage.data_dir,
            "controller.db",
            config.storage.cache_mib,
        )?),
        crate::config::Backend::Postgres => None,
    };
    let addr = listener.local_addr().map_err(Error::Listener)?;
    let fatal = Fatal::default();
    let trigger = Trigger::spawn_or_fatal(shutdown, &fatal);

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<ControllerServer<ControllerService>>()
        .await;

    let Backend { reports, records } = open_backend(&config, store.as_ref()).await?;
    let ca = match &config.server.tls {
        Some(tls) => Some(Arc::new(AgentCa::load(
            &config.storage.data_dir,
            &tls.names,
        )?)),
        None => None,
    };
    let scoring = Arc::new(
        Scoring::load(
            reports.as_ref(),
            Registry::new(Arc::clone(&records)),
            config.release.min_clinics,
            config.thresholds.clone(),
        )
        .map_err(Error::Reports)?,
    );
    if reports.rollups().is_some() {
        spawn_rollups(Arc::clone(&reports), trigger.clone());
    }
    let service = ControllerService::new(
        reports.clone(),
        Arc::clone(&records),
        ca.clone(),
        Arc::clone(&scoring),
        fatal.clone(),
    );
    if !config.metrics.listen.is_empty() {
        let l = TcpListener::bind(&config.metrics.listen)
            .await
            .map_err(|source| Error::Bind {
                key: "metrics.listen",
                addr: config.metrics.listen.clone(),
                source,
            })?;
        let metrics_addr = l.local_addr().map_err(Error::Listener)?;
        let app = crate::selfmetrics::router(reports.clone(), Arc::clone(&records));
        readi_common::http::spawn(l, app, &trigger, "Metrics listener");
        tracing::info!(metrics_addr = %metrics_addr, "Self-metrics");
    }
    if !config.dashboard.listen.is_empty() {
        let l = TcpListener::bind(&config.dashboard.listen)
            .await
            .map_err(|source| Error::Bind {
                key: "dashboard.listen",
                addr: config.dashboard.listen.clone(),
                source,
            })?;
        let dash_addr = l.local_addr().map_err(Error::Listener)?;
        let sessions = {
            let records = Arc::clone(&records);
            crate::store::spawn_blocking(move || crate::session::Sessions::load(records.as_ref()))
                .await
                .map_err(|_| Error::Fatal("loading the dashboard session key".into()))?
                .map_err(|e| Error::Fatal(e.to_string()))?
        };
        let app = crate::dashboard::router(crate::dashboard::Dashboard::new(
            Arc::clone(&scoring),
            reports.clone(),
            sessions,
        ));
        readi_common::http::spawn(l, app, &trigger, "Dashboard");
        tracing::info!(dashboard_addr = %dash_addr, "Dashboard");
    }
    let max = config.server.max_message_bytes;
    let controller = ControllerServer::new(service)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);

    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let stop = trigger.clone();
    let mut builder = tonic::transport::Server::builder();
    if let Some(ca) = &ca {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        // Enrollment comes before an agent has a certificate; SubmitReport requires one.
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&ca.server_pem, &ca.server_key_pem))
            .client_ca_root(Certificate::from_pem(&ca.ca_pem))
            .client_auth_optional(true);
        builder = builder.tls_config(tls)?;
        tracing::info!(ca = %ca.ca_path.display(), "TLS on: give agents this CA certificate (controller.ca)");
    }
    let server = builder
        .add_service(health_service)
        .add_service(controller)
        .serve_with_incoming_shutdown(incoming, async move {
            stop.fired().await;
            health
                .set_not_serving::<ControllerServer<ControllerService>>()
                .await;
        });
    tracing::info!(grpc_addr = %addr, tls = config.server.tls.is_some(), data_dir = %config.storage.data_dir.display(), "Serving");

    let result = with_grace(server, trigger, config.shutdown_grace()).await;
    if let Some(reason) = fatal.reason() {
        if let Some(store) = &store
            && let Err(e) = store.flush().await
        {
            tracing::error!(error = %e, "The store could not be flushed");
        }
        return Err(Error::Fatal(reason.to_owned()));
    }
    if let Some(store) = &store {
        store.flush().await?;
    }
    tracing::info!("Stopped");
    match result {
        Some(r) => r.map_err(Error::from),
        None => Ok(()),
    }
}
