//! Default deny: a word that can stand where a name or place stands is PHI unless the word lists say it
//! is safe; words that are both a name and an ordinary word are decided by the words around them. Every
//! rule here reads letters without their case, so lower-case transcripts and ALL-CAPS notes read alike.

use super::{Ctx, cue};
use crate::phi::PhiType;
use crate::phi::lexicon::{Entry, Lexicon};
use crate::phi::patterns::{P_NAME, P_PLACE};

/// What the word lists say a word is, before context.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Class {
    /// Known safe: English that is not a name, clinical vocabulary, drug names, countries.
    Safe,
    /// A name that is also an ordinary word ("will", "brown", "mercy"): context decides.
    Both,
    /// In no list: an unfamiliar name, a local place, or a word no list knows.
    Unknown,
    /// A town and nothing else ("worcester").
    Place,
    /// A name and nothing else ("andrew", "gutierrez").
    Name,
}

/// The class of one lower-case word from its list entry.
fn of_entry(e: Entry) -> Option<Class> {
    if !e.listed() {
        return None;
    }
    let nameish = e.nameish();
    Some(if e.vocab() {
        Class::Safe
    } else if e.frequent() || e.common() {
        if nameish { Class::Both } else { Class::Safe }
    } else if e.safe() {
        if e.first >= 1000 {
            Class::Both
        } else {
            Class::Safe
        }
    } else if e.word() {
        if e.first >= 1000 || e.surname() {
            Class::Name
        } else {
            Class::Safe
        }
    } else if nameish || e.first > 0 {
        Class::Name
    } else {
        Class::Place
    })
}

/// The class of a lower-case word: whole, then without a clitic ("andrew's", "didn't"), then by its
/// parts ("smith-jones", "x-ray", "i-i"), then as an inflection of a known word ("desatted" is not).
pub(super) fn classify(lex: &Lexicon, w: &str) -> Class {
    classify_entry(lex, w, lex.entry(w))
}

/// `classify` with the word's list entry already looked up.
fn classify_entry(lex: &Lexicon, w: &str, entry: Entry) -> Class {
    if w.len() <= 1 || w.chars().count() <= 1 {
        return Class::Safe;
    }
    if let Some(c) = of_entry(entry) {
        // A state is no PHI; "georgia" the person needs context, as any word that is both.
        if c == Class::Name && super::cue_bits(w) & super::cue::STATES != 0 {
            return Class::Both;
        }
        return c;
    }
    if let Some(stem) = strip_clitic(w) {
        return classify(lex, stem);
    }
    if w.contains('-') {
        // A stutter is read as the word it reaches: "cha-change", "di-diagnosed", "mary-mary".
        let parts: Vec<&str> = w.split('-').filter(|p| !p.is_empty()).collect();
        if let Some((last, rest)) = parts.split_last()
            && !rest.is_empty()
            && rest.iter().all(|p| last.starts_with(p))
        {
            return classify(lex, last);
        }
        // "smith-jones", "x-ray", "i-i", "you've-you've": the parts, each read whole.
        return w
            .split('-')
            .filter(|p| !p.is_empty())
            .map(|p| classify(lex, p))
            .max()
            .unwrap_or(Class::Safe);
    }
    if w.contains('\'') {
        // "o'brien" is listed as "obrien".
        let joined: String = w.chars().filter(|&c| c != '\'').collect();
        if let Some(c) = of_entry(lex.entry(&joined)) {
            return c;
        }
        return w
            .split('\'')
            .filter(|p| p.len() > 2)
            .map(|p| classify(lex, p))
            .max()
            .unwrap_or(Class::Safe);
    }
    let mut s = String::new();
    for (suffix, add) in INFLECTIONS {
        if let Some(stem) = w.strip_suffix(suffix)
            && stem.len() >= 3
        {
            s.clear();
            s.push_str(stem);
            s.push_str(add);
            let e = lex.entry(&s);
            if e.word() || e.safe() || e.vocab() {
                return Class::Safe;
            }
        }
    }
    if medical_shape(w) || history_shorthand(w) {
        return Class::Safe;
    }
    Class::Unknown
}

/// Section shorthand of clinical histories no list can hold in every spelling: "DHx", "FMHx",
/// "PMHx", "ObsHx" (drug, family, past medical, obstetric history). No name ends in "hx".
fn history_shorthand(w: &str) -> bool {
    (3..=6).contains(&w.len()) && w.ends_with("hx") && w.bytes().all(|b| b.is_ascii_lowercase())
}

/// A product written with a capital inside ("MyChart", "FibroScan"): the part after the inner
/// capital is an ordinary word that is no given name. Names written so ("DeShawn", "LaRose",
/// "McDonald") end in a given name, so they stay names.
fn product_shape(lex: &Lexicon, s: &str) -> bool {
    let b = s.as_bytes();
    let Some(k) = (1..b.len())
        .rev()
        .find(|&k| b[k].is_ascii_uppercase() && b[k - 1].is_ascii_lowercase())
    else {
        return false;
    };
    let tail = s[k..].to_ascii_lowercase();
    if tail.len() < 3 || !tail.bytes().all(|c| c.is_ascii_lowercase()) {
        return false;
    }
    // Surname lists hold most English words ("chart"), so only a given name makes it a name.
    let e = lex.entry(&tail);
    e.word() && e.first < 100
}

/// Word parts that mark a medical term no list holds ("subretinal", "macromastia", "cholangitis").
fn medical_shape(w: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sub", "peri", "intra", "inter", "supra", "infra", "hyper", "hypo", "macro", "micro",
        "poly", "post", "pre", "para", "trans", "retro", "endo", "epi", "dys", "brady", "tachy",
        "neuro", "cardio", "gastro", "hepat", "nephr", "osteo", "arthr", "derm", "hemo", "hema",
        "haem", "pneumo", "bronch", "anti", "non", "pseudo", "myo", "cyto", "angio", "thrombo",
    ];
    const SUFFIXES: &[&str] = &[
        "itis", "osis", "oses", "emia", "aemia", "emic", "ectomy", "otomy", "ostomy", "plasty",
        "scopy", "scopic", "graphy", "gram", "grams", "pathy", "pathic", "algia", "uria", "oma",
        "omas", "plegia", "paresis", "cele", "rrhea", "rrhoea", "lysis", "lytic", "genic", "ology",
        "ologist", "ologic", "ological", "cyte", "cytes", "cytic", "penia", "megaly", "mastia",
        "trophy", "trophic", "stasis", "phagia", "phasia", "pnea", "pnoea", "thermia", "tensive",
        "vascular", "cardia", "kinesia", "ptosis", "plasia", "iasis", "alis", "aris", "ectasis",
        "ectasia", "otic", "ectomies",
    ];
    let n = w.len();
    n >= 6
        && (SUFFIXES.iter().any(|s| w.ends_with(s) && n >= s.len() + 3)
            || PREFIXES
                .iter()
                .any(|p| w.starts_with(p) && n >= p.len() + 4))
}

/// Endings that make a known word into another form: (ending, what restores the stem).
const INFLECTIONS: &[(&str, &str)] = &[
    ("s", ""),
    ("es", ""),
    ("ed", ""),
    ("ed", "e"),
    ("d", ""),
    ("ing", ""),
    ("ing", "e"),
    ("ly", ""),
    ("er", ""),
    ("ers", ""),
];

