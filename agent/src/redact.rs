//! Redaction: replaces detected spans with numbered tags (`[NAME_1]`, consistent within a session) or a
//! mask, and restores tags from a session's map.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::phi::{KnownTerm, PhiType, Span};

/// How one type is replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// `[NAME_1]`, numbered consistently within a session; reversible inside the clinic.
    #[default]
    Tag,
    /// `[REDACTED]` (`90 or older` for ages); not reversible.
    Mask,
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

    /// How many values the session holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the session holds no values.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Replaces every known tag in `text` with its original value; returns the text and the count.
    pub fn restore(&self, text: &str) -> (String, u32) {
        let mut out = String::with_capacity(text.len());
        let mut restored = 0;
        let mut rest = text;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            let close = tail.find(']').filter(|&c| c <= 32);
            match close.and_then(|c| {
                self.entries
                    .iter()
                    .find(|e| e.tag == tail[..=c])
                    .map(|e| (c, e))
            }) {
                Some((c, e)) => {
                    out.push_str(&e.original);
                    restored += 1;
                    rest = &tail[c + 1..];
                }
                None => {
                    out.push('[');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
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
