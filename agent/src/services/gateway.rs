//! The Gateway service: the gRPC door to the pipeline for clinic apps. Each call takes its caller
//! from the request, converts (`convert`), calls the pipeline and converts back.

use std::pin::Pin;
use std::sync::Arc;

use readi_proto::agent::v1::{self as pb, gateway_server::Gateway};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{self, caller};
use crate::pipeline::{Pipeline, Transcript};
use crate::tokens::Role;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Serves `readi.agent.v1.Gateway`.
#[derive(Debug)]
pub(crate) struct GatewayService {
    pipeline: Arc<Pipeline>,
}

impl GatewayService {
    /// The gateway in front of `pipeline`.
    pub(crate) fn new(pipeline: Arc<Pipeline>) -> Self {
        GatewayService { pipeline }
    }
}

/// Pumps a live transcript: each chunk in, each redacted piece out, until the client ends the
/// stream or anything fails (then nothing more is released).
async fn pump_transcript(
    mut t: Transcript,
    first: pb::TranscriptChunk,
    mut input: Streaming<pb::TranscriptChunk>,
    tx: mpsc::Sender<Result<pb::RedactedChunk, Status>>,
) {
    let mut next = Some(first);
    loop {
        let (text, flush, ended) = match next.take() {
            Some(c) => (c.text, c.flush, false),
            None => match input.message().await {
                Ok(Some(c)) => match t.same_stream(&c.app_id, &c.session_id) {
                    Ok(()) => (c.text, c.flush, false),
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                },
                Ok(None) => (String::new(), true, true),
                Err(status) => {
                    // The client's stream failed: nothing more can be released safely.
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            },
        };
        match t.push(&text, flush).await {
            Ok(Some(chunk)) => {
                if tx.send(Ok(convert::chunk(chunk))).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        }
        if ended {
            return;
        }
    }
}

#[tonic::async_trait]
impl Gateway for GatewayService {
    async fn redact(
        &self,
        req: Request<pb::RedactRequest>,
    ) -> Result<Response<pb::RedactResponse>, Status> {
        let who = caller(&req);
        let r = convert::redact_in(req.into_inner());
        let red = self.pipeline.redact(who.as_ref(), r).await?;
        Ok(Response::new(convert::redacted(red)))
    }

    async fn reidentify(
        &self,
        req: Request<pb::ReidentifyRequest>,
    ) -> Result<Response<pb::ReidentifyResponse>, Status> {
        let who = caller(&req);
        let r = req.into_inner();
        let (text, restored) = self
            .pipeline
            .reidentify(who.as_ref(), &r.app_id, &r.session_id, &r.text)
            .await?;
        Ok(Response::new(pb::ReidentifyResponse { text, restored }))
    }

    async fn assess(
        &self,
        req: Request<pb::AssessRequest>,
    ) -> Result<Response<pb::AssessResponse>, Status> {
        let who = caller(&req);
        let ex = convert::exchange(req.into_inner());
        let a = self.pipeline.assess(who.as_ref(), ex).await?;
        Ok(Response::new(convert::assessed(a)))
    }

    type StreamRedactStream = BoxStream<pb::RedactedChunk>;

    async fn stream_redact(
        &self,
        req: Request<Streaming<pb::TranscriptChunk>>,
    ) -> Result<Response<Self::StreamRedactStream>, Status> {
        let who = caller(&req);
        // The role is checked now; the application scope once the first chunk names it.
        self.pipeline
            .authorize(who.as_ref(), "StreamRedact", &[Role::App], None)?;
        let mut input = req.into_inner();
        let Some(first) = input.message().await? else {
            return Err(Status::invalid_argument("the stream carried no chunk"));
        };
        let t = self
            .pipeline
            .transcript(who.as_ref(), &first.app_id, &first.session_id)?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(pump_transcript(t, first, input, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn record_outcome(
        &self,
        req: Request<pb::RecordOutcomeRequest>,
    ) -> Result<Response<pb::RecordOutcomeResponse>, Status> {
        let who = caller(&req);
        let r = req.into_inner();
        let window = self
            .pipeline
            .record_outcome(
                who.as_ref(),
                &r.app_id,
                &r.session_id,
                convert::observation(&r),
            )
            .await?;
        Ok(Response::new(convert::outcome_recorded(window)))
    }

    type WatchEscalationsStream = BoxStream<pb::Escalation>;

    async fn watch_escalations(
        &self,
        req: Request<pb::WatchEscalationsRequest>,
    ) -> Result<Response<Self::WatchEscalationsStream>, Status> {
        let who = caller(&req);
        let r = req.into_inner();
        let mut watch = self
            .pipeline
            .watch(who.as_ref(), r.app_id, r.include_pending)
            .await?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = tx.closed() => return,
                    e = watch.next() => e,
                };
                let Some(e) = next else {
                    return;
                };
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn acknowledge_escalation(
        &self,
        req: Request<pb::AcknowledgeEscalationRequest>,
    ) -> Result<Response<pb::AcknowledgeEscalationResponse>, Status> {
        let who = caller(&req);
        let r = req.into_inner();
        let disposition = r.disposition();
        let (e, secs) = self
            .pipeline
            .acknowledge(who.as_ref(), &r.escalation_id, &r.clinician_id, disposition)
            .await?;
        Ok(Response::new(pb::AcknowledgeEscalationResponse {
            acknowledged_at: e.acknowledged_at,
            seconds_to_acknowledge: secs,
        }))
    }

    async fn submit_feedback(
        &self,
        req: Request<pb::SubmitFeedbackRequest>,
    ) -> Result<Response<pb::SubmitFeedbackResponse>, Status> {
        let who = caller(&req);
        let filed = self
            .pipeline
            .feedback(who.as_ref(), convert::report(req.into_inner()))
            .await?;
        Ok(Response::new(convert::filed(filed)))
    }
}
