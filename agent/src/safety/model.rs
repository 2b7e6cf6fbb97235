//! The learned risk scorer: one logistic regression per risk category over hashed word and character
//! n-grams, trained offline by `tools/train_risk_model.py` and embedded in the binary.
//!
//! Feature extraction mirrors the trainer exactly (a test checks the trainer's reference scores):
//! apostrophes are dropped, alphanumeric characters are lower-cased, anything else breaks a word;
//! features are `w:word`, `b:word word` and `c:` character 3-5-grams of `" word "`, hashed with
//! 32-bit FNV-1a into a power-of-two table; bucket counts are scaled to unit L2 norm; a category's
//! score is `sigmoid(bias + scale * sum(weight * value))` with int8 weights.

use std::sync::OnceLock;

use serde::Deserialize;

use super::Category;

const MODEL: &[u8] = include_bytes!("../../data/safety/risk_model.bin");

const FNV_OFFSET: u32 = 0x811C_9DC5;
const FNV_PRIME: u32 = 0x0100_0193;

/// Why the embedded weights could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No JSON header line before the weights.
    #[error("risk model: no header line")]
    NoHeader,
    /// The header is not the expected JSON.
    #[error("risk model header: {0}")]
    Header(#[from] serde_json::Error),
    /// A format this build does not read.
    #[error("risk model format {0:?}, expected readi-risk-model/1")]
    Format(String),
    /// The table size is not a power of two.
    #[error("risk model: {0} buckets is not a power of two")]
    Buckets(usize),
    /// The weights do not fill the table.
    #[error("risk model: {got} weight bytes, expected {want}")]
    Size {
        /// Bytes present.
        got: usize,
        /// Bytes the header implies.
        want: usize,
    },
    /// A category the agent needs is missing, or out of order.
    #[error("risk model: category {0} missing or out of order")]
    Category(&'static str),
}

/// The categories the model scores, in the weight file's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelCategory {
    /// Suicidal ideation and behaviour, and self-harm.
    SelfHarm,
    /// Violence or threats toward others.
    HarmToOthers,
    /// Abuse (child, partner, elder, sexual).
    Abuse,
}

impl ModelCategory {
    /// All, in the weight file's order.
    pub const ALL: [ModelCategory; 3] = [
        ModelCategory::SelfHarm,
        ModelCategory::HarmToOthers,
        ModelCategory::Abuse,
    ];

    /// The name in the weight file and the scorer's labels.
    pub fn name(self) -> &'static str {
        match self {
            ModelCategory::SelfHarm => "self_harm",
            ModelCategory::HarmToOthers => "harm_to_others",
            ModelCategory::Abuse => "abuse",
        }
    }

    /// The rule id of its findings.
    pub fn rule(self) -> &'static str {
        match self {
            ModelCategory::SelfHarm => "model.self_harm",
            ModelCategory::HarmToOthers => "model.harm_to_others",
            ModelCategory::Abuse => "model.abuse",
        }
    }

    /// The category its findings carry.
    pub fn category(self) -> Category {
        match self {
            ModelCategory::SelfHarm => Category::SelfHarm,
            ModelCategory::HarmToOthers => Category::HarmToOthers,
            ModelCategory::Abuse => Category::Abuse,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Deserialize)]
struct Header {
    format: String,
    buckets: usize,
    categories: Vec<HeaderCategory>,
}

#[derive(Debug, Deserialize)]
struct HeaderCategory {
    name: String,
    bias: f64,
    scale: f64,
    threshold: f64,
}

/// One category's head.
#[derive(Debug, Clone, Copy)]
struct Head {
    bias: f64,
    scale: f64,
    threshold: f64,
}

/// One word of normalised text, with where it stands in the original (Unicode scalar values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Lower-cased, apostrophes dropped.
    pub text: String,
    /// Start in the original text.
    pub start: usize,
    /// End (exclusive).
    pub end: usize,
}

/// Splits text into the model's words: apostrophes dropped, alphanumerics lower-cased, anything else
/// a break.
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    let mut end = 0;
    for (i, c) in text.chars().enumerate() {
        if matches!(c, '\'' | '`' | '\u{2018}' | '\u{2019}') {
            continue;
        }
        if c.is_alphanumeric() {
            if cur.is_empty() {
                start = i;
            }
            cur.extend(c.to_lowercase());
            end = i + 1;
        } else if !cur.is_empty() {
            out.push(Word {
                text: std::mem::take(&mut cur),
                start,
                end,
            });
        }
    }
    if !cur.is_empty() {
        out.push(Word {
            text: cur,
            start,
            end,
        });
    }
    out
}

