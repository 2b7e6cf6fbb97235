//! The vendored word lists (agent/data, see PROVENANCE.md), loaded once into hash sets.

// Fx hashing: the keys are the product's own word lists, not attacker-chosen, so DoS-resistant
// SipHash buys nothing and costs ~8% of detection time.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::OnceLock;

const FIRST_NAMES: &str = include_str!("../../data/first_names.tsv");
const SURNAMES: &str = include_str!("../../data/surnames.txt");
const WORDS_COMMON: &str = include_str!("../../data/words_common.txt");
const WORDS_EXTENDED: &str = include_str!("../../data/words_extended.txt");
const US_CITIES: &str = include_str!("../../data/us_cities.txt");
const US_COUNTIES: &str = include_str!("../../data/us_counties.txt");
const CLINICAL_ALLOW: &str = include_str!("../../data/clinical_allow.txt");
const FACILITIES: &str = include_str!("../../data/facilities.txt");

/// Lower-case word sets used by the name and place rules.
#[derive(Debug)]
pub struct Lexicon {
    /// First name -> how many people were given it (SSA), a measure of how name-like it is.
    pub(crate) first: HashMap<&'static str, u32>,
    /// Surnames (Census).
    pub(crate) last: HashSet<&'static str>,
    /// Common English words (SCOWL default size).
    pub(crate) common: HashSet<&'static str>,
    /// Rarer English words (SCOWL huge minus common).
    pub(crate) extended: HashSet<&'static str>,
    /// Clinical vocabulary never taken for a name.
    pub(crate) allow: HashSet<String>,
    /// US cities and counties, lower case, whole names ("san francisco").
    pub(crate) places: HashSet<String>,
    /// Facilities known without a facility word, exact case.
    pub(crate) facilities: HashSet<&'static str>,
    /// Longest place or facility name, in words.
    pub(crate) max_place_words: usize,
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
        let first = lines(FIRST_NAMES)
            .filter_map(|l| {
                let (n, c) = l.split_once('\t')?;
                Some((n, c.parse().ok()?))
            })
            .collect();
        let allow: HashSet<String> = lines(CLINICAL_ALLOW)
            .flat_map(str::split_whitespace)
            .map(str::to_lowercase)
            .collect();
        let places: HashSet<String> = lines(US_CITIES)
            .chain(lines(US_COUNTIES))
            .map(str::to_lowercase)
            .collect();
        let facilities: HashSet<&'static str> = lines(FACILITIES).collect();
        let max_place_words = places
            .iter()
            .map(|p| p.split_whitespace().count())
            .chain(facilities.iter().map(|f| f.split_whitespace().count()))
            .max()
            .unwrap_or(1);
        Lexicon {
            first,
            last: lines(SURNAMES).collect(),
            common: lines(WORDS_COMMON).collect(),
            extended: lines(WORDS_EXTENDED).collect(),
            allow,
            places,
            facilities,
            max_place_words,
        }
    }

    /// How many people bear `lower` as a first name (0 if it is not one).
    pub fn first_name_count(&self, lower: &str) -> u32 {
        self.first.get(lower).copied().unwrap_or(0)
    }

    /// Whether `lower` is a Census surname.
    pub fn is_surname(&self, lower: &str) -> bool {
        self.last.contains(lower)
    }

    /// Whether `lower` is an English word (common or rare).
    pub fn is_word(&self, lower: &str) -> bool {
        self.common.contains(lower) || self.extended.contains(lower)
    }

    /// First names and surnames to draw surrogates from: frequent, not English words, sorted.
    pub fn surrogate_names(&self) -> (&[&'static str], &[&'static str]) {
        static NAMES: OnceLock<(Vec<&'static str>, Vec<&'static str>)> = OnceLock::new();
        let (f, l) = NAMES.get_or_init(|| {
            let mut first: Vec<&str> = self
                .first
                .iter()
                .filter(|(n, c)| **c >= 200_000 && !self.is_word(n))
                .map(|(n, _)| *n)
                .collect();
            first.sort_unstable();
            let mut last: Vec<&str> = self
                .last
                .iter()
                .filter(|n| {
                    (4..=9).contains(&n.len()) && !self.is_word(n) && !self.first.contains_key(*n)
                })
                .copied()
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
        self.common.contains(lower)
    }

    /// Whether `lower` is clinical vocabulary that must survive redaction.
    pub fn is_clinical(&self, lower: &str) -> bool {
        self.allow.contains(lower)
    }
}
