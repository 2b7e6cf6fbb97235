//! Outcomes stage: validated PHQ-9 and GAD-7 scores become change from each episode's baseline,
//! and note edits an edit ratio, counted in the current window (effectiveness).

use std::sync::Arc;

use readi_proto::agent::v1 as pb;

use crate::reporting::unix_now;
use crate::tokens::{Caller, Role};

use super::{Error, Pipeline, check_id};

/// What an app observed in one session. Values are the wire's, checked here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A validated measure's score in one episode of care.
    Score {
        /// The episode the score belongs to.
        episode_id: String,
        /// The arm of care, by its number.
        arm: i32,
        /// The measure, by its number.
        measure: i32,
        /// The score.
        score: i32,
        /// When it was taken (Unix seconds).
        taken_at: Option<i64>,
    },
    /// How much a clinician changed an AI draft before signing it.
    NoteEdit {
        /// Characters in the draft.
        draft_chars: u32,
        /// Characters in the signed note.
        signed_chars: u32,
        /// Edit distance between them.
        edit_distance: u32,
    },
}

impl Pipeline {
    /// Records an outcome (RecordOutcome); returns the start of the window it was counted in.
    pub async fn record_outcome(
        &self,
        caller: Option<&Caller>,
        app: &str,
        session: &str,
        observation: Option<Observation>,
    ) -> Result<u64, Error> {
        self.admit(caller, "RecordOutcome", &[Role::App], app, session)?;
        let (Some(metrics), Some(outcomes)) = (&self.sinks.metrics, &self.sinks.outcomes) else {
            return Err(Error::Precondition(
                "outcomes are counted only when the agent reports to a controller ([controller])"
                    .into(),
            ));
        };
        match observation {
            Some(Observation::Score {
                episode_id,
                arm,
                measure,
                score,
                taken_at,
            }) => {
                check_id("episode_id", &episode_id)?;
                let arm = pb::CareArm::try_from(arm).unwrap_or(pb::CareArm::Unspecified);
                if arm == pb::CareArm::Unspecified {
                    return Err(Error::Invalid(
                        "arm is required (CARE_ARM_AI_ASSISTED or CARE_ARM_STANDARD_CARE)".into(),
                    ));
                }
                let max = match pb::Measure::try_from(measure) {
                    Ok(pb::Measure::Phq9) => 27,
                    Ok(pb::Measure::Gad7) => 21,
                    _ => {
                        return Err(Error::Invalid(
                            "score.measure is required (MEASURE_PHQ9 or MEASURE_GAD7)".into(),
                        ));
                    }
                };
                if !(0..=max).contains(&score) {
                    return Err(Error::Invalid(
                        format!("score.score must be from 0 to {max} for this measure").into(),
                    ));
                }
                let Some(taken) = taken_at else {
                    return Err(Error::Invalid("score.taken_at is required".into()));
                };
                if taken > unix_now() as i64 + 86_400 {
                    return Err(Error::Invalid("score.taken_at is in the future".into()));
                }
                let key = metrics.episode_key(app, &episode_id, measure as u32);
                let store = Arc::clone(outcomes);
                let change = super::blocking("recording the outcome failed", move || {
                    store.observe(&key, score, taken)
                })
                .await?
                .map_err(|e| {
                    tracing::error!(error = %e, "Outcome store failure");
                    Error::Internal("the outcome could not be stored")
                })?;
                if let Some(change) = change {
                    metrics.outcome_change(app, measure as u32, arm as u32, change);
                }
            }
            Some(Observation::NoteEdit {
                draft_chars,
                signed_chars,
                edit_distance,
            }) => {
                let longest = draft_chars.max(signed_chars).max(1);
                if edit_distance > longest {
                    return Err(Error::Invalid(
                        "note_edit.edit_distance cannot exceed the longer of the two texts".into(),
                    ));
                }
                let permille = u64::from(edit_distance) * 1000 / u64::from(longest);
                metrics.note_edit(app, permille);
            }
            None => {
                return Err(Error::Invalid(
                    "an observation is required: score or note_edit".into(),
                ));
            }
        }
        Ok(metrics.window_start())
    }
}
