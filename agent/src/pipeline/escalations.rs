//! Escalations as the clinic's on-call sees them: a watch over pending and new escalations, and
//! acknowledgement, once, audited and timed.

use std::sync::Arc;

use readi_common::shutdown::Trigger;
use readi_proto::agent::v1 as pb;
use tokio::sync::broadcast;

use crate::tokens::{Caller, Role};

use super::{Error, Pipeline, blocking, check_id};

/// A watch on escalations: those pending when it opened, then each new one, for one application
/// or all. Holds a stream permit (limits.max_streams) for its life.
#[derive(Debug)]
pub struct Watch {
    app: String,
    pending: std::vec::IntoIter<pb::Escalation>,
    live: broadcast::Receiver<pb::Escalation>,
    stop: Trigger,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Watch {
    /// The next escalation, or None once the agent shuts down or the store closes.
    pub async fn next(&mut self) -> Option<pb::Escalation> {
        let app = &self.app;
        let wanted = |e: &pb::Escalation| app.is_empty() || e.app_id == *app;
        if let Some(e) = self.pending.by_ref().find(|e| wanted(e)) {
            return Some(e);
        }
        loop {
            tokio::select! {
                _ = self.stop.clone().fired() => return None,
                got = self.live.recv() => match got {
                    Ok(e) if wanted(&e) => return Some(e),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        // Skipped escalations are still pending and come back with the resend.
                        tracing::warn!(skipped = n, "Escalation watcher fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

impl Pipeline {
    /// Opens a watch (WatchEscalations) on `app`'s escalations, or every application's when empty;
    /// an app token watches its own application only.
    pub async fn watch(
        &self,
        caller: Option<&Caller>,
        app: String,
        include_pending: bool,
    ) -> Result<Watch, Error> {
        if caller.is_some_and(|c| c.role == Role::App) && app.is_empty() {
            return Err(Error::Denied(
                "an app token watches its own application: set app_id".to_owned(),
            ));
        }
        self.authorize(
            caller,
            "WatchEscalations",
            &[Role::App, Role::Compliance],
            (!app.is_empty()).then_some(app.as_str()),
        )?;
        if !app.is_empty() {
            check_id("app_id", &app)?;
        }
        let permit = self.stream_permit()?;
        // Subscribe before reading what is pending, so nothing raised in between is missed.
        let live = self.sinks.escalations.subscribe();
        let pending = if include_pending {
            let store = Arc::clone(&self.sinks.escalations);
            blocking("reading pending escalations failed", move || {
                store.pending()
            })
            .await?
            .map_err(|e| self.escalation_error(e))?
        } else {
            Vec::new()
        };
        Ok(Watch {
            app,
            pending: pending.into_iter(),
            live,
            stop: self.sinks.shutdown.clone(),
            _permit: permit,
        })
    }

    /// Records that `clinician` acknowledged an escalation with `disposition`
    /// (AcknowledgeEscalation); an app token acknowledges its own application's only. Returns the
    /// escalation as acknowledged and the seconds it took.
    pub async fn acknowledge(
        &self,
        caller: Option<&Caller>,
        escalation_id: &str,
        clinician: &str,
        disposition: pb::Disposition,
    ) -> Result<(pb::Escalation, u64), Error> {
        let app = if caller.is_some_and(|c| c.role == Role::App) {
            let store = Arc::clone(&self.sinks.escalations);
            let id = escalation_id.to_owned();
            Some(
                blocking("reading the escalation failed", move || store.app_of(&id))
                    .await?
                    .map_err(|e| self.escalation_error(e))?,
            )
        } else {
            None
        };
        self.authorize(
            caller,
            "AcknowledgeEscalation",
            &[Role::App, Role::Compliance],
            app.as_deref(),
        )?;
        check_id("escalation_id", escalation_id)?;
        check_id("clinician_id", clinician)?;
        let store = Arc::clone(&self.sinks.escalations);
        let (id, who) = (escalation_id.to_owned(), clinician.to_owned());
        let (e, secs) = blocking("acknowledgement failed", move || {
            store.acknowledge(&id, &who, disposition)
        })
        .await?
        .map_err(|e| self.escalation_error(e))?;
        let outcome = format!(
            "escalation {} {} after {secs}s",
            e.id,
            disposition.as_str_name()
        );
        if let Err(err) = self
            .audit
            .record_by("escalation_ack", clinician, &e.app_id, &outcome)
        {
            tracing::error!(error = %err, "Audit write failed for an acknowledgement");
            return Err(Error::Internal(
                "the acknowledgement was stored but the audit log could not be written",
            ));
        }
        self.recorder.acknowledged(&e.app_id, secs);
        Ok((e, secs))
    }
}
