//! Tokens for the safety rules: lower-cased words in canonical spelling ("I'm gonna" -> `i am going
//! to`), with character offsets, sentence numbers and whether they sit inside quotation marks.

/// One token. Expansions of a contraction share the span of the word they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Canonical lower-case form.
    pub norm: Box<str>,
    /// Start, in Unicode scalar values.
    pub start: usize,
    /// End (exclusive), in Unicode scalar values.
    pub end: usize,
    /// Sentence number; rules and context never cross sentences.
    pub sent: u32,
    /// Inside quotation marks.
    pub quoted: bool,
    /// The original word was written in capitals (`SI`, `HI`), which rules can require.
    pub upper: bool,
}

/// Words whose canonical form is more than one token or differs from the spelling.
fn expand(word: &str) -> Option<&'static [&'static str]> {
    Some(match word {
        "im" => &["i", "am"],
        "ive" => &["i", "have"],
        "youre" => &["you", "are"],
        "gonna" => &["going", "to"],
        "wanna" => &["want", "to"],
        "gotta" => &["got", "to"],
        "hafta" => &["have", "to"],
        "cannot" => &["can", "not"],
        "dont" => &["do", "not"],
        "doesnt" => &["does", "not"],
        "didnt" => &["did", "not"],
        "cant" => &["can", "not"],
        "wont" => &["will", "not"],
        "wouldnt" => &["would", "not"],
        "couldnt" => &["could", "not"],
        "shouldnt" => &["should", "not"],
        "isnt" => &["is", "not"],
        "arent" => &["are", "not"],
        "wasnt" => &["was", "not"],
        "werent" => &["were", "not"],
        "havent" => &["have", "not"],
        "hasnt" => &["has", "not"],
        "hadnt" => &["had", "not"],
        "u" => &["you"],
        "ur" => &["your"],
        "pls" | "plz" => &["please"],
        "w" => &["with"],
        "neighbour" => &["neighbor"],
        // Risk phrases written glued together, and common misspellings of risk words.
        "iwanttodie" | "iwannadie" => &["i", "want", "to", "die"],
        "wanttodie" | "wannadie" => &["want", "to", "die"],
        "killmyself" | "kilmyself" => &["kill", "myself"],
        "killingmyself" => &["killing", "myself"],
        "endmylife" => &["end", "my", "life"],
        "needtoendit" => &["need", "to", "end", "it"],
        "wanttoendit" | "wannaendit" => &["want", "to", "end", "it"],
        "endingmylife" => &["ending", "my", "life"],
        "hangmyself" => &["hang", "myself"],
        "cutmyself" => &["cut", "myself"],
        "hurtmyself" => &["hurt", "myself"],
        "selfharm" | "selfharming" => &["self", "harm"],
        "myslef" | "mysef" | "mysefl" | "myselfe" => &["myself"],
        "suicde" | "sucide" | "suiside" | "suicied" | "suacide" => &["suicide"],
        "sucidal" | "suicdal" | "suisidal" | "suicidel" => &["suicidal"],
        "pils" => &["pills"],
        "overdossed" | "overdoesed" => &["overdosed"],
        "neighbours" => &["neighbors"],
        _ => return None,
    })
}

/// Splits a word with an apostrophe the way it is read: `don't` -> `do not`, `I'll` -> `i will`.
fn push_contraction(word: &str, out: &mut Vec<Box<str>>) -> bool {
    if let Some(stem) = word.strip_suffix("n't") {
        let stem = match stem {
            "ca" => "can",
            "wo" => "will",
            "sha" => "shall",
            "ai" => "is",
            s => s,
        };
        if !stem.is_empty() {
            out.push(stem.into());
        }
        out.push("not".into());
        return true;
    }
    for (suffix, full) in [
        ("'m", "am"),
        ("'re", "are"),
        ("'ve", "have"),
        ("'ll", "will"),
        ("'d", "would"),
    ] {
        if let Some(stem) = word.strip_suffix(suffix)
            && !stem.is_empty()
        {
            out.push(stem.into());
            out.push(full.into());
            return true;
        }
    }
    if let Some(stem) = word.strip_suffix("'s")
        && !stem.is_empty()
    {
        out.push(stem.into());
        out.push("'s".into());
        return true;
    }
    false
}

/// The next word after `i`, lower-cased, for a one-word lookahead.
fn next_word(chars: &[char], mut i: usize) -> String {
    while i < chars.len() && !is_word_char(chars[i]) {
        if !chars[i].is_whitespace() && chars[i] != '-' {
            return String::new();
        }
        i += 1;
    }
    chars[i..]
        .iter()
        .take_while(|c| is_word_char(**c))
        .flat_map(|c| c.to_lowercase())
        .collect()
}

/// "my self harm" is self-harm, not "myself harm".
fn is_self_compound(next: &str) -> bool {
    matches!(
        next,
        "harm"
            | "harming"
            | "harmed"
            | "harms"
            | "injury"
            | "injuries"
            | "injuring"
            | "injure"
            | "injurious"
            | "mutilation"
            | "mutilating"
            | "destructive"
            | "destruction"
            | "care"
            | "esteem"
            | "worth"
            | "help"
            | "image"
            | "control"
            | "doubt"
            | "hatred"
            | "hate"
            | "loathing"
            | "medicate"
            | "medicating"
            | "medication"
    )
}

/// Units of a dose, a weight or a height that are often written glued to their number.
const UNITS: &[&str] = &[
    "mg", "mgs", "g", "gm", "gms", "mcg", "ug", "ml", "kg", "iu", "ft", "m", "cm", "lb", "lbs", "x",
];

/// Where the unit starts in a number glued to a unit ("500mg" -> 3), if `word` is one.
fn unit_split(word: &str) -> Option<usize> {
    let at = word.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    (at > 0 && word.as_bytes()[0].is_ascii_digit() && UNITS.contains(&&word[at..])).then_some(at)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '`')
}

