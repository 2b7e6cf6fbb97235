//! The reporting path inside the agent: closes metric windows on the clock, applies privacy, writes
//! each report to the egress ledger and outbox, and uploads the outbox to the controller (enrolling
//! first), retrying with capped, jittered backoff until every report is acknowledged exactly once.

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use readi_common::shutdown::Trigger;
use readi_proto::controller::v1 as cpb;
use readi_proto::controller::v1::controller_client::ControllerClient;
use readi_proto::report::v1 as pb;
use tokio::sync::Notify;
use tonic::transport::{Channel, Endpoint};

use crate::config::{ControllerLink, ReportingConfig};
use crate::egress::{Egress, EgressError};
use crate::metrics::Metrics;
use crate::noise::SystemUniform;
use crate::privacy::{self, Params};

/// Closes windows into reports.
#[derive(Debug)]
pub struct Reporter {
    metrics: Arc<Metrics>,
    egress: Arc<Egress>,
    params: Params,
    /// Woken when a report is queued.
    pub queued: Arc<Notify>,
    /// The audit log whose chain head rides in every report, when attached.
    audit: std::sync::OnceLock<Arc<crate::audit::Audit>>,
}

/// Seconds since the epoch: the one clock.
pub use readi_common::clock::unix_secs as unix_now;

fn timestamp(secs: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: secs as i64,
        nanos: 0,
    }
}

impl Reporter {
    /// Metric windows resumed from the store, for the configured applications.
    pub fn open(egress: Arc<Egress>, config: &ReportingConfig) -> Result<Reporter, EgressError> {
        let secret = egress.session_secret()?;
        let state = egress.window_state()?;
        let metrics = Arc::new(Metrics::new(
            config.window_secs,
            config.apps.clone(),
            config.segments.clone(),
            config.engagement(),
            &secret,
            state,
            unix_now(),
        ));
        Ok(Reporter {
            metrics,
            egress,
            params: config.privacy(),
            queued: Arc::new(Notify::new()),
            audit: std::sync::OnceLock::new(),
        })
    }

    /// From now on every report carries the head of `audit`'s chain.
    pub fn anchor(&self, audit: Arc<crate::audit::Audit>) {
        let _ = self.audit.set(audit);
    }

    /// The live metric windows.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The ledger.
    pub fn egress(&self) -> &Arc<Egress> {
        &self.egress
    }

    /// The privacy parameters.
    pub fn params(&self) -> Params {
        self.params
    }

    /// Closes the window if it is due and queues its report; otherwise persists the open window.
    /// Returns the report's sequence number when one was written.
    pub fn tick(&self, now: u64) -> Result<Option<u64>, EgressError> {
        let Some(window) = self.metrics.close_if_due(now) else {
            self.egress.save_window(&self.metrics.snapshot())?;
            return Ok(None);
        };
        if window.apps.is_empty() {
            // Nothing happened: nothing to say, and no report that only shows the agent was idle.
            self.egress.save_window(&self.metrics.snapshot())?;
            return Ok(None);
        }
        let day = window.start / 86_400;
        let limit = self.params.daily_micro_budget;
        let egress = Arc::clone(&self.egress);
        let mut pay = |app: &str, cost: u64| match egress.pay(app, day, cost, limit) {
            Ok(paid) => paid,
            Err(e) => {
                tracing::error!(error = %e, "Privacy budget unreadable; releasing nothing");
                false
            }
        };
        let apps = privacy::release(
            &window,
            &self.params,
            &mut pay,
            &mut SystemUniform::default(),
        );
        for a in apps.iter().filter(|a| a.budget_exhausted) {
            tracing::warn!(app = %a.app_id, "Daily privacy budget spent: this window releases nothing for the application");
        }
        let report = pb::Report {
            schema_version: 1,
            agent_id: String::new(),
            sequence: 0,
            window_start: Some(timestamp(window.start)),
            window_end: Some(timestamp(window.end)),
            apps,
            privacy: Some(self.params.describe()),
            egress_head: self
                .egress
                .head()?
                .map(|(sequence, hash)| pb::ChainHead { sequence, hash }),
            audit_head: self.audit.get().map(|a| {
                let (sequence, hash) = a.head();
                pb::ChainHead {
                    sequence,
                    hash: hash.to_vec(),
                }
            }),
        };
        let seq = self.egress.append(report, &self.metrics.snapshot())?;
        tracing::info!(
            sequence = seq,
            window_start = window.start,
            "Report written to the egress ledger"
        );
        self.queued.notify_one();
        Ok(Some(seq))
    }
}

/// Delay before attempt `failures` (>= 1): doubling from `min`, capped at `max`, with full jitter
/// over its upper half so a fleet of agents does not retry in step.
pub fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let exp = min.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let cap = exp.min(max);
    let mut u = SystemUniform::default();
    let half = cap / 2;
    let jitter_ms = crate::noise::Uniform::below(&mut u, half.as_millis() as u64 + 1);
    half + Duration::from_millis(jitter_ms)
}

