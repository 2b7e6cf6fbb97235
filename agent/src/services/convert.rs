//! The gRPC door's conversions: protobuf requests into pipeline domain types, domain results into
//! protobuf responses, and `pipeline::Error` into a `Status`, each in one place.

use readi_proto::agent::v1 as pb;
use tonic::{Request, Status};

use crate::audit::Audit;
use crate::pipeline::{
    self, Assessed, Chunk, Exchange, Filed, Observation, PhiSpan, Redacted, Report, Reported,
    records, redact::RedactIn,
};
use crate::redact::Style;
use crate::tokens::{Caller, Role};

impl From<pipeline::Error> for Status {
    fn from(e: pipeline::Error) -> Status {
        Status::new(e.code(), e.to_string())
    }
}

/// The authenticated caller the interceptor put on the request (none when tokens are not enforced).
pub(crate) fn caller<T>(req: &Request<T>) -> Option<Caller> {
    req.extensions().get::<Caller>().cloned()
}

/// Checks the request's caller for one RPC outside the pipeline (the Compliance service).
pub(crate) fn authorize<T>(
    req: &Request<T>,
    rpc: &str,
    allowed: &[Role],
    app_id: Option<&str>,
    audit: &Audit,
) -> Result<(), Status> {
    let caller = req.extensions().get::<Caller>();
    crate::tokens::permit(caller, rpc, allowed, app_id, audit)
        .map_err(|d| Status::permission_denied(d.0))
}

fn timestamp(seconds: u64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: seconds as i64,
        nanos: 0,
    })
}

/// A Redact request.
pub(crate) fn redact_in(r: pb::RedactRequest) -> RedactIn {
    let style = match r.style() {
        pb::RedactionStyle::Unspecified => None,
        pb::RedactionStyle::Tag => Some(Style::Tag),
        pb::RedactionStyle::Mask => Some(Style::Mask),
        pb::RedactionStyle::Surrogate => Some(Style::Surrogate),
    };
    RedactIn {
        app: r.app_id,
        session: r.session_id,
        text: r.text,
        style,
    }
}

fn span(s: PhiSpan) -> pb::PhiSpan {
    pb::PhiSpan {
        start: s.start as u32,
        end: s.end as u32,
        r#type: s.kind.to_proto() as i32,
        rule_id: s.rule.to_owned(),
        redacted_start: s.redacted_start as u32,
        redacted_end: s.redacted_end as u32,
        replacement: s.replacement,
    }
}

/// A Redact response.
pub(crate) fn redacted(r: Redacted) -> pb::RedactResponse {
    pb::RedactResponse {
        redacted_text: r.text,
        spans: r.spans.into_iter().map(span).collect(),
        vault_expires_at: timestamp(r.expires_at),
    }
}

/// A piece of a redacted live transcript.
pub(crate) fn chunk(c: Chunk) -> pb::RedactedChunk {
    pb::RedactedChunk {
        offset: c.offset,
        text: c.text,
        spans: c.spans.into_iter().map(span).collect(),
    }
}

/// An Assess request.
pub(crate) fn exchange(r: pb::AssessRequest) -> Exchange {
    let turn = |t: pb::Turn| (t.role(), t.text);
    Exchange {
        llm_latency_ms: (r.llm_latency_ms > 0).then_some(u64::from(r.llm_latency_ms)),
        llm_tokens: (r.llm_tokens > 0).then_some(u64::from(r.llm_tokens)),
        app: r.app_id,
        session: r.session_id,
        exchange_id: r.exchange_id,
        input: r.input.into_iter().map(turn).collect(),
        output: r.output.map(turn),
        language: r.language,
        segment: r.segment_id,
    }
}

/// An Assess response.
pub(crate) fn assessed(a: Assessed) -> pb::AssessResponse {
    pb::AssessResponse {
        verdict: records::verdict(a.verdict) as i32,
        findings: a
            .findings
            .iter()
            .enumerate()
            .map(|(i, f)| records::finding(&a.exchange_id, i, f))
            .collect(),
        exchange_id: a.exchange_id,
        escalation_id: a.escalation_id,
    }
}

/// A SubmitFeedback request.
pub(crate) fn report(r: pb::SubmitFeedbackRequest) -> Report {
    use pb::submit_feedback_request::Kind;
    Report {
        app: r.app_id,
        session: r.session_id,
        exchange_id: r.exchange_id,
        kind: r.kind.map(|k| match k {
            Kind::MissedRisk(c) => Reported::MissedRisk(c),
            Kind::FalseAlarmFindingId(f) => Reported::FalseAlarm(f),
            Kind::LeakedPhi(t) => Reported::LeakedPhi(t),
            Kind::UnexpectedBehavior(t) => Reported::UnexpectedBehavior(t),
        }),
    }
}

/// A SubmitFeedback response.
pub(crate) fn filed(f: Filed) -> pb::SubmitFeedbackResponse {
    pb::SubmitFeedbackResponse {
        adverse_event_id: f.adverse_event_id,
        escalation_id: f.escalation_id,
    }
}

/// A RecordOutcome request's observation.
pub(crate) fn observation(r: &pb::RecordOutcomeRequest) -> Option<Observation> {
    use pb::record_outcome_request::Observation as O;
    Some(match r.observation.as_ref()? {
        O::Score(s) => Observation::Score {
            episode_id: r.episode_id.clone(),
            arm: r.arm,
            measure: s.measure,
            score: s.score,
            taken_at: s.taken_at.map(|t| t.seconds),
        },
        O::NoteEdit(e) => Observation::NoteEdit {
            draft_chars: e.draft_chars,
            signed_chars: e.signed_chars,
            edit_distance: e.edit_distance,
        },
    })
}

/// A RecordOutcome response: the window the outcome was counted in.
pub(crate) fn outcome_recorded(window_start: u64) -> pb::RecordOutcomeResponse {
    pb::RecordOutcomeResponse {
        window_start: timestamp(window_start),
    }
}
