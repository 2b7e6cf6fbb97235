//! The Gateway service: redaction, re-identification, assessment and escalation for clinic apps.

use std::pin::Pin;

use readi_proto::agent::v1::{self as pb, gateway_server::Gateway};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::not_yet;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Serves `readi.agent.v1.Gateway`.
#[derive(Debug, Default)]
pub struct GatewayService {}

#[tonic::async_trait]
impl Gateway for GatewayService {
    async fn redact(
        &self,
        _: Request<pb::RedactRequest>,
    ) -> Result<Response<pb::RedactResponse>, Status> {
        Err(not_yet("Redact", "PHI detection and redaction"))
    }

    async fn reidentify(
        &self,
        _: Request<pb::ReidentifyRequest>,
    ) -> Result<Response<pb::ReidentifyResponse>, Status> {
        Err(not_yet("Reidentify", "the surrogate vault"))
    }

    async fn assess(
        &self,
        _: Request<pb::AssessRequest>,
    ) -> Result<Response<pb::AssessResponse>, Status> {
        Err(not_yet("Assess", "READI safety checks"))
    }

    type StreamRedactStream = BoxStream<pb::RedactedChunk>;

    async fn stream_redact(
        &self,
        _: Request<Streaming<pb::TranscriptChunk>>,
    ) -> Result<Response<Self::StreamRedactStream>, Status> {
        Err(not_yet("StreamRedact", "live-transcript redaction"))
    }

    async fn record_outcome(
        &self,
        _: Request<pb::RecordOutcomeRequest>,
    ) -> Result<Response<pb::RecordOutcomeResponse>, Status> {
        Err(not_yet("RecordOutcome", "effectiveness metrics"))
    }

    type WatchEscalationsStream = BoxStream<pb::Escalation>;

    async fn watch_escalations(
        &self,
        _: Request<pb::WatchEscalationsRequest>,
    ) -> Result<Response<Self::WatchEscalationsStream>, Status> {
        Err(not_yet("WatchEscalations", "risk escalation"))
    }

    async fn acknowledge_escalation(
        &self,
        _: Request<pb::AcknowledgeEscalationRequest>,
    ) -> Result<Response<pb::AcknowledgeEscalationResponse>, Status> {
        Err(not_yet("AcknowledgeEscalation", "risk escalation"))
    }

    async fn submit_feedback(
        &self,
        _: Request<pb::SubmitFeedbackRequest>,
    ) -> Result<Response<pb::SubmitFeedbackResponse>, Status> {
        Err(not_yet("SubmitFeedback", "clinician feedback"))
    }
}
