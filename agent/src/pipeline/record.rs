//! The recorder: what the pipeline counts into the metric windows, taken as domain values, when
//! the agent reports to a controller (and nothing otherwise).

use std::sync::Arc;
use std::time::Instant;

use readi_proto::agent::v1 as pb;

use crate::metrics::{AssessFacts, Metrics};
use crate::reporting::unix_now;
use crate::safety;

use super::{Assessed, Error, Exchange, PhiSpan, micros, records};

/// Counts exchanges into the metric windows; a no-op without them.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Option<Arc<Metrics>>);

impl Recorder {
    /// A recorder into `metrics`, or one that records nothing.
    pub fn new(metrics: Option<Arc<Metrics>>) -> Recorder {
        Recorder(metrics)
    }

    /// Whether anything is recorded (the agent reports to a controller).
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// A redaction and the PHI it replaced.
    pub fn redacted(&self, app: &str, session: &str, spans: &[PhiSpan], started: Instant) {
        if let Some(m) = &self.0 {
            let types: Vec<u32> = spans.iter().map(|s| s.kind.to_proto() as u32).collect();
            m.redact(app, session, &types, micros(started), unix_now());
        }
    }

    /// A re-identification.
    pub fn reidentified(&self, app: &str, started: Instant) {
        if let Some(m) = &self.0 {
            m.reidentify(app, micros(started));
        }
    }

    /// PHI found in outbound text after redaction (zero included).
    pub fn residual_phi(&self, app: &str, n: u64) {
        if let Some(m) = &self.0 {
            m.residual_phi(app, n);
        }
    }

    /// An assessed exchange and what it found and raised.
    pub fn assessed(&self, ex: &Exchange, a: &Assessed, started: Instant) {
        let Some(m) = &self.0 else {
            return;
        };
        let facts = AssessFacts {
            findings: a
                .findings
                .iter()
                .filter(|f| !f.negated)
                .map(|f| {
                    (
                        records::category(f.category) as u32,
                        records::severity(f.severity) as u32,
                    )
                })
                .collect(),
            output_flags: a
                .output_flags()
                .map(|c| records::category(c) as u32)
                .collect(),
            flagged: a.verdict != safety::Verdict::Allow,
            escalated: !a.escalation_id.is_empty(),
            missed: a
                .findings
                .iter()
                .any(|f| f.category == safety::Category::MissedEscalation),
            blocked: a.verdict == safety::Verdict::Block,
            llm_latency_ms: ex.llm_latency_ms,
            llm_tokens: ex.llm_tokens,
        };
        m.assess(
            &ex.app,
            &ex.session,
            &ex.language,
            &ex.segment,
            &facts,
            micros(started),
            unix_now(),
        );
    }

    /// A clinician's report of `kind`, and whether it raised an escalation.
    pub fn feedback(&self, app: &str, kind: pb::AdverseEventKind, escalated: bool) {
        if let Some(m) = &self.0 {
            m.feedback(app, kind as u32, escalated);
        }
    }

    /// An escalation acknowledged after `secs`.
    pub fn acknowledged(&self, app: &str, secs: u64) {
        if let Some(m) = &self.0 {
            m.acknowledged(app, secs);
        }
    }

    /// A request that failed, by its error's code, by language when known.
    pub fn failed(&self, app: &str, e: &Error, language: Option<&str>) {
        if let Some(m) = &self.0 {
            m.error(app, e.code() as u32, language);
        }
    }
}
