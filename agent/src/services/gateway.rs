//! The Gateway service: redaction, re-identification, assessment and escalation for clinic apps.

use std::pin::Pin;
use std::sync::Arc;

use readi_proto::agent::v1::{self as pb, gateway_server::Gateway};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use readi_common::shutdown::Trigger;
use tokio_stream::wrappers::ReceiverStream;

use crate::adverse::AdverseEvents;
use crate::audit::Audit;
use crate::config::RedactionConfig;
use crate::escalation::{EscalationError, Escalations, new_id};
use crate::feedback::{Feedback, Kind as FeedbackKind, Record as FeedbackRecord};
use crate::metrics::{AssessFacts, Metrics};
use crate::phi::{CharOffsets, Detector};
use crate::redact::{Policy, Style};
use crate::reporting::unix_now;
use crate::safety::{self, Assessor};
use crate::tokens::{Role as TokenRole, authorize};
use crate::vault::{Vault, VaultError};
use readi_common::shutdown::Fatal;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Where the safety checks send what they find.
#[derive(Debug, Clone)]
pub struct SafetySinks {
    /// Escalations: store, watchers, webhooks.
    pub escalations: Arc<Escalations>,
    /// The adverse-event log.
    pub adverse: Arc<AdverseEvents>,
    /// Fires at shutdown, ending watch streams.
    pub shutdown: Trigger,
    /// Raised when the store can no longer write: the agent stops for its supervisor to restart it.
    pub fatal: Fatal,
    /// The metric windows, when the agent reports to a controller.
    pub metrics: Option<Arc<Metrics>>,
    /// Outcome baselines, when the agent reports to a controller.
    pub outcomes: Option<Arc<crate::outcomes::Outcomes>>,
    /// Clinicians' reports with their sealed detail.
    pub feedback: Arc<Feedback>,
}

/// Serves `readi.agent.v1.Gateway`.
#[derive(Debug)]
pub struct GatewayService {
    vault: Arc<Vault>,
    audit: Arc<Audit>,
    policy: Arc<Policy>,
    max_text_bytes: usize,
    max_stream_bytes: u64,
    /// One permit per open long-lived stream (limits.max_streams).
    streams: Arc<tokio::sync::Semaphore>,
    max_streams: usize,
    sinks: SafetySinks,
}

impl GatewayService {
    /// A gateway over the vault and safety sinks, with the configured policy and limits.
    pub fn new(
        vault: Arc<Vault>,
        audit: Arc<Audit>,
        redaction: RedactionConfig,
        limits: &crate::config::LimitsConfig,
        sinks: SafetySinks,
    ) -> Self {
        GatewayService {
            vault,
            audit,
            policy: Arc::new(redaction.policy()),
            max_text_bytes: limits.max_text_bytes,
            max_stream_bytes: limits.max_stream_bytes,
            streams: Arc::new(tokio::sync::Semaphore::new(limits.max_streams)),
            max_streams: limits.max_streams,
            sinks,
        }
    }

    /// A permit for one more long-lived stream, or a clear refusal when all are taken.
    fn stream_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Status> {
        Arc::clone(&self.streams).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "all {} streams are in use (limits.max_streams); retry when one ends",
                self.max_streams
            ))
        })
    }

    /// The metric windows, when the agent reports to a controller.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.sinks.metrics.as_ref()
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

fn escalation_status(e: EscalationError, fatal: &Fatal) -> Status {
    match e {
        EscalationError::NotFound => Status::not_found(e.to_string()),
        EscalationError::AlreadyAcknowledged(_) => Status::failed_precondition(e.to_string()),
        EscalationError::Store(ref db) if store_failed(db, fatal) => {
            tracing::error!(error = %e, "Escalation store failure");
            store_unavailable(db)
        }
        other => {
            tracing::error!(error = %other, "Escalation store failure");
            Status::internal("the escalation store could not be read or written")
        }
    }
}

/// The input turns and output of an Assess request, with their roles checked.
#[allow(clippy::type_complexity)]
fn exchange(
    r: &pb::AssessRequest,
) -> Result<(Vec<(safety::Role, String)>, Option<String>), Status> {
    if r.input.is_empty() && r.output.is_none() {
        return Err(Status::invalid_argument(
            "an exchange needs at least one input turn or an output",
        ));
    }
    let mut input = Vec::with_capacity(r.input.len());
    for (i, t) in r.input.iter().enumerate() {
        let role = match t.role() {
            pb::Role::User => safety::Role::User,
            pb::Role::Note => safety::Role::Note,
            pb::Role::Assistant => {
                return Err(Status::invalid_argument(format!(
                    "input[{i}].role: model output belongs in `output`"
                )));
            }
            pb::Role::Unspecified => {
                return Err(Status::invalid_argument(format!(
                    "input[{i}].role is required (ROLE_USER or ROLE_NOTE)"
                )));
            }
        };
        input.push((role, t.text.clone()));
    }
    let output = match &r.output {
        None => None,
        Some(t) if matches!(t.role(), pb::Role::Assistant | pb::Role::Unspecified) => {
            Some(t.text.clone())
        }
        Some(_) => {
            return Err(Status::invalid_argument(
                "output.role must be ROLE_ASSISTANT",
            ));
        }
    };
    Ok((input, output))
}

