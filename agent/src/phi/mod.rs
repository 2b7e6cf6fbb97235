//! PHI detection: finds the HIPAA Safe Harbor identifiers in text, each span with its type and rule.
//!
//! Detection runs three passes over the text, all precompiled once per process: regular expressions for
//! formatted identifiers (phone, email, SSN, dates, record numbers...), a token pass for names and
//! places (dictionaries plus context), and a merge that unions overlapping spans so no part of an
//! identifier is left behind.

mod checks;
mod lexicon;
mod patterns;
mod tokens;

use std::fmt;
use std::sync::OnceLock;

pub use lexicon::Lexicon;

/// The Safe Harbor identifier kinds (DESIGN.md, "PHI types").
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PhiType {
    /// Names of patients, relatives, clinicians.
    Name,
    /// Geography smaller than a state, facilities.
    Location,
    /// Any date element but the year.
    Date,
    /// Ages over 89.
    Age,
    /// Telephone numbers.
    Phone,
    /// Fax numbers.
    Fax,
    /// Email addresses.
    Email,
    /// Social Security numbers.
    Ssn,
    /// Medical record numbers.
    Mrn,
    /// Health plan beneficiary numbers.
    HealthPlanId,
    /// Account numbers (including card numbers, IBANs).
    Account,
    /// Certificate and licence numbers.
    License,
    /// Vehicle identifiers.
    VehicleId,
    /// Device identifiers.
    DeviceId,
    /// Web URLs and domain names.
    Url,
    /// IP addresses.
    Ip,
    /// Biometric identifiers.
    Biometric,
    /// Any other unique identifying code.
    OtherId,
}

impl PhiType {
    /// Every type, in declaration order.
    pub const ALL: [PhiType; 18] = [
        PhiType::Name,
        PhiType::Location,
        PhiType::Date,
        PhiType::Age,
        PhiType::Phone,
        PhiType::Fax,
        PhiType::Email,
        PhiType::Ssn,
        PhiType::Mrn,
        PhiType::HealthPlanId,
        PhiType::Account,
        PhiType::License,
        PhiType::VehicleId,
        PhiType::DeviceId,
        PhiType::Url,
        PhiType::Ip,
        PhiType::Biometric,
        PhiType::OtherId,
    ];

    /// The name used in JSON, config and tags (`NAME`, `HEALTH_PLAN_ID`).
    pub fn as_str(self) -> &'static str {
        match self {
            PhiType::Name => "NAME",
            PhiType::Location => "LOCATION",
            PhiType::Date => "DATE",
            PhiType::Age => "AGE",
            PhiType::Phone => "PHONE",
            PhiType::Fax => "FAX",
            PhiType::Email => "EMAIL",
            PhiType::Ssn => "SSN",
            PhiType::Mrn => "MRN",
            PhiType::HealthPlanId => "HEALTH_PLAN_ID",
            PhiType::Account => "ACCOUNT",
            PhiType::License => "LICENSE",
            PhiType::VehicleId => "VEHICLE_ID",
            PhiType::DeviceId => "DEVICE_ID",
            PhiType::Url => "URL",
            PhiType::Ip => "IP",
            PhiType::Biometric => "BIOMETRIC",
            PhiType::OtherId => "OTHER_ID",
        }
    }

    /// Parses the JSON/config name.
    pub fn parse(s: &str) -> Option<PhiType> {
        PhiType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// The protobuf enum value.
    pub fn to_proto(self) -> readi_proto::agent::v1::PhiType {
        use readi_proto::agent::v1::PhiType as P;
        match self {
            PhiType::Name => P::Name,
            PhiType::Location => P::Location,
            PhiType::Date => P::Date,
            PhiType::Age => P::Age,
            PhiType::Phone => P::Phone,
            PhiType::Fax => P::Fax,
            PhiType::Email => P::Email,
            PhiType::Ssn => P::Ssn,
            PhiType::Mrn => P::Mrn,
            PhiType::HealthPlanId => P::HealthPlanId,
            PhiType::Account => P::Account,
            PhiType::License => P::License,
            PhiType::VehicleId => P::VehicleId,
            PhiType::DeviceId => P::DeviceId,
            PhiType::Url => P::Url,
            PhiType::Ip => P::Ip,
            PhiType::Biometric => P::Biometric,
            PhiType::OtherId => P::OtherId,
        }
    }
}

impl fmt::Display for PhiType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A detected identifier: byte offsets into the text (end exclusive), its type and the rule that fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// What it is.
    pub kind: PhiType,
    /// The id of the rule that found it (`phone.nanp`, `name.title`).
    pub rule: &'static str,
}

/// Candidate spans from each pass carry a priority; on overlap the union is kept (so nothing leaks)
/// and the type and rule come from the strongest candidate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pub(crate) span: Span,
    pub(crate) priority: u8,
}

impl Candidate {
    pub(crate) fn new(
        start: usize,
        end: usize,
        kind: PhiType,
        rule: &'static str,
        priority: u8,
    ) -> Self {
        Candidate {
            span: Span {
                start,
                end,
                kind,
                rule,
            },
            priority,
        }
    }
}

/// The detection engine. Build once (`Detector::global()`), share everywhere; `detect` is `&self`.
#[derive(Debug)]
pub struct Detector {
    patterns: patterns::Patterns,
    lexicon: &'static Lexicon,
}

impl Detector {
    /// Builds a detector over the vendored lexicons.
    pub fn new() -> Detector {
        Detector {
            patterns: patterns::Patterns::new(),
            lexicon: Lexicon::global(),
        }
    }

