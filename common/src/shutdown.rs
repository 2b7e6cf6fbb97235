//! Shutdown: a signal future for SIGTERM/SIGINT and a server wrapper bounded by a grace period.

use std::future::Future;
use std::time::Duration;

/// Resolves on SIGTERM or SIGINT.
pub async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "Cannot listen for SIGTERM; only Ctrl-C will stop the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "Shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "Shutting down"),
    }
}

/// A shutdown trigger that can be awaited by several tasks.
#[derive(Clone, Debug)]
pub struct Trigger(tokio::sync::watch::Receiver<bool>);

impl Trigger {
    /// Spawns a task that fires the trigger when `shutdown` resolves.
    pub fn spawn(shutdown: impl Future<Output = ()> + Send + 'static) -> Self {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        Trigger(rx)
    }

    /// Resolves once shutdown has begun (or the trigger's source is gone).
    pub async fn fired(mut self) {
        let _ = self.0.wait_for(|v| *v).await;
    }

    /// Whether shutdown has begun.
    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }
}

/// Runs `server` until it ends; once `trigger` fires it gets `grace` to finish in-flight work.
/// Returns `None` when the grace period ran out.
pub async fn with_grace<T>(
    server: impl Future<Output = T>,
    trigger: Trigger,
    grace: Duration,
) -> Option<T> {
    tokio::pin!(server);
    tokio::select! {
        out = &mut server => Some(out),
        _ = async { trigger.fired().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs(), "Grace period over; closing remaining connections");
            None
        }
    }
}