fn fnv(parts: &[&[u8]]) -> u32 {
    let mut h = FNV_OFFSET;
    for part in parts {
        for b in *part {
            h ^= u32::from(*b);
            h = h.wrapping_mul(FNV_PRIME);
        }
    }
    h
}

/// Calls `f(kind, i, gram)` for every feature of `words`: kind `w` (word `i`), `b` (words `i`,
/// `i + 1`) or `c` (a character n-gram of word `i`); `gram` is the text after the `x:` prefix.
fn each_feature(words: &[Word], mut f: impl FnMut(u8, usize, &[&str])) {
    for (i, w) in words.iter().enumerate() {
        f(b'w', i, &[&w.text]);
    }
    for (i, pair) in words.windows(2).enumerate() {
        f(b'b', i, &[&pair[0].text, " ", &pair[1].text]);
    }
    let mut padded = String::new();
    let mut bounds = Vec::new();
    for (i, w) in words.iter().enumerate() {
        padded.clear();
        padded.push(' ');
        padded.push_str(&w.text);
        padded.push(' ');
        bounds.clear();
        bounds.extend(padded.char_indices().map(|(b, _)| b));
        bounds.push(padded.len());
        let chars = bounds.len() - 1;
        for n in 3..=5 {
            for s in 0..(chars + 1).saturating_sub(n) {
                f(b'c', i, &[&padded[bounds[s]..bounds[s + n]]]);
            }
        }
    }
}

fn hash_feature(kind: u8, parts: &[&str]) -> u32 {
    let prefix = [kind, b':'];
    let mut all: [&[u8]; 4] = [&prefix, b"", b"", b""];
    for (slot, p) in all[1..].iter_mut().zip(parts) {
        *slot = p.as_bytes();
    }
    fnv(&all)
}

/// An n-gram that pushed a score up, for the explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Driver {
    /// A content word (`swallowed`) or a bigram (`the bottle`).
    pub ngram: String,
    /// Its contribution to the log-odds (for a word: its unigram, its character n-grams and half of
    /// each bigram it is in).
    pub weight: f64,
    /// Start of its words in the original text (Unicode scalar values).
    pub start: usize,
    /// End (exclusive).
    pub end: usize,
    /// A single content word (an anchor for the context reading), not a bigram.
    pub word: bool,
}

/// A category scored at or above its threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelHit {
    /// Which category.
    pub category: ModelCategory,
    /// Probability from the model.
    pub score: f64,
    /// The threshold it reached.
    pub threshold: f64,
    /// The n-grams that contributed most: content words strongest first (the first is where the
    /// context is read), then the strongest bigrams.
    pub drivers: Vec<Driver>,
}

impl ModelHit {
    /// The explanation shown with a finding: the score against its threshold, then each driver with
    /// its contribution to the log-odds.
    pub fn explanation(&self) -> Vec<String> {
        let mut out = vec![format!(
            "score {:.3} >= threshold {:.3}",
            self.score, self.threshold
        )];
        out.extend(
            self.drivers
                .iter()
                .map(|d| format!("\"{}\" {:+.2}", d.ngram, d.weight)),
        );
        out
    }
}

/// How many drivers an explanation names.
const DRIVERS: usize = 5;

/// The loaded weights.
#[derive(Debug)]
pub struct RiskModel {
    mask: u32,
    weights: &'static [u8],
    heads: [Head; 3],
}

