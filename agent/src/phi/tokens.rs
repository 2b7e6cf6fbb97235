//! The token pass: names of people and places, found with dictionaries and the words around them.

use super::lexicon::{Entry, Lexicon};
use super::patterns::{P_NAME, P_PLACE, P_SHAPE};
use super::{Candidate, PhiType};

mod deny;

/// A word: letters with inner apostrophes or hyphens ("O'Brien", "Smith-Jones").
#[derive(Debug)]
struct Tok<'a> {
    s: &'a str,
    start: usize,
    end: usize,
    lower: std::borrow::Cow<'a, str>,
    /// Title case ("Smith") or a single capital ("M").
    cap: bool,
    /// Every letter upper case ("SMITH", "ICU").
    upper: bool,
    /// After a sentence boundary (or at the start of the text).
    sent_start: bool,
    /// On a line written in mixed case, where a name would be capitalised.
    cased: bool,
    /// Overlaps a formatted identifier found by the pattern pass.
    covered: bool,
    /// What the word lists say about `lower`, looked up on first use: most words are never asked
    /// about, and each lookup in the large word map is a likely cache miss.
    entry: std::cell::OnceCell<Entry>,
    /// Which cue lists hold `lower`.
    cues: u32,
    /// Letters in the word (255 for longer words): asked of every token many times.
    nchars: u8,
    /// How this token joins the next one (`link` bits), worked out once from the gap between them.
    link: u8,
    /// What the word lists say it is, before context (default deny), on first use.
    class: std::cell::OnceCell<deny::Class>,
    /// The list entry of the word without a clitic ("you're" -> "you"), on first use.
    stem: std::cell::OnceCell<Entry>,
}

/// The character starting at byte `i` (a char boundary) and its length, with an ASCII fast path.
fn char_at(text: &str, i: usize) -> (char, usize) {
    let b = text.as_bytes()[i];
    if b.is_ascii() {
        return (char::from(b), 1);
    }
    let c = text[i..].chars().next().unwrap_or(' ');
    (c, c.len_utf8())
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// Words of `text`; `lowered` is `text` with ASCII letters lower-cased (same offsets), so ASCII words
/// borrow their lower case instead of allocating it.
fn tokenize<'a>(text: &'a str, lowered: &'a str, taken: &[(usize, usize)]) -> Vec<Tok<'a>> {
    let mut toks = Vec::with_capacity(text.len() / 5);
    let mut next_taken = 0;
    let mut i = 0;
    while i < text.len() {
        let (c, len) = char_at(text, i);
        if !c.is_alphabetic() {
            i += len;
            continue;
        }
        let start = i;
        i += len;
        let mut end = i;
        while i < text.len() {
            let (d, len) = char_at(text, i);
            if d.is_alphabetic() {
                i += len;
                end = i;
            } else if (is_apostrophe(d) || d == '-')
                && i + len < text.len()
                && char_at(text, i + len).0.is_alphabetic()
            {
                i += len;
            } else {
                break;
            }
        }
        let s = &text[start..end];
        let (cap, upper, any_upper) = word_case(s);
        // Only capitalised words are judged by where a sentence starts.
        let sent_start = (cap || upper) && {
            let before =
                text[..start].trim_end_matches([' ', '\t', '"', '\'', '(', '[', '*', '\u{201c}']);
            before.is_empty()
                || before.ends_with(['.', '!', '?', '\n', ':', ';', '-', '\u{2022}'])
                    && !ends_with_abbrev(before)
        };
        // `taken` is sorted by start; skip spans that end before this token.
        while next_taken < taken.len() && taken[next_taken].1 <= start {
            next_taken += 1;
        }
        let covered = taken[next_taken..]
            .iter()
            .take_while(|&&(a, _)| a < end)
            .any(|&(_, b)| start < b);
        let lower = if !any_upper && s.is_ascii() {
            std::borrow::Cow::Borrowed(s)
        } else if s.is_ascii() {
            std::borrow::Cow::Borrowed(&lowered[start..end])
        } else {
            std::borrow::Cow::Owned(fold(&s.to_lowercase()))
        };
        toks.push(Tok {
            s,
            start,
            end,
            entry: std::cell::OnceCell::new(),
            class: std::cell::OnceCell::new(),
            stem: std::cell::OnceCell::new(),
            cues: cue_bits(&lower),
            nchars: u8::try_from(s.chars().count()).unwrap_or(u8::MAX),
            link: 0,
            lower,
            cap,
            upper,
            sent_start,
            cased: false,
            covered,
        });
    }
    toks
}

/// Lower-case text with diacritics folded ("josé" -> "jose", "núñez" -> "nunez") and curly apostrophes
/// straightened, so accented names meet the dictionaries: "José" must be as protected as "Jose".
fn fold(lower: &str) -> String {
    lower
        .chars()
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
            'ç' | 'ć' | 'č' => 'c',
            'ď' | 'đ' => 'd',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
            'ğ' => 'g',
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => 'i',
            'ł' | 'ľ' | 'ĺ' => 'l',
            'ñ' | 'ń' | 'ň' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
            'ř' | 'ŕ' => 'r',
            'ś' | 'š' | 'ş' | 'ș' => 's',
            'ť' | 'ţ' | 'ț' => 't',
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => 'u',
            'ý' | 'ÿ' => 'y',
            'ź' | 'ż' | 'ž' => 'z',
            '\u{2019}' => '\'',
            other => other,
        })
        .collect()
}

