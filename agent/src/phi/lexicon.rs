//! The vendored word lists (agent/data, see PROVENANCE.md), loaded once into hash sets.

// Fx hashing: the keys are the product's own word lists, not attacker-chosen, so DoS-resistant
// SipHash buys nothing and costs ~8% of detection time.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::borrow::Cow;
use std::sync::OnceLock;

const FIRST_NAMES: &str = include_str!("../../data/first_names.tsv");
const SURNAMES: &str = include_str!("../../data/surnames.txt");
const WORDS_COMMON: &str = include_str!("../../data/words_common.txt");
const WORDS_EXTENDED: &str = include_str!("../../data/words_extended.txt");
const WORDS_REGIONAL: &str = include_str!("../../data/words_regional.txt");
const US_CITIES: &str = include_str!("../../data/us_cities.txt");
const US_COUNTIES: &str = include_str!("../../data/us_counties.txt");
const WORLD_CITIES: &str = include_str!("../../data/world_cities.txt");
const CLINICAL_ALLOW: &str = include_str!("../../data/clinical_allow.txt");
const FACILITIES: &str = include_str!("../../data/facilities.txt");
const WORDS_FREQUENT: &str = include_str!("../../data/words_frequent.txt");
const CLINICAL_VOCAB: &str = include_str!("../../data/clinical_vocab.txt");
const TRANSCRIPT_WORDS: &str = include_str!("../../data/transcript_words.txt");
const DRUGS: &str = include_str!("../../data/drugs.txt");
const PROPER_SAFE: &str = include_str!("../../data/proper_safe.txt");
const SURNAMES_COMMON: &str = include_str!("../../data/surnames_common.txt");

/// What the word lists say about one lower-case word, found with a single lookup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    /// How many people were given it as a first name (SSA), a measure of how name-like it is.
    pub(crate) first: u32,
    flags: u16,
}

impl Entry {
    const SURNAME: u16 = 1;
    const COMMON: u16 = 2;
    const EXTENDED: u16 = 4;
    const CLINICAL: u16 = 8;
    const PLACE_HEAD: u16 = 16;
    const FREQUENT: u16 = 32;
    const VOCAB: u16 = 64;
    const DRUG: u16 = 128;
    const PROPER_SAFE: u16 = 256;
    const CITY: u16 = 512;
    const SURNAME_COMMON: u16 = 1024;

    /// A Census surname.
    pub(crate) fn surname(self) -> bool {
        self.flags & Self::SURNAME != 0
    }

    /// A common English word (SCOWL default size).
    pub(crate) fn common(self) -> bool {
        self.flags & Self::COMMON != 0
    }

    /// An English word, common or rare.
    pub(crate) fn word(self) -> bool {
        self.flags & (Self::COMMON | Self::EXTENDED) != 0
    }

    /// Clinical vocabulary never taken for a name.
    pub(crate) fn clinical(self) -> bool {
        self.flags & Self::CLINICAL != 0
    }

    /// One of the most frequent English words ("will", "may", "bill"): a name only in context.
    pub(crate) fn frequent(self) -> bool {
        self.flags & Self::FREQUENT != 0
    }

    /// Clinical shorthand, terms and transcript tokens (`clinical_vocab.txt`), drug names or
    /// capitalised words that are not PHI (countries, languages): safe unless the context names a person.
    pub(crate) fn safe(self) -> bool {
        self.flags & (Self::VOCAB | Self::DRUG | Self::PROPER_SAFE | Self::CLINICAL) != 0
    }

    /// Clinical shorthand, terms and transcript tokens: never a name or place without a title.
    pub(crate) fn vocab(self) -> bool {
        self.flags & Self::VOCAB != 0
    }

    /// In some list that says what the word is (being the first word of a place says nothing alone).
    pub(crate) fn listed(self) -> bool {
        self.first > 0 || self.flags & !Self::PLACE_HEAD != 0
    }

