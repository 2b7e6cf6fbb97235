//! The Controller gRPC service. RPCs whose capability has not landed answer UNIMPLEMENTED, naming it.

use readi_common::clock;
use std::sync::Arc;

use readi_common::identity::{agent_id_of, hex};
use readi_proto::controller::v1::{self as pb, controller_server::Controller};
use tonic::{Request, Response, Status};

use crate::aggregate::Aggregates;
use crate::enrollment::{self, EnrollError};
use crate::ingest;
use crate::records::Records;
use crate::registry::{Principal, Registry};
use crate::scorecard::Thresholds;
use crate::store::{AgentRecord, ReportStore, Stored, StoredReport};
use crate::tls::AgentCa;

/// Serves `readi.controller.v1.Controller`.
#[derive(Debug, Clone)]
pub struct ControllerService {
    store: Arc<dyn ReportStore>,
    records: Arc<dyn Records>,
    ca: Option<Arc<AgentCa>>,
    scoring: Arc<Scoring>,
    fatal: readi_common::shutdown::Fatal,
}

/// What scorecards are computed from.
#[derive(Debug)]
pub struct Scoring {
    /// The rollups.
    pub aggregates: Aggregates,
    /// Vendors, applications, tokens.
    pub registry: Registry,
    /// Clinics needed before figures are released.
    pub min_clinics: u32,
    /// Status thresholds.
    pub thresholds: Thresholds,
}

impl Scoring {
    /// Scoring over `store`: its own rollups when it keeps them, else rollups rebuilt in memory
    /// from every stored report.
    pub fn load(
        store: &dyn ReportStore,
        registry: Registry,
        min_clinics: u32,
        thresholds: Thresholds,
    ) -> Result<Scoring, crate::store::StoreError> {
        let aggregates = Aggregates::default();
        if store.rollups().is_none() {
            store.each_report(&mut |agent_id, sequence, signed| {
                match crate::aggregate::decode_stored(signed) {
                    Some(report) => aggregates.add(&report),
                    None => {
                        tracing::error!(
                            agent_id,
                            sequence,
                            "Stored report does not decode; left out of scorecards"
                        )
                    }
                }
            })?;
        }
        Ok(Scoring {
            aggregates,
            registry,
            min_clinics,
            thresholds,
        })
    }

    /// A newly stored report reaches the rollups (the store's own rollups need nothing).
    pub fn ingested(&self, store: &dyn ReportStore, report: &readi_proto::report::v1::Report) {
        if store.rollups().is_none() {
            self.aggregates.add(report);
        }
    }

    /// The rollups of `app` over days `from..=to`: the store's as of now, or the ones in memory.
    pub fn rollups<'a>(
        &'a self,
        store: &dyn ReportStore,
        app: &str,
        from: i64,
        to: i64,
    ) -> Result<Snapshot<'a>, crate::store::StoreError> {
        Ok(match store.rollups() {
            Some(r) => Snapshot::Taken(r.snapshot(app, from, to)?),
            None => Snapshot::Held(&self.aggregates),
        })
    }

    /// Clinics that reported on `app` over the last 30 days.
    pub fn clinics(
        &self,
        store: &dyn ReportStore,
        app: &str,
        today: i64,
    ) -> Result<usize, crate::store::StoreError> {
        Ok(self
            .rollups(store, app, today - 30, today)?
            .clinics(app, today - 30, today))
    }

    /// A scorecard for someone allowed to see it.
    pub fn scorecard(
        &self,
        store: &dyn ReportStore,
        app: &str,
        period: pb::Period,
        until: i64,
    ) -> Result<pb::Scorecard, crate::store::StoreError> {
        let (from, to) = crate::scorecard::period_days(period, until);
        let first = from.min(to - 7 * i64::from(self.thresholds.trend_weeks) + 1);
        let rollups = self.rollups(store, app, first, to)?;
        crate::scorecard::scorecard(
            &rollups,
            store,
            app,
            period,
            until,
            self.min_clinics,
            &self.thresholds,
        )
    }
}

/// Rollups read for one scorecard: the store's, taken once, or the controller's own.
#[derive(Debug)]
pub enum Snapshot<'a> {
    /// Read from the store.
    Taken(Aggregates),
    /// The controller's, in memory.
    Held(&'a Aggregates),
}

impl std::ops::Deref for Snapshot<'_> {
    type Target = Aggregates;
    fn deref(&self) -> &Aggregates {
        match self {
            Snapshot::Taken(a) => a,
            Snapshot::Held(a) => a,
        }
    }
}

/// The caller a bearer token speaks for; UNAUTHENTICATED without a valid one.
fn principal<T>(req: &Request<T>, registry: &Registry) -> Result<Principal, Status> {
    let header = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Status::unauthenticated(
                "a bearer token is required (authorization: Bearer rdc_...); operators issue them \
                 with `readi-controller token add`",
            )
        })?;
    let token = header.strip_prefix("Bearer ").unwrap_or(header).trim();
    registry
        .check(token)
        .map_err(registry_status)?
        .ok_or_else(|| Status::unauthenticated("the bearer token is not valid"))
}