fn category_pb(c: safety::Category) -> pb::Category {
    use safety::Category as C;
    match c {
        C::SuicidalIdeation => pb::Category::SuicidalIdeation,
        C::SuicidalBehavior => pb::Category::SuicidalBehavior,
        C::SelfHarm => pb::Category::SelfHarm,
        C::HarmToOthers => pb::Category::HarmToOthers,
        C::Abuse => pb::Category::Abuse,
        C::HarmfulInstructions => pb::Category::HarmfulInstructions,
        C::EncouragesHarm => pb::Category::EncouragesHarm,
        C::Inflammatory => pb::Category::Inflammatory,
        C::MissedEscalation => pb::Category::MissedEscalation,
    }
}

fn severity_pb(s: safety::Severity) -> pb::Severity {
    use safety::Severity as S;
    match s {
        S::Low => pb::Severity::Low,
        S::WishToBeDead => pb::Severity::WishToBeDead,
        S::ActiveIdeation => pb::Severity::ActiveIdeation,
        S::Method => pb::Severity::Method,
        S::Intent => pb::Severity::Intent,
        S::Plan => pb::Severity::Plan,
        S::Behavior => pb::Severity::Behavior,
    }
}

fn verdict_pb(v: safety::Verdict) -> pb::Verdict {
    match v {
        safety::Verdict::Allow => pb::Verdict::Allow,
        safety::Verdict::Warn => pb::Verdict::Warn,
        safety::Verdict::Escalate => pb::Verdict::Escalate,
        safety::Verdict::Block => pb::Verdict::Block,
    }
}

fn finding_pb(exchange_id: &str, i: usize, f: &safety::Finding) -> pb::Finding {
    pb::Finding {
        id: format!("{exchange_id}.{i}"),
        criterion: pb::Criterion::Safety as i32,
        category: category_pb(f.category) as i32,
        severity: severity_pb(f.severity) as i32,
        turn: f.turn,
        start: f.start as u32,
        end: f.end as u32,
        rule_id: f.rule.to_owned(),
        negated: f.negated,
        historical: f.historical,
        hypothetical: f.hypothetical,
        experiencer: match f.experiencer {
            safety::Experiencer::Patient => pb::Experiencer::Patient,
            safety::Experiencer::Other => pb::Experiencer::Other,
        } as i32,
        escalates: f.escalates,
        reported: f.reported,
        topic: f.topic,
        context_rules: f.context.iter().map(|c| (*c).to_owned()).collect(),
        explanation: f.explanation.clone(),
    }
}

/// Bytes of look-ahead a live transcript keeps unreleased, so PHI split across chunks (or needing the
/// words after it) is decided with its context.
pub const STREAM_HOLD: usize = 160;

