//! Feedback stage: a clinician's report becomes an adverse event, an escalation when it names
//! missed risk or leaked PHI, a sealed feedback record, an audit entry and a count.

use readi_proto::agent::v1 as pb;

use crate::escalation::new_id;
use crate::feedback::{Kind, Record};
use crate::tokens::{Caller, Role};

use super::{Error, Pipeline, Recording, blocking, check_id};

/// What a clinician reported. Values are the wire's enums, checked here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    /// Risk that was not flagged, by its category number.
    MissedRisk(i32),
    /// A finding that was wrong, by its id.
    FalseAlarm(String),
    /// PHI that got through, by its type number (never the value).
    LeakedPhi(i32),
    /// What the model did, in the clinician's words (sealed, never reported).
    UnexpectedBehavior(String),
}

/// One clinician's report about an exchange.
#[derive(Debug, Clone)]
pub struct Report {
    /// The application.
    pub app: String,
    /// The session.
    pub session: String,
    /// The exchange, when known.
    pub exchange_id: String,
    /// What was reported; None when the request named nothing.
    pub kind: Option<Reported>,
}

/// What a report became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    /// The adverse-event record.
    pub adverse_event_id: String,
    /// The escalation raised, or empty.
    pub escalation_id: String,
}

impl Pipeline {
    /// Files a clinician's report (SubmitFeedback).
    pub async fn feedback(&self, caller: Option<&Caller>, r: Report) -> Result<Filed, Error> {
        self.admit(
            caller,
            "SubmitFeedback",
            &[Role::App, Role::Compliance],
            &r.app,
            &r.session,
        )?;
        if !r.exchange_id.is_empty() {
            check_id("exchange_id", &r.exchange_id)?;
        }
        let reporter = caller.map_or_else(|| "local".to_owned(), |c| c.token_id.clone());
        let mut rec = Record {
            id: String::new(),
            recorded_at: 0,
            kind: Kind::MissedRisk,
            app_id: r.app,
            session_id: r.session,
            exchange_id: r.exchange_id,
            category: String::new(),
            finding_id: String::new(),
            phi_type: String::new(),
            text: String::new(),
            reporter,
            adverse_event_id: String::new(),
            escalation_id: String::new(),
        };
        // What to escalate, as the finding a person made: category and rule id.
        let mut escalate: Option<(pb::Category, &'static str)> = None;
        let ae_kind = match r.kind {
            None => {
                return Err(Error::Invalid(
                    "kind is required: missed_risk, false_alarm_finding_id, leaked_phi or \
                     unexpected_behavior"
                        .into(),
                ));
            }
            Some(Reported::MissedRisk(c)) => {
                let category = pb::Category::try_from(c)
                    .ok()
                    .filter(|c| (1..=5).contains(&(*c as i32)))
                    .ok_or(Error::Invalid(
                        "missed_risk must be a risk category: suicidal ideation or behaviour, \
                         self-harm, harm to others or abuse"
                            .into(),
                    ))?;
                rec.category = category.as_str_name().to_owned();
                escalate = Some((category, "feedback.missed_risk"));
                pb::AdverseEventKind::ReportedMissedRisk
            }
            Some(Reported::FalseAlarm(f)) => {
                check_id("false_alarm_finding_id", &f)?;
                rec.kind = Kind::FalseAlarm;
                rec.finding_id = f;
                pb::AdverseEventKind::ReportedFalseAlarm
            }
            Some(Reported::LeakedPhi(t)) => {
                let phi = pb::PhiType::try_from(t)
                    .ok()
                    .filter(|t| *t != pb::PhiType::Unspecified)
                    .ok_or(Error::Invalid(
                        "leaked_phi must be a PHI type (the type only, never the value)".into(),
                    ))?;
                rec.kind = Kind::LeakedPhi;
                rec.phi_type = phi.as_str_name().to_owned();
                escalate = Some((pb::Category::ResidualPhi, "feedback.leaked_phi"));
                pb::AdverseEventKind::ReportedPhiLeak
            }
            Some(Reported::UnexpectedBehavior(text)) => {
                if text.trim().is_empty() {
                    return Err(Error::Invalid(
                        "unexpected_behavior needs a description of what the model did".into(),
                    ));
                }
                self.check_text("unexpected_behavior", &text)?;
                rec.kind = Kind::UnexpectedBehavior;
                rec.text = text;
                pb::AdverseEventKind::ReportedUnexpected
            }
        };
        let sinks = self.sinks.clone();
        let kind_name = rec.kind.as_str();
        let failed = "the feedback could not be recorded; report it to the clinic's safety lead";
        let stored = blocking(failed, move || -> Result<Record, Recording> {
            if let Some((category, rule)) = escalate {
                // A person's report carries no rating; the clinician reviewing it decides.
                let severity = pb::Severity::Unspecified;
                let criterion = if category == pb::Category::ResidualPhi {
                    pb::Criterion::Privacy
                } else {
                    pb::Criterion::Safety
                };
                let e = sinks.escalations.raise(pb::Escalation {
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
                })?;
                rec.escalation_id = e.id;
            }
            let ev = sinks.adverse.record(pb::AdverseEvent {
                kind: ae_kind as i32,
                app_id: rec.app_id.clone(),
                categories: escalate.map(|(c, _)| vec![c as i32]).unwrap_or_default(),
                source: pb::EventSource::Reported as i32,
                escalation_id: rec.escalation_id.clone(),
                ..Default::default()
            })?;
            rec.adverse_event_id = ev.id;
            Ok(sinks.feedback.record(rec)?)
        })
        .await?;
        let rec = stored.map_err(|e| {
            tracing::error!(error = %e, "Feedback not recorded");
            Error::Internal(failed)
        })?;
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
            return Err(Error::Internal(
                "the feedback was stored but the audit log could not be written",
            ));
        }
        self.recorder
            .feedback(&rec.app_id, ae_kind, !rec.escalation_id.is_empty());
        tracing::info!(
            kind = kind_name,
            adverse_event = %rec.adverse_event_id,
            escalation = %rec.escalation_id,
            "Feedback recorded"
        );
        Ok(Filed {
            adverse_event_id: rec.adverse_event_id,
            escalation_id: rec.escalation_id,
        })
    }
}
