//! The Compliance service: live evidence for compliance officers.

use std::sync::Arc;

use readi_proto::agent::v1::{self as pb, compliance_server::Compliance};
use tonic::{Request, Response, Status};

use super::not_yet;
use crate::adverse::AdverseEvents;

/// The most adverse events one ListAdverseEvents call returns.
const MAX_EVENTS: usize = 1000;

/// Serves `readi.agent.v1.Compliance`.
#[derive(Debug)]
pub struct ComplianceService {
    adverse: Arc<AdverseEvents>,
}

impl ComplianceService {
    /// The compliance service over the adverse-event log.
    pub fn new(adverse: Arc<AdverseEvents>) -> Self {
        ComplianceService { adverse }
    }
}

#[tonic::async_trait]
impl Compliance for ComplianceService {
    async fn safeguards(
        &self,
        _: Request<pb::SafeguardsRequest>,
    ) -> Result<Response<pb::SafeguardsReport>, Status> {
        Err(not_yet("Safeguards", "the compliance safeguards report"))
    }

    async fn verify_audit(
        &self,
        _: Request<pb::VerifyAuditRequest>,
    ) -> Result<Response<pb::VerifyAuditResponse>, Status> {
        Err(not_yet("VerifyAudit", "the audit log"))
    }

    async fn list_egress(
        &self,
        _: Request<pb::ListEgressRequest>,
    ) -> Result<Response<pb::ListEgressResponse>, Status> {
        Err(not_yet("ListEgress", "the egress ledger"))
    }

    async fn list_adverse_events(
        &self,
        req: Request<pb::ListAdverseEventsRequest>,
    ) -> Result<Response<pb::ListAdverseEventsResponse>, Status> {
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
}
