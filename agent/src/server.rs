//! Serving: `run` takes a bound listener, a config and a shutdown future, and serves until shutdown.

use std::future::Future;

use readi_common::shutdown::{Trigger, with_grace};
use readi_proto::agent::v1::{compliance_server::ComplianceServer, gateway_server::GatewayServer};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::Config;
use crate::services::{compliance::ComplianceService, gateway::GatewayService};
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
}

/// Serves the agent's gRPC API and health service on `listener` until `shutdown` resolves, then lets
/// in-flight calls finish within the configured grace period and flushes the store.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let store = Store::open(&config.storage.data_dir, "agent.db")?;
    let addr = listener.local_addr().map_err(Error::Listener)?;
    let trigger = Trigger::spawn(shutdown);

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<GatewayServer<GatewayService>>().await;
    health
        .set_serving::<ComplianceServer<ComplianceService>>()
        .await;

    let max = config.limits.max_message_bytes;
    let gateway = GatewayServer::new(GatewayService::default())
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let compliance = ComplianceServer::new(ComplianceService::default())
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);

    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let stop = trigger.clone();
    let health_on_stop = health.clone();
    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(gateway)
        .add_service(compliance)
        .serve_with_incoming_shutdown(incoming, async move {
            stop.fired().await;
            health_on_stop
                .set_not_serving::<GatewayServer<GatewayService>>()
                .await;
        });
    tracing::info!(grpc_addr = %addr, data_dir = %config.storage.data_dir.display(), "Serving");

    let result = with_grace(server, trigger, config.shutdown_grace()).await;
    store.flush().await?;
    tracing::info!("Stopped");
    match result {
        Some(r) => r.map_err(Error::from),
        None => Ok(()),
    }
}
