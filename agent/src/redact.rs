//! Redaction: replaces detected spans with numbered tags (`[NAME_1]`, consistent within a session) or a
//! mask, and restores tags from a session's map.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::phi::{KnownTerm, PhiType, Span};
use crate::surrogate::{self, SessionSecrets};

/// How one type is replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// `[NAME_1]`, numbered consistently within a session; reversible inside the clinic.
    #[default]
    Tag,
    /// `[REDACTED]` (`90 or older` for ages); not reversible.
    Mask,
    /// A realistic fake of the same shape, stable within a session; dates shifted by one per-session
    /// offset so intervals survive; reversible inside the clinic.
    Surrogate,
}

/// What to redact and how: styles per type, allow and deny terms, the ZIP rule.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The style for types not in `styles`.
    pub style: Style,
    /// Per-type styles.
    pub styles: std::collections::HashMap<PhiType, Style>,
    /// Lower-case terms never redacted.
    pub allow: Vec<String>,
    /// Terms always redacted.
    pub deny: Vec<KnownTerm>,
    /// 3-digit ZIP areas that become `000` when masked.
    pub restricted_zip3: Vec<String>,
}

impl Policy {
    /// The style for `kind`, unless the caller forces one.
    pub fn style_for(&self, kind: PhiType, forced: Option<Style>) -> Style {
        forced.unwrap_or_else(|| self.styles.get(&kind).copied().unwrap_or(self.style))
    }

    /// Drops detected spans whose text is an allowed term.
    pub fn retain_allowed(&self, text: &str, spans: &mut Vec<Span>) {
        if !self.allow.is_empty() {
            spans.retain(|s| !self.allow.contains(&text[s.start..s.end].to_lowercase()));
        }
    }

    /// A masked ZIP keeps its first three digits unless the area is restricted (then `000`).
    fn masked_zip(&self, zip: &str) -> String {
        let three: String = zip.chars().take(3).collect();
        if self.restricted_zip3.contains(&three) {
            "000**".to_owned()
        } else {
            format!("{three}**")
        }
    }
}

/// One replacement made: the span in the original and where its replacement sits in the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replacement {
    /// The detected span (byte offsets into the original).
    pub span: Span,
    /// Byte offset of the replacement in the redacted text.
    pub out_start: usize,
    /// End of the replacement in the redacted text.
    pub out_end: usize,
    /// The replacement text.
    pub text: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
struct TagEntry {
    kind: PhiType,
    /// The value normalised (case, spacing) so "John  Smith" and "john smith" share a tag.
    key: String,
    tag: String,
    /// The value as first seen, restored by `reidentify`.
    original: String,
}

/// The tags of one session: the same value always gets the same tag.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct TagMap {
    entries: Vec<TagEntry>,
    next: BTreeMap<String, u32>,
    /// Secrets for surrogates, created on first use.
    #[serde(default)]
    secrets: Option<SessionSecrets>,
}

impl TagMap {
    /// The tag for `value` of type `kind`, allocating the next number on first sight.
    pub fn tag(&mut self, kind: PhiType, value: &str) -> String {
        let key = normalize(value);
        if let Some(e) = self.entries.iter().find(|e| e.kind == kind && e.key == key) {
            return e.tag.clone();
        }
        let n = self.next.entry(kind.as_str().to_owned()).or_insert(0);
        *n += 1;
        let tag = format!("[{}_{}]", kind.as_str(), n);
        self.entries.push(TagEntry {
            kind,
            key,
            tag: tag.clone(),
            original: value.to_owned(),
        });
        tag
    }

