//! Redaction stage: detect PHI with what the session already revealed, replace it under the
//! session's tag map in the vault, and restore tags inside the clinic (audited).

use std::sync::Arc;
use std::time::Instant;

use crate::phi::{CharOffsets, Detector, PhiType};
use crate::redact::{self, Policy, Replacement, Style};
use crate::tokens::{Caller, Role};
use crate::vault::{Vault, VaultError};

use super::{Error, Pipeline, blocking};

/// One replaced span, in characters (Unicode scalar values) of the original and of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhiSpan {
    /// First character in the original.
    pub start: u64,
    /// One past the last character in the original.
    pub end: u64,
    /// What it is.
    pub kind: PhiType,
    /// The rule that found it.
    pub rule: &'static str,
    /// First character of its replacement in the output.
    pub redacted_start: u64,
    /// One past the replacement's last character.
    pub redacted_end: u64,
    /// The replacement.
    pub replacement: String,
}

/// Redacted text and what was replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The text with every span replaced.
    pub text: String,
    /// The replacements, in order.
    pub spans: Vec<PhiSpan>,
    /// When the session's map expires (Unix seconds).
    pub expires_at: u64,
}

/// The spans of `reps` in characters, `base` characters (original, output) into the text.
pub fn char_spans(
    original: &str,
    redacted: &str,
    reps: &[Replacement],
    base: (u64, u64),
) -> Vec<PhiSpan> {
    let mut orig = CharOffsets::new(original);
    let mut out = CharOffsets::new(redacted);
    reps.iter()
        .map(|rep| PhiSpan {
            start: base.0 + orig.at(rep.span.start) as u64,
            end: base.0 + orig.at(rep.span.end) as u64,
            kind: rep.span.kind,
            rule: rep.span.rule,
            redacted_start: base.1 + out.at(rep.out_start) as u64,
            redacted_end: base.1 + out.at(rep.out_end) as u64,
            replacement: rep.text.clone(),
        })
        .collect()
}

/// Detection and replacement under the policy, with each session's map kept in the vault.
/// Blocking: call it off the async workers.
#[derive(Debug)]
pub struct Redactor {
    vault: Arc<Vault>,
    policy: Policy,
}

impl Redactor {
    /// A redactor storing session maps in `vault`.
    pub fn new(vault: Arc<Vault>, policy: Policy) -> Redactor {
        Redactor { vault, policy }
    }

    /// The vault the session maps live in.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Redacts `text` with the session's tags, stores the updated map (sliding expiry) and returns
    /// the redacted text, the replacements and the expiry (Unix seconds).
    pub fn redact(
        &self,
        app: &str,
        session: &str,
        text: &str,
        forced: Option<Style>,
    ) -> Result<(String, Vec<Replacement>, u64), VaultError> {
        let (_, redacted, reps, expires) = self.redact_up_to(app, session, text, None, forced)?;
        Ok((redacted, reps, expires))
    }

    /// Redacts the part of a live transcript's pending `buffer` that can no longer change: detection
    /// runs over the whole buffer, but only text before the cut (see [`super::stream::cut`]) is
    /// released, so PHI that straddles chunks is decided with the text after it. With no `hold`,
    /// everything is released. Returns the cut (bytes consumed), the redacted text and the
    /// replacements.
    pub fn redact_stream(
        &self,
        app: &str,
        session: &str,
        buffer: &str,
        hold: Option<usize>,
    ) -> Result<(usize, String, Vec<Replacement>), VaultError> {
        let (cut, redacted, reps, _) = self.redact_up_to(app, session, buffer, hold, None)?;
        Ok((cut, redacted, reps))
    }

