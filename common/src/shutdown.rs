//! Shutdown: a signal future for SIGTERM/SIGINT, a fatal fault that stops the process for its
//! supervisor to restart, and a server wrapper bounded by a grace period.

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

/// A fault after which the process cannot go on serving (a store whose writes failed stays failed
/// until reopened): raising it shuts the server down and makes it exit non-zero, so its supervisor
/// restarts it. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Fatal(std::sync::Arc<FatalInner>);

#[derive(Debug, Default)]
struct FatalInner {
    reason: std::sync::OnceLock<String>,
    notify: tokio::sync::Notify,
}

impl Fatal {
    /// Raises the fault (the first reason wins); never holds stored values.
    pub fn raise(&self, reason: impl Into<String>) {
        let reason = reason.into();
        if self.0.reason.set(reason.clone()).is_ok() {
            tracing::error!(reason = %reason, "Stopping: the agent cannot go on serving safely");
            self.0.notify.notify_waiters();
        }
    }

    /// Resolves once the fault is raised.
    pub async fn raised(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.0.reason.get().is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Why the fault was raised, if it was.
    pub fn reason(&self) -> Option<&str> {
        self.0.reason.get().map(String::as_str)
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

    /// As `spawn`, also firing when `fatal` is raised.
    pub fn spawn_or_fatal(
        shutdown: impl Future<Output = ()> + Send + 'static,
        fatal: &Fatal,
    ) -> Self {
        let raised = fatal.clone();
        Trigger::spawn(async move {
            tokio::select! {
                () = shutdown => {}
                () = raised.raised() => {}
            }
        })
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