fn registry_status(e: crate::registry::RegistryError) -> Status {
    tracing::error!(error = %e, "Controller registry failure");
    Status::unavailable("the controller's registry is unavailable; retry later")
}

fn store_status(e: crate::store::StoreError) -> Status {
    tracing::error!(error = %e, "Controller store failure");
    Status::unavailable("the controller's store is unavailable; retry later")
}

impl ControllerService {
    /// A service over `store`; enrollment tokens and revocations live in `records`; `ca` issues
    /// agents' client certificates when the controller serves TLS; `fatal` stops the controller when
    /// its store fails for good.
    pub fn new(
        store: Arc<dyn ReportStore>,
        records: Arc<dyn Records>,
        ca: Option<Arc<AgentCa>>,
        scoring: Arc<Scoring>,
        fatal: readi_common::shutdown::Fatal,
    ) -> Self {
        ControllerService {
            store,
            records,
            ca,
            scoring,
            fatal,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ReportStore) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, Status> {
        let store = Arc::clone(&self.store);
        crate::store::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|_| Status::internal("the store task failed"))?
            .map_err(|e| {
                if let crate::store::StoreError::Failed(_) = e {
                    self.fatal.raise(
                        "the controller's store failed to write (storage.data_dir; a full disk?)",
                    );
                }
                store_status(e)
            })
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
        let records = Arc::clone(&self.records);
        let token = r.enrollment_token.clone();
        let at = clock::unix_secs_i64();
        let grant =
            crate::store::spawn_blocking(move || enrollment::redeem(records.as_ref(), &token, at))
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
        // Also in the control records, so the CLI can list and revoke agents while this process
        // holds the store; the store stays the authority, so a failure here only costs the listing.
        let (records, rec) = (Arc::clone(&self.records), record.clone());
        let listed = crate::store::spawn_blocking(move || {
            enrollment::record_enrolled(
                records.as_ref(),
                &rec.id,
                &enrollment::Enrolled {
                    apps: rec.apps.clone(),
                    enrolled_at: rec.enrolled_at,
                },
            )
        })
        .await;
        if !matches!(listed, Ok(Ok(()))) {
            tracing::error!(agent_id = %id, "Enrolled, but the control records could not list it");
        }
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

    async fn get_audit_anchor(
        &self,
        req: Request<pb::GetAuditAnchorRequest>,
    ) -> Result<Response<pb::AuditAnchor>, Status> {
        let peer = peer_certificate_sha256(&req);
        let id = req.into_inner().agent_id;
        let agent = {
            let id = id.clone();
            self.blocking(move |s| s.agent(&id)).await?
        };
        let Some(agent) = agent else {
            return Err(Status::not_found("no agent with that id is enrolled"));
        };
        if self.ca.is_some() && peer.as_deref() != Some(agent.certificate_sha256.as_str()) {
            return Err(Status::permission_denied(
                "only the agent itself may read its audit anchor",
            ));
        }
        let records = Arc::clone(&self.records);
        let held = crate::store::spawn_blocking(move || records.get(ingest::AUDIT_HEAD, &id))
            .await
            .map_err(|_| Status::internal("the audit head lookup failed"))?
            .map_err(|_| {
                Status::unavailable("the controller cannot read audit anchors just now")
            })?;
        Ok(Response::new(
            match held.as_deref().and_then(ingest::HeldHead::decode) {
                Some(h) => pb::AuditAnchor {
                    held: true,
                    report_sequence: h.report_sequence,
                    head: Some(readi_proto::report::v1::ChainHead {
                        sequence: h.chain_sequence,
                        hash: h.hash,
                    }),
                },
                None => pb::AuditAnchor::default(),
            },
        ))
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
        let revoked = {
            let (records, id) = (Arc::clone(&self.records), agent.id.clone());
            crate::store::spawn_blocking(move || enrollment::is_revoked(records.as_ref(), &id))
                .await
                .map_err(|_| Status::internal("the revocation check failed"))?
        };
        let revoked = match revoked {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "Revocation records unavailable");
                return Err(Status::unavailable(
                    "the controller cannot check revocations just now; retry later",
                ));
            }
        };
        if agent.revoked || revoked {
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
        if let Err(r) = ingest::verify(&signed, &report, &agent, clock::unix_secs_i64()) {
            return rejected(r).await;
        }
        let held = {
            let (records, id) = (Arc::clone(&self.records), agent.id.clone());
            crate::store::spawn_blocking(move || records.get(ingest::AUDIT_HEAD, &id))
                .await
                .map_err(|_| Status::internal("the audit head lookup failed"))?
        };
        let held = match held {
            Ok(h) => h.as_deref().and_then(ingest::HeldHead::decode),
            Err(e) => {
                tracing::error!(error = %e, "Audit heads unavailable");
                return Err(Status::unavailable(
                    "the controller cannot check the audit anchor just now; retry later",
                ));
            }
        };
        let new_head = match ingest::audit_head(&report, held.as_ref()) {
            Ok(h) => h,
            Err(r) => return rejected(r).await,
        };
        let held_egress = {
            let (records, id) = (Arc::clone(&self.records), agent.id.clone());
            crate::store::spawn_blocking(move || records.get(ingest::EGRESS_HEAD, &id))
                .await
                .map_err(|_| Status::internal("the egress head lookup failed"))?
                .map_err(|_| {
                    Status::unavailable(
                        "the controller cannot check the egress anchor just now; retry later",
                    )
                })?
        };
        let held_egress = held_egress.as_deref().and_then(ingest::HeldHead::decode);
        let new_egress = match ingest::egress_head(&report, held_egress.as_ref()) {
            Ok(h) => h,
            Err(r) => return rejected(r).await,
        };
        let sequence = report.sequence;
        let stored = StoredReport {
            agent_id: id.clone(),
            sequence,
            window_start: report.window_start.as_ref().map_or(0, |t| t.seconds),
            signed: prost::Message::encode_to_vec(&signed),
        };
        let outcome = self.blocking(move |s| s.insert_report(&stored)).await?;
        match outcome {
            Stored::New => {
                for (kind, head) in [
                    (ingest::AUDIT_HEAD, new_head),
                    (ingest::EGRESS_HEAD, new_egress),
                ] {
                    let Some(head) = head else { continue };
                    let (records, agent) = (Arc::clone(&self.records), id.clone());
                    let put = crate::store::spawn_blocking(move || {
                        records.put(kind, &agent, &head.encode())
                    })
                    .await;
                    if !matches!(put, Ok(Ok(()))) {
                        tracing::error!(agent_id = %id, kind, "The agent's chain head could not be kept");
                    }
                }
                self.scoring.ingested(self.store.as_ref(), &report);
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
        req: Request<pb::GetScorecardRequest>,
    ) -> Result<Response<pb::Scorecard>, Status> {
        let who = principal(&req, &self.scoring.registry)?;
        let r = req.into_inner();
        let app = {
            let (scoring, id) = (Arc::clone(&self.scoring), r.app_id.clone());
            crate::store::spawn_blocking(move || scoring.registry.app(&id))
                .await
                .map_err(|_| Status::internal("the registry lookup failed"))?
                .map_err(registry_status)?
        };
        let app = match (app, &who) {
            (Some(a), Principal::Operator) => a,
            (Some(a), w) if self.scoring.registry.may_see(w, &a) => a,
            // A vendor learns nothing about applications that are not theirs, not even existence.
            (_, Principal::Vendor(_)) => {
                return Err(Status::permission_denied(
                    "this token may not see that application",
                ));
            }
            (None, Principal::Operator) => {
                return Err(Status::not_found(format!(
                    "application {:?} is not registered (readi-controller app add)",
                    r.app_id
                )));
            }
        };
        let period = pb::Period::try_from(r.period).unwrap_or(pb::Period::Unspecified);
        let until = r.until.map_or_else(clock::unix_secs_i64, |t| t.seconds);
        let (scoring, store) = (Arc::clone(&self.scoring), Arc::clone(&self.store));
        let card = crate::store::spawn_blocking(move || {
            scoring.scorecard(store.as_ref(), &app.id, period, until)
        })
        .await
        .map_err(|_| Status::internal("the scorecard failed"))?
        .map_err(store_status)?;
        Ok(Response::new(card))
    }

    async fn list_applications(
        &self,
        req: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        let who = principal(&req, &self.scoring.registry)?;
        let today = crate::aggregate::day_of(clock::unix_secs_i64());
        let (scoring, store) = (Arc::clone(&self.scoring), Arc::clone(&self.store));
        let applications = crate::store::spawn_blocking(move || {
            let apps = match scoring.registry.apps() {
                Ok(a) => a,
                Err(e) => return Ok(Err(e)),
            };
            apps.into_iter()
                .filter(|a| scoring.registry.may_see(&who, a))
                .map(|a| {
                    Ok(pb::Application {
                        clinics: scoring.clinics(store.as_ref(), &a.id, today)? as u32,
                        app_id: a.id,
                        vendor_id: a.vendor_id,
                        name: a.name,
                    })
                })
                .collect::<Result<Vec<_>, crate::store::StoreError>>()
                .map(Ok)
        })
        .await
        .map_err(|_| Status::internal("listing applications failed"))?
        .map_err(store_status)?
        .map_err(registry_status)?;
        Ok(Response::new(pb::ListApplicationsResponse { applications }))
    }
}