    /// Detects over all of `text` with the session's known terms, redacts up to the cut `hold`
    /// allows (all of it without one), and stores the updated map unless nothing was released.
    fn redact_up_to(
        &self,
        app: &str,
        session: &str,
        text: &str,
        hold: Option<usize>,
        forced: Option<Style>,
    ) -> Result<(usize, String, Vec<Replacement>, u64), VaultError> {
        let detector = Detector::global();
        let policy = &self.policy;
        let (done, expires) = self.vault.update(app, session, |tags| {
            // What the session already revealed is looked for again ("Quackenbush called back").
            let mut known = tags.known_terms(detector.lexicon());
            known.extend(policy.deny.iter().cloned());
            let mut spans = detector.detect_with(text, &known);
            policy.retain_allowed(text, &mut spans);
            let cut = match hold {
                None => text.len(),
                Some(hold) => super::stream::cut(text, hold, |c| {
                    spans
                        .iter()
                        .find(|s| s.start < c && c < s.end)
                        .map(|s| s.start)
                }),
            };
            if hold.is_some() && cut == 0 {
                return None;
            }
            spans.retain(|s| s.end <= cut);
            let (redacted, reps) = redact::apply(&text[..cut], &spans, policy, forced, tags);
            Some((cut, redacted, reps))
        })?;
        Ok(match done {
            Some((cut, redacted, reps)) => (cut, redacted, reps, expires),
            None => (0, String::new(), Vec::new(), expires),
        })
    }
}

/// What to redact: the text of one session of one application.
#[derive(Debug, Clone)]
pub struct RedactIn {
    /// The application.
    pub app: String,
    /// The session whose tags are used.
    pub session: String,
    /// The text.
    pub text: String,
    /// A style forcing the policy's for this call.
    pub style: Option<Style>,
}

impl Pipeline {
    /// Redacts one text (Redact): the session's map is durable before the caller sees a tag.
    pub async fn redact(&self, caller: Option<&Caller>, r: RedactIn) -> Result<Redacted, Error> {
        let started = Instant::now();
        let (app, session) = (r.app.clone(), r.session.clone());
        let result = self.redact_inner(caller, r).await;
        match &result {
            Ok(red) => self.recorder.redacted(&app, &session, &red.spans, started),
            Err(e) => self.recorder.failed(&app, e, None),
        }
        result
    }

    async fn redact_inner(&self, caller: Option<&Caller>, r: RedactIn) -> Result<Redacted, Error> {
        self.admit(caller, "Redact", &[Role::App], &r.app, &r.session)?;
        self.check_text("text", &r.text)?;
        let redactor = Arc::clone(&self.redactor);
        let done = blocking(
            "PHI detection failed; the text was not redacted and nothing was returned",
            move || {
                let (redacted, reps, expires) =
                    redactor.redact(&r.app, &r.session, &r.text, r.style)?;
                // The map must survive a crash before the caller sees a tag it may need restored.
                redactor.vault().flush()?;
                let spans = char_spans(&r.text, &redacted, &reps, (0, 0));
                Ok::<_, VaultError>(Redacted {
                    text: redacted,
                    spans,
                    expires_at: expires,
                })
            },
        )
        .await?;
        done.map_err(|e| self.vault_error(e))
    }

    /// Restores the session's tags in `text` (Reidentify); every call is audited, and refused if the
    /// audit cannot be written. Returns the text and how many tags were restored.
    pub async fn reidentify(
        &self,
        caller: Option<&Caller>,
        app: &str,
        session: &str,
        text: &str,
    ) -> Result<(String, u32), Error> {
        let started = Instant::now();
        let result = self
            .admit(caller, "Reidentify", &[Role::App], app, session)
            .and_then(|()| self.check_text("text", text))
            .and_then(|()| self.restore_audited(app, session, text));
        match &result {
            Ok(_) => self.recorder.reidentified(app, started),
            Err(e) => self.recorder.failed(app, e, None),
        }
        result
    }

    fn restore_audited(
        &self,
        app: &str,
        session: &str,
        text: &str,
    ) -> Result<(String, u32), Error> {
        let result = self.redactor.vault().reidentify(app, session, text);
        let outcome = match &result {
            Ok((_, n)) => format!("restored {n}"),
            Err(VaultError::NotFound) => "not_found".to_owned(),
            Err(_) => "error".to_owned(),
        };
        if let Err(e) = self.audit.record("reidentify", app, &outcome) {
            tracing::error!(error = %e, "Audit write failed; refusing Reidentify");
            return Err(Error::Internal(
                "the audit log could not be written; re-identification refused",
            ));
        }
        result.map_err(|e| self.vault_error(e))
    }