/// One StreamRedact call: pending original text, and offsets released so far.
struct TranscriptStream {
    vault: Arc<Vault>,
    policy: Arc<Policy>,
    metrics: Option<Arc<Metrics>>,
    app: String,
    session: String,
    max_pending: usize,
    max_total: u64,
    fatal: Fatal,
    /// Held for the stream's life (limits.max_streams).
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl TranscriptStream {
    async fn run(
        self,
        first: pb::TranscriptChunk,
        mut input: Streaming<pb::TranscriptChunk>,
        tx: tokio::sync::mpsc::Sender<Result<pb::RedactedChunk, Status>>,
    ) {
        let me = Arc::new(self);
        let mut pending = String::new();
        // Characters of the original and of the redacted transcript released so far.
        let (mut original_chars, mut redacted_chars) = (0u64, 0u64);
        let mut received = 0u64;
        let mut next = Some(first);
        loop {
            let (text, flush, ended) = match next.take() {
                Some(c) => (c.text, c.flush, false),
                None => match input.message().await {
                    Ok(Some(c)) => {
                        if (!c.app_id.is_empty() && c.app_id != me.app)
                            || (!c.session_id.is_empty() && c.session_id != me.session)
                        {
                            let _ = tx
                                .send(Err(Status::invalid_argument(
                                    "a stream carries one application and session, named in the first chunk",
                                )))
                                .await;
                            return;
                        }
                        (c.text, c.flush, false)
                    }
                    Ok(None) => (String::new(), true, true),
                    Err(status) => {
                        // The client's stream failed: nothing more can be released safely.
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                },
            };
            received += text.len() as u64;
            if received > me.max_total {
                let _ = tx
                    .send(Err(Status::resource_exhausted(format!(
                        "the stream carried more than {} bytes of text (limits.max_stream_bytes); start a new stream",
                        me.max_total
                    ))))
                    .await;
                return;
            }
            pending.push_str(&text);
            if pending.len() > me.max_pending + STREAM_HOLD {
                let _ = tx
                    .send(Err(Status::resource_exhausted(format!(
                        "more than {} bytes are pending without a word break (limits.max_text_bytes)",
                        me.max_pending
                    ))))
                    .await;
                return;
            }
            let started = std::time::Instant::now();
            let job = Arc::clone(&me);
            let buffer = std::mem::take(&mut pending);
            let done = tokio::task::spawn_blocking(move || {
                let r = job.vault.redact_stream(
                    &job.app,
                    &job.session,
                    &buffer,
                    (!flush).then_some(STREAM_HOLD),
                    Detector::global(),
                    &job.policy,
                );
                if r.as_ref().is_ok_and(|(cut, _, _)| *cut > 0) {
                    job.vault.flush()?;
                }
                r.map(|out| (buffer, out))
            })
            .await;
            let (buffer, (cut, redacted, reps)) = match done {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    let _ = tx.send(Err(vault_status(e, &me.fatal))).await;
                    return;
                }
                Err(_) => {
                    tracing::error!("PHI detection failed in a live transcript; stream ended");
                    let _ = tx
                        .send(Err(Status::internal(
                            "PHI detection failed; nothing more of this transcript was released",
                        )))
                        .await;
                    return;
                }
            };
            pending = buffer[cut..].to_owned();
            if cut > 0 {
                let released = &buffer[..cut];
                let mut orig = CharOffsets::new(released);
                let mut out = CharOffsets::new(&redacted);
                let spans = reps
                    .iter()
                    .map(|rep| pb::PhiSpan {
                        start: (original_chars + orig.at(rep.span.start) as u64) as u32,
                        end: (original_chars + orig.at(rep.span.end) as u64) as u32,
                        r#type: rep.span.kind.to_proto() as i32,
                        rule_id: rep.span.rule.to_owned(),
                        redacted_start: (redacted_chars + out.at(rep.out_start) as u64) as u32,
                        redacted_end: (redacted_chars + out.at(rep.out_end) as u64) as u32,
                        replacement: rep.text.clone(),
                    })
                    .collect();
                if let Some(m) = &me.metrics {
                    let types: Vec<u32> =
                        reps.iter().map(|r| r.span.kind.to_proto() as u32).collect();
                    m.redact(&me.app, &me.session, &types, micros(started), unix_now());
                }
                let chunk = pb::RedactedChunk {
                    offset: redacted_chars,
                    text: redacted.clone(),
                    spans,
                };
                original_chars += released.chars().count() as u64;
                redacted_chars += redacted.chars().count() as u64;
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
            if ended {
                return;
            }
        }
    }
}

/// What a caller hears when the agent cannot store: retryable, and nothing was released.
const DISK_FULL: &str = "the agent's disk is full: nothing was stored or returned; the agent restarts once space is freed under storage.data_dir, retry then";
const STORE_FAILED: &str = "the agent's store failed to write: nothing was stored or returned; the agent is restarting, retry shortly";

fn micros(since: std::time::Instant) -> u64 {
    since.elapsed().as_micros().min(u128::from(u64::MAX)) as u64
}

/// Whether a store error leaves the store unable to write until it is reopened (sled keeps
/// failing after an I/O error); if so, raises the fatal fault so the agent restarts.
fn store_failed(e: &sled::Error, fatal: &Fatal) -> bool {
    if !matches!(e, sled::Error::Io(_)) {
        return false;
    }
    fatal.raise(if readi_common::embedded::is_disk_full(e) {
        "the store's disk is full (storage.data_dir); free space and the agent starts again"
    } else {
        "the store failed to write (storage.data_dir)"
    });
    true
}

/// What a caller hears when the store failed for good: retryable once the agent has restarted.
fn store_unavailable(db: &sled::Error) -> Status {
    Status::unavailable(if readi_common::embedded::is_disk_full(db) {
        DISK_FULL
    } else {
        STORE_FAILED
    })
}

fn vault_status(e: VaultError, fatal: &Fatal) -> Status {
    match e {
        VaultError::NotFound => Status::not_found(e.to_string()),
        VaultError::Db(ref db) if store_failed(db, fatal) => {
            tracing::error!(error = %e, "Vault failure");
            store_unavailable(db)
        }
        other => {
            tracing::error!(error = %other, "Vault failure");
            Status::internal("the vault could not be read or written; nothing was returned")
        }
    }
}

impl GatewayService {
    async fn redact_inner(
        &self,
        req: Request<pb::RedactRequest>,
    ) -> Result<Response<pb::RedactResponse>, Status> {
        let app = req.get_ref().app_id.clone();
        authorize(&req, "Redact", &[TokenRole::App], Some(&app), &self.audit)?;
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
            // The map must survive a crash before the caller sees a tag it may need restored.
            vault.flush()?;
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
            Ok(Err(e)) => Err(vault_status(e, &self.sinks.fatal)),
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

    async fn reidentify_inner(
        &self,
        req: Request<pb::ReidentifyRequest>,
    ) -> Result<Response<pb::ReidentifyResponse>, Status> {
        let app = req.get_ref().app_id.clone();
        authorize(
            &req,
            "Reidentify",
            &[TokenRole::App],
            Some(&app),
            &self.audit,
        )?;
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
        let (text, restored) = result.map_err(|e| vault_status(e, &self.sinks.fatal))?;
        Ok(Response::new(pb::ReidentifyResponse { text, restored }))
    }

    async fn assess_inner(
        &self,
        req: Request<pb::AssessRequest>,
    ) -> Result<Response<pb::AssessResponse>, Status> {
        let app = req.get_ref().app_id.clone();
        authorize(&req, "Assess", &[TokenRole::App], Some(&app), &self.audit)?;
        let r = req.into_inner();
        check_id("app_id", &r.app_id)?;
        check_id("session_id", &r.session_id)?;
        let exchange_id = if r.exchange_id.is_empty() {
            new_id("ex-")
        } else {
            check_id("exchange_id", &r.exchange_id)?;
            r.exchange_id.clone()
        };
        let (input, output) = exchange(&r)?;
        let total = input.iter().map(|(_, t)| t.len()).sum::<usize>()
            + output.as_ref().map_or(0, String::len);
        if total > self.max_text_bytes {
            return Err(Status::resource_exhausted(format!(
                "the exchange holds {total} bytes of text; the limit is {} (limits.max_text_bytes)",
                self.max_text_bytes
            )));
        }
        let done = tokio::task::spawn_blocking(move || {
            let refs: Vec<(safety::Role, &str)> =
                input.iter().map(|(role, t)| (*role, t.as_str())).collect();
            Assessor::global().assess(&refs, output.as_deref())
        })
        .await;
        let a = match done {
            Ok(a) => a,
            Err(join) => {
                tracing::error!(panicked = join.is_panic(), "Safety checks failed");
                return Err(Status::internal(
                    "the safety checks failed; treat this exchange as unassessed",
                ));
            }
        };
        let findings: Vec<pb::Finding> = a
            .findings
            .iter()
            .enumerate()
            .map(|(i, f)| finding_pb(&exchange_id, i, f))
            .collect();
        let sinks = self.sinks.clone();
        let (app, session) = (r.app_id.clone(), r.session_id.clone());
        let (verdict, escalates) = (a.verdict, a.escalates());
        let raising: Vec<pb::Finding> = findings.iter().filter(|f| f.escalates).cloned().collect();
        let top = a.top_severity();
        let blocked: Vec<i32> = a
            .findings
            .iter()
            .filter(|f| f.category.blocks())
            .map(|f| category_pb(f.category) as i32)
            .collect();
        let missed = a.categories.contains(&safety::Category::MissedEscalation);
        let ex = exchange_id.clone();
        let recorded = tokio::task::spawn_blocking(move || -> Result<String, String> {
            let mut escalation_id = String::new();
            let event = |kind: pb::AdverseEventKind, categories: Vec<i32>, esc: &str| {
                sinks
                    .adverse
                    .record(pb::AdverseEvent {
                        kind: kind as i32,
                        app_id: app.clone(),
                        categories,
                        source: pb::EventSource::Detected as i32,
                        escalation_id: esc.to_owned(),
                        ..Default::default()
                    })
                    .map(drop)
                    .map_err(|e| e.to_string())
            };
            if escalates {
                let mut cats: Vec<i32> = raising.iter().map(|f| f.category).collect();
                cats.sort_unstable();
                cats.dedup();
                let e = sinks
                    .escalations
                    .raise(pb::Escalation {
                        app_id: app.clone(),
                        session_id: session.clone(),
                        exchange_id: ex.clone(),
                        findings: raising,
                        severity: top.map_or(0, |s| severity_pb(s) as i32),
                        source: pb::EventSource::Detected as i32,
                        ..Default::default()
                    })
                    .map_err(|e| e.to_string())?;
                escalation_id = e.id;
                event(pb::AdverseEventKind::Escalation, cats, &escalation_id)?;
            }
            if missed {
                event(
                    pb::AdverseEventKind::MissedEscalation,
                    vec![pb::Category::MissedEscalation as i32],
                    &escalation_id,
                )?;
            }
            if verdict == safety::Verdict::Block {
                event(pb::AdverseEventKind::HarmfulOutput, blocked, &escalation_id)?;
            }
            Ok(escalation_id)
        })
        .await;
        let escalation_id = match recorded {
            Ok(Ok(id)) => id,
            failed => {
                if let Ok(Err(e)) = failed {
                    tracing::error!(error = %e, "Escalation or adverse event not recorded");
                }
                return Err(Status::internal(
                    "the risk found could not be recorded or escalated; a human must review this exchange",
                ));
            }
        };
        Ok(Response::new(pb::AssessResponse {
            verdict: verdict_pb(verdict) as i32,
            findings,
            exchange_id,
            escalation_id,
        }))
    }
}

#[tonic::async_trait]
impl Gateway for GatewayService {
    async fn redact(
        &self,
        req: Request<pb::RedactRequest>,
    ) -> Result<Response<pb::RedactResponse>, Status> {
        let started = std::time::Instant::now();
        let (app, session) = (
            req.get_ref().app_id.clone(),
            req.get_ref().session_id.clone(),
        );
        let result = self.redact_inner(req).await;
        if let Some(m) = &self.sinks.metrics {
            match &result {
                Ok(r) => {
                    let types: Vec<u32> =
                        r.get_ref().spans.iter().map(|s| s.r#type as u32).collect();
                    m.redact(&app, &session, &types, micros(started), unix_now());
                }
                Err(e) => m.error(&app, e.code() as u32, None),
            }
        }
        result
    }

    async fn reidentify(
        &self,
        req: Request<pb::ReidentifyRequest>,
    ) -> Result<Response<pb::ReidentifyResponse>, Status> {
        let started = std::time::Instant::now();
        let app = req.get_ref().app_id.clone();
        let result = self.reidentify_inner(req).await;
        if let Some(m) = &self.sinks.metrics {
            match &result {
                Ok(_) => m.reidentify(&app, micros(started)),
                Err(e) => m.error(&app, e.code() as u32, None),
            }
        }
        result
    }

    async fn assess(
        &self,
        req: Request<pb::AssessRequest>,
    ) -> Result<Response<pb::AssessResponse>, Status> {
        let started = std::time::Instant::now();
        let r = req.get_ref();
        let (app, session) = (r.app_id.clone(), r.session_id.clone());
        let (language, segment) = (r.language.clone(), r.segment_id.clone());
        let llm_latency_ms = (r.llm_latency_ms > 0).then_some(u64::from(r.llm_latency_ms));
        let llm_tokens = (r.llm_tokens > 0).then_some(u64::from(r.llm_tokens));
        let result = self.assess_inner(req).await;
        if let Some(m) = &self.sinks.metrics {
            match &result {
                Ok(resp) => {
                    let resp = resp.get_ref();
                    let output = |c: i32| {
                        use pb::Category as C;
                        [C::HarmfulInstructions, C::EncouragesHarm, C::Inflammatory]
                            .iter()
                            .any(|x| *x as i32 == c)
                    };
                    let verdict = resp.verdict();
                    let facts = AssessFacts {
                        findings: resp
                            .findings
                            .iter()
                            .filter(|f| !f.negated)
                            .map(|f| (f.category as u32, f.severity as u32))
                            .collect(),
                        output_flags: resp
                            .findings
                            .iter()
                            .filter(|f| output(f.category))
                            .map(|f| f.category as u32)
                            .collect(),
                        flagged: verdict != pb::Verdict::Allow,
                        escalated: !resp.escalation_id.is_empty(),
                        missed: resp
                            .findings
                            .iter()
                            .any(|f| f.category == pb::Category::MissedEscalation as i32),
                        blocked: verdict == pb::Verdict::Block,
                        llm_latency_ms,
                        llm_tokens,
                    };
                    m.assess(
                        &app,
                        &session,
                        &language,
                        &segment,
                        &facts,
                        micros(started),
                        unix_now(),
                    );
                }
                Err(e) => m.error(&app, e.code() as u32, Some(&language)),
            }
        }
        result
    }

    type StreamRedactStream = BoxStream<pb::RedactedChunk>;

    async fn stream_redact(
        &self,
        req: Request<Streaming<pb::TranscriptChunk>>,
    ) -> Result<Response<Self::StreamRedactStream>, Status> {
        // The role is checked now; the application scope once the first chunk names it.
        authorize(&req, "StreamRedact", &[TokenRole::App], None, &self.audit)?;
        let caller = req.extensions().get::<crate::tokens::Caller>().cloned();
        let mut input = req.into_inner();
        let first = match input.message().await? {
            Some(c) => c,
            None => return Err(Status::invalid_argument("the stream carried no chunk")),
        };
        check_id("app_id", &first.app_id)?;
        check_id("session_id", &first.session_id)?;
        let mut scoped = Request::new(());
        if let Some(c) = caller {
            scoped.extensions_mut().insert(c);
        }
        authorize(
            &scoped,
            "StreamRedact",
            &[TokenRole::App],
            Some(&first.app_id),
            &self.audit,
        )?;
        let permit = self.stream_permit()?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let stream = TranscriptStream {
            vault: Arc::clone(&self.vault),
            policy: Arc::clone(&self.policy),
            metrics: self.sinks.metrics.clone(),
            app: first.app_id.clone(),
            session: first.session_id.clone(),
            max_pending: self.max_text_bytes,
            max_total: self.max_stream_bytes,
            fatal: self.sinks.fatal.clone(),
            _permit: permit,
        };
        tokio::spawn(stream.run(first, input, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn record_outcome(
        &self,
        req: Request<pb::RecordOutcomeRequest>,
    ) -> Result<Response<pb::RecordOutcomeResponse>, Status> {
        let app = req.get_ref().app_id.clone();
        authorize(
            &req,
            "RecordOutcome",
            &[TokenRole::App],
            Some(&app),
            &self.audit,
        )?;
        let r = req.into_inner();
        check_id("app_id", &r.app_id)?;
        check_id("session_id", &r.session_id)?;
        let (Some(metrics), Some(outcomes)) = (&self.sinks.metrics, &self.sinks.outcomes) else {
            return Err(Status::failed_precondition(
                "outcomes are counted only when the agent reports to a controller ([controller])",
            ));
        };
        match r.observation {
            Some(pb::record_outcome_request::Observation::Score(score)) => {
                check_id("episode_id", &r.episode_id)?;
                let arm = pb::CareArm::try_from(r.arm).unwrap_or(pb::CareArm::Unspecified);
                if arm == pb::CareArm::Unspecified {
                    return Err(Status::invalid_argument(
                        "arm is required (CARE_ARM_AI_ASSISTED or CARE_ARM_STANDARD_CARE)",
                    ));
                }
                let max = match pb::Measure::try_from(score.measure) {
                    Ok(pb::Measure::Phq9) => 27,
                    Ok(pb::Measure::Gad7) => 21,
                    _ => {
                        return Err(Status::invalid_argument(
                            "score.measure is required (MEASURE_PHQ9 or MEASURE_GAD7)",
                        ));
                    }
                };
                if !(0..=max).contains(&score.score) {
                    return Err(Status::invalid_argument(format!(
                        "score.score must be from 0 to {max} for this measure"
                    )));
                }
                let Some(taken) = score.taken_at.map(|t| t.seconds) else {
                    return Err(Status::invalid_argument("score.taken_at is required"));
                };
                if taken > unix_now() as i64 + 86_400 {
                    return Err(Status::invalid_argument("score.taken_at is in the future"));
                }
                let key = metrics.episode_key(&r.app_id, &r.episode_id, score.measure as u32);
                let store = Arc::clone(outcomes);
                let value = score.score;
                let change = tokio::task::spawn_blocking(move || store.observe(&key, value, taken))
                    .await
                    .map_err(|_| Status::internal("recording the outcome failed"))?
                    .map_err(|e| {
                        tracing::error!(error = %e, "Outcome store failure");
                        Status::internal("the outcome could not be stored")
                    })?;
                if let Some(change) = change {
                    metrics.outcome_change(&r.app_id, score.measure as u32, arm as u32, change);
                }
            }
            Some(pb::record_outcome_request::Observation::NoteEdit(edit)) => {
                let longest = edit.draft_chars.max(edit.signed_chars).max(1);
                if edit.edit_distance > longest {
                    return Err(Status::invalid_argument(
                        "note_edit.edit_distance cannot exceed the longer of the two texts",
                    ));
                }
                let permille = u64::from(edit.edit_distance) * 1000 / u64::from(longest);
                metrics.note_edit(&r.app_id, permille);
            }
            None => {
                return Err(Status::invalid_argument(
                    "an observation is required: score or note_edit",
                ));
            }
        }
        Ok(Response::new(pb::RecordOutcomeResponse {
            window_start: Some(prost_types::Timestamp {
                seconds: metrics.window_start() as i64,
                nanos: 0,
            }),
        }))
    }

    type WatchEscalationsStream = BoxStream<pb::Escalation>;

    async fn watch_escalations(
        &self,
        req: Request<pb::WatchEscalationsRequest>,
    ) -> Result<Response<Self::WatchEscalationsStream>, Status> {
        // An app token watches its own application only.
        let scoped = req
            .extensions()
            .get::<crate::tokens::Caller>()
            .filter(|c| c.role == TokenRole::App)
            .map(|c| c.app_id.clone());
        let app = req.get_ref().app_id.clone();
        if scoped.is_some() && app.is_empty() {
            return Err(Status::permission_denied(
                "an app token watches its own application: set app_id",
            ));
        }
        authorize(
            &req,
            "WatchEscalations",
            &[TokenRole::App, TokenRole::Compliance],
            (!app.is_empty()).then_some(app.as_str()),
            &self.audit,
        )?;
        let r = req.into_inner();
        if !r.app_id.is_empty() {
            check_id("app_id", &r.app_id)?;
        }
        let permit = self.stream_permit()?;
        // Subscribe before reading what is pending, so nothing raised in between is missed.
        let mut live = self.sinks.escalations.subscribe();
        let pending = if r.include_pending {
            let store = Arc::clone(&self.sinks.escalations);
            tokio::task::spawn_blocking(move || store.pending())
                .await
                .map_err(|_| Status::internal("reading pending escalations failed"))?
                .map_err(|e| escalation_status(e, &self.sinks.fatal))?
        } else {
            Vec::new()
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let stop = self.sinks.shutdown.clone();
        let app = r.app_id;
        tokio::spawn(async move {
            let _permit = permit;
            let wanted = |e: &pb::Escalation| app.is_empty() || e.app_id == app;
            for e in pending.into_iter().filter(|e| wanted(e)) {
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
            loop {
                tokio::select! {
                    _ = stop.clone().fired() => return,
                    _ = tx.closed() => return,
                    got = live.recv() => match got {
                        Ok(e) if wanted(&e) => {
                            if tx.send(Ok(e)).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            // Skipped escalations are still pending and come back with the resend.
                            tracing::warn!(skipped = n, "Escalation watcher fell behind");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn acknowledge_escalation(
        &self,
        req: Request<pb::AcknowledgeEscalationRequest>,
    ) -> Result<Response<pb::AcknowledgeEscalationResponse>, Status> {
        // An app token acknowledges its own application's escalations only.
        let scoped = req
            .extensions()
            .get::<crate::tokens::Caller>()
            .is_some_and(|c| c.role == TokenRole::App);
        let app = if scoped {
            let store = Arc::clone(&self.sinks.escalations);
            let id = req.get_ref().escalation_id.clone();
            Some(
                tokio::task::spawn_blocking(move || store.app_of(&id))
                    .await
                    .map_err(|_| Status::internal("reading the escalation failed"))?
                    .map_err(|e| escalation_status(e, &self.sinks.fatal))?,
            )
        } else {
            None
        };
        authorize(
            &req,
            "AcknowledgeEscalation",
            &[TokenRole::App, TokenRole::Compliance],
            app.as_deref(),
            &self.audit,
        )?;
        let r = req.into_inner();
        check_id("escalation_id", &r.escalation_id)?;
        check_id("clinician_id", &r.clinician_id)?;
        let disposition = r.disposition();
        let store = Arc::clone(&self.sinks.escalations);
        let (id, clinician) = (r.escalation_id.clone(), r.clinician_id.clone());
        let (e, secs) =
            tokio::task::spawn_blocking(move || store.acknowledge(&id, &clinician, disposition))
                .await
                .map_err(|_| Status::internal("acknowledgement failed"))?
                .map_err(|e| escalation_status(e, &self.sinks.fatal))?;
        let outcome = format!(
            "escalation {} {} after {secs}s",
            e.id,
            disposition.as_str_name()
        );
        if let Err(err) =
            self.audit
                .record_by("escalation_ack", &r.clinician_id, &e.app_id, &outcome)
        {
            tracing::error!(error = %err, "Audit write failed for an acknowledgement");
            return Err(Status::internal(
                "the acknowledgement was stored but the audit log could not be written",
            ));
        }
        if let Some(m) = &self.sinks.metrics {
            m.acknowledged(&e.app_id, secs);
        }
        Ok(Response::new(pb::AcknowledgeEscalationResponse {
            acknowledged_at: e.acknowledged_at,
            seconds_to_acknowledge: secs,
        }))
    }

    async fn submit_feedback(
        &self,
        req: Request<pb::SubmitFeedbackRequest>,
    ) -> Result<Response<pb::SubmitFeedbackResponse>, Status> {
        let app = req.get_ref().app_id.clone();
        authorize(
            &req,
            "SubmitFeedback",
            &[TokenRole::App, TokenRole::Compliance],
            Some(&app),
            &self.audit,
        )?;
        let reporter = req
            .extensions()
            .get::<crate::tokens::Caller>()
            .map_or_else(|| "local".to_owned(), |c| c.token_id.clone());
        let r = req.into_inner();
        check_id("app_id", &r.app_id)?;
        check_id("session_id", &r.session_id)?;
        if !r.exchange_id.is_empty() {
            check_id("exchange_id", &r.exchange_id)?;
        }
        let mut rec = FeedbackRecord {
            id: String::new(),
            recorded_at: 0,
            kind: FeedbackKind::MissedRisk,
            app_id: r.app_id.clone(),
            session_id: r.session_id.clone(),
            exchange_id: r.exchange_id.clone(),
            category: String::new(),
            finding_id: String::new(),
            phi_type: String::new(),
            text: String::new(),
            reporter,
            adverse_event_id: String::new(),
            escalation_id: String::new(),
        };
        // What to escalate, as the finding a person made: category, severity and rule id.
        let mut escalate: Option<(pb::Category, &'static str)> = None;
        let ae_kind = match r.kind {
            None => {
                return Err(Status::invalid_argument(
                    "kind is required: missed_risk, false_alarm_finding_id, leaked_phi or \
                     unexpected_behavior",
                ));
            }
            Some(pb::submit_feedback_request::Kind::MissedRisk(c)) => {
                let category = pb::Category::try_from(c)
                    .ok()
                    .filter(|c| (1..=5).contains(&(*c as i32)))
                    .ok_or_else(|| {
                        Status::invalid_argument(
                            "missed_risk must be a risk category: suicidal ideation or behaviour, \
                             self-harm, harm to others or abuse",
                        )
                    })?;
                rec.category = category.as_str_name().to_owned();
                escalate = Some((category, "feedback.missed_risk"));
                pb::AdverseEventKind::ReportedMissedRisk
            }
            Some(pb::submit_feedback_request::Kind::FalseAlarmFindingId(f)) => {
                check_id("false_alarm_finding_id", &f)?;
                rec.kind = FeedbackKind::FalseAlarm;
                rec.finding_id = f;
                pb::AdverseEventKind::ReportedFalseAlarm
            }
            Some(pb::submit_feedback_request::Kind::LeakedPhi(t)) => {
                let phi = pb::PhiType::try_from(t)
                    .ok()
                    .filter(|t| *t != pb::PhiType::Unspecified)
                    .ok_or_else(|| {
                        Status::invalid_argument(
                            "leaked_phi must be a PHI type (the type only, never the value)",
                        )
                    })?;
                rec.kind = FeedbackKind::LeakedPhi;
                rec.phi_type = phi.as_str_name().to_owned();
                escalate = Some((pb::Category::ResidualPhi, "feedback.leaked_phi"));
                pb::AdverseEventKind::ReportedPhiLeak
            }
            Some(pb::submit_feedback_request::Kind::UnexpectedBehavior(text)) => {
                if text.trim().is_empty() {
                    return Err(Status::invalid_argument(
                        "unexpected_behavior needs a description of what the model did",
                    ));
                }
                self.check_text("unexpected_behavior", &text)?;
                rec.kind = FeedbackKind::UnexpectedBehavior;
                rec.text = text;
                pb::AdverseEventKind::ReportedUnexpected
            }
        };
        let sinks = self.sinks.clone();
        let kind_name = rec.kind.as_str();
        let stored = tokio::task::spawn_blocking(move || -> Result<FeedbackRecord, String> {
            if let Some((category, rule)) = escalate {
                // A person's report carries no rating; the clinician reviewing it decides.
                let severity = pb::Severity::Unspecified;
                let criterion = if category == pb::Category::ResidualPhi {
                    pb::Criterion::Privacy
                } else {
                    pb::Criterion::Safety
                };
                let e = sinks
                    .escalations
                    .raise(pb::Escalation {
                        app_id: rec.app_id.clone(),
                        session_id: rec.session_id.clone(),
                        exchange_id: rec.exchange_id.clone(),
                        findings: vec![pb::Finding {
                            id: new_id("fr-"),
                            criterion: criterion as i32,
                            category: category as i32,
                            severity: severity as i32,
                            turn: 0,
                            rule_id: rule.to_owned(),
                            escalates: true,
                            ..Default::default()
                        }],
                        severity: severity as i32,
                        source: pb::EventSource::Reported as i32,
                        ..Default::default()
                    })
                    .map_err(|e| e.to_string())?;
                rec.escalation_id = e.id;
            }
            let ev = sinks
                .adverse
                .record(pb::AdverseEvent {
                    kind: ae_kind as i32,
                    app_id: rec.app_id.clone(),
                    categories: escalate.map(|(c, _)| vec![c as i32]).unwrap_or_default(),
                    source: pb::EventSource::Reported as i32,
                    escalation_id: rec.escalation_id.clone(),
                    ..Default::default()
                })
                .map_err(|e| e.to_string())?;
            rec.adverse_event_id = ev.id;
            sinks.feedback.record(rec).map_err(|e| e.to_string())
        })
        .await;
        let rec = match stored {
            Ok(Ok(rec)) => rec,
            failed => {
                if let Ok(Err(e)) = failed {
                    tracing::error!(error = %e, "Feedback not recorded");
                }
                return Err(Status::internal(
                    "the feedback could not be recorded; report it to the clinic's safety lead",
                ));
            }
        };
        let outcome = format!(
            "{kind_name} {} {} {}",
            rec.id,
            rec.adverse_event_id,
            if rec.escalation_id.is_empty() {
                "no escalation".to_owned()
            } else {
                format!("escalated {}", rec.escalation_id)
            }
        );
        if let Err(e) = self
            .audit
            .record_by("feedback", &rec.reporter, &rec.app_id, &outcome)
        {
            tracing::error!(error = %e, "Audit write failed for feedback");
            return Err(Status::internal(
                "the feedback was stored but the audit log could not be written",
            ));
        }
        if let Some(m) = &self.sinks.metrics {
            m.feedback(&rec.app_id, ae_kind as u32, !rec.escalation_id.is_empty());
        }
        tracing::info!(
            kind = kind_name,
            adverse_event = %rec.adverse_event_id,
            escalation = %rec.escalation_id,
            "Feedback recorded"
        );
        Ok(Response::new(pb::SubmitFeedbackResponse {
            adverse_event_id: rec.adverse_event_id,
            escalation_id: rec.escalation_id,
        }))
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
        let vault = Arc::new(
            Vault::open(&db, Arc::clone(&keys), std::time::Duration::from_secs(600)).unwrap(),
        );
        let audit = Arc::new(Audit::open(&db, &keys, 64).unwrap());
        let sinks = SafetySinks {
            escalations: Arc::new(Escalations::open(&db, Arc::clone(&keys), None).unwrap()),
            adverse: Arc::new(AdverseEvents::open(&db, Arc::clone(&keys)).unwrap()),
            shutdown: Trigger::spawn(std::future::pending()),
            fatal: Fatal::default(),
            metrics: None,
            outcomes: None,
            feedback: Arc::new(Feedback::open(&db, Arc::clone(&keys)).unwrap()),
        };
        let gw = GatewayService::new(
            vault,
            audit,
            RedactionConfig::default(),
            &crate::config::LimitsConfig {
                max_text_bytes: 1 << 20,
                ..Default::default()
            },
            sinks,
        );
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