    /// One of the 10,000 most frequent surnames (1990 Census).
    pub(crate) fn common_surname(self) -> bool {
        self.flags & Self::SURNAME_COMMON != 0
    }

    /// A capitalised word that is not PHI (a country, a language).
    pub(crate) fn proper_safe(self) -> bool {
        self.flags & Self::PROPER_SAFE != 0
    }

    /// A drug name.
    pub(crate) fn drug(self) -> bool {
        self.flags & Self::DRUG != 0
    }

    /// A one-word US city or county.
    pub(crate) fn city(self) -> bool {
        self.flags & Self::CITY != 0
    }

    /// A first name given at least 200 times or a Census surname.
    pub(crate) fn nameish(self) -> bool {
        self.first >= 200 || self.surname()
    }

    /// The first word of a known place or facility: no place can start at a word without it.
    pub(crate) fn place_head(self) -> bool {
        self.flags & Self::PLACE_HEAD != 0
    }
}

/// Lower-case word lists used by the name and place rules.
#[derive(Debug)]
pub struct Lexicon {
    /// Every listed word with what each list says about it: one hash per token, not one per list.
    words: HashMap<Cow<'static, str>, Entry>,
    /// US cities and counties, lower case, whole names ("san francisco").
    pub(crate) places: HashSet<String>,
    /// Facilities known without a facility word, exact case.
    pub(crate) facilities: HashSet<&'static str>,
    /// The same facilities in lower case, for text written in one case.
    pub(crate) facilities_lower: HashSet<String>,
    /// Longest place or facility name, in words.
    pub(crate) max_place_words: usize,
}

/// The first word of `name` as the token pass cuts words: letters with inner apostrophes or hyphens.
fn first_word(name: &str) -> &str {
    let mut end = 0;
    let mut chars = name.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let joins = (c == '\'' || c == '\u{2019}' || c == '-')
            && end > 0
            && chars.peek().is_some_and(|&(_, d)| d.is_alphabetic());
        if !(c.is_alphabetic() || joins) {
            break;
        }
        end = i + c.len_utf8();
    }
    &name[..end]
}

