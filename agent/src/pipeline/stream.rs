//! Text that arrives in pieces: one rule for where a stream may be cut, and the two live streams
//! built on it, a transcript redacted on its way in (StreamRedact) and a model's reply restored
//! and checked on its way back (the proxy).

use std::sync::Arc;
use std::time::Instant;

use crate::safety::{Assessor, Verdict};
use crate::tokens::{Caller, Role};

use super::redact::{PhiSpan, char_spans};
use super::{Error, Pipeline, Recorder, Redactor, blocking};

/// Bytes of look-ahead a live transcript keeps unreleased, so PHI split across chunks (or needing the
/// words after it) is decided with its context.
pub const STREAM_HOLD: usize = 160;

/// Bytes of a streamed reply held back so a tag or surrogate split across events is restored whole.
pub const REPLY_HOLD: usize = 48;

/// Where a live buffer may be cut: `hold` bytes before its end or earlier, just after whitespace,
/// and never inside a span: `inside(cut)` names the start of a span the cut would split.
pub fn cut(buffer: &str, hold: usize, inside: impl Fn(usize) -> Option<usize>) -> usize {
    let mut cut = buffer.len().saturating_sub(hold);
    loop {
        while cut > 0 && !buffer.is_char_boundary(cut) {
            cut -= 1;
        }
        // Back to just after the last whitespace, so no word is cut.
        cut = buffer[..cut].rfind(char::is_whitespace).map_or(0, |i| {
            i + buffer[i..].chars().next().map_or(1, char::len_utf8)
        });
        match inside(cut) {
            Some(start) if start < cut => cut = start,
            _ => return cut,
        }
    }
}

/// Where streamed reply text may be released: the stream cut with [`REPLY_HOLD`], never inside an
/// unclosed `[TAG_n]`.
pub fn release_cut(pending: &str) -> usize {
    cut(pending, REPLY_HOLD, |c| {
        pending[..c]
            .rfind('[')
            .filter(|&open| !pending[open..c].contains(']'))
    })
}

/// A redacted piece of a live transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Characters of redacted transcript released before this piece.
    pub offset: u64,
    /// The redacted text.
    pub text: String,
    /// Its replacements, in characters of the whole original and redacted transcripts.
    pub spans: Vec<PhiSpan>,
}

/// One live transcript (StreamRedact): pending original text, and how much was released.
#[derive(Debug)]
pub struct Transcript {
    redactor: Arc<Redactor>,
    recorder: Recorder,
    app: String,
    session: String,
    pending: String,
    received: u64,
    /// Characters of the original and of the redacted transcript released so far.
    released: (u64, u64),
    max_pending: usize,
    max_total: u64,
    fatal: readi_common::shutdown::Fatal,
    /// Held for the stream's life (limits.max_streams).
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Pipeline {
    /// Opens a live transcript for `app` and `session` (named by its first chunk).
    pub fn transcript(
        &self,
        caller: Option<&Caller>,
        app: &str,
        session: &str,
    ) -> Result<Transcript, Error> {
        check_ids(app, session)?;
        self.authorize(caller, "StreamRedact", &[Role::App], Some(app))?;
        Ok(Transcript {
            redactor: Arc::clone(&self.redactor),
            recorder: self.recorder.clone(),
            app: app.to_owned(),
            session: session.to_owned(),
            pending: String::new(),
            received: 0,
            released: (0, 0),
            max_pending: self.max_text_bytes,
            max_total: self.max_stream_bytes,
            fatal: self.sinks.fatal.clone(),
            _permit: self.stream_permit()?,
        })
    }
}

fn check_ids(app: &str, session: &str) -> Result<(), Error> {
    super::check_id("app_id", app)?;
    super::check_id("session_id", session)
}

impl Transcript {
    /// Whether a later chunk names this stream's application and session (or none).
    pub fn same_stream(&self, app: &str, session: &str) -> Result<(), Error> {
        if (!app.is_empty() && app != self.app) || (!session.is_empty() && session != self.session)
        {
            return Err(Error::Invalid(
                "a stream carries one application and session, named in the first chunk".into(),
            ));
        }
        Ok(())
    }