/// Why an upload or enrollment attempt failed (no report contents).
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("{0}")]
    Egress(#[from] EgressError),
    #[error("controller: {0}")]
    Status(#[from] tonic::Status),
    #[error("controller unreachable: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("{0}")]
    Config(String),
    #[error("controller TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// The upload loop: enrolls once, then sends the outbox in order until shutdown.
pub async fn upload(link: ControllerLink, egress: Arc<Egress>, queued: Arc<Notify>, stop: Trigger) {
    let min = Duration::from_millis(link.retry_min_ms);
    let max = Duration::from_secs(link.retry_max_secs);
    let mut failures: u32 = 0;
    let mut client: Option<ControllerClient<Channel>> = None;
    loop {
        let attempt = async {
            if client.is_none() {
                client = Some(connect(&link, &egress)?);
            }
            let c = client.as_mut().expect("connected above");
            if egress.enrollment()?.is_none() {
                enroll(&link, &egress, c).await?;
                // Reconnect with the client certificate the enrollment issued.
                client = Some(connect(&link, &egress)?);
            }
            let c = client.as_mut().expect("connected above");
            let mut sent = 0u32;
            while let Some((seq, payload)) = egress.next_unsent()? {
                let signed = pb::SignedReport::decode(payload.as_slice())
                    .map_err(|_| EgressError::Damaged(seq))?;
                let resp = c
                    .submit_report(cpb::SubmitReportRequest {
                        report: Some(signed),
                    })
                    .await?
                    .into_inner();
                egress.delivered(seq)?;
                sent += 1;
                tracing::info!(
                    sequence = seq,
                    duplicate = resp.duplicate,
                    "Report delivered"
                );
            }
            Ok::<u32, AttemptError>(sent)
        };
        let wait = match attempt.await {
            Ok(_) => {
                failures = 0;
                Duration::from_secs(5)
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = backoff(failures, min, max);
                tracing::warn!(
                    error = %e,
                    attempt = failures,
                    retry_in_ms = delay.as_millis() as u64,
                    "Report upload failed; the outbox keeps it"
                );
                if matches!(e, AttemptError::Transport(_)) {
                    client = None;
                }
                delay
            }
        };
        tokio::select! {
            _ = stop.clone().fired() => return,
            _ = queued.notified(), if failures == 0 => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The audit chain head the controller holds for this agent, as (report sequence, audit sequence,
/// hash); `None` when it holds none yet. Over the same channel (mTLS identity) as the uploader.
pub async fn audit_anchor(
    link: &ControllerLink,
    egress: &Egress,
) -> Result<Option<(u64, u64, Vec<u8>)>, String> {
    let mut client = connect(link, egress).map_err(|e| e.to_string())?;
    let a = client
        .get_audit_anchor(readi_proto::controller::v1::GetAuditAnchorRequest {
            agent_id: egress.agent_id().to_owned(),
        })
        .await
        .map_err(|s| format!("{}: {}", s.code(), s.message()))?
        .into_inner();
    Ok(match (a.held, a.head) {
        (true, Some(h)) => Some((a.report_sequence, h.sequence, h.hash)),
        _ => None,
    })
}

fn connect(
    link: &ControllerLink,
    egress: &Egress,
) -> Result<ControllerClient<Channel>, AttemptError> {
    let mut endpoint = Endpoint::from_shared(link.url.clone())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20));
    if link.url.starts_with("https://") {
        endpoint = endpoint.tls_config(crate::tls::controller_client(link, egress)?)?;
    }
    Ok(ControllerClient::new(endpoint.connect_lazy()))
}

async fn enroll(
    link: &ControllerLink,
    egress: &Egress,
    client: &mut ControllerClient<Channel>,
) -> Result<(), AttemptError> {
    let Some(source) = &link.enrollment_token else {
        return Err(AttemptError::Config(
            "not enrolled and controller.enrollment_token is not set: ask the controller operator \
             for a token (`readi-controller enroll-token`)"
                .to_owned(),
        ));
    };
    let token = source
        .load()
        .map_err(|e| AttemptError::Config(format!("controller.enrollment_token: {e}")))?;
    let token = token.expose().to_owned();
    let resp = client
        .enroll(cpb::EnrollRequest {
            enrollment_token: token.trim().to_owned(),
            public_key: egress.public_key(),
        })
        .await?
        .into_inner();
    if resp.agent_id != egress.agent_id() {
        return Err(AttemptError::Config(format!(
            "the controller enrolled this agent as {} but its key makes it {}",
            resp.agent_id,
            egress.agent_id()
        )));
    }
    egress.set_enrollment(&resp.encode_to_vec())?;
    tracing::info!(agent_id = %resp.agent_id, apps = ?resp.app_ids, "Enrolled with the controller");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows closed while the clock jumps back and forth (and across a restart) never overlap,
    /// only move forward, and their reports take consecutive sequence numbers.
    #[test]
    fn clock_jumps_keep_windows_ordered_and_sequences_consecutive() {
        let dir = tempfile::tempdir().unwrap();
        let store = readi_common::embedded::Store::open(dir.path(), "agent.db").unwrap();
        let db = store.db().clone();
        let keys = Arc::new(crate::keys::Keys::load(None, dir.path(), &db).unwrap());
        let config = ReportingConfig {
            window_secs: 3600,
            apps: vec!["app".into()],
            ..Default::default()
        };
        let open = || {
            let egress = Arc::new(Egress::open(&db, Arc::clone(&keys), "https://c.test").unwrap());
            Reporter::open(egress, &config).unwrap()
        };
        let now = unix_now();
        let base = now - now % 3600;
        let mut r = open();
        let mut written = Vec::new();
        // Activity, then the clock: forward past the window, back a day, forward, back an hour,
        // then the agent restarts while the clock is still behind, and time goes on.
        let steps: [(i64, bool); 9] = [
            (10, false),
            (3600 + 5, false),
            (-86_400, false),
            (3600 + 20, false),
            (2 * 3600 + 1, false),
            (3600 + 30, true),
            (3600 + 40, false),
            (3 * 3600 + 2, false),
            (10 * 3600, false),
        ];
        for (offset, restart) in steps {
            if restart {
                r.egress().save_window(&r.metrics().snapshot()).unwrap();
                r = open();
            }
            let t = (base as i64 + offset) as u64;
            r.metrics().redact("app", "s", &[], 10, t);
            if let Some(seq) = r.tick(t).unwrap() {
                written.push(seq);
            }
        }
        let (entries, chain_ok) = crate::egress::list(&db, 1, 100).unwrap();
        assert!(chain_ok);
        assert!(entries.len() >= 3, "{} reports", entries.len());
        let seqs: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
        assert_eq!(seqs, (1..=entries.len() as u64).collect::<Vec<_>>());
        assert_eq!(written, seqs);
        let mut last_end = 0;
        for e in &entries {
            let report = e.report.as_ref().unwrap();
            let start = report.window_start.as_ref().unwrap().seconds;
            let end = report.window_end.as_ref().unwrap().seconds;
            assert!(start < end, "{start}..{end}");
            assert!(
                start >= last_end,
                "window {start}..{end} overlaps one ending {last_end}"
            );
            assert!(start >= base as i64, "a window before the first: {start}");
            last_end = end;
        }
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        for failures in 1..40 {
            let d = backoff(failures, min, max);
            let cap = (min * (1 << (failures - 1).min(20))).min(max);
            assert!(d >= cap / 2 && d <= cap, "{failures}: {d:?} vs cap {cap:?}");
        }
        let draws: std::collections::BTreeSet<_> = (0..50).map(|_| backoff(30, min, max)).collect();
        assert!(draws.len() > 10, "jitter spreads retries");
    }

    #[test]
    fn every_report_carries_the_audit_chain_head() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let keys = Arc::new(crate::keys::Keys::load(None, dir.path(), &db).unwrap());
        let audit = Arc::new(crate::audit::Audit::open(&db, &keys, 64).unwrap());
        for i in 0..3 {
            audit.record("x", "app", &format!("y{i}")).unwrap();
        }
        let config = ReportingConfig {
            window_secs: 3600,
            apps: vec!["app".into()],
            ..Default::default()
        };
        let egress = Arc::new(Egress::open(&db, Arc::clone(&keys), "https://c.test").unwrap());
        let r = Reporter::open(egress, &config).unwrap();
        r.anchor(Arc::clone(&audit));
        let now = unix_now();
        r.metrics().redact("app", "s", &[], 10, now);
        r.tick(now + 2 * 3600).unwrap().expect("a report");
        let (entries, _) = crate::egress::list(&db, 1, 10).unwrap();
        let head = entries[0]
            .report
            .as_ref()
            .unwrap()
            .audit_head
            .clone()
            .unwrap();
        let (seq, hash) = audit.head();
        assert_eq!((head.sequence, head.hash), (seq, hash.to_vec()));
        assert_eq!(seq, 3);
        // And the egress ledger's head before each report: none before the first.
        assert!(entries[0].report.as_ref().unwrap().egress_head.is_none());
        r.metrics().redact("app", "s", &[], 10, now + 2 * 3600);
        r.tick(now + 4 * 3600).unwrap().expect("a second report");
        let (entries, _) = crate::egress::list(&db, 1, 10).unwrap();
        let egress = entries[1]
            .report
            .as_ref()
            .unwrap()
            .egress_head
            .clone()
            .unwrap();
        assert_eq!(
            (egress.sequence, egress.hash),
            (1, entries[0].entry_hash.clone())
        );
    }
}