fn lines(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

impl Lexicon {
    /// The process-wide lexicon.
    pub fn global() -> &'static Lexicon {
        static LEXICON: OnceLock<Lexicon> = OnceLock::new();
        LEXICON.get_or_init(Lexicon::load)
    }

    fn load() -> Lexicon {
        let mut words: HashMap<Cow<'static, str>, Entry> = HashMap::default();
        for l in lines(FIRST_NAMES) {
            if let Some((n, c)) = l.split_once('\t')
                && let Ok(c) = c.parse()
            {
                words.entry(Cow::Borrowed(n)).or_default().first = c;
            }
        }
        let mut flag = |w: Cow<'static, str>, f: u16| words.entry(w).or_default().flags |= f;
        lines(SURNAMES).for_each(|w| flag(Cow::Borrowed(w), Entry::SURNAME));
        lines(WORDS_COMMON).for_each(|w| flag(Cow::Borrowed(w), Entry::COMMON));
        lines(WORDS_EXTENDED)
            .chain(lines(WORDS_REGIONAL))
            .for_each(|w| flag(Cow::Borrowed(w), Entry::EXTENDED));
        lines(CLINICAL_ALLOW)
            .flat_map(str::split_whitespace)
            .for_each(|w| flag(Cow::Owned(w.to_lowercase()), Entry::CLINICAL));
        lines(WORDS_FREQUENT).for_each(|w| flag(Cow::Borrowed(w), Entry::FREQUENT));
        lines(CLINICAL_VOCAB)
            .chain(lines(TRANSCRIPT_WORDS))
            .for_each(|w| flag(Cow::Borrowed(w), Entry::VOCAB));
        lines(DRUGS).for_each(|w| flag(Cow::Borrowed(w), Entry::DRUG));
        lines(PROPER_SAFE).for_each(|w| flag(Cow::Borrowed(w), Entry::PROPER_SAFE));
        lines(SURNAMES_COMMON).for_each(|w| flag(Cow::Borrowed(w), Entry::SURNAME_COMMON));
        let mut places: HashSet<String> = lines(US_CITIES)
            .chain(lines(US_COUNTIES))
            .map(str::to_lowercase)
            .collect();
        for place in places.iter().filter(|p| !p.contains(' ')) {
            words.entry(Cow::Owned(place.clone())).or_default().flags |= Entry::CITY;
        }
        // Cities elsewhere are places where the words around say so ("in tromso", "hospital in
        // porto alegre"), but not towns by themselves: many are words or names in English.
        places.extend(lines(WORLD_CITIES).map(str::to_owned));
        let facilities: HashSet<&'static str> = lines(FACILITIES).collect();
        for name in places
            .iter()
            .map(String::as_str)
            .chain(facilities.iter().copied())
        {
            let head = first_word(name).to_lowercase();
            words.entry(Cow::Owned(head)).or_default().flags |= Entry::PLACE_HEAD;
        }
        let max_place_words = places
            .iter()
            .map(|p| p.split_whitespace().count())
            .chain(facilities.iter().map(|f| f.split_whitespace().count()))
            .max()
            .unwrap_or(1);
        Lexicon {
            words,
            places,
            facilities_lower: facilities.iter().map(|f| f.to_lowercase()).collect(),
            facilities,
            max_place_words,
        }
    }

    /// What the lists say about `lower` (all false and zero when it is in none).
    pub(crate) fn entry(&self, lower: &str) -> Entry {
        self.words.get(lower).copied().unwrap_or_default()
    }

    /// How many people bear `lower` as a first name (0 if it is not one).
    pub fn first_name_count(&self, lower: &str) -> u32 {
        self.entry(lower).first
    }

    /// Whether `lower` is a Census surname.
    pub fn is_surname(&self, lower: &str) -> bool {
        self.entry(lower).surname()
    }

    /// Whether `lower` is an English word (common or rare).
    pub fn is_word(&self, lower: &str) -> bool {
        self.entry(lower).word()
    }

    /// First names and surnames to draw surrogates from: frequent, not English words, sorted.
    pub fn surrogate_names(&self) -> (&[&'static str], &[&'static str]) {
        static NAMES: OnceLock<(Vec<&'static str>, Vec<&'static str>)> = OnceLock::new();
        let (f, l) = NAMES.get_or_init(|| {
            let borrowed = |(w, e): (&Cow<'static, str>, &Entry)| match w {
                Cow::Borrowed(w) => Some((*w, *e)),
                Cow::Owned(_) => None,
            };
            let mut first: Vec<&str> = self
                .words
                .iter()
                .filter_map(borrowed)
                .filter(|(_, e)| e.first >= 200_000 && !e.word())
                .map(|(n, _)| n)
                .collect();
            first.sort_unstable();
            let mut last: Vec<&str> = self
                .words
                .iter()
                .filter_map(borrowed)
                .filter(|(n, e)| {
                    e.surname() && (4..=9).contains(&n.len()) && !e.word() && e.first == 0
                })
                .map(|(n, _)| n)
                .collect();
            last.sort_unstable();
            let last = last.into_iter().step_by(37).collect();
            (first, last)
        });
        (f, l)
    }

    /// Town names to draw place surrogates from, sorted.
    pub fn surrogate_places(&self) -> &[&'static str] {
        static PLACES: OnceLock<Vec<&'static str>> = OnceLock::new();
        PLACES.get_or_init(|| {
            let mut v: Vec<&str> = lines(US_CITIES).filter(|c| !c.contains(' ')).collect();
            v.sort_unstable();
            v.into_iter().step_by(11).collect()
        })
    }

    /// Whether `lower` is a common English word.
    pub fn is_common_word(&self, lower: &str) -> bool {
        self.entry(lower).common()
    }

    /// Whether `lower` is clinical vocabulary that must survive redaction.
    pub fn is_clinical(&self, lower: &str) -> bool {
        self.entry(lower).clinical()
    }
}
