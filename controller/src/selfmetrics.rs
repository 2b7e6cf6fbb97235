//! Metrics about the controller itself in the Prometheus text format, and a health document, on a
//! separate loopback listener: agents, reports stored, refusals by reason. Never report contents.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::records::Records;
use crate::store::ReportStore;

/// What the endpoints read.
#[derive(Debug)]
pub struct SelfMetrics {
    started: Instant,
    store: Arc<dyn ReportStore>,
    records: Arc<dyn Records>,
}

/// The routes: `/metrics`, `/healthz` (ready: 503 while the store is unavailable) and `/livez`
/// (the process answers; a database outage is not a reason to restart it).
pub fn router(store: Arc<dyn ReportStore>, records: Arc<dyn Records>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(health))
        .route("/livez", get(|| async { "ok" }))
        .with_state(Arc::new(SelfMetrics {
            started: Instant::now(),
            store,
            records,
        }))
}

/// What the store says about the controller's work.
struct Figures {
    agents: usize,
    revoked: usize,
    reports: usize,
    counters: Vec<(String, u64)>,
}

fn figures(store: &dyn ReportStore, records: &dyn Records) -> Option<Figures> {
    let agents = store.agents().ok()?;
    // Revocation is its own record (`agents revoke`), read by every replica.
    let revoked = crate::enrollment::revoked(records).ok()?;
    Some(Figures {
        revoked: agents
            .iter()
            .filter(|a| a.revoked || revoked.contains(&a.id))
            .count(),
        agents: agents.len(),
        reports: store.report_count().ok()?,
        counters: store.counters().ok()?,
    })
}

async fn metrics(State(m): State<Arc<SelfMetrics>>) -> Response {
    let (store, records) = (Arc::clone(&m.store), Arc::clone(&m.records));
    let got = crate::store::spawn_blocking(move || figures(store.as_ref(), records.as_ref()))
        .await
        .ok()
        .flatten();
    let mut s = format!(
        "# HELP readi_controller_build_info Controller version.\n# TYPE readi_controller_build_info gauge\n\
         readi_controller_build_info{{version=\"{}\"}} 1\n\
         # HELP readi_controller_uptime_seconds Seconds since the controller started.\n\
         # TYPE readi_controller_uptime_seconds gauge\nreadi_controller_uptime_seconds {}\n",
        env!("CARGO_PKG_VERSION"),
        m.started.elapsed().as_secs()
    );
    if let Some(Figures {
        agents,
        revoked,
        reports,
        counters,
    }) = got
    {
        s.push_str(&format!(
            "# HELP readi_controller_agents Enrolled agents.\n# TYPE readi_controller_agents gauge\n\
             readi_controller_agents {agents}\n\
             # HELP readi_controller_agents_revoked Enrolled agents whose reports are refused (agents revoke).\n\
             # TYPE readi_controller_agents_revoked gauge\nreadi_controller_agents_revoked {revoked}\n\
             # HELP readi_controller_reports_stored Reports stored.\n\
             # TYPE readi_controller_reports_stored gauge\nreadi_controller_reports_stored {reports}\n\
             # HELP readi_controller_events_total Refused reports by reason, duplicates and refused enrollments.\n\
             # TYPE readi_controller_events_total counter\n"
        ));
        for (name, n) in counters {
            // Counter names are fixed strings of the controller (`rejected.signature`).
            s.push_str(&format!(
                "readi_controller_events_total{{event=\"{name}\"}} {n}\n"
            ));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s).into_response()
}

async fn health(State(m): State<Arc<SelfMetrics>>) -> Response {
    let (store, records) = (Arc::clone(&m.store), Arc::clone(&m.records));
    let got = crate::store::spawn_blocking(move || figures(store.as_ref(), records.as_ref()))
        .await
        .ok()
        .flatten();
    let body = serde_json::json!({
        "status": if got.is_some() { "serving" } else { "store_unavailable" },
        "agents": got.as_ref().map(|g| g.agents),
        "reports_stored": got.as_ref().map(|g| g.reports),
        "uptime_seconds": m.started.elapsed().as_secs(),
    });
    // Probes read the status code: ready only while the store answers.
    let code = if got.is_some() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
