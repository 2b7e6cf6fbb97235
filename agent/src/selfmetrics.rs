//! Metrics about the agent itself (never about patients) in the Prometheus text format, and a health
//! document with the outbox depth, on a separate loopback listener for the clinic's monitoring.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::escalation::Escalations;
use crate::reporting::{Reporter, unix_now};

/// What the endpoints read.
#[derive(Debug)]
pub(crate) struct SelfMetrics {
    started: Instant,
    reporter: Option<Arc<Reporter>>,
    escalations: Arc<Escalations>,
    scrub: Arc<crate::scrub::Last>,
}

impl SelfMetrics {
    /// Metrics over the running agent's parts.
    pub(crate) fn new(
        reporter: Option<Arc<Reporter>>,
        escalations: Arc<Escalations>,
        scrub: Arc<crate::scrub::Last>,
    ) -> Arc<SelfMetrics> {
        Arc::new(SelfMetrics {
            started: Instant::now(),
            reporter,
            escalations,
            scrub,
        })
    }

    /// (reports waiting, age in seconds of the oldest), when reporting is on.
    fn outbox(&self) -> Option<(usize, u64)> {
        let r = self.reporter.as_ref()?;
        let (depth, oldest) = r.egress().outbox_depth().ok()?;
        let age = oldest.map_or(0, |t| unix_now().saturating_sub(t.max(0) as u64));
        Some((depth, age))
    }
}

/// The routes: `/metrics` and `/healthz`.
pub(crate) fn router(m: Arc<SelfMetrics>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(health))
        .with_state(m)
}

async fn metrics(State(m): State<Arc<SelfMetrics>>) -> Response {
    let m2 = Arc::clone(&m);
    let (outbox, pending, sessions, ledger) = tokio::task::spawn_blocking(move || {
        let pending = m2.escalations.pending().map(|p| p.len()).unwrap_or(0);
        let sessions = m2
            .reporter
            .as_ref()
            .map_or(0, |r| r.metrics().sessions_in_flight());
        let ledger = m2
            .reporter
            .as_ref()
            .and_then(|r| r.egress().last_sequence().ok())
            .unwrap_or(0);
        (m2.outbox(), pending, sessions, ledger)
    })
    .await
    .unwrap_or_default();
    let mut s = format!(
        "# HELP readi_agent_build_info Agent version.\n# TYPE readi_agent_build_info gauge\n\
         readi_agent_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    let mut gauge = |name: &str, help: &str, kind: &str, value: String| {
        s.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    gauge(
        "readi_agent_uptime_seconds",
        "Seconds since the agent started.",
        "gauge",
        m.started.elapsed().as_secs().to_string(),
    );
    gauge(
        "readi_agent_escalations_pending",
        "Escalations raised and not yet acknowledged.",
        "gauge",
        pending.to_string(),
    );
    gauge(
        "readi_agent_reporting_enabled",
        "1 when the agent reports to a controller.",
        "gauge",
        u8::from(m.reporter.is_some()).to_string(),
    );
    if let Some(r) = m.scrub.latest() {
        gauge(
            "readi_agent_scrub_records",
            "Records the last background scrub opened and checked.",
            "gauge",
            r.records.to_string(),
        );
        gauge(
            "readi_agent_scrub_damaged_records",
            "Damaged records the last background scrub found (restore from backup when not 0).",
            "gauge",
            r.damaged.len().to_string(),
        );
        gauge(
            "readi_agent_scrub_last_finished_unix",
            "When the last background scrub finished, Unix seconds.",
            "gauge",
            r.finished_unix.to_string(),
        );
    }
    if let Some((depth, age)) = outbox {
        gauge(
            "readi_agent_outbox_reports",
            "Reports written to the egress ledger and not yet acknowledged by the controller.",
            "gauge",
            depth.to_string(),
        );
        gauge(
            "readi_agent_outbox_oldest_age_seconds",
            "Age of the oldest report waiting in the outbox (0 when empty).",
            "gauge",
            age.to_string(),
        );
        gauge(
            "readi_agent_egress_reports_total",
            "Reports written to the egress ledger.",
            "counter",
            ledger.to_string(),
        );
        gauge(
            "readi_agent_sessions_in_flight",
            "Sessions being tracked for engagement metrics.",
            "gauge",
            sessions.to_string(),
        );
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s,
    )
        .into_response()
}

async fn health(State(m): State<Arc<SelfMetrics>>) -> Response {
    let m2 = Arc::clone(&m);
    let outbox = tokio::task::spawn_blocking(move || m2.outbox())
        .await
        .ok()
        .flatten();
    let body = serde_json::json!({
        "status": "serving",
        "reporting": m.reporter.is_some(),
        "outbox_reports": outbox.map(|o| o.0),
        "outbox_oldest_age_seconds": outbox.map(|o| o.1),
        "uptime_seconds": m.started.elapsed().as_secs(),
        "scrub": m.scrub.latest().map(|r| serde_json::json!({
            "ok": r.ok(),
            "records": r.records,
            "damaged": r.damaged,
            "finished_unix": r.finished_unix,
        })),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