impl RiskModel {
    /// The weights compiled into the binary, read once.
    pub fn global() -> &'static RiskModel {
        static MODEL_ONCE: OnceLock<RiskModel> = OnceLock::new();
        // The weights are part of the binary and read by every test run; a broken file is a build
        // defect, not an input problem.
        MODEL_ONCE.get_or_init(|| RiskModel::parse(MODEL).expect("bundled risk model is valid"))
    }

    /// Reads a weight file: a JSON header line, then `buckets * 3` int8 weights, bucket-major.
    pub fn parse(bytes: &'static [u8]) -> Result<RiskModel, ModelError> {
        let nl = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or(ModelError::NoHeader)?;
        let header: Header = serde_json::from_slice(&bytes[..nl])?;
        if header.format != "readi-risk-model/1" {
            return Err(ModelError::Format(header.format));
        }
        if !header.buckets.is_power_of_two() || header.buckets > 1 << 31 {
            return Err(ModelError::Buckets(header.buckets));
        }
        let weights = &bytes[nl + 1..];
        let want = header.buckets * ModelCategory::ALL.len();
        if weights.len() != want {
            return Err(ModelError::Size {
                got: weights.len(),
                want,
            });
        }
        let mut heads = [Head {
            bias: 0.0,
            scale: 0.0,
            threshold: 1.0,
        }; 3];
        for cat in ModelCategory::ALL {
            let h = header
                .categories
                .get(cat.index())
                .filter(|h| h.name == cat.name())
                .ok_or(ModelError::Category(cat.name()))?;
            heads[cat.index()] = Head {
                bias: h.bias,
                scale: h.scale,
                threshold: h.threshold,
            };
        }
        Ok(RiskModel {
            mask: (header.buckets - 1) as u32,
            weights,
            heads,
        })
    }

    fn weight(&self, bucket: u32, cat: usize) -> f64 {
        f64::from(self.weights[bucket as usize * 3 + cat] as i8) * self.heads[cat].scale
    }

    /// The threshold a category's probability must reach.
    pub fn threshold(&self, cat: ModelCategory) -> f64 {
        self.heads[cat.index()].threshold
    }

    /// Sorted buckets with their counts, and the L2 norm of the counts.
    fn vector(&self, words: &[Word]) -> (Vec<(u32, u32)>, f64) {
        let mut buckets = Vec::with_capacity(words.len() * 16);
        each_feature(words, |kind, _, parts| {
            buckets.push(hash_feature(kind, parts) & self.mask)
        });
        buckets.sort_unstable();
        let mut counts: Vec<(u32, u32)> = Vec::with_capacity(buckets.len());
        for b in buckets {
            match counts.last_mut() {
                Some((last, n)) if *last == b => *n += 1,
                _ => counts.push((b, 1)),
            }
        }
        let norm = counts
            .iter()
            .map(|(_, n)| f64::from(*n) * f64::from(*n))
            .sum::<f64>()
            .sqrt();
        (counts, if norm > 0.0 { norm } else { 1.0 })
    }

    /// Probabilities for every category, in [`ModelCategory::ALL`] order.
    pub fn scores(&self, text: &str) -> [f64; 3] {
        self.scores_of(&words(text))
    }

    fn scores_of(&self, words: &[Word]) -> [f64; 3] {
        let (counts, norm) = self.vector(words);
        let mut z = [0.0f64; 3];
        for (b, n) in &counts {
            let v = f64::from(*n) / norm;
            for (k, zk) in z.iter_mut().enumerate() {
                *zk += f64::from(self.weights[*b as usize * 3 + k] as i8) * v;
            }
        }
        let mut out = [0.0; 3];
        for (k, o) in out.iter_mut().enumerate() {
            let logit = self.heads[k].bias + self.heads[k].scale * z[k];
            *o = 1.0 / (1.0 + (-logit).exp());
        }
        out
    }

    /// Every category whose score reaches its threshold, with the n-grams that drove it.
    pub fn assess(&self, text: &str) -> Vec<ModelHit> {
        let words = words(text);
        let scores = self.scores_of(&words);
        let mut hits = Vec::new();
        for cat in ModelCategory::ALL {
            let k = cat.index();
            if scores[k] >= self.heads[k].threshold {
                hits.push(ModelHit {
                    category: cat,
                    score: scores[k],
                    threshold: self.heads[k].threshold,
                    drivers: self.drivers(&words, k),
                });
            }
        }
        hits
    }

    /// The content words with the largest positive contribution to category `k` (each word's own
    /// unigram, its character n-grams and half of each bigram it is in), then the bigrams that
    /// added most. Function words ("i", "of", "to") are left out: they say nothing a clinician can
    /// read, and a context reading anchored on them would be meaningless.
    fn drivers(&self, words: &[Word], k: usize) -> Vec<Driver> {
        let (_, norm) = self.vector(words);
        let mut per_word = vec![0.0f64; words.len()];
        let mut bigrams: Vec<Driver> = Vec::new();
        each_feature(words, |kind, i, parts| {
            let w = self.weight(hash_feature(kind, parts) & self.mask, k) / norm;
            match kind {
                b'b' => {
                    per_word[i] += w / 2.0;
                    per_word[i + 1] += w / 2.0;
                    let ngram = parts.concat();
                    if let Some(d) = bigrams.iter_mut().find(|d| d.ngram == ngram) {
                        d.weight += w;
                    } else {
                        bigrams.push(Driver {
                            ngram,
                            weight: w,
                            start: words[i].start,
                            end: words[i + 1].end,
                            word: true,
                        });
                    }
                }
                _ => per_word[i] += w,
            }
        });
        // One entry per distinct word, at its strongest occurrence.
        let mut content: Vec<Driver> = Vec::new();
        for (i, w) in per_word.iter().enumerate() {
            let text = &words[i].text;
            if *w <= 0.0 || FUNCTION_WORDS.contains(&text.as_str()) {
                continue;
            }
            match content.iter_mut().find(|d| &d.ngram == text) {
                Some(d) if d.weight >= *w => {}
                Some(d) => {
                    d.weight = *w;
                    d.start = words[i].start;
                    d.end = words[i].end;
                }
                None => content.push(Driver {
                    ngram: text.clone(),
                    weight: *w,
                    start: words[i].start,
                    end: words[i].end,
                    word: true,
                }),
            }
        }
        let order =
            |a: &Driver, b: &Driver| b.weight.total_cmp(&a.weight).then(a.start.cmp(&b.start));
        content.sort_by(order);
        content.truncate(DRIVERS);
        bigrams
            .retain(|d| d.weight > 0.0 && d.ngram.split(' ').any(|w| !FUNCTION_WORDS.contains(&w)));
        bigrams.sort_by(order);
        bigrams.truncate(2);
        for d in &mut bigrams {
            d.word = false;
        }
        content.extend(bigrams);
        content
    }
}

