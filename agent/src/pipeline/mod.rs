//! The request pipeline: what every front door (gRPC, proxy, batch) calls, in domain types, with
//! one error type. Doors authenticate and convert; the pipeline authorizes, checks, runs the stages
//! (detect, redact, assess, record) and counts what happened.

mod assess;
mod escalations;
mod feedback;
mod outcomes;
mod record;
pub mod records;
pub mod redact;
pub mod stream;

use std::borrow::Cow;
use std::sync::Arc;

use readi_common::shutdown::{Fatal, Trigger};

use crate::adverse::AdverseEvents;
use crate::audit::Audit;
use crate::config::{LimitsConfig, RedactionConfig};
use crate::escalation::{EscalationError, Escalations};
use crate::feedback::Feedback;
use crate::metrics::Metrics;
use crate::outcomes::Outcomes;
use crate::tokens::{Caller, Role};
use crate::vault::{Vault, VaultError};

pub use assess::{Assessed, Exchange};
pub use escalations::Watch;
pub use feedback::{Filed, Report, Reported};
pub use outcomes::Observation;
pub use record::Recorder;
pub use redact::{PhiSpan, Redacted, Redactor};
pub use stream::{Chunk, Release, Reply, Transcript};

/// Why a request was not served. Messages help the caller and never hold request text or PHI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    Invalid(Cow<'static, str>),
    /// The request is over a configured limit (size, streams); the message names the setting.
    #[error("{0}")]
    Limit(String),
    /// The caller's token may not do this (audited).
    #[error("{0}")]
    Denied(String),
    /// No such record (a session map, an escalation).
    #[error("{0}")]
    NotFound(String),
    /// The agent or the record is not in a state that allows this.
    #[error("{0}")]
    Precondition(Cow<'static, str>),
    /// The store failed for good; the agent is restarting. Retryable then.
    #[error("{0}")]
    Unavailable(&'static str),
    /// A stage failed; the message says what was not done.
    #[error("{0}")]
    Internal(&'static str),
}

impl Error {
    /// The gRPC code of this error: what the gRPC door answers and what the error metrics count
    /// (the report's error kinds are gRPC code numbers).
    pub fn code(&self) -> tonic::Code {
        match self {
            Error::Invalid(_) => tonic::Code::InvalidArgument,
            Error::Limit(_) => tonic::Code::ResourceExhausted,
            Error::Denied(_) => tonic::Code::PermissionDenied,
            Error::NotFound(_) => tonic::Code::NotFound,
            Error::Precondition(_) => tonic::Code::FailedPrecondition,
            Error::Unavailable(_) => tonic::Code::Unavailable,
            Error::Internal(_) => tonic::Code::Internal,
        }
    }

    /// Whether the caller's request was at fault (malformed or too large), not the agent.
    pub fn is_callers(&self) -> bool {
        matches!(self, Error::Invalid(_) | Error::Limit(_))
    }
}

impl From<crate::tokens::Denied> for Error {
    fn from(d: crate::tokens::Denied) -> Self {
        Error::Denied(d.0)
    }
}

/// Why what a request found could not be kept; logged, never shown to the caller.
#[derive(Debug, thiserror::Error)]
enum Recording {
    #[error("escalation: {0}")]
    Escalation(#[from] EscalationError),
    #[error("sealed log: {0}")]
    Log(#[from] crate::sealed_log::LogError),
}

/// Where the stages send what they find and keep.
#[derive(Debug, Clone)]
pub struct Sinks {
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
    pub outcomes: Option<Arc<Outcomes>>,
    /// Clinicians' reports with their sealed detail.
    pub feedback: Arc<Feedback>,
}

/// The pipeline over the vault, the audit log and the sinks, with the configured policy and limits.
#[derive(Debug)]
pub struct Pipeline {
    redactor: Arc<Redactor>,
    audit: Arc<Audit>,
    max_text_bytes: usize,
    max_stream_bytes: u64,
    /// One permit per open long-lived stream (limits.max_streams).
    streams: Arc<tokio::sync::Semaphore>,
    max_streams: usize,
    sinks: Sinks,
    recorder: Recorder,
}

impl Pipeline {
    /// A pipeline redacting into `vault` under `redaction`, within `limits`.
    pub fn new(
        vault: Arc<Vault>,
        audit: Arc<Audit>,
        redaction: RedactionConfig,
        limits: &LimitsConfig,
        sinks: Sinks,
    ) -> Self {
        Pipeline {
            redactor: Arc::new(Redactor::new(vault, redaction.policy())),
            audit,
            max_text_bytes: limits.max_text_bytes,
            max_stream_bytes: limits.max_stream_bytes,
            streams: Arc::new(tokio::sync::Semaphore::new(limits.max_streams)),
            max_streams: limits.max_streams,
            recorder: Recorder::new(sinks.metrics.clone()),
            sinks,
        }
    }

    /// What counts the exchanges, for doors that measure something the pipeline cannot see.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Checks the caller's role (and, for `app` tokens, its application) for one operation.
    pub fn authorize(
        &self,
        caller: Option<&Caller>,
        rpc: &str,
        allowed: &[Role],
        app: Option<&str>,
    ) -> Result<(), Error> {
        Ok(crate::tokens::permit(
            caller,
            rpc,
            allowed,
            app,
            &self.audit,
        )?)
    }

    /// The preamble of every per-session operation: the caller may act for `app`, and both ids
    /// are well formed.
    fn admit(
        &self,
        caller: Option<&Caller>,
        rpc: &str,
        allowed: &[Role],
        app: &str,
        session: &str,
    ) -> Result<(), Error> {
        self.authorize(caller, rpc, allowed, Some(app))?;
        check_id("app_id", app)?;
        check_id("session_id", session)
    }

    /// A permit for one more long-lived stream, or a clear refusal when all are taken.
    fn stream_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        Arc::clone(&self.streams).try_acquire_owned().map_err(|_| {
            Error::Limit(format!(
                "all {} streams are in use (limits.max_streams); retry when one ends",
                self.max_streams
            ))
        })
    }

    fn check_text(&self, field: &str, text: &str) -> Result<(), Error> {
        if text.len() > self.max_text_bytes {
            return Err(Error::Limit(format!(
                "{field} is {} bytes; the limit is {} (limits.max_text_bytes)",
                text.len(),
                self.max_text_bytes
            )));
        }
        Ok(())
    }

    fn vault_error(&self, e: VaultError) -> Error {
        vault_error(e, &self.sinks.fatal)
    }

    fn escalation_error(&self, e: EscalationError) -> Error {
        escalation_error(e, &self.sinks.fatal)
    }
}

/// A vault failure as the caller hears it; a store that can no longer write stops the agent.
fn vault_error(e: VaultError, fatal: &Fatal) -> Error {
    match e {
        VaultError::NotFound => Error::NotFound(e.to_string()),
        VaultError::Db(ref db) => store_error(&e, Some(db), fatal, VAULT_FAILED),
        VaultError::Mark(ref m) => {
            store_error(&e, m.as_store_error().as_ref(), fatal, VAULT_FAILED)
        }
        other => store_error(&other, None, fatal, VAULT_FAILED),
    }
}

const VAULT_FAILED: &str = "the vault could not be read or written; nothing was returned";

/// An escalation-store failure as the caller hears it.
fn escalation_error(e: EscalationError, fatal: &Fatal) -> Error {
    const FAILED: &str = "the escalation store could not be read or written";
    match e {
        EscalationError::NotFound => Error::NotFound(e.to_string()),
        EscalationError::AlreadyAcknowledged(_) => Error::Precondition(e.to_string().into()),
        EscalationError::Store(ref db) => store_error(&e, Some(db), fatal, FAILED),
        EscalationError::Mark(ref m) => store_error(&e, m.as_store_error().as_ref(), fatal, FAILED),
        other => store_error(&other, None, fatal, FAILED),
    }
}

/// A store that failed: logged; UNAVAILABLE when it can no longer write (the agent restarts),
/// otherwise INTERNAL saying `failed`.
fn store_error(
    e: &dyn std::fmt::Display,
    db: Option<&sled::Error>,
    fatal: &Fatal,
    failed: &'static str,
) -> Error {
    tracing::error!(error = %e, "Store failure");
    match db {
        Some(db) if store_failed(db, fatal) => store_unavailable(db),
        _ => Error::Internal(failed),
    }
}

/// Application, session and other ids: short printable identifiers, checked before anything is
/// stored.
pub fn check_id(field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::Invalid(format!("{field} is required").into()));
    }
    if value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Invalid(
            format!("{field} must be 1-128 printable ASCII characters without spaces").into(),
        ));
    }
    Ok(())
}

const DISK_FULL: &str = "the agent's disk is full: nothing was stored or returned; the agent restarts once space is freed under storage.data_dir, retry then";
const STORE_FAILED: &str = "the agent's store failed to write: nothing was stored or returned; the agent is restarting, retry shortly";

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
fn store_unavailable(db: &sled::Error) -> Error {
    Error::Unavailable(if readi_common::embedded::is_disk_full(db) {
        DISK_FULL
    } else {
        STORE_FAILED
    })
}

/// Microseconds since `since`, for latency metrics.
fn micros(since: std::time::Instant) -> u64 {
    since.elapsed().as_micros().min(u128::from(u64::MAX)) as u64
}

/// Runs blocking work (detection, sealed stores) off the async workers; a panic inside it becomes
/// `failed`, never a half-done answer.
async fn blocking<T: Send + 'static>(
    failed: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work).await.map_err(|join| {
        tracing::error!(panicked = join.is_panic(), "{failed}");
        Error::Internal(failed)
    })
}

#[cfg(test)]
mod tests;
