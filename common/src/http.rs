//! Serving the HTTP side listeners (proxy, dashboard, self-metrics) until shutdown.

use tokio::net::TcpListener;

use crate::shutdown::Trigger;

/// Serves `app` on `listener` until `trigger` fires; `what` names it in a failure's log line.
/// Responses leave as they are written (no Nagle delay), which streamed replies need.
pub fn spawn(listener: TcpListener, app: axum::Router, trigger: &Trigger, what: &'static str) {
    use axum::serve::ListenerExt as _;
    let stop = trigger.clone();
    tokio::spawn(async move {
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.fired().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "{what} stopped");
        }
    });
}
