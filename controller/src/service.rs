//! The Controller gRPC service. RPCs whose capability has not landed answer UNIMPLEMENTED, naming it.

use std::path::PathBuf;
use std::sync::Arc;

use readi_common::identity::{agent_id_of, hex};
use readi_proto::controller::v1::{self as pb, controller_server::Controller};
use tonic::{Request, Response, Status};

use crate::enrollment::{self, EnrollError};
use crate::ingest;
use crate::store::{AgentRecord, ReportStore, Stored, StoredReport};
use crate::tls::AgentCa;

/// Serves `readi.controller.v1.Controller`.
#[derive(Debug, Clone)]
pub struct ControllerService {
    store: Arc<dyn ReportStore>,
    data_dir: PathBuf,
    ca: Option<Arc<AgentCa>>,
}

fn not_yet(rpc: &str, capability: &str) -> Status {
    Status::unimplemented(format!(
        "{rpc} is not available in this controller version: {capability} has not been built yet"
    ))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn store_status(e: crate::store::StoreError) -> Status {
    tracing::error!(error = %e, "Controller store failure");
    Status::unavailable("the controller's store is unavailable; retry later")
}

impl ControllerService {
    /// A service over `store`; enrollment tokens and revocations live under `data_dir`; `ca` issues
    /// agents' client certificates when the controller serves TLS.
    pub fn new(store: Arc<dyn ReportStore>, data_dir: PathBuf, ca: Option<Arc<AgentCa>>) -> Self {
        ControllerService {
            store,
            data_dir,
            ca,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ReportStore) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, Status> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|_| Status::internal("the store task failed"))?
            .map_err(store_status)
    }

    async fn count(&self, counter: &'static str) {
        if let Err(e) = self.blocking(move |s| s.bump(counter)).await {
            tracing::warn!(counter, error = %e.message(), "Counter not updated");
        }
    }
}

/// The agent id the caller's client certificate was issued to, when the call came over mTLS.
fn peer_certificate_sha256<T>(req: &Request<T>) -> Option<String> {
    let certs = req.peer_certs()?;
    let leaf = certs.first()?;
    Some(hex(ring::digest::digest(
        &ring::digest::SHA256,
        leaf.as_ref(),
    )
    .as_ref()))
}

#[tonic::async_trait]
impl Controller for ControllerService {
    async fn enroll(
        &self,
        req: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        let r = req.into_inner();
        if r.public_key.len() != 32 {
            return Err(Status::invalid_argument(
                "public_key must be a 32-byte Ed25519 public key",
            ));
        }
        let dir = self.data_dir.clone();
        let token = r.enrollment_token.clone();
        let at = now();
        let grant = tokio::task::spawn_blocking(move || enrollment::redeem(&dir, &token, at))
            .await
            .map_err(|_| Status::internal("enrollment failed"))?;
        let grant = match grant {
            Ok(g) => g,
            Err(e @ (EnrollError::Malformed | EnrollError::Invalid | EnrollError::Expired)) => {
                self.count("rejected.enrollment").await;
                tracing::warn!(reason = %e, "Enrollment refused");
                return Err(Status::unauthenticated(e.to_string()));
            }
            Err(e) => {
                tracing::error!(error = %e, "Enrollment token store failure");
                return Err(Status::unavailable(
                    "enrollment is unavailable; retry later",
                ));
            }
        };
        let id = agent_id_of(&r.public_key);
        let (cert_pem, cert_sha) = match &self.ca {
            Some(ca) => {
                let (pem, der) = ca.issue(&id, &r.public_key).map_err(|e| {
                    Status::internal(format!("issuing the client certificate: {e}"))
                })?;
                let sha = hex(ring::digest::digest(&ring::digest::SHA256, &der).as_ref());
                (pem.into_bytes(), sha)
            }
            None => (Vec::new(), String::new()),
        };
        let record = AgentRecord {
            id: id.clone(),
            public_key: hex(&r.public_key),
            apps: grant.apps.clone(),
            enrolled_at: at,
            certificate_sha256: cert_sha,
            revoked: false,
        };
        let rec = record.clone();
        self.blocking(move |s| s.put_agent(&rec)).await?;
        tracing::info!(agent_id = %id, apps = ?record.apps, "Agent enrolled");
        Ok(Response::new(pb::EnrollResponse {
            agent_id: id,
            enrolled_at: Some(prost_types::Timestamp {
                seconds: at,
                nanos: 0,
            }),
            app_ids: grant.apps,
            client_certificate_pem: cert_pem,
        }))
    }

    async fn submit_report(
        &self,
        req: Request<pb::SubmitReportRequest>,
    ) -> Result<Response<pb::SubmitReportResponse>, Status> {
        let peer = peer_certificate_sha256(&req);
        let Some(signed) = req.into_inner().report else {
            return Err(Status::invalid_argument("report is required"));
        };
        let rejected = |r: ingest::Rejection| async move {
            self.count(r.counter).await;
            tracing::warn!(reason = r.counter, "Report refused");
            Err(Status::new(r.code, r.message))
        };
        let report = match ingest::decode_canonical(&signed.report) {
            Ok(r) => r,
            Err(r) => return rejected(r).await,
        };
        let id = report.agent_id.clone();
        let agent = {
            let id = id.clone();
            self.blocking(move |s| s.agent(&id)).await?
        };
        let Some(agent) = agent else {
            return rejected(ingest::Rejection {
                code: tonic::Code::Unauthenticated,
                counter: "rejected.unknown_agent",
                message: "the report names an agent that is not enrolled".into(),
            })
            .await;
        };
        if agent.revoked || enrollment::is_revoked(&self.data_dir, &agent.id) {
            return rejected(ingest::Rejection {
                code: tonic::Code::PermissionDenied,
                counter: "rejected.revoked",
                message: "this agent's enrollment was revoked".into(),
            })
            .await;
        }
        if self.ca.is_some() && peer.as_deref() != Some(agent.certificate_sha256.as_str()) {
            return rejected(ingest::Rejection {
                code: tonic::Code::PermissionDenied,
                counter: "rejected.peer",
                message: "the client certificate does not belong to the agent the report names"
                    .into(),
            })
            .await;
        }
        if let Err(r) = ingest::verify(&signed, &report, &agent, now()) {
            return rejected(r).await;
        }
        let sequence = report.sequence;
        let stored = StoredReport {
            agent_id: id.clone(),
            sequence,
            signed: prost::Message::encode_to_vec(&signed),
        };
        let outcome = self.blocking(move |s| s.insert_report(&stored)).await?;
        match outcome {
            Stored::New => {
                tracing::info!(agent_id = %id, sequence, "Report stored");
            }
            Stored::Duplicate => {
                self.count("duplicates").await;
                tracing::info!(agent_id = %id, sequence, "Report already stored");
            }
            Stored::Conflict => {
                return rejected(ingest::Rejection {
                    code: tonic::Code::AlreadyExists,
                    counter: "rejected.replay",
                    message: format!(
                        "sequence {sequence} already holds a different report from this agent"
                    ),
                })
                .await;
            }
        }
        Ok(Response::new(pb::SubmitReportResponse {
            agent_id: id,
            sequence,
            duplicate: outcome == Stored::Duplicate,
        }))
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
