//! The token pass: names of people and places, found with dictionaries and the words around them.

use super::lexicon::Lexicon;
use super::patterns::{P_NAME, P_PLACE, P_SHAPE};
use super::{Candidate, PhiType};

/// A word: letters with inner apostrophes or hyphens ("O'Brien", "Smith-Jones").
#[derive(Debug)]
struct Tok<'a> {
    s: &'a str,
    start: usize,
    end: usize,
    lower: String,
    /// Title case ("Smith") or a single capital ("M").
    cap: bool,
    /// Every letter upper case ("SMITH", "ICU").
    upper: bool,
    /// After a sentence boundary (or at the start of the text).
    sent_start: bool,
    /// Overlaps a formatted identifier found by the pattern pass.
    covered: bool,
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

fn tokenize<'a>(text: &'a str, taken: &[(usize, usize)]) -> Vec<Tok<'a>> {
    let mut toks = Vec::new();
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if !c.is_alphabetic() {
            continue;
        }
        let start = i;
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = it.peek() {
            if d.is_alphabetic() {
                end = j + d.len_utf8();
                it.next();
            } else if (is_apostrophe(d) || d == '-')
                && text[j + d.len_utf8()..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphabetic)
            {
                it.next();
            } else {
                break;
            }
        }
        let s = &text[start..end];
        let first = s.chars().next().unwrap_or(' ');
        let letters = s.chars().filter(|c| c.is_alphabetic());
        let upper = s
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(char::is_uppercase);
        let cap = first.is_uppercase()
            && (s.chars().count() == 1 || s.chars().skip(1).any(char::is_lowercase));
        let _ = letters;
        let sent_start = {
            let before =
                text[..start].trim_end_matches([' ', '\t', '"', '\'', '(', '[', '*', '\u{201c}']);
            before.is_empty()
                || before.ends_with(['.', '!', '?', '\n', ':', ';', '-', '\u{2022}'])
                    && !ends_with_abbrev(before)
        };
        let covered = taken.iter().any(|&(a, b)| a < end && start < b);
        toks.push(Tok {
            s,
            start,
            end,
            lower: s.to_lowercase().replace('\u{2019}', "'"),
            cap,
            upper,
            sent_start,
            covered,
        });
    }
    toks
}

/// "Dr." and initials end with a period that is not a sentence end.
fn ends_with_abbrev(before: &str) -> bool {
    let Some(stem) = before.strip_suffix('.') else {
        return false;
    };
    let word: String = stem
        .chars()
        .rev()
        .take_while(|c| c.is_alphabetic())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let w = word.to_lowercase();
    TITLES.contains(&w.as_str())
        || matches!(w.as_str(), "st" | "mt" | "ft" | "jr" | "sr")
        || (word.chars().count() == 1 && word.chars().all(char::is_uppercase))
}

const TITLES: &[&str] = &[
    "dr",
    "mr",
    "mrs",
    "ms",
    "miss",
    "mx",
    "prof",
    "professor",
    "doctor",
    "rev",
    "fr",
    "sir",
    "dame",
    "nurse",
    "sister",
    "mister",
];

/// Words right before a name that say a person is meant.
const PERSON_CUES: &[&str] = &[
    "named",
    "name",
    "names",
    "wife",
    "husband",
    "son",
    "daughter",
    "mother",
    "mom",
    "mum",
    "father",
    "dad",
    "sister",
    "brother",
    "aunt",
    "uncle",
    "niece",
    "nephew",
    "grandson",
    "granddaughter",
    "grandmother",
    "grandma",
    "grandfather",
    "grandpa",
    "cousin",
    "friend",
    "partner",
    "boyfriend",
    "girlfriend",
    "fiance",
    "fiancee",
    "spouse",
    "caregiver",
    "guardian",
    "neighbor",
    "neighbour",
    "roommate",
    "pt",
    "patient",
    "attending",
    "resident",
    "intern",
    "fellow",
    "therapist",
    "psychiatrist",
    "psychologist",
    "counselor",
    "counsellor",
    "clinician",
    "physician",
    "provider",
    "pcp",
    "dear",
    "hi",
    "hello",
    "hey",
    "thanks",
    "signed",
    "surgeon",
    "oncologist",
    "cardiologist",
    "neurologist",
    "rn",
    "np",
    "md",
    "sw",
    "cm",
    "stepson",
    "stepdaughter",
    "stepmother",
    "stepfather",
    "sibling",
    "child",
    "kid",
    "baby",
    "infant",
    "twin",
    "sponsor",
    "landlord",
    "coworker",
    "boss",
    "teacher",
    "coach",
    "pastor",
    "priest",
    "rabbi",
    "imam",
    "lawyer",
    "attorney",
    "officer",
    "detective",
    "miss",
    "mrs",
    "ms",
];