    /// Values to look for again in later texts of the session: every value, and each word of a name
    /// that is not an ordinary English word or a title.
    pub fn known_terms(&self, lexicon: &crate::phi::Lexicon) -> Vec<KnownTerm> {
        const TITLES: &[&str] = &[
            "dr", "mr", "mrs", "ms", "miss", "mx", "prof", "rev", "nurse", "doctor",
        ];
        let mut out = Vec::new();
        for e in &self.entries {
            out.push(KnownTerm {
                value: e.original.clone(),
                kind: e.kind,
                exact: false,
            });
            if e.kind == PhiType::Name {
                for w in e
                    .original
                    .split(|c: char| c.is_whitespace() || c == ',' || c == '.')
                {
                    let l = w.to_lowercase();
                    if w.chars().count() < 3
                        || TITLES.contains(&l.as_str())
                        || lexicon.is_clinical(&l)
                    {
                        continue;
                    }
                    // A name that is also a word ("Brown") is matched only capitalised.
                    let exact = lexicon.is_common_word(&l);
                    out.push(KnownTerm {
                        value: w.to_owned(),
                        kind: PhiType::Name,
                        exact,
                    });
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The surrogate for `value` (found by `span`), stable within the session and never equal to the
    /// original or to another value's surrogate.
    pub fn surrogate(&mut self, span: &Span, value: &str) -> String {
        let key = normalize(value);
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.kind == span.kind && e.key == key)
        {
            return e.tag.clone();
        }
        let secrets = match &self.secrets {
            Some(s) => s.clone(),
            None => match SessionSecrets::generate() {
                Some(s) => {
                    self.secrets = Some(s.clone());
                    s
                }
                // No randomness: fall back to a tag rather than a guessable fake.
                None => return self.tag(span.kind, value),
            },
        };
        let lexicon = crate::phi::Lexicon::global();
        let fake = (0..8)
            .map(|n| surrogate::generate(&secrets, lexicon, span, value, n))
            .find(|f| {
                normalize(f) != key && !f.is_empty() && !self.entries.iter().any(|e| e.tag == *f)
            });
        let Some(fake) = fake else {
            return self.tag(span.kind, value);
        };
        self.entries.push(TagEntry {
            kind: span.kind,
            key,
            tag: fake.clone(),
            original: value.to_owned(),
        });
        fake
    }

    /// How many values the session holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the session holds no values.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Replaces every known tag or surrogate in `text` with its original value, in one leftmost-longest
    /// pass (surrogates only as whole words); returns the text and the count.
    pub fn restore(&self, text: &str) -> (String, u32) {
        if self.entries.is_empty() {
            return (text.to_owned(), 0);
        }
        let Ok(ac) = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(self.entries.iter().map(|e| e.tag.as_str()))
        else {
            return (text.to_owned(), 0);
        };
        let bytes = text.as_bytes();
        let word = |i: usize| bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric());
        let mut out = String::with_capacity(text.len());
        let (mut at, mut restored) = (0, 0);
        for m in ac.find_iter(text) {
            let e = &self.entries[m.pattern().as_usize()];
            let bracketed = e.tag.starts_with('[');
            if !bracketed && ((m.start() > 0 && word(m.start() - 1)) || word(m.end())) {
                continue;
            }
            out.push_str(&text[at..m.start()]);
            out.push_str(&e.original);
            at = m.end();
            restored += 1;
        }
        out.push_str(&text[at..]);
        (out, restored)
    }
}

/// Same value, different spacing or case: one tag.
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
    policy: &Policy,
    forced: Option<Style>,
    tags: &mut TagMap,
) -> (String, Vec<Replacement>) {
    let mut out = String::with_capacity(text.len());
    let mut reps = Vec::with_capacity(spans.len());
    let mut at = 0;
    for s in spans {
        out.push_str(&text[at..s.start]);
        let value = &text[s.start..s.end];
        let replacement = match (policy.style_for(s.kind, forced), s.kind) {
            (Style::Tag, kind) => tags.tag(kind, value),
            (Style::Surrogate, _) => tags.surrogate(s, value),
            (Style::Mask, PhiType::Age) => "90 or older".to_owned(),
            (Style::Mask, _) if s.rule == "location.zip" => policy.masked_zip(value),
            (Style::Mask, _) => "[REDACTED]".to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phi::Detector;

    #[test]
    fn tags_are_consistent_and_restore() {
        let mut tags = TagMap::default();
        assert_eq!(
            tags.tag(PhiType::Name, "John  Smith"),
            tags.tag(PhiType::Name, "john smith")
        );
        assert_ne!(
            tags.tag(PhiType::Name, "John Smith"),
            tags.tag(PhiType::Name, "Jane Doe")
        );
        let mut tags = TagMap::default();
        let text = "Jane Doe called; Dr. Smith saw Jane Doe on 3/4.";
        let spans = Detector::global().detect(text);
        let (red, reps) = apply(text, &spans, &Policy::default(), None, &mut tags);
        assert!(
            !red.contains("Jane") && !red.contains("Smith") && !red.contains("3/4"),
            "{red}"
        );
        assert_eq!(reps[0].text, reps[2].text, "same person, same tag: {red}");
        let (back, n) = tags.restore(&format!("Reply about {} and [NAME_99] [x]", reps[0].text));
        assert_eq!(back, "Reply about Jane Doe and [NAME_99] [x]");
        assert_eq!(n, 1);
    }

    #[test]
    fn mask_is_not_reversible_and_ages_become_90_or_older() {
        let mut tags = TagMap::default();
        let policy = crate::config::RedactionConfig::default().policy();
        let text =
            "a 93-year-old, Jane Doe, Boston, MA 02115; Hanover, NH 03755; Island Pond, VT 05901";
        let spans = Detector::global().detect(text);
        let (red, _) = apply(text, &spans, &policy, Some(Style::Mask), &mut tags);
        assert!(red.starts_with("a 90 or older, [REDACTED]"), "{red}");
        assert!(red.contains("021**") && red.contains("037**"), "{red}");
        assert!(
            red.contains("000**") && !red.contains("059"),
            "restricted area 059 must become 000: {red}"
        );
        assert!(tags.is_empty());
    }
}

#[cfg(test)]
mod surrogate_tests {
    use super::*;
    use crate::phi::Detector;

    #[test]
    fn surrogates_are_realistic_consistent_and_reversible() {
        let mut tags = TagMap::default();
        let policy = Policy {
            style: Style::Surrogate,
            ..Policy::default()
        };
        let text = "Zebulon Quackenbush, DOB 03/04/1961, admitted 2023-01-10, discharged 2023-03-01. Call 617-555-0199.";
        let spans = Detector::global().detect(text);
        let (red, reps) = apply(text, &spans, &policy, None, &mut tags);
        for secret in ["Quackenbush", "03/04/1961", "2023-01-10", "617-555-0199"] {
            assert!(!red.contains(secret), "{secret} in {red}");
        }
        assert!(!red.contains('['), "surrogates, not tags: {red}");
        // The stay still lasts 50 days.
        let dates: Vec<&str> = reps
            .iter()
            .filter(|r| r.span.kind == PhiType::Date)
            .map(|r| r.text.as_str())
            .collect();
        let days = |s: &str| {
            let p: Vec<i64> = s.split('-').map(|x| x.parse().unwrap()).collect();
            readi_common::date::days_from_civil(p[0], p[1] as u32, p[2] as u32)
        };
        assert_eq!(dates.len(), 3, "{red}");
        assert_eq!(days(dates[2]) - days(dates[1]), 50, "{red}");
        // Same value, same surrogate; and the reply comes back with the originals.
        let (again, _) = apply(
            "Zebulon Quackenbush",
            &Detector::global().detect("Zebulon Quackenbush"),
            &policy,
            None,
            &mut tags,
        );
        assert_eq!(again, reps[0].text);
        let (back, n) = tags.restore(&format!(
            "Plan for {}: call {}.",
            reps[0].text,
            reps.last().unwrap().text
        ));
        assert_eq!(back, "Plan for Zebulon Quackenbush: call 617-555-0199.");
        assert_eq!(n, 2);
    }
}