/// (title case or a single capital, all letters upper case, any upper-case letter) with an ASCII fast path.
fn word_case(s: &str) -> (bool, bool, bool) {
    if s.is_ascii() {
        let b = s.as_bytes();
        let first_up = b[0].is_ascii_uppercase();
        let lower_after = b[1..].iter().any(u8::is_ascii_lowercase);
        let any_lower = !first_up && b[0].is_ascii_lowercase() || lower_after;
        return (
            first_up && (b.len() == 1 || lower_after),
            !any_lower,
            first_up || b[1..].iter().any(u8::is_ascii_uppercase),
        );
    }
    let first = s.chars().next().unwrap_or(' ');
    let upper = s
        .chars()
        .filter(|c| c.is_alphabetic())
        .all(char::is_uppercase);
    let cap = first.is_uppercase()
        && (s.chars().count() == 1 || s.chars().skip(1).any(char::is_lowercase));
    (cap, upper, s.chars().any(|c| c.is_uppercase()))
}

/// "Dr." and initials end with a period that is not a sentence end.
fn is_state_code(s: &str) -> bool {
    const CODES: &str = "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI";
    CODES.split(' ').any(|c| c == s)
}

fn ends_with_abbrev(before: &str) -> bool {
    let Some(stem) = before.strip_suffix('.') else {
        return false;
    };
    let start = stem.rfind(|c: char| !c.is_alphabetic()).map_or(0, |p| {
        p + stem[p..].chars().next().map_or(1, char::len_utf8)
    });
    let word = &stem[start..];
    if word.chars().count() == 1 {
        return word.chars().all(char::is_uppercase);
    }
    let lower = word.to_ascii_lowercase();
    in_titles(lower.as_str()) || matches!(lower.as_str(), "st" | "mt" | "ft" | "jr" | "sr")
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

/// Words right before a name that say a person is meant (besides the relations below).
const PERSON_CUES: &[&str] = &[
    "named",
    "name",
    "names",
    "caregiver",
    "guardian",
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
    "child",
    "kid",
    "baby",
    "infant",
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
    "ex",
    "chaplain",
    "sitter",
    "interpreter",
    "translator",
];

/// A word right before a name that says a person is meant.
fn is_person_cue(w: impl Cue) -> bool {
    w.bits() & (cue::RELATIONS | cue::PERSON_CUES) != 0
}

/// Relations: a person cue, and after them even a lower-case first name is a name ("wife mary").
const RELATIONS: &[&str] = &[
    "wife",
    "husband",
    "son",
    "daughter",
    "dtr",
    "mother",
    "mom",
    "father",
    "dad",
    "sister",
    "sis",
    "brother",
    "bro",
    "aunt",
    "uncle",
    "niece",
    "nephew",
    "grandson",
    "granddaughter",
    "cousin",
    "friend",
    "partner",
    "boyfriend",
    "girlfriend",
    "fiance",
    "spouse",
    "mum",
    "grandmother",
    "grandma",
    "grandfather",
    "grandpa",
    "fiancee",
    "neighbor",
    "neighbour",
    "roommate",
    "stepson",
    "stepdaughter",
    "stepmother",
    "stepfather",
    "sibling",
    "twin",
    "dau",
    "husb",
    "hus",
    "gf",
    "bf",
    "gm",
    "gd",
    "gs",
    "stepdad",
    "stepmom",
    "fiancé",
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

/// Words that end a facility name by themselves ("Mercy Hospital", "City Clinic").
const STRONG_FACILITY_WORDS: &[&str] = &[
    "hospital",
    "hospitals",
    "hosp",
    "clinic",
    "clinics",
    "infirmary",
    "hospice",
    "sanatorium",
    "sanitarium",
    "memorial",
];

/// Facility words that need a distinctive word before them ("Mental Health" is not a place).
const WEAK_FACILITY_WORDS: &[&str] = &[
    "center",
    "centre",
    "ctr",
    "health",
    "healthcare",
    "healthcenter",
    "institute",
    "pediatrics",
    "associates",
    "rehab",
    "rehabilitation",
    "pavilion",
    "general",
    "gen",
    "med",
    "medical",
    "group",
    "home",
    "office",
    "presbyterian",
    "methodist",
    "baptist",
    "er",
    "ed",
];

/// Any word that ends a facility name.
fn in_facility_words(w: impl Cue) -> bool {
    w.bits() & (cue::STRONG_FACILITY_WORDS | cue::WEAK_FACILITY_WORDS) != 0
}

/// Facility words that also count in lower case right after a place ("our Boston clinic").
const LOWER_FACILITY_WORDS: &[&str] = &[
    "clinic", "hospital", "office", "center", "practice", "er", "campus",
];

/// Head nouns after which a surname is an eponym ("Wilson disease", "Murphy's sign").
const EPONYM_HEADS: &[&str] = &[
    "disease",
    "syndrome",
    "sign",
    "test",
    "score",
    "scale",
    "catheter",
    "classification",
    "criteria",
    "level",
    "stain",
    "procedure",
    "reflex",
    "maneuver",
    "manoeuvre",
    "position",
    "equation",
    "tube",
    "drain",
    "line",
    "palsy",
    "phenomenon",
    "triad",
    "ulcer",
    "fracture",
    "operation",
    "repair",
    "index",
    "method",
    "solution",
    "formula",
    "node",
    "nodes",
    "cell",
    "cells",
    "body",
    "bodies",
    "aphasia",
    "area",
    "law",
    "questionnaire",
    "inventory",
    "monitor",
    "wort",
    "risk",
    "reflex",
    "reflexes",
    "tendon",
    "tendons",
    "type",
    "maneuvers",
    "tests",
    "signs",
    "fascia",
    "duct",
    "canal",
    "joint",
];

/// US states and territories: a city followed by one keeps it in its span.
const STATES: &[&str] = &[
    "alabama",
    "alaska",
    "arizona",
    "arkansas",
    "california",
    "colorado",
    "connecticut",
    "delaware",
    "florida",
    "georgia",
    "hawaii",
    "idaho",
    "illinois",
    "indiana",
    "iowa",
    "kansas",
    "kentucky",
    "louisiana",
    "maine",
    "maryland",
    "massachusetts",
    "michigan",
    "minnesota",
    "mississippi",
    "missouri",
    "montana",
    "nebraska",
    "nevada",
    "new hampshire",
    "new jersey",
    "new mexico",
    "new york",
    "north carolina",
    "north dakota",
    "ohio",
    "oklahoma",
    "oregon",
    "pennsylvania",
    "rhode island",
    "south carolina",
    "south dakota",
    "tennessee",
    "texas",
    "utah",
    "vermont",
    "virginia",
    "washington",
    "west virginia",
    "wisconsin",
    "wyoming",
    "puerto rico",
    "guam",
    "district of columbia",
];

/// Credentials after a name ("Jane Doe, RN").
const CREDENTIALS: &[&str] = &[
    "rn", "md", "do", "np", "pa", "pa-c", "lpn", "cna", "lcsw", "lmsw", "lpc", "lmft", "phd",
    "psyd", "msw", "bsn", "aprn", "crna", "dnp", "pharmd", "rph", "ot", "pt", "slp", "rrt", "mph",
    "facp", "faap", "ccrn",
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
    "nursing",
    "psych",
    "psychiatric",
    "veterans",
    "student",
    "employee",
    "university",
    "regional",
    "city",
    "support",
    "medicine",
    "clinical",
    "specialty",
    "day",
    "night",
    "walk-in",
    "virtual",
    "telehealth",
    "new",
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

/// Which of the word lists above hold a word, as bits: one lookup answers every list.
mod cue {
    pub(super) const TITLES: u32 = 1 << 0;
    pub(super) const PERSON_CUES: u32 = 1 << 1;
    pub(super) const WEAK_CUES: u32 = 1 << 2;
    pub(super) const CREDENTIALS: u32 = 1 << 3;
    pub(super) const STRONG_FACILITY_WORDS: u32 = 1 << 4;
    pub(super) const WEAK_FACILITY_WORDS: u32 = 1 << 5;
    pub(super) const LOWER_FACILITY_WORDS: u32 = 1 << 6;
    pub(super) const EPONYM_HEADS: u32 = 1 << 7;
    pub(super) const STATES: u32 = 1 << 8;
    pub(super) const GENERIC: u32 = 1 << 9;
    pub(super) const FACILITY_JOINERS: u32 = 1 << 10;
    pub(super) const LEADING_NOISE: u32 = 1 << 11;
    pub(super) const PLACE_CUES: u32 = 1 << 12;
    pub(super) const RELATIONS: u32 = 1 << 13;
    pub(super) const ANY_TITLES: u32 = 1 << 14;
    pub(super) const ANY_CREDENTIALS: u32 = 1 << 15;
    pub(super) const GREETINGS: u32 = 1 << 16;
    pub(super) const PLACE_VERBS: u32 = 1 << 17;
    pub(super) const FACILITY_HEADS: u32 = 1 << 18;
    pub(super) const FACILITY_INNER: u32 = 1 << 19;
    pub(super) const VERBS: u32 = 1 << 20;
    pub(super) const AUX: u32 = 1 << 21;
    pub(super) const STRONG_HEADS: u32 = 1 << 22;
    pub(super) const STREET_WORDS: u32 = 1 << 23;
    pub(super) const NUMBER_WORDS: u32 = 1 << 24;
}

fn cue_bits(w: &str) -> u32 {
    static MAP: std::sync::OnceLock<rustc_hash::FxHashMap<&'static str, u32>> =
        std::sync::OnceLock::new();
    let map = MAP.get_or_init(|| {
        let mut map = rustc_hash::FxHashMap::default();
        for (list, bit) in [
            (TITLES, cue::TITLES),
            (PERSON_CUES, cue::PERSON_CUES),
            (WEAK_CUES, cue::WEAK_CUES),
            (CREDENTIALS, cue::CREDENTIALS),
            (STRONG_FACILITY_WORDS, cue::STRONG_FACILITY_WORDS),
            (WEAK_FACILITY_WORDS, cue::WEAK_FACILITY_WORDS),
            (LOWER_FACILITY_WORDS, cue::LOWER_FACILITY_WORDS),
            (EPONYM_HEADS, cue::EPONYM_HEADS),
            (STATES, cue::STATES),
            (GENERIC, cue::GENERIC),
            (FACILITY_JOINERS, cue::FACILITY_JOINERS),
            (LEADING_NOISE, cue::LEADING_NOISE),
            (PLACE_CUES, cue::PLACE_CUES),
            (RELATIONS, cue::RELATIONS),
            (deny::TITLES, cue::ANY_TITLES),
            (deny::CREDENTIALS, cue::ANY_CREDENTIALS),
            (deny::GREETINGS, cue::GREETINGS),
            (deny::PLACE_VERBS, cue::PLACE_VERBS),
            (deny::FACILITY_HEADS, cue::FACILITY_HEADS),
            (deny::FACILITY_INNER, cue::FACILITY_INNER),
            (deny::VERBS, cue::VERBS),
            (deny::AUX, cue::AUX),
            (deny::STRONG_HEADS, cue::STRONG_HEADS),
            (deny::STREET_WORDS, cue::STREET_WORDS),
            (super::patterns::NUMBER_WORDS, cue::NUMBER_WORDS),
        ] {
            for w in list {
                *map.entry(*w).or_default() |= bit;
            }
        }
        map
    });
    map.get(w).copied().unwrap_or(0)
}

/// A word asked about: a bare string is looked up, a token answers from the bits it was given once.
trait Cue {
    fn bits(&self) -> u32;
}

impl Cue for &str {
    fn bits(&self) -> u32 {
        cue_bits(self)
    }
}

impl Cue for &Tok<'_> {
    fn bits(&self) -> u32 {
        self.cues
    }
}

macro_rules! word_sets {
    ($($f:ident => $list:ident),* $(,)?) => {$(
        fn $f(w: impl Cue) -> bool {
            w.bits() & cue::$list != 0
        }
    )*};
}

word_sets! {
    in_titles => TITLES,
    in_weak_cues => WEAK_CUES,
    in_credentials => CREDENTIALS,
    in_weak_facility_words => WEAK_FACILITY_WORDS,
    in_lower_facility_words => LOWER_FACILITY_WORDS,
    in_eponym_heads => EPONYM_HEADS,
    in_states => STATES,
    in_facility_joiners => FACILITY_JOINERS,
    in_leading_noise => LEADING_NOISE,
    in_place_cues => PLACE_CUES,
    in_relations => RELATIONS,
}

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
            || (g == ". " && usize::from(self.toks[i].nchars) <= 3)
            || g == "." && usize::from(self.toks[i].nchars) == 1
    }

    /// The lower-case word before token `i` when only spaces, commas or colons separate them.
    fn prev_word(&self, i: usize) -> Option<&'t Tok<'a>> {
        let toks: &'t [Tok<'a>] = self.toks;
        if i == 0 {
            return None;
        }
        let g = self.gap(i - 1);
        if g.chars()
            .all(|c| c == ' ' || c == ',' || c == ':' || c == '\t')
            || g == ". "
            || g == "."
        {
            Some(&toks[i - 1])
        } else {
            None
        }
    }

    /// A single letter written as an initial: a capital, or any letter with its period ("j. smith").
    fn is_initial(&self, i: usize) -> bool {
        let t = &self.toks[i];
        usize::from(t.nchars) == 1
            && (t.s.chars().all(char::is_uppercase) || self.text[t.end..].starts_with('.'))
    }

    fn entry(&self, i: usize) -> Entry {
        let t = &self.toks[i];
        *t.entry.get_or_init(|| self.lex.entry(&t.lower))
    }

    fn first_count(&self, i: usize) -> u32 {
        self.entry(i).first
    }

    fn common(&self, i: usize) -> bool {
        self.entry(i).common()
    }

    fn word(&self, i: usize) -> bool {
        self.entry(i).word()
    }

    /// Clinical vocabulary, drug names and words that are never PHI (countries, languages).
    fn clinical(&self, i: usize) -> bool {
        let e = self.entry(i);
        let t = &self.toks[i];
        // Shorthand that is also a first name is the name when written as one: "ED" is the
        // department, "Pt Ed Smith" a person.
        let written_as_name = t.cap && t.cased && e.first >= 1000;
        e.clinical()
            || e.vocab() && !written_as_name
            || e.proper_safe()
            || e.drug() && e.first < 1000
    }

    fn surname(&self, i: usize) -> bool {
        self.entry(i).surname()
    }

    /// A capitalised token that can be part of a name at all.
    fn nameable(&self, i: usize) -> bool {
        let t = &self.toks[i];
        t.cap && !t.covered && !self.claimed[i] && usize::from(t.nchars) <= 24
    }

    /// A token that is not a dictionary word: an unfamiliar name ("Poutiainen").
    fn unknown(&self, i: usize) -> bool {
        let t = &self.toks[i];
        usize::from(t.nchars) >= 3 && self.class(i) == deny::Class::Unknown
    }

    fn surname_like(&self, i: usize) -> bool {
        let l = &self.toks[i].lower;
        let surname = match l.strip_suffix("'s") {
            Some(stem) => self.lex.is_surname(stem),
            None => self.surname(i),
        };
        !self.clinical(i) && (surname || self.unknown(i))
    }

    fn strong_first(&self, i: usize) -> bool {
        self.first_count(i) >= 200 && !self.common(i) && !self.clinical(i) && !self.is_initial(i)
    }

    fn any_first(&self, i: usize) -> bool {
        self.first_count(i) >= 200 && !self.clinical(i) && !self.is_initial(i)
    }

    fn push(
        &mut self,
        mut from: usize,
        to: usize,
        kind: PhiType,
        rule: &'static str,
        priority: u8,
    ) {
        // A name keeps the initials written before it ("J. Martinez", "A. B. Smith").
        while kind == PhiType::Name
            && from > 0
            && self.is_initial(from - 1)
            && !self.claimed[from - 1]
            && matches!(self.gap(from - 1), ". " | ".")
        {
            from -= 1;
        }
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
                || self.surname(j) && !self.clinical(j)
            {
                j += 1;
            } else {
                break;
            }
        }
        j
    }

    fn is_capital(&self, i: usize) -> bool {
        self.toks[i].cap || self.toks[i].upper
    }

    /// A facility word at `k`: capitalised, or lower case right after a capitalised word.
    fn facility_word(&self, k: usize) -> bool {
        let t = &self.toks[k];
        let near_capital = self.is_capital(k) || k > 0 && self.is_capital(k - 1);
        if !near_capital || t.covered {
            return false;
        }
        let l = t.lower.as_ref();
        if !in_facility_words(t) && !in_lower_facility_words(t) {
            return false;
        }
        if l == "er" || l == "ed" {
            return t.upper && k > 0 && self.gap(k - 1) == " " && self.is_capital(k - 1);
        }
        if self.is_capital(k) {
            return in_facility_words(t);
        }
        in_lower_facility_words(t) && k > 0 && self.gap(k - 1) == " " && self.is_capital(k - 1)
    }

    /// Whether `i` is a distinctive capitalised word in a facility name (not "Mental", "The").
    fn distinctive(&self, i: usize) -> bool {
        let t = &self.toks[i];
        self.is_capital(i)
            && t.cues
                & (cue::GENERIC
                    | cue::STRONG_FACILITY_WORDS
                    | cue::WEAK_FACILITY_WORDS
                    | cue::FACILITY_JOINERS
                    | cue::LEADING_NOISE)
                == 0
    }

    fn facilities(&mut self) {
        let n = self.toks.len();
        for k in 0..n {
            if !self.facility_word(k) || self.claimed[k] {
                continue;
            }
            // Walk left over capitalised words and joiners.
            let mut s = k;
            while s > 0 {
                let p = s - 1;
                let g = self.gap(p);
                let t = &self.toks[p];
                let ok_gap =
                    g == " " || g == "-" || g == ". " && usize::from(t.nchars) <= 3 && t.cap;
                if !ok_gap || self.toks[s].sent_start && s != k || t.covered {
                    break;
                }
                let joiner = in_facility_joiners(t) && !t.cap && !t.upper;
                if self.is_capital(p) || joiner && p > 0 && self.is_capital(p - 1) {
                    s = p;
                    if t.sent_start {
                        break;
                    }
                } else {
                    break;
                }
            }
            while s < k && (in_leading_noise(&self.toks[s]) || !self.is_capital(s)) {
                s += 1;
            }
            // Walk right: "Hospital of the University of Pennsylvania", "Medical Center".
            let mut e = k + 1;
            while e < n && self.gap(e - 1) == " " {
                if self.facility_word(e) {
                    e += 1;
                } else if self.toks[e].lower == "of" && e + 1 < n && self.toks[e + 1].cap {
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
            let distinctive = (s..k).any(|i| self.distinctive(i));
            let last = self.toks[e - 1].lower.as_ref();
            let weak = in_weak_facility_words(last) || !self.is_capital(e - 1);
            if distinctive
                || !weak && (s..k).any(|i| self.is_capital(i) && !in_leading_noise(&self.toks[i]))
            {
                let e = self.place_tail(e);
                self.push(s, e, PhiType::Location, "location.facility", P_PLACE);
            }
        }
        self.saints();
    }

    /// "St. Luke's", "Saint Vincent's": a saint's name is a facility or a place.
    fn saints(&mut self) {
        let n = self.toks.len();
        for i in 0..n.saturating_sub(1) {
            let l = self.toks[i].lower.as_ref();
            let saint = self.toks[i].cap && matches!(l, "st" | "saint" | "mt" | "mount");
            if !saint || self.claimed[i] || self.toks[i].covered {
                continue;
            }
            let g = self.gap(i);
            if !(g == ". " || g == " " || g == ".") || !self.toks[i + 1].cap || self.claimed[i + 1]
            {
                continue;
            }
            if i + 2 < n && self.gap(i + 1) == " " && self.toks[i + 2].lower == "wort" {
                continue;
            }
            let mut e = i + 2;
            while e < n
                && self.gap(e - 1) == " "
                && (self.facility_word(e)
                    || self.toks[e].cap
                        && !self.clinical(e)
                        && e < i + 4
                        && !self.toks[e].sent_start)
            {
                e += 1;
            }
            let e = self.place_tail(e);
            self.push(i, e, PhiType::Location, "location.saint", P_PLACE);
        }
    }

    /// A known place starting at token `i`: the end token of the longest match.
    fn place_at(&self, i: usize) -> Option<(usize, bool)> {
        let n = self.toks.len();
        if i >= n || !self.is_capital(i) || self.toks[i].covered {
            return None;
        }
        // Folded (non-ASCII) words are matched below without the head index.
        if self.toks[i].s.is_ascii() && !self.entry(i).place_head() {
            return None;
        }
        let max = self.lex.max_place_words.min(5);
        let mut lowered = String::with_capacity(32);
        let mut matched = None;
        let mut j = i + 1;
        while j <= n && j - i <= max {
            let span = &self.text[self.toks[i].start..self.toks[j - 1].end];
            lowered.clear();
            lowered.extend(span.chars().flat_map(char::to_lowercase));
            if self.lex.facilities.contains(span) {
                matched = Some((j, true));
            } else if self.lex.places.contains(lowered.as_str()) {
                matched = Some((j, false));
            }
            if j < n
                && (self.joined(j - 1) || self.gap(j - 1) == "-")
                && (self.is_capital(j) || self.toks[j].lower == "of")
            {
                j += 1;
            } else {
                break;
            }
        }
        matched
    }

    /// Extends a place or facility ending before token `e` over ", City", " in City", ", ST", ", State".
    fn place_tail(&self, mut e: usize) -> usize {
        let n = self.toks.len();
        if e < n && e > 0 {
            let g = self.gap(e - 1);
            let at = if self.toks[e].lower == "in" && g == " " && self.gap(e) == " " {
                e + 1
            } else {
                e
            };
            if (g == ", " || g == " " || at > e)
                && let Some((j, false)) = self.place_at(at)
            {
                e = j;
            }
        }
        self.state_tail(e)
    }

    /// Extends over ", NY" or ", New York" after a city.
    fn state_tail(&self, e: usize) -> usize {
        let n = self.toks.len();
        if e == 0 || e >= n {
            return e;
        }
        let g = self.gap(e - 1);
        if g != ", " && g != " " {
            return e;
        }
        // After a comma a state is a state in any case ("brooklyn, ny"); without one only a code
        // in capitals is ("Boston MA", not "boston or chicago").
        let comma = g == ", ";
        let t = &self.toks[e];
        if t.s.len() == 2 && (t.upper || comma) && is_state_code(&t.s.to_ascii_uppercase()) {
            return e + 1;
        }
        for words in 1..=3 {
            if e + words > n {
                break;
            }
            let span = self.text[self.toks[e].start..self.toks[e + words - 1].end].to_lowercase();
            if (t.cap || comma || !t.cased) && in_states(span.as_str()) {
                return e + words;
            }
        }
        e
    }

    fn known_places(&mut self) {
        let n = self.toks.len();
        let mut i = 0;
        while i < n {
            if self.claimed[i] {
                i += 1;
                continue;
            }
            let Some((j, facility)) = self.place_at(i) else {
                i += 1;
                continue;
            };
            if (i..j).any(|k| self.claimed[k]) {
                i += 1;
                continue;
            }
            if self.accept_place(i, j, facility) {
                let end_tok = if facility {
                    self.place_tail(j)
                } else {
                    self.state_tail(j)
                };
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
        let state_after = self.state_tail(j) > j;
        let cue = self.prev_word(i).is_some_and(in_place_cues);
        let acronym = self.toks[i].upper && self.toks[i].s.len() >= 3;
        if (i..j).any(|k| self.clinical(k) || self.eponym(k)) {
            return false;
        }
        if state_after || cue {
            return true;
        }
        if facility {
            // "Cedars-Sinai" anywhere; "Rush" or "Mayo" only after "at", "to", "from".
            let ambiguous = self.common(i) || self.first_count(i) >= 1000;
            return multi || acronym || !ambiguous && !self.toks[i].sent_start;
        }
        if multi {
            return !(self.toks[i].sent_start && (i..j).all(|k| self.common(k)));
        }
        let ambiguous = self.word(i) || self.first_count(i) >= 1000;
        !ambiguous && !self.toks[i].upper && !self.toks[i].sent_start
    }

    /// A surname used as an eponym: followed by a clinical head noun ("Wilson disease", "Murphy's sign").
    fn eponym(&self, i: usize) -> bool {
        let Some(next) = self.toks.get(i + 1) else {
            return false;
        };
        let g = self.gap(i);
        (g == " " || g == "-") && in_eponym_heads(next)
            || (self.toks[i].lower.ends_with("'s") && g == " " && in_eponym_heads(next))
    }

    fn names(&mut self) {
        let n = self.toks.len();
        let mut i = 0;
        while i < n {
            if !self.nameable(i) {
                i += 1;
                continue;
            }
            let prev_tok = self.prev_word(i);
            let prev = prev_tok.map(|t| t.lower.as_ref());
            let prev2 = if i >= 2 && prev.is_some() {
                self.prev_word(i - 1).map(|t| t.lower.as_ref())
            } else {
                None
            };
            let titled = prev_tok.is_some_and(in_titles)
                && i > 0
                && self.toks[i - 1].cap
                && matches!(self.gap(i - 1), " " | ". " | ".");
            let two_word_cue = matches!(
                (prev2, prev),
                (Some("name"), Some("is"))
                    | (Some("spoke"), Some("with" | "to"))
                    | (Some("seen"), Some("by"))
                    | (Some("talked"), Some("to" | "with"))
                    | (Some("case"), Some("manager"))
                    | (Some("social"), Some("worker"))
                    | (Some("goes"), Some("by"))
            );
            // "therapist: My ..." is a speaker label, not a cue.
            let label = i > 0 && self.gap(i - 1).contains(':');
            let strong_cue = two_word_cue || prev_tok.is_some_and(is_person_cue) && !label;
            let weak_cue = prev_tok.is_some_and(in_weak_cues);
            let clinical = self.clinical(i);
            let next_joined = i + 1 < n && self.joined(i) && self.nameable(i + 1);

            if titled {
                // The title stays outside the span: "Dr. [NAME]" tells the reader a clinician is meant.
                let j = self.extend_title(i);
                self.push(i, j, PhiType::Name, "name.title", P_NAME);
                i = j;
                continue;
            }
            // "Wilson disease"; and a first name before an eponym ("Lou Gehrig's disease").
            if clinical || self.eponym(i) || next_joined && self.eponym(i + 1) {
                i += 1;
                continue;
            }
            // "John Smith", "Jane M.", "Mary Ann Jones".
            if self.any_first(i)
                && !in_titles(&self.toks[i])
                && next_joined
                && !self.eponym(i + 1)
                && (self.surname_like(i + 1) || self.is_initial(i + 1) || self.strong_first(i + 1))
                && !(self.toks[i].sent_start
                    && self.common(i)
                    && (self.common(i + 1) || self.is_initial(i + 1)))
            {
                let j = self.extend_name(i);
                self.push(i, j, PhiType::Name, "name.first_last", P_NAME);
                i = j;
                continue;
            }
            let dictionary_name = self.first_count(i) >= 100 || self.surname(i);
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
            if self.toks[i].sent_start
                && (self.first_count(i) >= 1000
                    || (dictionary_name || self.unknown(i)) && !self.common(i))
                && self.addressed(i)
            {
                self.push(i, i + 1, PhiType::Name, "name.speaker", P_NAME);
                i += 1;
                continue;
            }
            let place_here = prev_tok.is_some_and(in_place_cues) && self.place_at(i).is_some();
            if self.strong_first(i)
                && (!self.word(i) || self.first_count(i) >= 5000)
                && !place_here
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
                && self.surname(i)
                && !self.word(i)
                && self.described_after(i)
            {
                self.push(i, i + 1, PhiType::Name, "name.context", P_NAME);
            }
            i += 1;
        }
    }

    /// Names in capitals after a label or a title, as in note headers: "Name: SMITH, JOHN",
    /// "DR. PATEL", "Pt: MARIA LOPEZ". Runs over capitalised words, initials and one comma.
    fn caps_names(&mut self) {
        const LABELS: &[&str] = &[
            "name",
            "patient",
            "pt",
            "attending",
            "resident",
            "physician",
            "provider",
            "pcp",
            "rn",
            "np",
            "md",
            "nurse",
            "contact",
            "hcp",
            "proxy",
            "guardian",
            "spouse",
            "wife",
            "husband",
            "mother",
            "father",
            "son",
            "daughter",
        ];
        let n = self.toks.len();
        let mut i = 0;
        while i < n {
            let t = &self.toks[i];
            if !(t.upper && usize::from(t.nchars) >= 2)
                || t.covered
                || self.claimed[i]
                || self.clinical(i)
            {
                i += 1;
                continue;
            }
            let prev = self.prev_word(i);
            let cue = prev.is_some_and(|p| in_titles(p) || LABELS.contains(&p.lower.as_ref()));
            // Dictionary names only: capitals after a label are as often abbreviations ("Pt: NPO").
            let named = (self.first_count(i) >= 100 || self.surname(i))
                && self.class(i) != deny::Class::Safe;
            if !cue || !named {
                i += 1;
                continue;
            }
            let start = if prev.is_some_and(in_titles) {
                i - 1
            } else {
                i
            };
            let mut j = i + 1;
            let mut commas = 0;
            while j < n
                && j - i < 4
                && self.toks[j].upper
                && !self.toks[j].covered
                && !self.clinical(j)
            {
                let g = self.gap(j - 1);
                if g == ", " && commas == 0 {
                    commas += 1;
                } else if !(g == " " || g == ". " && self.is_initial(j - 1)) {
                    break;
                }
                j += 1;
            }
            self.push(start, j, PhiType::Name, "name.caps_label", P_NAME);
            i = j;
        }
    }

    /// Lower-case names in quickly written notes, right after a relation ("wife mary at bedside"): only
    /// dictionary first names that are not English words.
    fn lower_names(&mut self) {
        for r in 0..self.toks.len().saturating_sub(1) {
            if !(in_relations(&self.toks[r]) || self.toks[r].lower == "named") {
                continue;
            }
            let i = r + 1;
            let t = &self.toks[i];
            let g = self.gap(r);
            if !(g == " " || g == ", " || g == ": ")
                || t.covered
                || self.claimed[i]
                || t.s.len() < 3
            {
                continue;
            }
            if t.s.bytes().all(|b| b.is_ascii_lowercase())
                && self.first_count(i) >= 1000
                && !self.word(i)
                && !self.clinical(i)
            {
                let j = self.extend(i);
                self.push(i, j, PhiType::Name, "name.context_lower", P_NAME);
            }
        }
    }

    /// After a title, the name runs over capitalised words and initials.
    fn extend_title(&self, i: usize) -> usize {
        let mut j = i + 1;
        while j < self.toks.len()
            && j - i < 3
            && self.joined(j - 1)
            && (self.nameable(j) && !self.clinical(j) || self.is_initial(j))
            && !in_facility_words(&self.toks[j])
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
        (g == ", " || g == " ") && next.upper && in_credentials(next)
    }

    /// A speaker label or a vocative at the start of a line: "Maria: I feel...", "Kuba, can I ...".
    fn addressed(&self, i: usize) -> bool {
        let rest = &self.text[self.toks[i].end..];
        if let Some(r) = rest.strip_prefix(": ") {
            return r.starts_with(|c: char| c.is_uppercase() || c == '"');
        }
        let Some(r) = rest.strip_prefix(", ") else {
            return false;
        };
        [
            "can ", "could ", "would ", "will ", "please", "i ", "i'", "you ", "we ", "thank",
            "are you", "do you", "how ", "what ", "listen", "look",
        ]
        .iter()
        .any(|w| r.to_ascii_lowercase().starts_with(w))
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
                for w in self.text[c.span.start..c.span.end].split([' ', '.', ',', '\n']) {
                    let l = fold(&w.to_lowercase());
                    let class = deny::classify(self.lex, &l);
                    let e = self.lex.entry(&l);
                    if l.chars().count() >= 3
                        && class != deny::Class::Safe
                        && !(class == deny::Class::Both && e.common())
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
            let t = &self.toks[i];
            if !t.covered
                && !self.claimed[i]
                && usize::from(t.nchars) <= 24
                && found.iter().any(|f| *f == t.lower)
            {
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
    let mut spans: Vec<(usize, usize)> = taken
        .iter()
        .filter(|c| c.priority >= P_SHAPE)
        .map(|c| (c.span.start, c.span.end))
        .collect();
    spans.sort_unstable();
    let lowered = text.to_ascii_lowercase();
    let mut toks = tokenize(text, &lowered, &spans);
    uncase_shouted_lines(text, &mut toks);
    deny::link_tokens(text, &mut toks);
    let mut ctx = Ctx {
        text,
        claimed: vec![false; toks.len()],
        toks: &toks,
        lex,
        out: Vec::new(),
    };
    ctx.facilities();
    ctx.names();
    ctx.caps_names();
    ctx.lower_names();
    ctx.known_places();
    ctx.places_any_case();
    ctx.default_deny();
    ctx.listed_names();
    ctx.repeats();
    out.append(&mut ctx.out);
}

/// In a line written without lower-case letters, capitals say nothing: its words are read as if in
/// lower case, so an ALL-CAPS note meets the same rules as any other.
fn uncase_shouted_lines(text: &str, toks: &mut [Tok<'_>]) {
    let mut line_start = 0;
    let mut k = 0;
    for line in text.split_inclusive('\n') {
        let line_end = line_start + line.len();
        let shouted = !line.chars().any(char::is_lowercase);
        let cased = !shouted && line.chars().any(char::is_uppercase);
        while k < toks.len() && toks[k].start < line_end {
            let t = &mut toks[k];
            if shouted {
                t.cap = false;
                t.upper = false;
                t.sent_start = false;
            }
            t.cased = cased;
            k += 1;
        }
        line_start = line_end;
    }
}
