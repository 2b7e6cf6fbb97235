//! The Compliance service: live evidence for compliance officers.

use std::sync::Arc;

use readi_proto::agent::v1::{self as pb, compliance_server::Compliance};
use tonic::{Request, Response, Status};

use super::convert::authorize;
use crate::Config;
use crate::adverse::AdverseEvents;
use crate::audit::Audit;
use crate::keys::Keys;
use crate::tokens::Role;

/// The most adverse events one ListAdverseEvents call returns.
const MAX_EVENTS: usize = 1000;

/// Serves `readi.agent.v1.Compliance`.
#[derive(Debug)]
pub(crate) struct ComplianceService {
    adverse: Arc<AdverseEvents>,
    feedback: Arc<crate::feedback::Feedback>,
    audit: Arc<Audit>,
    evidence: Arc<Evidence>,
}

/// What the safeguards report inspects.
#[derive(Debug)]
pub(crate) struct Evidence {
    /// The running configuration.
    pub config: Config,
    /// The keys in use.
    pub keys: Arc<Keys>,
    /// The address the API serves on.
    pub listen: String,
    /// The token store.
    pub tokens: crate::tokens::Tokens,
    /// The database the egress ledger lives in.
    pub db: sled::Db,
    /// The latest background scrub.
    pub scrub: Arc<crate::scrub::Last>,
}

/// The most egress entries one ListEgress call returns.
const MAX_EGRESS: usize = 1000;

impl ComplianceService {
    /// The compliance service over the adverse-event, feedback and audit logs and the running setup.
    pub(crate) fn new(
        adverse: Arc<AdverseEvents>,
        feedback: Arc<crate::feedback::Feedback>,
        audit: Arc<Audit>,
        evidence: Evidence,
    ) -> Self {
        ComplianceService {
            adverse,
            feedback,
            audit,
            evidence: Arc::new(evidence),
        }
    }
}

#[tonic::async_trait]
impl Compliance for ComplianceService {
    async fn safeguards(
        &self,
        req: Request<pb::SafeguardsRequest>,
    ) -> Result<Response<pb::SafeguardsReport>, Status> {
        authorize(&req, "Safeguards", &[Role::Compliance], None, &self.audit)?;
        let (ev, audit) = (Arc::clone(&self.evidence), Arc::clone(&self.audit));
        let report = tokio::task::spawn_blocking(move || {
            crate::safeguards::report(
                &ev.config,
                &ev.keys,
                &audit,
                &ev.tokens,
                &ev.listen,
                &ev.db,
                ev.scrub.latest().as_ref(),
            )
        })
        .await
        .map_err(|_| Status::internal("the safeguards checks failed"))?;
        Ok(Response::new(report))
    }

    async fn verify_audit(
        &self,
        req: Request<pb::VerifyAuditRequest>,
    ) -> Result<Response<pb::VerifyAuditResponse>, Status> {
        authorize(&req, "VerifyAudit", &[Role::Compliance], None, &self.audit)?;
        let audit = Arc::clone(&self.audit);
        let v = tokio::task::spawn_blocking(move || audit.verify())
            .await
            .map_err(|_| Status::internal("audit verification failed"))?
            .map_err(|e| {
                tracing::error!(error = %e, "Audit log unreadable");
                Status::internal("the audit log could not be read")
            })?;
        if let Err(e) = self
            .audit
            .record("audit_verify", "", if v.ok() { "ok" } else { "failed" })
        {
            tracing::error!(error = %e, "Audit write failed");
        }
        Ok(Response::new(pb::VerifyAuditResponse {
            ok: v.ok(),
            records: v.records,
            checkpoints: v.checkpoints,
            first_bad_sequence: v.problem.as_ref().map_or(0, |p| p.0),
            problem: v.problem.map(|p| p.1).unwrap_or_default(),
        }))
    }

    async fn list_egress(
        &self,
        req: Request<pb::ListEgressRequest>,
    ) -> Result<Response<pb::ListEgressResponse>, Status> {
        authorize(&req, "ListEgress", &[Role::Compliance], None, &self.audit)?;
        let r = req.into_inner();
        let limit = match r.limit {
            0 => MAX_EGRESS,
            n => (n as usize).min(MAX_EGRESS),
        };
        let db = self.evidence.db.clone();
        let (entries, chain_ok) =
            tokio::task::spawn_blocking(move || crate::egress::list(&db, r.from_sequence, limit))
                .await
                .map_err(|_| Status::internal("listing the egress ledger failed"))?
                .map_err(|e| {
                    tracing::error!(error = %e, "Egress ledger unreadable");
                    Status::internal("the egress ledger could not be read")
                })?;
        let outcome = format!(
            "{} entries from #{}{}",
            entries.len(),
            r.from_sequence,
            if chain_ok { "" } else { ", chain broken" }
        );
        if let Err(e) = self.audit.record("egress_list", "", &outcome) {
            tracing::error!(error = %e, "Audit write failed");
        }
        Ok(Response::new(pb::ListEgressResponse { entries, chain_ok }))
    }

    async fn list_adverse_events(
        &self,
        req: Request<pb::ListAdverseEventsRequest>,
    ) -> Result<Response<pb::ListAdverseEventsResponse>, Status> {
        authorize(
            &req,
            "ListAdverseEvents",
            &[Role::Compliance],
            None,
            &self.audit,
        )?;
        let r = req.into_inner();
        let limit = match r.limit {
            0 => MAX_EVENTS,
            n => (n as usize).min(MAX_EVENTS),
        };
        let log = Arc::clone(&self.adverse);
        let since = r.since.map(|t| t.seconds);
        let events = tokio::task::spawn_blocking(move || log.list(since, limit))
            .await
            .map_err(|_| Status::internal("listing adverse events failed"))?
            .map_err(|e| {
                tracing::error!(error = %e, "Adverse-event log unreadable");
                Status::internal("the adverse-event log could not be read")
            })?;
        Ok(Response::new(pb::ListAdverseEventsResponse { events }))
    }

    async fn export_feedback(
        &self,
        req: Request<pb::ExportFeedbackRequest>,
    ) -> Result<Response<pb::ExportFeedbackResponse>, Status> {
        // The free text is decrypted for a compliance (or admin) token only, even on an agent that
        // does not otherwise enforce tokens.
        let caller = req
            .extensions()
            .get::<crate::tokens::Caller>()
            .cloned()
            .ok_or_else(|| {
                Status::permission_denied(
                    "ExportFeedback needs a compliance token (readi-agent tokens add --role \
                     compliance); tokens are then required for every call",
                )
            })?;
        authorize(
            &req,
            "ExportFeedback",
            &[Role::Compliance],
            None,
            &self.audit,
        )?;
        let since = req
            .into_inner()
            .since
            .map_or(0, |t| u64::try_from(t.seconds).unwrap_or(0));
        let log = Arc::clone(&self.feedback);
        let records = tokio::task::spawn_blocking(move || log.since(since))
            .await
            .map_err(|_| Status::internal("reading feedback failed"))?
            .map_err(|e| {
                tracing::error!(error = %e, "Feedback log unreadable");
                Status::internal("the feedback log could not be read")
            })?;
        let records_json = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default())
            .collect::<Vec<_>>();
        self.audit
            .record_by(
                "feedback_export",
                &caller.token_id,
                "",
                &format!("{} records since {since}", records_json.len()),
            )
            .map_err(|e| {
                tracing::error!(error = %e, "Audit write failed; refusing the export");
                Status::internal("the audit log could not be written; export refused")
            })?;
        Ok(Response::new(pb::ExportFeedbackResponse { records_json }))
    }
}