    /// The process-wide detector, built on first use.
    pub fn global() -> &'static Detector {
        static DETECTOR: OnceLock<Detector> = OnceLock::new();
        DETECTOR.get_or_init(Detector::new)
    }

    /// Finds every identifier in `text`. Spans are sorted, non-overlapping and on char boundaries.
    pub fn detect(&self, text: &str) -> Vec<Span> {
        self.detect_with(text, &[])
    }

    /// Like `detect`, and also finds `known` values (earlier in the same session) wherever they recur
    /// as whole words: "Quackenbush called back" after "Zebulon Quackenbush". Terms marked exact match
    /// only with their own capitalisation ("Brown", not "brown stool").
    pub fn detect_with(&self, text: &str, known: &[KnownTerm]) -> Vec<Span> {
        // Every rule reads a hard-wrapped paragraph as the one line it was: same bytes, same offsets.
        let unwrapped = unwrap_lines(text);
        let text = unwrapped.as_ref();
        let mut cands = Vec::new();
        self.patterns.find(text, &mut cands);
        let mut words = Vec::new();
        tokens::find(text, self.lexicon, &cands, &mut words);
        cands.append(&mut words);
        if !known.is_empty() {
            find_known(text, known, &mut cands);
        }
        merge(cands)
    }
}

/// `text` with each line break inside a hard-wrapped paragraph turned back into a space. A break is
/// a wrap when the line before it is long (40 characters or more, as wrapped lines are) and ends in
/// neither a stop, a colon nor a semicolon, and the next line starts with a word. The length and
/// every offset stay the same, so spans found on the result are spans of `text`.
fn unwrap_lines(text: &str) -> std::borrow::Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut line_start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c != b'\n' {
            continue;
        }
        let line = &text[line_start..i];
        line_start = i + 1;
        let last = line.trim_end_matches([' ', '\t']);
        let next = b.get(i + 1).copied().unwrap_or(b'\n');
        let long = line.chars().count() >= 40;
        let open = !last.ends_with(['.', '!', '?', ':', ';']) && !last.is_empty();
        if long && open && (next.is_ascii_alphanumeric() || next >= 0x80) {
            out.get_or_insert_with(|| b.to_vec())[i] = b' ';
        }
    }
    match out {
        // Only an ASCII newline became an ASCII space: still UTF-8.
        Some(v) => {
            std::borrow::Cow::Owned(String::from_utf8(v).unwrap_or_else(|_| text.to_string()))
        }
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// A value seen earlier in a session, to be found again.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KnownTerm {
    /// The value.
    pub value: String,
    /// Its type.
    pub kind: PhiType,
    /// Match only with this exact capitalisation.
    pub exact: bool,
}

/// Whole-word occurrences of known values (ASCII case-insensitive unless exact).
fn find_known(text: &str, known: &[KnownTerm], out: &mut Vec<Candidate>) {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let word = |i: usize| bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric());
    for KnownTerm { value, kind, exact } in known {
        let (hay, needle) = if *exact {
            (text, value.clone())
        } else {
            (lower.as_str(), value.to_ascii_lowercase())
        };
        if needle.is_empty() {
            continue;
        }
        let mut from = 0;
        while let Some(pos) = hay[from..].find(&needle) {
            let start = from + pos;
            let end = start + needle.len();
            if (start == 0 || !word(start - 1))
                && !word(end)
                && text.is_char_boundary(start)
                && text.is_char_boundary(end)
            {
                out.push(Candidate::new(
                    start,
                    end,
                    *kind,
                    "session.known",
                    patterns::P_EXACT,
                ));
            }
            from = end;
        }
    }
}

impl Detector {
    /// The lexicon, for callers that judge words (session term lists).
    pub fn lexicon(&self) -> &'static Lexicon {
        self.lexicon
    }
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new()
    }
}

/// Converts byte offsets into Unicode scalar offsets (the API's unit), walking forward incrementally.
#[derive(Debug)]
pub struct CharOffsets<'a> {
    text: &'a str,
    byte: usize,
    chars: usize,
}

impl<'a> CharOffsets<'a> {
    /// Starts at the beginning of `text`.
    pub fn new(text: &'a str) -> Self {
        CharOffsets {
            text,
            byte: 0,
            chars: 0,
        }
    }

    /// The char offset of byte offset `byte` (a char boundary); cheap when offsets ascend.
    pub fn at(&mut self, byte: usize) -> usize {
        if byte < self.byte {
            self.byte = 0;
            self.chars = 0;
        }
        self.chars += self.text[self.byte..byte].chars().count();
        self.byte = byte;
        self.chars
    }
}

/// Unions overlapping candidates; the highest priority (then the longest) names the result.
fn merge(mut cands: Vec<Candidate>) -> Vec<Span> {
    cands.retain(|c| c.span.start < c.span.end);
    cands.sort_by_key(|c| (c.span.start, std::cmp::Reverse(c.span.end)));
    let mut out: Vec<(Span, u8, usize)> = Vec::with_capacity(cands.len());
    for c in cands {
        if let Some((last, prio, len)) = out.last_mut()
            && c.span.start < last.end
        {
            let clen = c.span.end - c.span.start;
            if (c.priority, clen) > (*prio, *len) {
                last.kind = c.span.kind;
                last.rule = c.span.rule;
                *prio = c.priority;
                *len = clen;
            }
            last.end = last.end.max(c.span.end);
            continue;
        }
        out.push((c.span, c.priority, c.span.end - c.span.start));
    }
    out.into_iter().map(|(s, _, _)| s).collect()
}

#[cfg(test)]
mod tests;