/// Words that carry grammar, not risk; never an anchor or a driver by themselves.
const FUNCTION_WORDS: &[&str] = &[
    "a", "about", "after", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but",
    "by", "can", "could", "did", "do", "does", "for", "from", "get", "go", "going", "gonna", "got",
    "had", "has", "have", "he", "her", "him", "his", "how", "i", "if", "im", "in", "is", "it",
    "its", "ive", "just", "me", "my", "of", "on", "or", "our", "out", "she", "so", "some", "that",
    "the", "their", "them", "then", "there", "they", "this", "to", "up", "us", "was", "we", "were",
    "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = include_str!("../../data/safety/risk_model_reference.json");

    #[derive(Deserialize)]
    struct Reference {
        text: String,
        scores: [f64; 3],
    }

    #[test]
    fn the_bundled_weights_load() {
        let m = RiskModel::parse(MODEL).expect("weights load");
        for cat in ModelCategory::ALL {
            let t = m.threshold(cat);
            assert!(t > 0.0 && t < 1.0, "{} threshold {t}", cat.name());
        }
    }

    #[test]
    fn a_damaged_weight_file_is_refused() {
        let nl = MODEL.iter().position(|b| *b == b'\n').expect("header");
        assert!(matches!(
            RiskModel::parse(&MODEL[..MODEL.len() - 1]),
            Err(ModelError::Size { .. })
        ));
        assert!(matches!(
            RiskModel::parse(&MODEL[nl + 1..]),
            Err(ModelError::Header(_)) | Err(ModelError::NoHeader)
        ));
        assert!(matches!(
            RiskModel::parse(b"{\"format\":\"x\",\"buckets\":4,\"categories\":[]}\n"),
            Err(ModelError::Format(_))
        ));
    }

    #[test]
    fn scores_match_the_trainer() {
        let refs: Vec<Reference> = serde_json::from_str(REFERENCE).expect("reference json");
        assert!(refs.len() >= 5);
        let m = RiskModel::global();
        for r in refs {
            let got = m.scores(&r.text);
            for (k, (rust, python)) in got.iter().zip(r.scores).enumerate() {
                assert!(
                    (rust - python).abs() < 1e-4,
                    "{:?} category {k}: rust {rust} python {python}",
                    r.text
                );
            }
        }
    }

    #[test]
    fn scoring_is_deterministic() {
        let m = RiskModel::global();
        let text = "I can't do this anymore, I'm going to take all my pills tonight";
        let a = m.assess(text);
        for _ in 0..3 {
            assert_eq!(m.assess(text), a);
        }
    }

    #[test]
    fn a_hit_explains_itself_with_its_ngrams() {
        let m = RiskModel::global();
        let text = "I'm going to shoot up the school on Monday";
        let hit = m
            .assess(text)
            .into_iter()
            .find(|h| h.category == ModelCategory::HarmToOthers)
            .expect("harm-to-others hit");
        assert!(hit.score >= hit.threshold);
        let top = hit.drivers.first().expect("a driver");
        assert!(top.word && top.weight > 0.0);
        let chars: Vec<char> = text.chars().collect();
        let span: String = chars[top.start..top.end].iter().collect();
        assert_eq!(span.to_lowercase().replace('\'', ""), top.ngram);
        let ex = hit.explanation();
        assert!(ex[0].starts_with("score "), "{ex:?}");
        assert!(ex.len() >= 2, "{ex:?}");
    }

    #[test]
    fn words_keep_their_offsets() {
        let w = words("Café — I can’t");
        let texts: Vec<_> = w
            .iter()
            .map(|w| (w.text.as_str(), w.start, w.end))
            .collect();
        assert_eq!(texts, [("café", 0, 4), ("i", 7, 8), ("cant", 9, 14)]);
    }
}
