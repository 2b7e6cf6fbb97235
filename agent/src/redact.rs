//! Redaction: replaces detected spans with tags (`[NAME_1]`), realistic surrogates or masks.

use std::collections::HashMap;

use crate::phi::{PhiType, Span};

/// How one type is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// `[NAME_1]`, numbered consistently within a session.
    Tag,
    /// `[REDACTED]`; not reversible.
    Mask,
}

/// One replacement made: the span in the original and where its replacement sits in the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replacement {
    /// The detected span (byte offsets into the original).
    pub span: Span,
    /// Byte offsets of the replacement in the redacted text.
    pub out_start: usize,
    /// End of the replacement in the redacted text.
    pub out_end: usize,
    /// The replacement text.
    pub text: String,
}

/// Tag numbering for one session: the same original value always gets the same tag.
#[derive(Clone, Debug, Default)]
pub struct TagMap {
    by_value: HashMap<(PhiType, String), String>,
    next: HashMap<PhiType, u32>,
}

impl TagMap {
    /// The tag for `value` of type `kind`, allocating the next number on first sight.
    pub fn tag(&mut self, kind: PhiType, value: &str) -> String {
        let key = (kind, normalize(value));
        if let Some(t) = self.by_value.get(&key) {
            return t.clone();
        }
        let n = self.next.entry(kind).or_insert(0);
        *n += 1;
        let tag = format!("[{}_{}]", kind.as_str(), n);
        self.by_value.insert(key, tag.clone());
        tag
    }

    /// Every (tag, original value) pair, for re-identification.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_value
            .iter()
            .map(|((_, v), t)| (t.as_str(), v.as_str()))
    }
}

/// Same person, different spacing or case: one tag.
fn normalize(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Replaces `spans` (sorted, non-overlapping) in `text`.
pub fn apply(
    text: &str,
    spans: &[Span],
    style: impl Fn(PhiType) -> Style,
    tags: &mut TagMap,
) -> (String, Vec<Replacement>) {
    let mut out = String::with_capacity(text.len());
    let mut reps = Vec::with_capacity(spans.len());
    let mut at = 0;
    for s in spans {
        out.push_str(&text[at..s.start]);
        let replacement = match style(s.kind) {
            Style::Tag => tags.tag(s.kind, &text[s.start..s.end]),
            Style::Mask => "[REDACTED]".to_owned(),
        };
        let out_start = out.len();
        out.push_str(&replacement);
        reps.push(Replacement {
            span: *s,
            out_start,
            out_end: out.len(),
            text: replacement,
        });
        at = s.end;
    }
    out.push_str(&text[at..]);
    (out, reps)
}