/// Tokenizes `text`. Punctuation that matters to rules and scope (`, ; : / + ( )`) becomes its own
/// token; `.` `!` `?` and line breaks end a sentence.
pub fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<Token> = Vec::with_capacity(chars.len() / 4);
    let mut sent = 0u32;
    let mut quoted = false;
    let mut i = 0;
    let mut parts: Vec<Box<str>> = Vec::with_capacity(2);
    let mut word = String::new();
    while i < chars.len() {
        let c = chars[i];
        if is_word_char(c) {
            let start = i;
            word.clear();
            let mut upper = true;
            while i < chars.len() {
                let c = chars[i];
                if is_word_char(c) {
                    upper &= !c.is_lowercase();
                    word.extend(c.to_lowercase());
                    i += 1;
                } else if is_apostrophe(c) && i + 1 < chars.len() && is_word_char(chars[i + 1]) {
                    word.push('\'');
                    i += 1;
                } else if c == '.'
                    && i + 1 < chars.len()
                    && chars[i + 1].is_ascii_digit()
                    && chars[i - 1].is_ascii_digit()
                {
                    word.push('.');
                    i += 1;
                } else {
                    break;
                }
            }
            parts.clear();
            if let Some(at) = unit_split(&word) {
                // "500mg", "10g", "20ft": the number and its unit, read as two words.
                parts.push(word[..at].into());
                parts.push(word[at..].into());
            } else if let Some(exp) = expand(&word) {
                parts.extend(exp.iter().map(|s| Box::<str>::from(*s)));
            } else if !(word.contains('\'') && push_contraction(&word, &mut parts)) {
                parts.push(word.as_str().into());
            }
            for p in parts.drain(..) {
                // "my self", "him self": one reflexive, as the lexicons spell it.
                if &*p == "self"
                    && !is_self_compound(&next_word(&chars, i))
                    && let Some(prev) = out.last_mut()
                    && prev.sent == sent
                    && matches!(&*prev.norm, "my" | "him" | "her" | "your" | "them")
                {
                    prev.norm = format!("{}self", prev.norm).into();
                    prev.end = i;
                    continue;
                }
                out.push(Token {
                    norm: p,
                    start,
                    end: i,
                    sent,
                    quoted,
                    upper: upper && i - start > 1,
                });
            }
            continue;
        }
        match c {
            '.' | '!' | '?' | '\n' | '\u{2026}' => {
                if out.last().is_some_and(|t| t.sent == sent) {
                    sent += 1;
                }
                if c == '\n' {
                    quoted = false;
                }
            }
            '"' | '\u{201C}' | '\u{201D}' => {
                quoted = match c {
                    '\u{201C}' => true,
                    '\u{201D}' => false,
                    _ => !quoted,
                };
            }
            ',' | ';' | ':' | '/' | '+' | '(' | ')' | '-' | '&' => {
                let s: &str = match c {
                    ',' => ",",
                    ';' => ";",
                    ':' => ":",
                    '/' => "/",
                    '+' => "+",
                    '(' => "(",
                    ')' => ")",
                    '&' => "and",
                    _ => "-",
                };
                // A hyphen inside a word ("self-harm") joins nothing: the parts are read as words.
                let inner_hyphen = c == '-'
                    && i > 0
                    && is_word_char(chars[i - 1])
                    && chars.get(i + 1).is_some_and(|n| is_word_char(*n));
                if !inner_hyphen {
                    out.push(Token {
                        norm: s.into(),
                        start: i,
                        end: i + 1,
                        sent,
                        quoted,
                        upper: false,
                    });
                }
            }
            _ => {}
        }
        i += 1;
    }
    // A message written wholly in quotation marks is the writer's own words, not reported speech
    // (prompts pasted as `"Which drugs ...?"`).
    if out.iter().all(|t| t.quoted) {
        for t in &mut out {
            t.quoted = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norms(text: &str) -> Vec<String> {
        tokenize(text).iter().map(|t| t.norm.to_string()).collect()
    }

    #[test]
    fn contractions_and_slang_read_as_words() {
        assert_eq!(
            norms("I'm gonna kill my self"),
            ["i", "am", "going", "to", "kill", "myself"]
        );
        assert_eq!(norms("I don’t wanna"), ["i", "do", "not", "want", "to"]);
        assert_eq!(norms("can't won't"), ["can", "not", "will", "not"]);
        assert_eq!(norms("self-harm"), ["self", "harm"]);
        assert_eq!(norms("my self harm"), ["my", "self", "harm"]);
        assert_eq!(norms("denies SI/HI"), ["denies", "si", "/", "hi"]);
        assert_eq!(norms("40x500mg 2nd"), ["40x500mg", "2nd"]);
        assert_eq!(
            norms("take 500mg or 10g"),
            ["take", "500", "mg", "or", "10", "g"]
        );
    }

    #[test]
    fn offsets_count_characters_and_sentences_split() {
        let t = tokenize("Café. I can't");
        assert_eq!((t[0].start, t[0].end, t[0].sent), (0, 4, 0));
        assert_eq!((t[1].start, t[1].sent), (6, 1));
        assert_eq!((t[2].norm.as_ref(), t[2].start, t[2].end), ("can", 8, 13));
        assert_eq!((t[3].norm.as_ref(), t[3].start, t[3].end), ("not", 8, 13));
    }

    #[test]
    fn quotes_and_capitals_are_marked() {
        let t = tokenize("If you say \"I hate them\" then SI");
        assert!(!t[2].quoted && t[3].quoted && t[5].quoted && !t[6].quoted);
        assert!(t[7].upper && !t[0].upper);
    }
}