/// Weaker cues: a dictionary name after these is taken as a name.
const WEAK_CUES: &[&str] = &[
    "with",
    "by",
    "and",
    "for",
    "to",
    "from",
    "like",
    "see",
    "saw",
    "visited",
    "called",
    "contacted",
    "paged",
    "notified",
    "informed",
    "asked",
    "told",
    "met",
    "per",
    "via",
    "case",
    "referencing",
    "about",
    "of",
    "cc",
    "c/o",
    "spoke",
    "seen",
    "aware",
];

/// Credentials after a name ("Jane Doe, RN").
const CREDENTIALS: &[&str] = &[
    "rn", "md", "do", "np", "pa", "pa-c", "lpn", "cna", "lcsw", "lmsw", "lpc", "lmft", "phd",
    "psyd", "msw", "bsn", "aprn", "crna", "dnp", "pharmd", "rph", "ot", "pt", "slp", "rrt", "mph",
    "facp", "faap", "ccrn",
];

/// Words that end a facility name.
const FACILITY_WORDS: &[&str] = &[
    "hospital",
    "hospitals",
    "clinic",
    "clinics",
    "infirmary",
    "hospice",
    "sanatorium",
    "sanitarium",
    "memorial",
    "center",
    "centre",
    "ctr",
    "healthcare",
    "health",
    "institute",
    "rehab",
    "rehabilitation",
    "pavilion",
    "pediatrics",
    "associates",
];

/// Facility words that need a distinctive word before them ("Mental Health" is not a place).
const WEAK_FACILITY_WORDS: &[&str] = &[
    "center",
    "centre",
    "ctr",
    "health",
    "healthcare",
    "institute",
    "pediatrics",
    "associates",
    "rehab",
    "rehabilitation",
    "pavilion",
];

const GENERIC: &[&str] = &[
    "mental",
    "behavioral",
    "behavioural",
    "public",
    "community",
    "primary",
    "urgent",
    "emergency",
    "intensive",
    "critical",
    "medical",
    "health",
    "care",
    "national",
    "world",
    "american",
    "federal",
    "state",
    "global",
    "women's",
    "men's",
    "child",
    "family",
    "home",
    "the",
    "our",
    "your",
    "their",
    "his",
    "her",
    "a",
    "an",
    "cancer",
    "trauma",
    "heart",
    "research",
    "wellness",
    "outpatient",
    "inpatient",
    "treatment",
    "recovery",
    "crisis",
    "counseling",
    "addiction",
    "dialysis",
    "surgical",
    "surgery",
    "imaging",
    "sleep",
    "diabetes",
    "pain",
    "eye",
    "dental",
    "maternal",
    "occupational",
    "physical",
    "speech",
    "respiratory",
];

/// Words that may sit inside a facility name.
const FACILITY_JOINERS: &[&str] = &[
    "of", "the", "and", "for", "&", "de", "la", "del", "at", "in",
];

/// Capitalised words that never start a facility name.
const LEADING_NOISE: &[&str] = &[
    "the",
    "a",
    "an",
    "at",
    "in",
    "on",
    "to",
    "from",
    "our",
    "his",
    "her",
    "their",
    "this",
    "that",
    "patient",
    "pt",
    "seen",
    "admitted",
    "transferred",
    "discharged",
    "visited",
    "visit",
    "follow",
    "followed",
    "referred",
    "called",
    "was",
    "is",
    "and",
    "or",
    "by",
    "for",
    "with",
    "per",
    "of",
    "local",
    "nearby",
    "what",
    "how",
    "which",
    "when",
    "while",
    "after",
    "before",
];

