//! Assessment stage: the READI safety checks on an exchange, then what they call for: an
//! escalation for risk a human must see, and adverse events for escalations, missed escalations and
//! blocked output.

use std::time::Instant;

use readi_proto::agent::v1 as pb;

use crate::escalation::new_id;
use crate::safety::{self, Assessor};
use crate::tokens::{Caller, Role};

use super::{Error, Pipeline, Recording, blocking, check_id, records};

/// One exchange to assess: the turns that went in and the model's output, with what the metrics
/// group it by. Roles are the wire's, checked here.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// The application.
    pub app: String,
    /// The session.
    pub session: String,
    /// The caller's id for the exchange; one is made when empty.
    pub exchange_id: String,
    /// Input turns: user or note text.
    pub input: Vec<(pb::Role, String)>,
    /// The model's output, with its role.
    pub output: Option<(pb::Role, String)>,
    /// The language tag the app declared (BCP 47), for equity metrics.
    pub language: String,
    /// The demographic segment the app declared.
    pub segment: String,
    /// How long the model took, when the app says.
    pub llm_latency_ms: Option<u64>,
    /// Tokens the model used, when the app says.
    pub llm_tokens: Option<u64>,
}

/// What the checks decided and what was raised.
#[derive(Debug, Clone)]
pub struct Assessed {
    /// The exchange's id (the caller's or a new one).
    pub exchange_id: String,
    /// The decision.
    pub verdict: safety::Verdict,
    /// Every finding, in order.
    pub findings: Vec<safety::Finding>,
    /// The escalation raised, or empty.
    pub escalation_id: String,
}

impl Assessed {
    /// The output categories that were flagged (what a blocked reply is withheld for).
    pub fn output_flags(&self) -> impl Iterator<Item = safety::Category> + '_ {
        self.findings
            .iter()
            .map(|f| f.category)
            .filter(|c| c.blocks())
    }
}

/// The input turns and output of an exchange, with their roles checked.
#[allow(clippy::type_complexity)]
fn turns(ex: &Exchange) -> Result<(Vec<(safety::Role, String)>, Option<String>), Error> {
    if ex.input.is_empty() && ex.output.is_none() {
        return Err(Error::Invalid(
            "an exchange needs at least one input turn or an output".into(),
        ));
    }
    let mut input = Vec::with_capacity(ex.input.len());
    for (i, (role, text)) in ex.input.iter().enumerate() {
        let role = match role {
            pb::Role::User => safety::Role::User,
            pb::Role::Note => safety::Role::Note,
            pb::Role::Assistant => {
                return Err(Error::Invalid(
                    format!("input[{i}].role: model output belongs in `output`").into(),
                ));
            }
            pb::Role::Unspecified => {
                return Err(Error::Invalid(
                    format!("input[{i}].role is required (ROLE_USER or ROLE_NOTE)").into(),
                ));
            }
        };
        input.push((role, text.clone()));
    }
    let output = match &ex.output {
        None => None,
        Some((pb::Role::Assistant | pb::Role::Unspecified, text)) => Some(text.clone()),
        Some(_) => return Err(Error::Invalid("output.role must be ROLE_ASSISTANT".into())),
    };
    Ok((input, output))
}

impl Pipeline {
    /// Assesses an exchange (Assess), raises what it calls for, and counts it.
    pub async fn assess(&self, caller: Option<&Caller>, ex: Exchange) -> Result<Assessed, Error> {
        let started = Instant::now();
        let result = self.assess_inner(caller, &ex).await;
        match &result {
            Ok(a) => self.recorder.assessed(&ex, a, started),
            Err(e) => self.recorder.failed(&ex.app, e, Some(&ex.language)),
        }
        result
    }

    async fn assess_inner(
        &self,
        caller: Option<&Caller>,
        ex: &Exchange,
    ) -> Result<Assessed, Error> {
        self.admit(caller, "Assess", &[Role::App], &ex.app, &ex.session)?;
        let exchange_id = if ex.exchange_id.is_empty() {
            new_id("ex-")
        } else {
            check_id("exchange_id", &ex.exchange_id)?;
            ex.exchange_id.clone()
        };
        let (input, output) = turns(ex)?;
        let total = input.iter().map(|(_, t)| t.len()).sum::<usize>()
            + output.as_ref().map_or(0, String::len);
        if total > self.max_text_bytes {
            return Err(Error::Limit(format!(
                "the exchange holds {total} bytes of text; the limit is {} (limits.max_text_bytes)",
                self.max_text_bytes
            )));
        }
        let a = blocking(
            "the safety checks failed; treat this exchange as unassessed",
            move || {
                let refs: Vec<(safety::Role, &str)> =
                    input.iter().map(|(role, t)| (*role, t.as_str())).collect();
                Assessor::global().assess(&refs, output.as_deref())
            },
        )
        .await?;
        let escalation_id = self.raise(ex, &exchange_id, &a).await?;
        Ok(Assessed {
            exchange_id,
            verdict: a.verdict,
            findings: a.findings,
            escalation_id,
        })
    }

    /// Raises the escalation and records the adverse events an assessment calls for; returns the
    /// escalation's id (empty when none was raised).
    async fn raise(
        &self,
        ex: &Exchange,
        exchange_id: &str,
        a: &safety::Assessment,
    ) -> Result<String, Error> {
        let sinks = self.sinks.clone();
        let (app, session, exchange) = (ex.app.clone(), ex.session.clone(), exchange_id.to_owned());
        let raising: Vec<pb::Finding> = a
            .findings
            .iter()
            .enumerate()
            .filter(|(_, f)| f.escalates)
            .map(|(i, f)| records::finding(exchange_id, i, f))
            .collect();
        let escalates = a.escalates();
        let top = a.top_severity();
        let blocked: Vec<i32> = a
            .findings
            .iter()
            .filter(|f| f.category.blocks())
            .map(|f| records::category(f.category) as i32)
            .collect();
        let missed = a.categories.contains(&safety::Category::MissedEscalation);
        let verdict = a.verdict;
        let recorded = blocking(
            "the risk found could not be recorded or escalated; a human must review this exchange",
            move || -> Result<String, Recording> {
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
                        .map_err(Recording::from)
                };
                if escalates {
                    let mut cats: Vec<i32> = raising.iter().map(|f| f.category).collect();
                    cats.sort_unstable();
                    cats.dedup();
                    let e = sinks.escalations.raise(pb::Escalation {
                        app_id: app.clone(),
                        session_id: session.clone(),
                        exchange_id: exchange.clone(),
                        findings: raising,
                        severity: top.map_or(0, |s| records::severity(s) as i32),
                        source: pb::EventSource::Detected as i32,
                        ..Default::default()
                    })?;
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
            },
        )
        .await?;
        recorded.map_err(|e| {
            tracing::error!(error = %e, "Escalation or adverse event not recorded");
            Error::Internal(
                "the risk found could not be recorded or escalated; a human must review this exchange",
            )
        })
    }
}
