//! The Controller gRPC service. RPCs whose capability has not landed answer UNIMPLEMENTED, naming it.

use readi_proto::controller::v1::{self as pb, controller_server::Controller};
use tonic::{Request, Response, Status};

/// Serves `readi.controller.v1.Controller`.
#[derive(Debug, Default)]
pub struct ControllerService {}

fn not_yet(rpc: &str, capability: &str) -> Status {
    Status::unimplemented(format!(
        "{rpc} is not available in this controller version: {capability} has not been built yet"
    ))
}

#[tonic::async_trait]
impl Controller for ControllerService {
    async fn enroll(
        &self,
        _: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        Err(not_yet("Enroll", "agent enrollment"))
    }

    async fn submit_report(
        &self,
        _: Request<pb::SubmitReportRequest>,
    ) -> Result<Response<pb::SubmitReportResponse>, Status> {
        Err(not_yet("SubmitReport", "report ingest"))
    }

    async fn get_scorecard(
        &self,
        _: Request<pb::GetScorecardRequest>,
    ) -> Result<Response<pb::Scorecard>, Status> {
        Err(not_yet("GetScorecard", "READI scorecards"))
    }

    async fn list_applications(
        &self,
        _: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        Err(not_yet(
            "ListApplications",
            "vendor and application registry",
        ))
    }
}