    /// Adds `text` and releases what can no longer change (everything with `flush`). After an
    /// error the stream must end: nothing more of it can be released safely.
    pub async fn push(&mut self, text: &str, flush: bool) -> Result<Option<Chunk>, Error> {
        self.received += text.len() as u64;
        if self.received > self.max_total {
            return Err(Error::Limit(format!(
                "the stream carried more than {} bytes of text (limits.max_stream_bytes); start a new stream",
                self.max_total
            )));
        }
        self.pending.push_str(text);
        if self.pending.len() > self.max_pending + STREAM_HOLD {
            return Err(Error::Limit(format!(
                "more than {} bytes are pending without a word break (limits.max_text_bytes)",
                self.max_pending
            )));
        }
        let started = Instant::now();
        let redactor = Arc::clone(&self.redactor);
        let (app, session) = (self.app.clone(), self.session.clone());
        let buffer = std::mem::take(&mut self.pending);
        let (buffer, done) = blocking(
            "PHI detection failed; nothing more of this transcript was released",
            move || {
                let r = redactor.redact_stream(
                    &app,
                    &session,
                    &buffer,
                    (!flush).then_some(STREAM_HOLD),
                );
                let r = match r {
                    Ok(out) if out.0 > 0 => redactor.vault().flush().map(|()| out),
                    other => other,
                };
                (buffer, r)
            },
        )
        .await?;
        let (cut, redacted, reps) = done.map_err(|e| super::vault_error(e, &self.fatal))?;
        self.pending = buffer[cut..].to_owned();
        if cut == 0 {
            return Ok(None);
        }
        let released = &buffer[..cut];
        let spans = char_spans(released, &redacted, &reps, self.released);
        self.recorder
            .redacted(&self.app, &self.session, &spans, started);
        let chunk = Chunk {
            offset: self.released.1,
            text: redacted,
            spans,
        };
        self.released.0 += released.chars().count() as u64;
        self.released.1 += chunk.text.chars().count() as u64;
        Ok(Some(chunk))
    }
}

/// What a reply stream lets through after a piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// This text, restored, may be shown (it may be empty).
    Text(String),
    /// The reply so far was flagged: nothing more may be shown. Holds everything so far, restored,
    /// for the assessment that records it.
    Blocked(String),
}

/// A model's streamed reply on its way back (the proxy): tags are restored whole and the output
/// checks run over everything so far before any more is released.
#[derive(Debug)]
pub struct Reply {
    caller: Option<Caller>,
    app: String,
    session: String,
    pending: String,
    released: String,
}

impl Reply {
    /// The reply to `caller`'s request in `app` and `session`.
    pub fn new(caller: Option<Caller>, app: &str, session: &str) -> Reply {
        Reply {
            caller,
            app: app.to_owned(),
            session: session.to_owned(),
            pending: String::new(),
            released: String::new(),
        }
    }

    async fn restore(&self, pipeline: &Pipeline, text: &str) -> String {
        pipeline
            .restore(self.caller.as_ref(), &self.app, &self.session, text)
            .await
    }

    /// Adds `piece` of the reply and says what may be released now.
    pub async fn push(&mut self, pipeline: &Pipeline, piece: &str) -> Release {
        self.pending.push_str(piece);
        let cut = release_cut(&self.pending);
        let out = self.restore(pipeline, &self.pending[..cut]).await;
        self.pending.drain(..cut);
        let so_far = format!("{}{out}{}", self.released, self.pending);
        let check = Assessor::global().assess(&[], Some(&so_far));
        if check.verdict == Verdict::Block {
            return Release::Blocked(so_far);
        }
        self.released.push_str(&out);
        Release::Text(out)
    }

    /// Ends the reply: the rest, restored, and the whole reply for its assessment.
    pub async fn finish(&mut self, pipeline: &Pipeline) -> (String, String) {
        let rest = self.restore(pipeline, &self.pending).await;
        self.pending.clear();
        self.released.push_str(&rest);
        (rest, self.released.clone())
    }
}

impl Pipeline {
    /// Restores the session's tags in reply text on its way back through the proxy; with nothing
    /// to restore (no PHI was redacted in this session) the text is as it came.
    pub async fn restore(
        &self,
        caller: Option<&Caller>,
        app: &str,
        session: &str,
        text: &str,
    ) -> String {
        if text.is_empty() {
            return String::new();
        }
        match self.reidentify(caller, app, session, text).await {
            Ok((text, _)) => text,
            Err(_) => text.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_text_is_released_whole_words_and_whole_tags() {
        let text = "Hello [NAME_1], your appointment is confirmed for next week at the clinic [LOC";
        let cut = release_cut(text);
        assert!(cut <= text.len() - REPLY_HOLD);
        assert!(text[..cut].ends_with(' '));
        assert!(!text[..cut].contains("[LOC"));
        let open = "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii [NAME_ jjjj kkkk llll mmmm nnnn oooo pppp qqqq";
        let cut = release_cut(open);
        assert!(!open[..cut].contains('['), "{}", &open[..cut]);
        assert_eq!(release_cut("short"), 0);
    }
}