/// The word without a possessive or contraction ("andrew's" -> "andrew", "didn't" -> "did").
fn strip_clitic(w: &str) -> Option<&str> {
    if !w.as_bytes().contains(&b'\'') && !w.ends_with("n't") {
        return None;
    }
    let w2 = w.trim_end_matches('\'');
    if w2.len() < w.len() {
        return Some(w2);
    }
    match w {
        "won't" => return Some("will"),
        "can't" => return Some("can"),
        "shan't" => return Some("shall"),
        "ain't" => return Some("is"),
        _ => {}
    }
    if let Some(stem) = w.strip_suffix("n't") {
        return Some(stem);
    }
    let (stem, tail) = w.rsplit_once('\'')?;
    matches!(tail, "s" | "m" | "re" | "ve" | "ll" | "d" | "t").then_some(stem)
}

/// Modal and auxiliary verbs: after "dr" they are never the doctor's name ("dr will call").
pub(super) const AUX: &[&str] = &[
    "will", "may", "can", "shall", "must", "might", "did", "does", "is", "was", "has", "had",
    "would", "could", "should", "and", "to", "the", "said", "says", "in",
];

/// Frequent verbs and function words that are also surnames: never the second word of a name.
pub(super) const VERBS: &[&str] = &[
    "will", "may", "can", "shall", "must", "might", "did", "does", "is", "was", "has", "had",
    "would", "could", "should", "and", "to", "the", "said", "says", "in", "tell", "told", "call",
    "called", "ask", "asked", "see", "saw", "know", "think", "go", "went", "come", "came", "get",
    "got", "says", "let", "put", "take", "took", "give", "gave", "want", "need", "said", "back",
    "here", "there", "so", "as", "an", "be", "do", "or", "for", "at", "on", "by", "no", "not",
    "with", "from", "about", "also", "just", "now", "then", "well", "very", "more", "less", "your",
    "you", "my", "his", "her", "our", "their", "its", "me", "him", "them", "us", "good", "great",
    "fine", "nice", "glad", "happy", "sorry", "okay", "sure", "right", "how", "what", "who",
    "when", "where", "why", "which", "that", "this", "these", "those", "hi", "hello", "hey", "yes",
    "yeah", "work", "home", "today", "tomorrow", "tonight", "doing",
];

/// Titles whose next word is a name in any case ("dr x", "MR X", "mrs. x").
pub(super) const TITLES: &[&str] = &[
    "dr",
    "mr",
    "mrs",
    "ms",
    "miss",
    "mister",
    "doctor",
    "prof",
    "professor",
    "mx",
    "rev",
];

/// Credentials that follow a name in any case ("jane rn", "K. MURPHY RN").
pub(super) const CREDENTIALS: &[&str] = &[
    "rn", "np", "md", "lpn", "cna", "lcsw", "licsw", "lmsw", "msw", "aprn", "crna", "pa-c", "rrt",
    "dnp", "phd", "psyd", "bsn", "lpc", "lmft", "np-c", "fnp", "cnm", "pharmd", "rph", "slp",
];

/// Words after which the next word is a person when it can be a name at all.
pub(super) const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "dear",
    "thanks",
    "bye",
    "goodbye",
    "named",
    "name",
    "called",
    "morning",
    "afternoon",
    "evening",
];

/// Verbs and phrases after which a place follows ("transferred from x", "lives in x").
pub(super) const PLACE_VERBS: &[&str] = &[
    "transferred",
    "transfer",
    "xfer",
    "xferred",
    "admitted",
    "discharged",
    "returned",
    "sent",
    "live",
    "lives",
    "lived",
    "living",
    "reside",
    "resides",
    "residing",
    "moved",
    "born",
    "raised",
    "d/c'd",
    "dc'd",
    "transported",
    "transfered",
];

/// Words that end a facility name in any case ("mercy hospital", "BAYVIEW NURSING HOME").
pub(super) const FACILITY_HEADS: &[&str] = &[
    "hospital",
    "hosp",
    "clinic",
    "infirmary",
    "hospice",
    "rehab",
    "pharmacy",
    "center",
    "centre",
    "ctr",
    "healthcare",
    "home",
    "manor",
    "institute",
    "sanatorium",
    "village",
    "ltac",
    "ltach",
    "snf",
    "nh",
    "detox",
    "living",
];

/// Words that name a clinical service, not a place ("urgent care clinic", "pain clinic"): the
/// generic facility words of the mixed-case rule but those that also start names ("city",
/// "regional", "university"), and these.
const SERVICE_EXTRA: &[&str] = &[
    "free",
    "local",
    "same",
    "other",
    "another",
    "rehab",
    "rehabilitation",
    "fertility",
    "memory",
    "wound",
    "vein",
    "skin",
    "foot",
    "weight",
    "travel",
    "sports",
    "spine",
    "kids",
    "va",
    "private",
    "specialty",
    "children's",
    "women's",
];

/// Heads after which a plain English word is a facility's name ("lakeside clinic", "city hospital").
pub(super) const STRONG_HEADS: &[&str] = &["hospital", "hosp", "clinic", "infirmary", "hospice"];

/// Words inside a facility name that make none by themselves ("x regional medical center").
pub(super) const FACILITY_INNER: &[&str] = &[
    "medical",
    "med",
    "health",
    "regional",
    "general",
    "community",
    "memorial",
    "university",
    "nursing",
    "rehabilitation",
    "care",
    "children's",
    "county",
    "family",
    "mental",
    "behavioral",
    "cancer",
    "heart",
    "surgical",
    "specialty",
];

/// Parts of a town named by direction: "central london", "northeast portland".
const DIRECTIONS: &[&str] = &[
    "central",
    "north",
    "south",
    "east",
    "west",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
    "downtown",
    "greater",
    "inner",
];

/// Last words of a street's name.
pub(super) const STREET_WORDS: &[&str] = &[
    "street",
    "road",
    "avenue",
    "lane",
    "close",
    "drive",
    "way",
    "crescent",
    "gardens",
    "place",
    "court",
    "terrace",
    "grove",
    "boulevard",
    "steps",
    "row",
    "mews",
    "square",
];

/// Words before a facility head that make no facility name by themselves ("the hospital").
fn generic_before_facility(w: &str, cues: u32) -> bool {
    cues & (cue::GENERIC | cue::FACILITY_JOINERS | cue::LEADING_NOISE | cue::PLACE_CUES) != 0
        || matches!(
            w,
            "nursing"
                | "a"
                | "this"
                | "that"
                | "same"
                | "other"
                | "outside"
                | "osh"
                | "local"
                | "another"
                | "rehabilitation"
                | "pt"
                | "patient"
                | "patient's"
                | "pt's"
                | "her"
                | "his"
                | "my"
                | "children's"
                | "va"
                | "group"
                | "foster"
                | "old"
                | "retirement"
                | "assisted"
                | "living"
                | "care"
                | "rest"
                | "acute"
                | "subacute"
                | "rehab"
                | "medical"
                | "hospital"
                | "going"
                | "go"
                | "went"
                | "back"
                | "at"
                | "any"
                | "which"
                | "what"
                | "every"
                | "some"
        )
}

/// How a token joins the next, worked out once per pair by `link_tokens`.
pub(super) mod link {
    /// Neighbours in one phrase: spaces, one line break, or ". " after an initial.
    pub(in crate::phi::tokens) const NEAR: u8 = 1;
    /// Only spaces, commas, colons or an abbreviation's period between them.
    pub(in crate::phi::tokens) const BEFORE: u8 = 2;
    /// Only spaces or a comma between them.
    pub(in crate::phi::tokens) const AFTER: u8 = 4;
}