const PLACE_CUES: &[&str] = &[
    "in", "from", "at", "to", "near", "of", "into", "outside", "around", "towards", "toward",
    "visiting", "resident", "lives", "living", "moved", "born", "raised", "via",
];

struct Ctx<'t, 'a> {
    text: &'a str,
    toks: &'t [Tok<'a>],
    lex: &'a Lexicon,
    out: Vec<Candidate>,
    claimed: Vec<bool>,
}

impl<'t, 'a> Ctx<'t, 'a> {
    /// The separator text between token `i` and token `i+1`.
    fn gap(&self, i: usize) -> &'a str {
        match (self.toks.get(i), self.toks.get(i + 1)) {
            (Some(a), Some(b)) => &self.text[a.end..b.start],
            _ => "",
        }
    }

    /// Whether tokens `i` and `i+1` sit next to each other in a name (one space, or ". " after an abbreviation).
    fn joined(&self, i: usize) -> bool {
        let g = self.gap(i);
        g == " "
            || (g == ". " && self.toks[i].s.chars().count() <= 3)
            || g == "." && self.toks[i].s.chars().count() == 1
    }

    /// The lower-case word before token `i` when only spaces, commas or colons separate them.
    fn prev_word(&self, i: usize) -> Option<&str> {
        if i == 0 {
            return None;
        }
        let g = self.gap(i - 1);
        if g.chars()
            .all(|c| c == ' ' || c == ',' || c == ':' || c == '\t')
            || g == ". "
            || g == "."
        {
            Some(self.toks[i - 1].lower.as_str())
        } else {
            None
        }
    }

    fn is_initial(&self, i: usize) -> bool {
        let t = &self.toks[i];
        t.s.chars().count() == 1 && t.s.chars().all(char::is_uppercase)
    }

    fn first_count(&self, i: usize) -> u32 {
        self.lex.first_name_count(&self.toks[i].lower)
    }

    fn common(&self, i: usize) -> bool {
        self.lex.common.contains(self.toks[i].lower.as_str())
    }

    fn word(&self, i: usize) -> bool {
        self.lex.is_word(&self.toks[i].lower)
    }

    fn clinical(&self, i: usize) -> bool {
        self.lex.is_clinical(&self.toks[i].lower)
    }

    /// A capitalised token that can be part of a name at all.
    fn nameable(&self, i: usize) -> bool {
        let t = &self.toks[i];
        t.cap && !t.covered && !self.claimed[i] && t.s.chars().count() <= 24
    }

    /// A token that is not a dictionary word: an unfamiliar name ("Poutiainen").
    fn unknown(&self, i: usize) -> bool {
        let t = &self.toks[i];
        t.s.chars().count() >= 3
            && !self.word(i)
            && !self.clinical(i)
            && self.first_count(i) == 0
            && !self.lex.is_surname(&t.lower)
    }

    fn surname_like(&self, i: usize) -> bool {
        !self.clinical(i) && (self.lex.is_surname(&self.toks[i].lower) || self.unknown(i))
    }

    fn strong_first(&self, i: usize) -> bool {
        self.first_count(i) >= 200 && !self.common(i) && !self.clinical(i) && !self.is_initial(i)
    }

    fn any_first(&self, i: usize) -> bool {
        self.first_count(i) >= 200 && !self.clinical(i) && !self.is_initial(i)
    }

    fn push(&mut self, from: usize, to: usize, kind: PhiType, rule: &'static str, priority: u8) {
        let start = self.toks[from].start;
        let mut end = self.toks[to - 1].end;
        // An initial keeps its period ("Jane M.").
        if self.is_initial(to - 1) && self.text[end..].starts_with('.') {
            end += 1;
        }
        for c in &mut self.claimed[from..to] {
            *c = true;
        }
        self.out
            .push(Candidate::new(start, end, kind, rule, priority));
    }

    /// Extends a name starting at `i` over following surnames, unknown words and initials (at most 4 tokens).
    fn extend_name(&self, i: usize) -> usize {
        let mut j = i + 1;
        while j < self.toks.len()
            && j - i < 4
            && self.joined(j - 1)
            && self.nameable(j)
            && !self.toks[j].sent_start_hard()
        {
            if self.surname_like(j)
                || self.is_initial(j)
                || self.any_first(j)
                || self.lex.is_surname(&self.toks[j].lower) && !self.clinical(j)
            {
                j += 1;
            } else {
                break;
            }
        }
        j
    }

    fn facilities(&mut self) {
        let n = self.toks.len();
        for k in 0..n {
            let kw = self.toks[k].lower.as_str();
            if !self.toks[k].cap && !self.toks[k].upper
                || !FACILITY_WORDS.contains(&kw)
                || self.toks[k].covered
            {
                continue;
            }
            // Walk left over capitalised words and joiners.
            let mut s = k;
            while s > 0 {
                let p = s - 1;
                let g = self.gap(p);
                let ok_gap =
                    g == " " || g == ". " && self.toks[p].s.chars().count() <= 3 || g == "-";
                let t = &self.toks[p];
                if !ok_gap || self.toks[s].sent_start && s != k {
                    break;
                }
                if t.cap || t.upper || FACILITY_JOINERS.contains(&t.lower.as_str()) && p > 0 {
                    s = p;
                    if t.sent_start {
                        break;
                    }
                } else {
                    break;
                }
            }
            while s < k
                && (LEADING_NOISE.contains(&self.toks[s].lower.as_str())
                    || FACILITY_JOINERS.contains(&self.toks[s].lower.as_str()))
            {
                s += 1;
            }
            // Walk right: "Hospital of the University of Pennsylvania", "Medical Center".
            let mut e = k + 1;
            while e < n && self.gap(e - 1) == " " {
                let t = &self.toks[e];
                if FACILITY_WORDS.contains(&t.lower.as_str()) && (t.cap || t.upper) {
                    e += 1;
                } else if t.lower == "of" && e + 1 < n && self.toks[e + 1].cap {
                    let mut f = e + 1;
                    while f < n
                        && (self.toks[f].cap
                            || self.toks[f].lower == "the"
                            || self.toks[f].lower == "of")
                        && self.gap(f - 1) == " "
                    {
                        f += 1;
                    }
                    e = f;
                } else {
                    break;
                }
            }
            if s == k {
                continue;
            }
            let distinctive = (s..k).any(|i| {
                let l = self.toks[i].lower.as_str();
                (self.toks[i].cap || self.toks[i].upper)
                    && !GENERIC.contains(&l)
                    && !FACILITY_WORDS.contains(&l)
                    && !FACILITY_JOINERS.contains(&l)
            });
            let any_cap = (s..k).any(|i| self.toks[i].cap || self.toks[i].upper);
            let weak = WEAK_FACILITY_WORDS.contains(&self.toks[e - 1].lower.as_str());
            if distinctive
                || any_cap
                    && !weak
                    && s < k
                    && !GENERIC
                        .iter()
                        .all(|g| (s..k).all(|i| self.toks[i].lower != *g) && false)
            {
                if !distinctive
                    && (s..k).all(|i| {
                        matches!(
                            self.toks[i].lower.as_str(),
                            "mental"
                                | "behavioral"
                                | "public"
                                | "community"
                                | "primary"
                                | "urgent"
                                | "emergency"
                                | "the"
                        )
                    })
                {
                    continue;
                }
                self.push(s, e, PhiType::Location, "location.facility", P_PLACE);
            }
        }
    }

    fn known_places(&mut self) {
        let n = self.toks.len();
        let max = self.lex.max_place_words.min(5);
        let mut i = 0;
        while i < n {
            if !(self.toks[i].cap || self.toks[i].upper) || self.toks[i].covered || self.claimed[i]
            {
                i += 1;
                continue;
            }
            let mut matched = None;
            let mut j = i + 1;
            while j <= n && j - i <= max {
                let span = &self.text[self.toks[i].start..self.toks[j - 1].end];
                if self.lex.facilities.contains(span) {
                    matched = Some((j, true));
                } else if self.lex.places.contains(&span.to_lowercase()) {
                    matched = Some((j, false));
                }
                if j < n
                    && (self.joined(j - 1) || self.gap(j - 1) == "-")
                    && (self.toks[j].cap || self.toks[j].upper || self.toks[j].lower == "of")
                {
                    j += 1;
                } else {
                    break;
                }
            }
            let Some((j, facility)) = matched else {
                i += 1;
                continue;
            };
            if self.accept_place(i, j, facility) {
                let mut end_tok = j;
                // "Brooklyn, NY": keep the state with the city.
                if j < n
                    && self.gap(j - 1) == ", "
                    && self.toks[j].upper
                    && self.toks[j].s.len() == 2
                {
                    end_tok = j + 1;
                }
                let rule = if facility {
                    "location.known_facility"
                } else {
                    "location.city"
                };
                self.push(i, end_tok, PhiType::Location, rule, P_PLACE);
                i = end_tok;
            } else {
                i += 1;
            }
        }
    }

    fn accept_place(&self, i: usize, j: usize, facility: bool) -> bool {
        let multi = j - i > 1;
        let state_after = j < self.toks.len()
            && self.gap(j - 1) == ", "
            && self.toks[j].upper
            && self.toks[j].s.len() == 2;
        let cue = self.prev_word(i).is_some_and(|w| PLACE_CUES.contains(&w));
        let acronym = self.toks[i].upper && self.toks[i].s.len() >= 3;
        if state_after || cue && !self.clinical(i) {
            return true;
        }
        if facility {
            return multi || acronym;
        }
        let ambiguous = (i..j).all(|k| {
            self.word(k)
                || self.first_count(k) >= 200
                || self.clinical(k)
                || self.lex.is_surname(&self.toks[k].lower)
        });
        !ambiguous && !self.toks[i].upper && (multi || !self.toks[i].sent_start)
    }

    fn names(&mut self) {
        let n = self.toks.len();
        let mut i = 0;
        while i < n {
            if !self.nameable(i) {
                i += 1;
                continue;
            }
            let prev = self.prev_word(i).map(str::to_owned);
            let prev2 = if i >= 2 && prev.is_some() {
                self.prev_word(i - 1).map(str::to_owned)
            } else {
                None
            };
            let titled = prev.as_deref().is_some_and(|p| TITLES.contains(&p))
                && i > 0
                && self.toks[i - 1].cap;
            let two_word_cue = matches!(
                (prev2.as_deref(), prev.as_deref()),
                (Some("name"), Some("is"))
                    | (Some("spoke"), Some("with" | "to"))
                    | (Some("seen"), Some("by"))
                    | (Some("talked"), Some("to" | "with"))
                    | (Some("case"), Some("manager"))
                    | (Some("social"), Some("worker"))
                    | (Some("goes"), Some("by"))
            );
            let strong_cue =
                two_word_cue || prev.as_deref().is_some_and(|p| PERSON_CUES.contains(&p));
            let weak_cue = prev.as_deref().is_some_and(|p| WEAK_CUES.contains(&p));
            let clinical = self.clinical(i);
            let next_joined = i + 1 < n && self.joined(i) && self.nameable(i + 1);

            if titled {
                let j = self.extend_title(i);
                self.push(i, j, PhiType::Name, "name.title", P_NAME);
                i = j;
                continue;
            }
            if clinical {
                i += 1;
                continue;
            }
            // "John Smith", "Jane M.", "Mary Ann Jones".
            if self.any_first(i)
                && next_joined
                && (self.surname_like(i + 1)
                    || self.is_initial(i + 1)
                    || self.strong_first(i + 1)
                    || self.lex.is_surname(&self.toks[i + 1].lower) && !self.clinical(i + 1))
                && (self.strong_first(i)
                    || self.lex.is_surname(&self.toks[i + 1].lower) && !self.common(i + 1)
                    || self.is_initial(i + 1)
                    || strong_cue
                    || weak_cue)
                && !(self.toks[i].sent_start && self.common(i) && self.common(i + 1))
            {
                let j = self.extend_name(i);
                self.push(i, j, PhiType::Name, "name.first_last", P_NAME);
                i = j;
                continue;
            }
            let dictionary_name =
                self.first_count(i) >= 100 || self.lex.is_surname(&self.toks[i].lower);
            if strong_cue
                && (dictionary_name || self.unknown(i))
                && (!self.common(i) || two_word_cue || self.first_count(i) >= 1000)
            {
                let j = self.extend_name(i);
                self.push(i, j, PhiType::Name, "name.context", P_NAME);
                i = j;
                continue;
            }
            if self.credential_after(i) && (dictionary_name || self.unknown(i)) {
                self.push(i, i + 1, PhiType::Name, "name.credential", P_NAME);
                i += 1;
                continue;
            }
            if self.strong_first(i)
                && !self.word(i)
                && (!self.toks[i].sent_start
                    || self.first_count(i) >= 20_000
                    || self.described_after(i))
            {
                let j = self.extend_name(i);
                self.push(i, j, PhiType::Name, "name.first", P_NAME);
                i = j;
                continue;
            }
            if weak_cue
                && !self.toks[i].sent_start
                && self.lex.is_surname(&self.toks[i].lower)
                && !self.word(i)
                && self.described_after(i)
            {
                self.push(i, i + 1, PhiType::Name, "name.context", P_NAME);
            }
            i += 1;
        }
    }

    /// After a title, the name runs over capitalised words and initials.
    fn extend_title(&self, i: usize) -> usize {
        let mut j = i + 1;
        while j < self.toks.len()
            && j - i < 3
            && self.joined(j - 1)
            && self.nameable(j)
            && !self.clinical(j)
            && !FACILITY_WORDS.contains(&self.toks[j].lower.as_str())
        {
            j += 1;
        }
        j
    }

    /// ", RN", " MD" after the token.
    fn credential_after(&self, i: usize) -> bool {
        let Some(next) = self.toks.get(i + 1) else {
            return false;
        };
        let g = self.gap(i);
        (g == ", " || g == " ") && next.upper && CREDENTIALS.contains(&next.lower.as_str())
    }

    /// ", a 35yo", " is a 36 year old", " (age".
    fn described_after(&self, i: usize) -> bool {
        let rest = &self.text[self.toks[i].end..];
        let rest = rest.get(..rest.len().min(24)).unwrap_or(rest);
        let r = rest.trim_start_matches([',', ' ']);
        r.starts_with("a ")
            && r[2..]
                .trim_start()
                .starts_with(|c: char| c.is_ascii_digit())
            || r.starts_with("is a ")
                && r[5..]
                    .trim_start()
                    .starts_with(|c: char| c.is_ascii_digit())
            || r.starts_with(|c: char| c.is_ascii_digit()) && rest.starts_with(", ")
            || r.starts_with("(age")
            || rest.starts_with("'s ")
    }

    /// Repeats of a name found elsewhere in the text ("Antti Poutiainen ... calls me Antti").
    fn repeats(&mut self) {
        let mut found: Vec<String> = Vec::new();
        for c in &self.out {
            if c.span.kind == PhiType::Name {
                for w in self.text[c.span.start..c.span.end].split([' ', '.', ',']) {
                    let l = w.to_lowercase();
                    if l.chars().count() >= 3
                        && !self.lex.common.contains(l.as_str())
                        && !self.lex.is_clinical(&l)
                        && !found.contains(&l)
                    {
                        found.push(l);
                    }
                }
            }
        }
        if found.is_empty() {
            return;
        }
        for i in 0..self.toks.len() {
            if self.nameable(i) && found.contains(&self.toks[i].lower) {
                self.push(i, i + 1, PhiType::Name, "name.repeat", P_NAME);
            }
        }
    }
}

impl Tok<'_> {
    /// A line break before the token ends any name.
    fn sent_start_hard(&self) -> bool {
        false
    }
}

/// Appends name and place candidates. `taken` holds the pattern pass's candidates.
pub(crate) fn find(text: &str, lex: &Lexicon, taken: &[Candidate], out: &mut Vec<Candidate>) {
    let spans: Vec<(usize, usize)> = taken
        .iter()
        .filter(|c| c.priority >= P_SHAPE)
        .map(|c| (c.span.start, c.span.end))
        .collect();
    let toks = tokenize(text, &spans);
    if !toks.iter().any(|t| t.cap || t.upper) {
        return;
    }
    let mut ctx = Ctx {
        text,
        claimed: vec![false; toks.len()],
        toks: &toks,
        lex,
        out: Vec::new(),
    };
    ctx.facilities();
    ctx.known_places();
    ctx.names();
    ctx.repeats();
    out.append(&mut ctx.out);
}
