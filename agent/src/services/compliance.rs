//! The Compliance service: live evidence for compliance officers.

use readi_proto::agent::v1::{self as pb, compliance_server::Compliance};
use tonic::{Request, Response, Status};

use super::not_yet;

/// Serves `readi.agent.v1.Compliance`.
#[derive(Debug, Default)]
pub struct ComplianceService {}

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
        _: Request<pb::ListAdverseEventsRequest>,
    ) -> Result<Response<pb::ListAdverseEventsResponse>, Status> {
        Err(not_yet("ListAdverseEvents", "adverse-event records"))
    }
}