    /// Checks what is about to leave the clinic once more: PHI the detector finds outside the
    /// replacements is residual PHI, the privacy criterion's measure. Counted, zero included, where
    /// outbound text is known (the proxy).
    pub async fn check_outbound(&self, app: &str, r: &Redacted) {
        if !self.recorder.is_on() {
            return;
        }
        let replaced: Vec<(u64, u64)> = r
            .spans
            .iter()
            .map(|s| (s.redacted_start, s.redacted_end))
            .collect();
        let outbound = r.text.clone();
        let residual = tokio::task::spawn_blocking(move || residual_spans(&outbound, &replaced))
            .await
            .unwrap_or(0);
        if residual > 0 {
            tracing::warn!(residual, "PHI found in redacted text on its way upstream");
        }
        self.recorder.residual_phi(app, residual as u64);
    }
}

/// Spans the detector finds in redacted text outside the replacements (character ranges).
pub fn residual_spans(redacted: &str, replaced: &[(u64, u64)]) -> usize {
    let mut chars = CharOffsets::new(redacted);
    Detector::global()
        .detect(redacted)
        .iter()
        .map(|s| (chars.at(s.start) as u64, chars.at(s.end) as u64))
        .filter(|(a, b)| !replaced.iter().any(|(x, y)| a < y && x < b))
        .count()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::RedactionConfig;
    use crate::keys::Keys;

    fn redactor(dir: &std::path::Path, ttl: Duration, policy: Policy) -> (sled::Db, Redactor) {
        let db = sled::open(dir.join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir, &db).unwrap());
        let vault = Arc::new(Vault::open(&db, keys, ttl).unwrap());
        (db, Redactor::new(vault, policy))
    }

    #[test]
    fn maps_expire_and_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let (db, r) = redactor(dir.path(), Duration::from_secs(1), Policy::default());
        let text = "Call Jane Doe at 617-555-0199.";
        let (red, _, _) = r.redact("app", "s1", text, None).unwrap();
        let (again, _, _) = r.redact("app", "s1", "Doe called back.", None).unwrap();
        assert!(!again.contains("Doe"), "{again}");
        let v = r.vault();
        assert_eq!(v.reidentify("app", "s1", &red).unwrap().0, text);
        assert!(matches!(
            v.reidentify("app", "other", &red),
            Err(VaultError::NotFound)
        ));
        assert!(matches!(
            v.reidentify("other-app", "s1", &red),
            Err(VaultError::NotFound)
        ));
        std::thread::sleep(Duration::from_millis(2100));
        assert!(matches!(
            v.reidentify("app", "s1", &red),
            Err(VaultError::NotFound)
        ));
        assert_eq!(v.sweep().unwrap(), 1);
        assert_eq!(db.open_tree("vault").unwrap().len(), 0);
    }

    #[test]
    fn phi_outside_the_replacements_is_residual() {
        let text = "Seen by [NAME_1] today; call 617-555-0199.";
        // The tag is a replacement; the phone number was missed.
        assert_eq!(residual_spans(text, &[(8, 16)]), 1);
        assert_eq!(residual_spans(text, &[(8, 16), (29, 41)]), 0);
        assert_eq!(residual_spans("Nothing identifying here.", &[]), 0);
    }

    #[test]
    fn allow_and_deny_terms_apply() {
        let dir = tempfile::tempdir().unwrap();
        let cfg: RedactionConfig = toml::from_str(
            "allow = [\"Hope Clinic\"]\n[deny]\nLOCATION = [\"smallville rec center\"]\nNAME = [\"Quill\"]\n",
        )
        .unwrap();
        let (_db, r) = redactor(dir.path(), Duration::from_secs(60), cfg.policy());
        let text = "Referred to Hope Clinic after group at Smallville Rec Center; Quill attended.";
        let (red, _, _) = r.redact("app", "s", text, None).unwrap();
        assert!(
            red.contains("Hope Clinic"),
            "allowed term must survive: {red}"
        );
        assert!(
            !red.contains("Smallville") && !red.contains("Quill"),
            "denied terms must go: {red}"
        );
    }
}
