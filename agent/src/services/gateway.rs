//! The Gateway service: redaction, re-identification, assessment and escalation for clinic apps.

use std::pin::Pin;
use std::sync::Arc;

use readi_proto::agent::v1::{self as pb, gateway_server::Gateway};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::not_yet;
use crate::audit::Audit;
use crate::config::RedactionConfig;
use crate::phi::{CharOffsets, Detector};
use crate::redact::{Policy, Style};
use crate::vault::{Vault, VaultError};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Serves `readi.agent.v1.Gateway`.
#[derive(Debug)]
pub struct GatewayService {
    vault: Arc<Vault>,
    audit: Arc<Audit>,
    policy: Arc<Policy>,
    max_text_bytes: usize,
}

impl GatewayService {
    /// A gateway over the vault, with the configured policy and limits.
    pub fn new(
        vault: Arc<Vault>,
        audit: Arc<Audit>,
        redaction: RedactionConfig,
        max_text_bytes: usize,
    ) -> Self {
        GatewayService {
            vault,
            audit,
            policy: Arc::new(redaction.policy()),
            max_text_bytes,
        }
    }

    fn check_text(&self, field: &str, text: &str) -> Result<(), Status> {
        if text.len() > self.max_text_bytes {
            return Err(Status::resource_exhausted(format!(
                "{field} is {} bytes; the limit is {} (limits.max_text_bytes)",
                text.len(),
                self.max_text_bytes
            )));
        }
        Ok(())
    }
}

/// Application and session ids: short printable identifiers, checked before anything is stored.
fn check_id(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!("{field} is required")));
    }
    if value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Status::invalid_argument(format!(
            "{field} must be 1-128 printable ASCII characters without spaces"
        )));
    }
    Ok(())
}

fn vault_status(e: VaultError) -> Status {
    match e {
        VaultError::NotFound => Status::not_found(e.to_string()),
        other => {
            tracing::error!(error = %other, "Vault failure");
            Status::internal("the vault could not be read or written; nothing was returned")
        }
    }
}

#[tonic::async_trait]
impl Gateway for GatewayService {
    async fn redact(
        &self,
        req: Request<pb::RedactRequest>,
    ) -> Result<Response<pb::RedactResponse>, Status> {
        let r = req.into_inner();
        check_id("app_id", &r.app_id)?;
        check_id("session_id", &r.session_id)?;
        self.check_text("text", &r.text)?;
        let policy = Arc::clone(&self.policy);
        let forced = match r.style() {
            pb::RedactionStyle::Unspecified => None,
            pb::RedactionStyle::Tag => Some(Style::Tag),
            pb::RedactionStyle::Mask => Some(Style::Mask),
            pb::RedactionStyle::Surrogate => Some(Style::Surrogate),
        };
        let vault = Arc::clone(&self.vault);
        let (app, session, text) = (r.app_id, r.session_id, r.text);
        // Detection runs off the async workers; a panic inside it fails the call closed, never open.
        let done = tokio::task::spawn_blocking(move || {
            let (redacted, reps, expires) =
                vault.redact(&app, &session, &text, Detector::global(), &policy, forced)?;
            let mut orig = CharOffsets::new(&text);
            let mut out = CharOffsets::new(&redacted);
            let spans = reps
                .iter()
                .map(|rep| pb::PhiSpan {
                    start: orig.at(rep.span.start) as u32,
                    end: orig.at(rep.span.end) as u32,
                    r#type: rep.span.kind.to_proto() as i32,
                    rule_id: rep.span.rule.to_owned(),
                    redacted_start: out.at(rep.out_start) as u32,
                    redacted_end: out.at(rep.out_end) as u32,
                    replacement: rep.text.clone(),
                })
                .collect();
            Ok::<_, VaultError>(pb::RedactResponse {
                redacted_text: redacted,
                spans,
                vault_expires_at: Some(prost_types::Timestamp {
                    seconds: expires as i64,
                    nanos: 0,
                }),
            })
        })
        .await;
        match done {
            Ok(Ok(resp)) => Ok(Response::new(resp)),
            Ok(Err(e)) => Err(vault_status(e)),
            Err(join) => {
                tracing::error!(
                    panicked = join.is_panic(),
                    "PHI detection failed; request refused"
                );
                Err(Status::internal(
                    "PHI detection failed; the text was not redacted and nothing was returned",
                ))
            }
        }
    }

    async fn reidentify(
        &self,
        req: Request<pb::ReidentifyRequest>,
    ) -> Result<Response<pb::ReidentifyResponse>, Status> {
        let r = req.into_inner();
        check_id("app_id", &r.app_id)?;
        check_id("session_id", &r.session_id)?;
        self.check_text("text", &r.text)?;
        let result = self.vault.reidentify(&r.app_id, &r.session_id, &r.text);
        let outcome = match &result {
            Ok((_, n)) => format!("restored {n}"),
            Err(VaultError::NotFound) => "not_found".to_owned(),
            Err(_) => "error".to_owned(),
        };
        if let Err(e) = self.audit.record("reidentify", &r.app_id, &outcome) {
            tracing::error!(error = %e, "Audit write failed; refusing Reidentify");
            return Err(Status::internal(
                "the audit log could not be written; re-identification refused",
            ));
        }
        let (text, restored) = result.map_err(vault_status)?;
        Ok(Response::new(pb::ReidentifyResponse { text, restored }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keys;

    #[tokio::test]
    async fn a_vault_failure_fails_closed_without_echoing_text() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        let vault = Arc::new(Vault::open(&db, keys, std::time::Duration::from_secs(600)).unwrap());
        let audit = Arc::new(Audit::open(&db).unwrap());
        let gw = GatewayService::new(vault, audit, RedactionConfig::default(), 1 << 20);
        let req = |text: &str| {
            Request::new(pb::RedactRequest {
                text: text.to_owned(),
                app_id: "app".into(),
                session_id: "s".into(),
                style: 0,
            })
        };
        gw.redact(req("Zebulon Quackenbush called.")).await.unwrap();
        // Damage every sealed session record: the next call must fail, and say nothing of the text.
        let tree = db.open_tree("vault").unwrap();
        for k in tree.iter().keys() {
            tree.insert(k.unwrap(), b"\x01garbage-garbage-garbage-garbage".to_vec())
                .unwrap();
        }
        let err = gw
            .redact(req("Zebulon Quackenbush called again."))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal);
        assert!(
            err.message().contains("nothing was returned"),
            "{}",
            err.message()
        );
        assert!(!err.message().contains("Quackenbush"));
    }
}