/// Sets every token's `link` bits from the gap to the next token: the rules ask these of each pair
/// many times.
pub(super) fn link_tokens(text: &str, toks: &mut [super::Tok<'_>]) {
    for i in 0..toks.len().saturating_sub(1) {
        let g = &text[toks[i].end..toks[i + 1].start];
        let newlines = g.bytes().filter(|&b| b == b'\n').count();
        let mut bits = 0;
        if g.bytes().all(|b| b == b' ' || b == b'\n' || b == b'\t')
            && !g.is_empty()
            && newlines <= 1
            || matches!(g, ". " | "." | ".\n") && toks[i].nchars <= 2
        {
            bits |= link::NEAR;
        }
        // A period ends a sentence unless it ends an abbreviation ("dr.", "J.").
        let period_ok = !g.contains('.') || toks[i].nchars <= 3;
        if g == " "
            || g.bytes()
                .all(|b| matches!(b, b' ' | b',' | b':' | b'\t' | b'\n' | b'.'))
                && newlines <= 1
                && period_ok
        {
            bits |= link::BEFORE;
        }
        if g.bytes().all(|b| matches!(b, b' ' | b',' | b'\t')) {
            bits |= link::AFTER;
        }
        toks[i].link = bits;
    }
}

impl Ctx<'_, '_> {
    /// The class of token `i`, from its lower-case form.
    pub(super) fn class(&self, i: usize) -> Class {
        let t = &self.toks[i];
        *t.class
            .get_or_init(|| match classify_entry(self.lex, &t.lower, self.entry(i)) {
                Class::Unknown if product_shape(self.lex, t.s) => Class::Safe,
                c => c,
            })
    }

    /// What the lists say of token `i`'s word without a clitic ("you're" is read as "you").
    fn e(&self, i: usize) -> Entry {
        let t = &self.toks[i];
        *t.stem.get_or_init(|| match strip_clitic(&t.lower) {
            Some(stem) => self.lex.entry(stem),
            None => self.entry(i),
        })
    }

    /// Whether token `i`'s word is in the lists of `bits`.
    fn has(&self, i: usize, bits: u32) -> bool {
        self.toks[i].cues & bits != 0
    }

    fn lower(&self, i: usize) -> &str {
        self.toks[i].lower.as_ref()
    }

    /// Tokens `i` and `i+1` are neighbours in one phrase: spaces, one line break, or ". " after an initial.
    fn near(&self, i: usize) -> bool {
        self.toks[i].link & link::NEAR != 0
    }

    /// The token before `i` when only spaces, commas, colons or a period separate them.
    fn before(&self, i: usize) -> Option<usize> {
        (i > 0 && self.toks[i - 1].link & link::BEFORE != 0).then(|| i - 1)
    }

    /// The token after `i` when only spaces or a comma separate them.
    fn after(&self, i: usize) -> Option<usize> {
        (self.toks[i].link & link::AFTER != 0).then(|| i + 1)
    }

    fn is_letter(&self, i: usize) -> bool {
        usize::from(self.toks[i].nchars) == 1
    }

    /// A name-ish word that a context cue can make a name: a name, a town, an unknown word, or a word
    /// that is also a name and not among the most frequent words.
    fn can_be_name(&self, i: usize) -> bool {
        match self.class(i) {
            Class::Name | Class::Place | Class::Unknown => true,
            Class::Both => !self.e(i).frequent(),
            Class::Safe => false,
        }
    }

    /// A title right before `i`, as in "dr x", "Dr. X", "MRS X" (not a speaker label "Doctor: ...").
    fn titled(&self, i: usize) -> bool {
        if i == 0 || self.toks[i - 1].covered || !self.has(i - 1, cue::ANY_TITLES) {
            return false;
        }
        let g = self.gap(i - 1);
        // A full word ends a sentence as often as it titles a name: "to the doctor. I was".
        let abbreviated = self.toks[i - 1].s.len() <= 3;
        g == " " || g == "\n" || abbreviated && matches!(g, ". " | "." | ".\n")
    }

    fn credential_next(&self, i: usize) -> bool {
        self.after(i).is_some_and(|n| {
            self.has(n, cue::ANY_CREDENTIALS)
                || self.toks[n].upper && self.toks[n].cues & cue::CREDENTIALS != 0
        })
    }

    /// Whether the context before or after `i` says a person is meant.
    fn person_context(&self, i: usize) -> bool {
        let prev = self.before(i);
        let p = prev.map(|p| self.lower(p));
        let p2 = prev.and_then(|p| self.before(p)).map(|q| self.lower(q));
        let relation = prev.is_some_and(|p| self.toks[p].cues & cue::RELATIONS != 0);
        relation
            || prev.is_some_and(|p| self.has(p, cue::GREETINGS))
            || matches!(
                (p2, p),
                (Some("name"), Some("is"))
                    | (Some("this"), Some("is"))
                    | (Some("thank"), Some("you"))
                    | (Some("call"), Some("me"))
                    | (Some("spoke"), Some("with" | "to"))
                    | (Some("talked"), Some("with" | "to"))
                    | (Some("seen"), Some("by"))
                    | (Some("d/w"), _)
                    | (Some("named"), Some("him" | "her" | "them" | "it"))
                    | (_, Some("named"))
            )
            || self.answers_name_question(i)
            || self.credential_next(i)
    }

    /// The answer to "What's your name?" or "last name:".
    fn answers_name_question(&self, i: usize) -> bool {
        let before = self.text[..self.toks[i].start].trim_end();
        let asked = before
            .strip_suffix(['?', ':'])
            .is_some_and(|b| b.trim_end().to_ascii_lowercase().ends_with("name"));
        asked && !self.text[before.len()..self.toks[i].start].contains("\n\n")
    }

    /// A word in lower case on a line written in mixed case, where a name would be capitalised:
    /// such a word that is also an ordinary word is read as the word ("pink tissue", "loo").
    fn lower_in_cased(&self, i: usize) -> bool {
        let t = &self.toks[i];
        t.cased && !t.cap && !t.upper
    }

    /// A first name said to someone: "hi frank", "so, rick, ...", ", bob?", "thanks, mark." The word is
    /// a first name given at least 5,000 times and stands between a greeting, a comma or the start
    /// of a turn and a comma, question mark or full stop.
    fn vocative(&self, i: usize) -> bool {
        let e = self.e(i);
        if e.first < 5000 || self.has(i, cue::VERBS) || self.lower_in_cased(i) {
            return false;
        }
        let hello = |w: &str| matches!(w, "hi" | "hello" | "hey");
        let greeted = self.before(i).is_some_and(|p| {
            hello(self.lower(p))
                || matches!(self.lower(p), "dear" | "thanks" | "bye")
                || self.lower(p) == "there" && self.before(p).is_some_and(|q| hello(self.lower(q)))
        });
        if greeted {
            return true;
        }
        // Dictated speech has no commas: "okay so mark tell me", "nice to see you jack i know".
        if !self.toks[i].cased && e.first >= 10_000 && !self.has(i, cue::AUX) {
            let p = self.before(i);
            let opener = p.is_some_and(|p| {
                matches!(
                    self.lower(p),
                    "so" | "okay" | "ok" | "alright" | "well" | "thanks"
                ) || self.lower(p) == "you"
                    && self
                        .before(p)
                        .is_some_and(|q| matches!(self.lower(q), "see" | "thank" | "meet"))
            });
            let addressed = self.after(i).is_some_and(|n| {
                matches!(
                    self.lower(n),
                    "i" | "you"
                        | "your"
                        | "what"
                        | "how"
                        | "tell"
                        | "let's"
                        | "we"
                        | "are"
                        | "do"
                        | "did"
                        | "have"
                        | "can"
                        | "it's"
                        | "how's"
                        | "that's"
                )
            });
            if opener && addressed {
                return true;
            }
        }
        let before = &self.text[..self.toks[i].start];
        let opened = before.ends_with(", ")
            || before.trim_end().ends_with(':')
            || before.trim_end().ends_with(']')
            || self
                .before(i)
                .is_some_and(|p| matches!(self.lower(p), "so" | "well" | "okay" | "ok"));
        let after = &self.text[self.toks[i].end..];
        let closed = after.starts_with([',', '?', '!']) || after.starts_with(". ");
        opened && closed
    }

    /// A first name and a surname side by side, either way round.
    fn pair(&self, i: usize, j: usize) -> bool {
        if self.has(i, cue::VERBS) || self.has(j, cue::VERBS) {
            return false;
        }
        let (a, b) = (self.class(i), self.class(j));
        let strong = |c: Class| matches!(c, Class::Name | Class::Unknown | Class::Place);
        // A frequent word beside a name is a name only when written as one ("Scott go" is not).
        let plain =
            |k: usize| self.e(k).frequent() && (!self.toks[k].cap || self.toks[k].sent_start);
        if strong(a) && (strong(b) || b == Class::Both && !plain(j)) {
            return true;
        }
        if strong(b) && a == Class::Both {
            return self.e(i).first >= 1000 && !plain(i)
                || b == Class::Name && self.e(i).first >= 10_000 && !self.has(i, cue::VERBS);
        }
        a == Class::Both
            && b == Class::Both
            && self.e(i).first >= 50_000
            && self.e(j).surname()
            && !(self.e(i).frequent() && self.e(j).frequent())
            && !self.lower_in_cased(i)
            && !self.lower_in_cased(j)
    }

    /// Where an unknown word is taken for a name or place: after a title, a relation, a credential's
    /// name, a preposition or verb that takes a person or place, or beside another name.
    fn unknown_position(&self, i: usize) -> bool {
        let t = &self.toks[i];
        if usize::from(t.nchars) < 3 {
            return false;
        }
        if self.titled(i) || self.person_context(i) {
            return true;
        }
        if let Some(p) = self.before(i) {
            let cues = self.toks[p].cues;
            if cues & (cue::WEAK_CUES | cue::PLACE_CUES | cue::PERSON_CUES) != 0
                || self.has(p, cue::PLACE_VERBS)
            {
                return true;
            }
        }
        if let Some(n) = self.after(i)
            && self.has(n, cue::FACILITY_HEADS)
        {
            return true;
        }
        t.cap && !t.sent_start
    }

    /// Right after a word that announces a place or a person ("at", "from", "transferred to").
    fn placed(&self, i: usize) -> bool {
        self.before(i).is_some_and(|p| {
            self.has(p, cue::PLACE_CUES | cue::PERSON_CUES | cue::PLACE_VERBS)
                || matches!(
                    self.lower(p),
                    "at" | "from" | "to" | "in" | "of" | "near" | "per"
                )
        })
    }

    /// Written as an abbreviation on a line that uses case: all capitals ("RPE", "SOBOE") or capitals
    /// inside the word ("PHx", "MyChart", "LNs"), but not a name's own ("McDonald", "DeShawn").
    fn acronym_shape(&self, i: usize) -> bool {
        let t = &self.toks[i];
        if !t.cased {
            return false;
        }
        let n = usize::from(t.nchars);
        if t.upper {
            return (2..=6).contains(&n);
        }
        let caps = t.s.chars().filter(|c| c.is_uppercase()).count();
        let name_prefix = [
            "Mc", "Mac", "De", "Di", "Le", "La", "Van", "Von", "Du", "O'", "D'",
        ]
        .iter()
        .any(|p| t.s.starts_with(p));
        caps >= 2 && !name_prefix && !t.s.contains(['-', '\''])
    }

    /// Extends a name from token `i` over the next words that can belong to it: names, initials,
    /// unknown words, surnames (at most three more).
    pub(super) fn extend(&self, i: usize) -> usize {
        let mut j = i + 1;
        while j < self.toks.len()
            && j - i <= 3
            && (self.near(j - 1) || self.gap(j - 1) == ", " && self.class(j) == Class::Name)
            && !self.claimed[j]
            && !self.toks[j].covered
        {
            let ok = match self.class(j) {
                Class::Name | Class::Place => true,
                Class::Unknown => usize::from(self.toks[j].nchars) >= 2,
                // After a first name even a frequent word is a surname ("brian white", "kayla
                // ward"), but not a verb ("john will call").
                Class::Both => {
                    self.e(j).surname()
                        && !self.has(j, cue::VERBS)
                        && (!self.e(j).frequent()
                            || (self.e(j - 1).first >= 1000 || self.is_initial(j - 1))
                                && self.e(j).common_surname())
                }
                // "robert g seen at": on a line without capitals a lone letter after a first name
                // is its initial.
                Class::Safe => {
                    self.is_initial(j)
                        || self.is_letter(j)
                            && !self.toks[j].cased
                            && !matches!(self.lower(j), "a" | "i")
                            && self.e(j - 1).first >= 1000
                            && self.gap(j - 1) == " "
                }
            };
            if !ok || self.has(j, cue::ANY_CREDENTIALS) {
                break;
            }
            j += 1;
        }
        j
    }

    /// A letter written as an initial just before token `i` ("j. smith", "J.T. Murphy").
    fn initials_before(&self, mut i: usize) -> usize {
        while i > 0
            && self.is_letter(i - 1)
            && !self.claimed[i - 1]
            && matches!(self.gap(i - 1), ". " | "." | " ")
            && (self.gap(i - 1) != " " || i >= 2 && self.gap(i - 2) == ".")
        {
            i -= 1;
        }
        i
    }

    fn name_at(&mut self, i: usize, rule: &'static str) -> usize {
        let j = self.extend(i);
        let from = self.initials_before(i);
        self.push(from, j, PhiType::Name, rule, P_NAME);
        j
    }

    /// Initials written together ("J.T. aware", "m.k. rn", "A.G."), when a credential, a verb of
    /// knowing or a title marks them as a person: not "a.m.", "e.g.", "p.o.".
    fn initials(&mut self) {
        const NOT: &[&str] = &[
            "am", "pm", "eg", "ie", "po", "us", "uk", "dc", "nb", "bid", "tid", "qid", "qd", "qhs",
            "prn", "ad", "bc", "mr", "ms", "dr", "pt", "ot", "iv", "im", "od", "os", "ou", "ok",
            "cc", "tv", "va", "er", "or", "st", "mt", "jr", "sr", "ss", "hs", "ac", "pc", "npo",
        ];
        let n = self.toks.len();
        let mut i = 0;
        while i + 1 < n {
            if !self.is_letter(i) || self.claimed[i] || self.toks[i].covered || self.gap(i) != "." {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            let mut letters = self.lower(i).to_string();
            while j < n && self.is_letter(j) && self.gap(j - 1) == "." && j - i < 3 {
                letters.push_str(self.lower(j));
                j += 1;
            }
            if j - i < 2 || NOT.contains(&letters.as_str()) {
                i = j;
                continue;
            }
            let next = (j < n).then(|| self.lower(j));
            let marked = self.titled(i)
                || self.credential_next(j - 1)
                || next.is_some_and(|w| {
                    matches!(
                        w,
                        "aware"
                            | "notified"
                            | "paged"
                            | "called"
                            | "informed"
                            | "updated"
                            | "here"
                            | "in"
                            | "at"
                            | "present"
                            | "said"
                            | "says"
                            | "ordered"
                            | "saw"
                            | "seen"
                            | "rn"
                            | "md"
                            | "np"
                            | "pa"
                            | "ok'd"
                            | "okd"
                            | "wants"
                            | "following"
                            | "spoke"
                            | "is"
                    )
                })
                || self.before(i).is_some_and(|p| {
                    matches!(
                        self.lower(p),
                        "by" | "per"
                            | "with"
                            | "w"
                            | "called"
                            | "paged"
                            | "notified"
                            | "informed"
                            | "to"
                            | "dr"
                            | "spoke"
                    )
                });
            if marked {
                self.push(i, j, PhiType::Name, "name.initials", P_NAME);
            }
            i = j;
        }
    }

    /// The names: by the word lists alone, then by context.
    pub(super) fn default_deny(&mut self) {
        self.initials();
        let n = self.toks.len();
        let mut i = 0;
        while i < n {
            if self.claimed[i] || self.toks[i].covered {
                i += 1;
                continue;
            }
            // Eponyms: "Wilson disease", "Braden scale", "Lou Gehrig's disease".
            if self.eponym(i) || i + 1 < n && self.near(i) && self.eponym(i + 1) {
                i += 1;
                continue;
            }
            // A unit ("ng/dL", "mcg/kg") is never a name.
            if self.text[self.toks[i].end..].starts_with('/') {
                i += 1;
                continue;
            }
            // A word cut off and restarted ("noth- nothing", "mon- , i monitor") is no name, nor
            // is an examination sign ("negative Hoffman's", "positive Lachman's").
            let rest = &self.text[self.toks[i].end..];
            let cut = rest.starts_with("- ") || rest.starts_with("-,") || rest.starts_with("-\n");
            let sign = self.toks[i].lower.ends_with("'s")
                && self.before(i).is_some_and(|p| {
                    matches!(
                        self.lower(p),
                        "positive" | "negative" | "equivocal" | "pos" | "neg"
                    )
                });
            if (cut || sign) && !self.titled(i) {
                i += 1;
                continue;
            }
            let class = self.class(i);
            let single = self.is_letter(i);
            // After a title anything but a verb or a plain word is a name ("dr b.", "DR FOLEY").
            // A full word such as "doctor" or "miss" also stands before verbs: "doctor tell", "miss it".
            let spelled = i > 0 && self.toks[i - 1].s.len() > 3;
            let verb_title = i > 0 && self.lower(i - 1) == "miss";
            if self.titled(i)
                && !self.has(i, cue::AUX)
                && self.lower(i) != "i"
                && if verb_title {
                    matches!(class, Class::Name | Class::Place)
                        || self.toks[i].cap && self.toks[i].cased
                } else if spelled {
                    matches!(class, Class::Name | Class::Unknown | Class::Place)
                        || class == Class::Both
                            && (!self.e(i).common()
                                || self.e(i).common_surname() && !self.has(i, cue::VERBS))
                } else {
                    single || class != Class::Safe || self.e(i).nameish() && !self.e(i).frequent()
                }
            {
                // The title stays outside the span, as in the mixed-case rule ("Dr. [NAME]").
                let j = self.extend(i);
                self.push(i, j, PhiType::Name, "name.title_any_case", P_NAME);
                i = j;
                continue;
            }
            // A name that is also a rare English word is the word when a mixed-case line leaves it
            // in lower case ("et cetera", "the loo").
            // On a mixed-case line a short word in capitals is an acronym ("PHI", "ABI", "NG").
            let t = &self.toks[i];
            let acronym = t.cased && t.upper && t.s.len() <= 3;
            let plain_word = self.lower_in_cased(i) && self.e(i).word() || acronym;
            let rule = match class {
                Class::Name if !plain_word => Some("name.dictionary"),
                Class::Place => {
                    let j = self.place_run(i);
                    self.push(i, j, PhiType::Location, "location.town", P_PLACE);
                    i = j;
                    continue;
                }
                // "seen at westside medical", "at uw med": an unknown name closed by a facility word.
                Class::Unknown
                    if self
                        .before(i)
                        .is_some_and(|p| matches!(self.lower(p), "at" | "from" | "to" | "in"))
                        && self.facility_tail(i + 1) > i + 1 =>
                {
                    let j = self.facility_tail(i + 1);
                    let j = self.town_tail(j);
                    self.push(
                        i,
                        j,
                        PhiType::Location,
                        "location.unknown_facility",
                        P_PLACE,
                    );
                    i = j;
                    continue;
                }
                // An abbreviation is a name or place only where one is announced ("at UWMC",
                // "from ESPOO"), not in a list of findings ("dip and MSU", "under the RPE").
                Class::Unknown
                    if self.unknown_position(i) && (!self.acronym_shape(i) || self.placed(i)) =>
                {
                    Some("name.unknown_word")
                }
                Class::Unknown if self.titled(i) || self.person_context(i) => {
                    Some("name.unknown_word")
                }
                // At a sentence start a word no list knows, followed by a verb or by another name,
                // is a name: "Shovda is very reliable", "Krisztián Szöllösy listed".
                Class::Unknown
                    if self.toks[i].sent_start
                        && !self.acronym_shape(i)
                        && usize::from(self.toks[i].nchars) >= 3
                        && self.after(i).is_some_and(|n| {
                            self.near(i)
                                && (self.has(n, cue::VERBS | cue::AUX)
                                    || matches!(
                                        self.lower(n),
                                        "is" | "was" | "has" | "had" | "said" | "says"
                                    )
                                    || matches!(self.class(n), Class::Name | Class::Unknown)
                                        && (self.toks[n].cap || !self.toks[n].cased))
                        }) =>
                {
                    Some("name.unknown_at_start")
                }
                Class::Both if self.person_context(i) && self.can_be_name(i) => {
                    Some("name.context_any_case")
                }
                // After a relation even a frequent word is a name when it is a common first name:
                // "husband bob", "DAUGHTER GRACE", "sister hope" (not "wife will").
                Class::Both
                    if self.e(i).first >= 10_000
                        && !self.has(i, cue::VERBS)
                        && self
                            .before(i)
                            .is_some_and(|p| self.toks[p].cues & cue::RELATIONS != 0) =>
                {
                    Some("name.relation_any_case")
                }
                Class::Both if self.vocative(i) => Some("name.vocative"),
                // A first name given to over 200,000 people is a name wherever it is not among the
                // most frequent words ("john", "carol", "peter"), or before an initial ("tom h.").
                Class::Both
                    if !self.lower_in_cased(i)
                        && !self.has(i, cue::VERBS)
                        && (!self.e(i).frequent() && self.e(i).first >= 200_000
                            || self.e(i).first >= 1000
                                && (!self.e(i).frequent() || self.e(i).first >= 10_000)
                                && self
                                    .after(i)
                                    .is_some_and(|j| self.near(i) && self.is_initial(j))) =>
                {
                    Some("name.first_any_case")
                }
                Class::Both
                    if self
                        .after(i)
                        .is_some_and(|j| self.near(i) && self.pair(i, j))
                        || self
                            .before(i)
                            .is_some_and(|p| self.near(p) && self.pair(p, i)) =>
                {
                    Some("name.pair")
                }
                _ if single && self.credential_next(i) => Some("name.initial"),
                _ => None,
            };
            match rule {
                Some(rule) => i = self.name_at(i, rule),
                None => i += 1,
            }
        }
    }

    /// Whether token `j` lies inside a name found so far.
    fn in_name(&self, j: usize) -> bool {
        let at = self.toks[j].start;
        self.claimed[j]
            && self
                .out
                .iter()
                .any(|c| c.span.kind == PhiType::Name && c.span.start <= at && at < c.span.end)
    }

    /// Names listed together, each capitalised: "They had 6: Gaetane, Hannah, Anthony",
    /// "our founders: Monjeau, Graves and Reed".
    pub(super) fn listed_names(&mut self) {
        let n = self.toks.len();
        // The neighbouring item of a list: across ", " or " & ", or across the word "and".
        let item = |ctx: &Self, i: usize, forward: bool| -> Option<usize> {
            let (a, b) = if forward {
                (i, i + 1)
            } else {
                (i.checked_sub(1)?, i)
            };
            if b >= n {
                return None;
            }
            let g = ctx.gap(a);
            if matches!(g, ", " | "," | " & ") {
                return Some(if forward { b } else { a });
            }
            let and = if forward { b } else { a };
            let far = if forward { b + 1 } else { a.checked_sub(1)? };
            (g == " "
                && ctx.lower(and) == "and"
                && far < n
                && ctx.gap(if forward { b } else { far }) == " ")
                .then_some(far)
        };
        for _ in 0..2 {
            for i in 0..n {
                let t = &self.toks[i];
                if self.claimed[i]
                    || t.covered
                    || !(t.cap && t.cased)
                    || self.has(i, cue::VERBS | cue::AUX)
                    || !matches!(self.class(i), Class::Name | Class::Unknown | Class::Both)
                {
                    continue;
                }
                let beside = [false, true]
                    .into_iter()
                    .filter_map(|f| item(self, i, f))
                    .any(|j| self.in_name(j));
                if beside {
                    self.name_at(i, "name.listed");
                }
            }
        }
    }

    /// The end of a place starting at `i`: over more town words and a facility head.
    fn place_run(&self, i: usize) -> usize {
        let mut j = i + 1;
        while j < self.toks.len()
            && j - i <= 3
            && self.near(j - 1)
            && !self.toks[j].covered
            && (matches!(self.class(j), Class::Place | Class::Name)
                || self.has(j, cue::FACILITY_HEADS))
        {
            j += 1;
        }
        j
    }

    /// Places and facilities in any case: "transferred from mercy", "lives in fall river",
    /// "BAYVIEW NURSING HOME", "spaulding rehab".
    pub(super) fn places_any_case(&mut self) {
        let n = self.toks.len();
        // Facility heads with a distinctive word before them.
        for k in 1..n {
            let head = self.lower(k);
            // "nevada medical group": a group is a facility only after a facility word.
            let group = head == "group" && self.has(k - 1, cue::FACILITY_INNER);
            if !(self.has(k, cue::FACILITY_HEADS) || head == "general" || head == "gen" || group)
                || self.toks[k].covered
            {
                continue;
            }
            // Before "hospital" or "clinic" a plain English word names one ("the lakeside clinic");
            // a clinical word does not ("the cardiology clinic").
            let strong = self.has(k, cue::STRONG_HEADS)
                || matches!(head, "center" | "centre" | "ctr" | "home")
                    && k > 0
                    && matches!(
                        self.lower(k - 1),
                        "medical"
                            | "health"
                            | "nursing"
                            | "care"
                            | "rehabilitation"
                            | "rehab"
                            | "surgical"
                            | "cancer"
                            | "heart"
                            | "treatment"
                            | "dialysis"
                            | "wellness"
                    )
                || head == "living" && k > 0 && self.lower(k - 1) == "assisted"
                || !matches!(
                    head,
                    "home" | "living" | "center" | "centre" | "ctr" | "house"
                );
            // "at mass general", "from county general": a word and "general" after a place word.
            let general = matches!(head, "general" | "gen");
            let distinctive = |x: usize| {
                !generic_before_facility(self.lower(x), self.toks[x].cues)
                    && !self.has(x, cue::FACILITY_HEADS | cue::VERBS)
                    && (self.can_be_name(x)
                        || self.toks[x].cap && !self.toks[x].sent_start && !self.e(x).frequent()
                        || strong
                            && !self.e(x).vocab()
                            && !self.e(x).frequent()
                            && self.e(x).word()
                        || general
                            && x + 1 == k
                            && self
                                .before(x)
                                .is_some_and(|p| matches!(self.lower(p), "at" | "to" | "from")))
            };
            // "children's hospital in houston", "memorial hospital of philadelphia": a facility named
            // with its town takes its generic words along.
            let town_after = (k + 1..(k + 3).min(n)).any(|x| {
                matches!(self.class(x), Class::Place) || self.e(x).city() && !self.e(x).frequent()
            }) && strong;
            // "admitted to city hospital", "seen at mercy clinic": right after a place word, with no
            // determiner, the words before a strong head name it, unless they name a service.
            let prep_before = |x: usize| {
                strong
                    && !self.e(x).vocab()
                    && !self.has(x, cue::VERBS)
                    && !self.lower(x).contains('\'')
                    && !self.service_word(x)
                    && !self.has(x, cue::FACILITY_HEADS)
                    && self.toks[x].cues & (cue::LEADING_NOISE | cue::FACILITY_JOINERS) == 0
            };
            // Facility words pass ("to central medical center"), but a name must lead the run.
            let mut lead = k;
            while lead > 0
                && k - lead < 4
                && self.near(lead - 1)
                && (prep_before(lead - 1) || self.has(lead - 1, cue::FACILITY_INNER))
            {
                lead -= 1;
            }
            while lead < k && self.has(lead, cue::FACILITY_INNER) && self.e(lead).vocab() {
                lead += 1;
            }
            let prep_named = lead < k
                && lead > 0
                && self.near(lead - 1)
                && matches!(self.lower(lead - 1), "at" | "to" | "from" | "in");
            let distinctive = |x: usize| {
                distinctive(x)
                    || prep_named && x >= lead
                    || town_after
                        && !self.has(x, cue::FACILITY_HEADS)
                        && !matches!(
                            self.lower(x),
                            "the" | "a" | "at" | "to" | "in" | "from" | "of"
                        )
                        && self.toks[x].cues & (cue::LEADING_NOISE | cue::PLACE_CUES) == 0
            };
            // A specialty passes after a name: "albuquerque neurology center".
            let passable = |x: usize| {
                self.has(x, cue::FACILITY_HEADS)
                    || self.has(x, cue::FACILITY_INNER)
                    || self.e(x).vocab()
                        && !self.has(x, cue::VERBS)
                        && x > 0
                        && self.near(x - 1)
                        && !self.toks[x - 1].covered
                        && matches!(
                            self.class(x - 1),
                            Class::Name | Class::Place | Class::Unknown
                        )
            };
            let mut s = k;
            while s > 0
                && k - s < 5
                && self.near(s - 1)
                && !self.toks[s - 1].covered
                && (distinctive(s - 1) || passable(s - 1))
            {
                s -= 1;
            }
            while s < k && !distinctive(s) {
                s += 1;
            }
            if s == k {
                continue;
            }
            // A town of several words before the name goes with it: "san diego children's hospital".
            for back in [2, 1] {
                if s >= back
                    && !self.toks[s - back].covered
                    && self
                        .place_words(s - back, 2)
                        .is_some_and(|j| j > s && j <= k)
                {
                    s -= back;
                    break;
                }
            }
            let mut e = k + 1;
            while e < n && self.near(e - 1) && self.has(e, cue::FACILITY_HEADS) {
                e += 1;
            }
            let e = self.town_tail(e);
            self.push(
                s,
                e,
                PhiType::Location,
                "location.facility_any_case",
                P_PLACE,
            );
        }
        // A place after a verb of moving or living.
        for i in 1..n {
            if self.claimed[i] || self.toks[i].covered {
                continue;
            }
            let Some(p) = self.before(i) else { continue };
            let verb = self.has(p, cue::PLACE_VERBS)
                || self.toks[p].cues & cue::PLACE_CUES != 0
                    && self
                        .before(p)
                        .is_some_and(|q| self.has(q, cue::PLACE_VERBS));
            if !verb {
                continue;
            }
            // "transferred from lakeside", "admitted from Mercy": any word but shorthand ("OSH",
            // "floor"), the most frequent words ("home", "the") and words of time.
            let t = &self.toks[i];
            let e = self.e(i);
            let placeable = self.can_be_name(i)
                || t.cap && t.cased && !t.sent_start && !e.vocab() && !e.proper_safe()
                || self.class(i) == Class::Safe
                    && !e.vocab()
                    && !e.frequent()
                    && !e.clinical()
                    && !e.proper_safe();
            // "parents live in providence": after a verb of living or moving and a preposition, a
            // town is a town even where it is an English word too ("born normal" is no town).
            let placeable = placeable
                || self.e(i).city()
                    && !self.has(i, cue::VERBS)
                    && matches!(
                        self.lower(p),
                        "in" | "at" | "to" | "from" | "near" | "into" | "outside"
                    );
            if placeable && !matches!(self.lower(i), "yesterday" | "today" | "tonight") {
                let j = self.facility_tail(self.place_run(i));
                let j = self.state_tail(j);
                self.push(i, j, PhiType::Location, "location.after_verb", P_PLACE);
            }
        }
        self.towns_after_cue();
        self.saints_any_case();
        self.named_units();
        self.spoken_streets();
        self.streets_any_case();
    }

    /// The end of a facility's name over the words that close one after a town or a name:
    /// "houston memorial", "chicago va", "orlando health", "cedars-sinai er".
    fn facility_tail(&self, mut e: usize) -> usize {
        let start = e;
        while e < self.toks.len()
            && e > 0
            && e - start < 3
            && self.near(e - 1)
            && !self.toks[e].covered
            && (self.has(e, cue::STRONG_HEADS)
                || matches!(
                    self.lower(e),
                    "medical"
                        | "med"
                        | "health"
                        | "healthcare"
                        | "healthcenter"
                        | "memorial"
                        | "general"
                        | "va"
                        | "presbyterian"
                        | "methodist"
                        | "baptist"
                        | "regional"
                        | "er"
                        | "center"
                        | "centre"
                        | "rehab"
                        | "pharmacy"
                        | "institute"
                ))
        {
            e += 1;
        }
        e
    }

    /// The end of a facility's name over the town it names, in any case: "children's hospital
    /// boston", "memorial hospital in atlanta", "johns hopkins hospital, baltimore, md".
    fn town_tail(&self, e: usize) -> usize {
        if e == 0 || e >= self.toks.len() {
            return e;
        }
        let g = self.gap(e - 1);
        // After "in", "of" or a comma a town is meant even where its name is an everyday word
        // ("hospital in phoenix"); right after the name, only a town that is no such word.
        let (at, marked) = if matches!(self.lower(e), "in" | "of") && g == " " && self.near(e) {
            (e + 1, true)
        } else if g == ", " {
            (e, true)
        } else if g == " " {
            (e, false)
        } else {
            return e;
        };
        if at >= self.toks.len() || self.toks[at].covered || self.claimed[at] {
            return e;
        }
        match self.place_words(at, 1) {
            Some(j) if marked || j > at + 1 || !self.e(at).frequent() => self.state_tail(j),
            _ => e,
        }
    }

    /// A word that can be part of a street's name: not a function word, verb or clinical term.
    fn street_word(&self, x: usize) -> bool {
        !self.toks[x].covered
            && !self.claimed[x]
            && !self.has(
                x,
                cue::VERBS
                    | cue::AUX
                    | cue::LEADING_NOISE
                    | cue::NUMBER_WORDS
                    | cue::STREET_WORDS
                    | cue::PLACE_CUES,
            )
            && !matches!(
                self.lower(x),
                "the"
                    | "a"
                    | "an"
                    | "of"
                    | "on"
                    | "in"
                    | "at"
                    | "to"
                    | "for"
                    | "and"
                    | "or"
                    | "with"
                    | "from"
                    | "by"
                    | "per"
                    | "my"
                    | "his"
                    | "her"
                    | "their"
                    | "our"
                    | "your"
                    | "this"
                    | "that"
                    | "same"
                    | "other"
                    | "one"
                    | "each"
                    | "every"
                    | "side"
                    | "times"
            )
            && (self.class(x) != Class::Safe || !self.e(x).clinical())
    }

    /// Street addresses in any case, which the pattern pass reads only when capitalised: a house
    /// number, up to three words and a street word ("123 maple street", "1234 elm st, chicago,
    /// il"); and a street named after "on", "off", "to" ("lives on main street", "off liberty road").
    fn streets_any_case(&mut self) {
        const ABBREVIATED: &[&str] = &[
            "st", "ave", "rd", "blvd", "ln", "ct", "pl", "ter", "pkwy", "hwy", "cir", "sq",
        ];
        const NAMED: &[&str] = &[
            "street",
            "road",
            "avenue",
            "lane",
            "boulevard",
            "highway",
            "parkway",
            "terrace",
        ];
        let n = self.toks.len();
        for k in 1..n {
            let word = self.lower(k);
            let abbreviated = ABBREVIATED.contains(&word);
            if !(self.has(k, cue::STREET_WORDS) || abbreviated) || self.toks[k].covered {
                continue;
            }
            let mut s = k;
            while s > 0 && k - s < 3 && self.near(s - 1) && self.street_word(s - 1) {
                s -= 1;
            }
            if s == k {
                continue;
            }
            // The house number right before the first word: "123 ", "12b ".
            let before = &self.text[..self.toks[s].start];
            let lead = before.strip_suffix(' ').unwrap_or("");
            let digits_end = lead
                .trim_end_matches(|c: char| c.is_ascii_lowercase())
                .len();
            let letters = lead.len() - digits_end;
            let number = &lead[..digits_end];
            let digits = number.len() - number.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            let clean = number[..number.len() - digits]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric() && !matches!(c, '/' | '.' | ':' | '-'));
            let mut end = self.toks[k].end;
            let mut last = k + 1;
            if (1..=6).contains(&digits) && letters <= 1 && clean {
                if abbreviated && self.text[end..].starts_with('.') {
                    end += 1;
                }
                let rest = &self.text[end..];
                if (rest.starts_with(", ") || rest.starts_with("., "))
                    && let Some(j) = (last < n).then(|| self.place_words(last, 1)).flatten()
                {
                    last = self.state_tail(j);
                    end = self.toks[last - 1].end;
                }
                let from = lead.len() - letters - digits;
                self.out.push(crate::phi::Candidate::new(
                    from,
                    end,
                    PhiType::Location,
                    "location.street_any_case",
                    P_PLACE,
                ));
                for x in s..last {
                    self.claimed[x] = true;
                }
                continue;
            }
            let named = NAMED.contains(&word)
                && self.before(s).is_some_and(|p| {
                    matches!(
                        self.lower(p),
                        "on" | "off" | "to" | "at" | "down" | "up" | "near" | "onto" | "along"
                    )
                });
            if named {
                self.push(
                    s,
                    k + 1,
                    PhiType::Location,
                    "location.street_named",
                    P_PLACE,
                );
            }
        }
    }

    /// Street addresses said in words, as in spoken identity checks: "sixty two Lewin Road",
    /// "fifteen Babylon Street", "four Park Avenue".
    fn spoken_streets(&mut self) {
        let n = self.toks.len();
        for k in 1..n {
            if !self.has(k, cue::STREET_WORDS) || self.toks[k].covered {
                continue;
            }
            // Up to three words of the street's name, then the house number in words.
            let mut s = k;
            while s > 0 && k - s < 3 && self.near(s - 1) && !self.has(s - 1, cue::NUMBER_WORDS) {
                if self.has(s - 1, cue::VERBS | cue::LEADING_NOISE) {
                    break;
                }
                s -= 1;
            }
            if s == k || s == 0 || !self.near(s - 1) || !self.has(s - 1, cue::NUMBER_WORDS) {
                continue;
            }
            let mut from = s - 1;
            while from > 0 && self.near(from - 1) && self.has(from - 1, cue::NUMBER_WORDS) {
                from -= 1;
            }
            self.push(
                from,
                k + 1,
                PhiType::Location,
                "location.spoken_street",
                P_PLACE,
            );
        }
    }

    /// Wards named after people, with their floor: "on Carver 7", "to farrell 6".
    fn named_units(&mut self) {
        let n = self.toks.len();
        for i in 1..n {
            let Some(p) = self.before(i) else { continue };
            if !matches!(self.lower(p), "on" | "to" | "from") || self.toks[i].covered {
                continue;
            }
            let nameish = matches!(self.class(i), Class::Name | Class::Unknown)
                || self.class(i) == Class::Both && self.e(i).surname() && !self.e(i).frequent();
            let rest = &self.text[self.toks[i].end..];
            let Some(num) = rest.strip_prefix(' ') else {
                continue;
            };
            let digits = num.bytes().take_while(u8::is_ascii_digit).count();
            let after = num.as_bytes().get(digits).copied().unwrap_or(b' ');
            if nameish
                && (1..=2).contains(&digits)
                && !after.is_ascii_alphanumeric()
                && after != b'/'
            {
                let end = self.toks[i].end + 1 + digits;
                self.out.push(crate::phi::Candidate::new(
                    self.toks[i].start,
                    end,
                    PhiType::Location,
                    "location.unit",
                    P_PLACE,
                ));
                self.claimed[i] = true;
            }
        }
    }

    /// A word that names a clinical service, not a place: "urgent", "pain", "rehab".
    fn service_word(&self, x: usize) -> bool {
        let names_places = matches!(
            self.lower(x),
            "city"
                | "regional"
                | "university"
                | "national"
                | "american"
                | "world"
                | "federal"
                | "state"
                | "new"
                | "global"
        );
        self.has(x, cue::GENERIC) && !names_places || SERVICE_EXTRA.contains(&self.lower(x))
    }

    /// The end of the longest listed US place of `min_words` to 3 words starting at token `i`, in
    /// any case ("fall river", "new york").
    fn place_words(&self, i: usize, min_words: usize) -> Option<usize> {
        let mut words = String::new();
        let mut end = None;
        for j in i..(i + 3).min(self.toks.len()) {
            if j > i {
                if !self.near(j - 1) {
                    break;
                }
                words.push(' ');
            }
            words.push_str(self.lower(j));
            if j + 1 - i >= min_words && self.lex.places.contains(words.as_str()) {
                end = Some(j + 1);
            }
        }
        end
    }

    /// Towns in any case after "in", "from", "to", "near", "of": one word that is a town and not a
    /// common English word ("in framingham"), or several that make one ("in fall river").
    fn towns_after_cue(&mut self) {
        let n = self.toks.len();
        // Well-known facilities named without a facility word, in any case ("johns hopkins").
        for i in 0..n {
            if self.toks[i].covered || !self.e(i).place_head() {
                continue;
            }
            let mut words = String::new();
            let mut end = None;
            for j in i..(i + 4).min(n) {
                if j > i {
                    if !(self.near(j - 1) || self.gap(j - 1) == "-") {
                        break;
                    }
                    words.push_str(self.gap(j - 1));
                }
                words.push_str(self.lower(j));
                if self.lex.facilities_lower.contains(words.as_str()) {
                    end = Some(j + 1);
                }
            }
            if let Some(e) = end
                && (e - i > 1
                    || matches!(self.class(i), Class::Name | Class::Unknown | Class::Place))
            {
                let e = self.town_tail(self.facility_tail(e));
                self.push(
                    i,
                    e,
                    PhiType::Location,
                    "location.known_facility_any_case",
                    P_PLACE,
                );
            }
        }
        // ", chicago, il" after a street address.
        for i in 2..n {
            if self.toks[i].covered || self.claimed[i] || self.gap(i - 1) != ", " {
                continue;
            }
            let street = self.toks[i - 1].covered
                && matches!(
                    self.lower(i - 1),
                    "street"
                        | "st"
                        | "avenue"
                        | "ave"
                        | "road"
                        | "rd"
                        | "drive"
                        | "lane"
                        | "ln"
                        | "blvd"
                        | "boulevard"
                        | "way"
                        | "court"
                        | "ct"
                        | "place"
                        | "pl"
                        | "terrace"
                );
            if !street {
                continue;
            }
            if let Some(e) = self.place_words(i, 1) {
                let e = self.state_tail(e);
                self.push(i, e, PhiType::Location, "location.address_town", P_PLACE);
            }
        }
        for i in 1..n {
            if self.claimed[i] || self.toks[i].covered {
                continue;
            }
            // Every town, and every place of several words, starts with a listed place head.
            if !self.e(i).place_head() {
                continue;
            }
            let Some(mut p) = self.before(i) else {
                continue;
            };
            // "in central london", "from northeast portland": a part of town goes with it.
            let mut from = i;
            if DIRECTIONS.contains(&self.lower(p))
                && let Some(q) = self.before(p)
                && !self.claimed[p]
            {
                from = p;
                p = q;
            }
            if !matches!(
                self.lower(p),
                "in" | "from" | "to" | "near" | "of" | "at" | "outside" | "into" | "within"
            ) {
                continue;
            }
            let end = self.place_words(i, 2);
            // "similar to alice brown": a common first name before a surname is the person.
            let person = self.e(i).first >= 1000
                && self.after(i).is_some_and(|j| {
                    self.near(i) && (self.e(j).surname() || self.class(j) == Class::Name)
                });
            let town = self.e(i).city() || self.lex.places.contains(self.lower(i));
            let single = town && !self.e(i).common() && !self.eponym(i) && !person;
            let end = match end {
                Some(e) => e,
                None if single => i + 1,
                None => continue,
            };
            let e = self.state_tail(self.facility_tail(end));
            self.push(
                from,
                e,
                PhiType::Location,
                "location.town_any_case",
                P_PLACE,
            );
        }
    }

    /// "st. ignatius", "ST. BRIGID'S HOME", "saint vincent's": a saint's name is a place.
    fn saints_any_case(&mut self) {
        let n = self.toks.len();
        for i in 0..n.saturating_sub(1) {
            let after_digit =
                self.text[..self.toks[i].start].ends_with(|c: char| c.is_ascii_digit());
            if !matches!(self.lower(i), "st" | "saint" | "ste")
                || self.toks[i].covered
                || after_digit
            {
                continue;
            }
            let g = self.gap(i);
            let k = i + 1;
            if !matches!(g, ". " | " " | ".") || self.toks[k].covered {
                continue;
            }
            // "elm st. john" is not a saint: the word after must be able to name one.
            if !(self.e(k).first >= 200 || self.class(k) != Class::Safe) || self.eponym(k) {
                continue;
            }
            let mut e = k + 1;
            while e < n
                && e - k <= 3
                && self.near(e - 1)
                && (self.has(e, cue::FACILITY_HEADS)
                    || self.has(e, cue::FACILITY_INNER)
                    || matches!(self.class(e), Class::Name | Class::Place))
            {
                e += 1;
            }
            let e = self.town_tail(e);
            self.push(i, e, PhiType::Location, "location.saint_any_case", P_PLACE);
        }
    }
}
