//! Token patterns: a small, readable rule language compiled to an index keyed by each rule's first
//! word, so a compliance officer can read every rule and the matcher touches only plausible ones.
//!
//! A pattern is a sequence of elements separated by spaces. An element is one or more alternatives
//! joined by `|`: `word`, `word~` (its inflections: kills, killed, killing), `pre*` (any word with
//! that prefix), `=SI` (that word written in capitals), `@class` (a named word list), `_` (any one
//! token). A trailing `?` makes an element optional; `..N` skips up to N tokens; `(going to | about
//! to)` matches any one of the phrases (`)?` makes the group optional); `$` matches where the
//! sentence ends. Matches never cross a sentence.

use rustc_hash::{FxHashMap, FxHashSet};

use super::text::Token;

/// A rule file line that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct PatternError {
    /// 1-based line in the rule file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Named word lists (`@person`), each entry a single token, optionally inflected or a prefix.
#[derive(Debug, Default, Clone)]
pub struct Classes {
    map: FxHashMap<String, Vec<String>>,
}

impl Classes {
    /// Defines or extends `@name`.
    pub fn define(&mut self, name: &str, entries: impl IntoIterator<Item = String>) {
        self.map.entry(name.to_owned()).or_default().extend(entries);
    }

    /// Whether `word` is listed (literally or by inflection) in `@name`.
    pub fn contains(&self, name: &str, word: &str) -> bool {
        self.map.get(name).is_some_and(|entries| {
            entries.iter().any(|e| {
                if let Some(p) = e.strip_suffix('*') {
                    word.starts_with(p)
                } else if let Some(base) = e.strip_suffix('~') {
                    inflections(base).iter().any(|w| w == word)
                } else {
                    e == word
                }
            })
        })
    }
}

#[derive(Debug, Clone, Default)]
struct Elem {
    words: FxHashSet<Box<str>>,
    prefixes: Vec<Box<str>>,
    upper: Vec<Box<str>>,
    any: bool,
    /// Matches no token: only where the sentence ends (`$`).
    end: bool,
    min: u8,
    max: u8,
}

impl Elem {
    fn accepts(&self, t: &Token) -> bool {
        self.any
            || self.words.contains(&*t.norm)
            || self.prefixes.iter().any(|p| t.norm.starts_with(&**p))
            || (t.upper && self.upper.iter().any(|w| **w == *t.norm))
    }
}

/// Regular inflections of a verb or noun; over-generation is harmless (nonsense never occurs).
pub fn inflections(base: &str) -> Vec<String> {
    let mut v = vec![
        base.to_owned(),
        format!("{base}s"),
        format!("{base}es"),
        format!("{base}ed"),
        format!("{base}d"),
        format!("{base}ing"),
    ];
    if let Some(stem) = base.strip_suffix('e') {
        v.push(format!("{stem}ing"));
    }
    if let Some(stem) = base.strip_suffix('y') {
        v.push(format!("{stem}ies"));
        v.push(format!("{stem}ied"));
    }
    let b = base.as_bytes();
    if b.len() >= 3 {
        let (c1, v1, c2) = (b[b.len() - 3], b[b.len() - 2], b[b.len() - 1]);
        let vowel = |c: u8| b"aeiou".contains(&c);
        if !vowel(c1) && vowel(v1) && !vowel(c2) && !b"wxy".contains(&c2) {
            let last = c2 as char;
            v.push(format!("{base}{last}ing"));
            v.push(format!("{base}{last}ed"));
        }
    }
    v
}

fn add_alternative(
    elem: &mut Elem,
    alt: &str,
    classes: &Classes,
    line: usize,
) -> Result<(), PatternError> {
    let err = |m: String| PatternError { line, message: m };
    if alt == "_" {
        elem.any = true;
    } else if let Some(name) = alt.strip_prefix('@') {
        let entries = classes
            .map
            .get(name)
            .ok_or_else(|| err(format!("unknown class @{name}")))?;
        for e in entries {
            add_alternative(elem, e, classes, line)?;
        }
    } else if let Some(w) = alt.strip_prefix('=') {
        elem.upper.push(w.to_lowercase().into());
    } else if let Some(p) = alt.strip_suffix('*') {
        elem.prefixes.push(p.into());
    } else if let Some(base) = alt.strip_suffix('~') {
        elem.words
            .extend(inflections(base).into_iter().map(String::into_boxed_str));
    } else if alt.is_empty() {
        return Err(err("empty alternative".into()));
    } else {
        elem.words.insert(alt.into());
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Node {
    Elem(Elem),
    /// Alternative phrases; `optional` when followed by `?`.
    Group {
        alts: Vec<Vec<Node>>,
        optional: bool,
    },
}

/// Splits a pattern into chunks, with `(`, `)`, `)?` and a lone `|` as their own chunks.
fn chunks(src: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for mut part in src.split_whitespace() {
        while let Some(rest) = part.strip_prefix('(') {
            out.push("(");
            part = rest;
        }
        let mut closing = Vec::new();
        loop {
            if let Some(rest) = part.strip_suffix(")?") {
                closing.push(")?");
                part = rest;
            } else if let Some(rest) = part.strip_suffix(')') {
                closing.push(")");
                part = rest;
            } else {
                break;
            }
        }
        if !part.is_empty() {
            out.push(part);
        }
        out.extend(closing.into_iter().rev());
    }
    out
}

struct Parser<'a> {
    chunks: Vec<&'a str>,
    pos: usize,
    classes: &'a Classes,
    line: usize,
}

impl Parser<'_> {
    fn err(&self, m: String) -> PatternError {
        PatternError {
            line: self.line,
            message: m,
        }
    }

    /// A sequence up to `)`, `)?`, `|` or the end.
    fn seq(&mut self) -> Result<Vec<Node>, PatternError> {
        let mut nodes = Vec::new();
        while let Some(&c) = self.chunks.get(self.pos) {
            match c {
                ")" | ")?" | "|" => break,
                "(" => {
                    self.pos += 1;
                    let mut alts = vec![self.seq()?];
                    loop {
                        match self.chunks.get(self.pos).copied() {
                            Some("|") => {
                                self.pos += 1;
                                alts.push(self.seq()?);
                            }
                            Some(close @ (")" | ")?")) => {
                                self.pos += 1;
                                if alts.iter().any(Vec::is_empty) {
                                    return Err(self.err("empty phrase in a group".into()));
                                }
                                nodes.push(Node::Group {
                                    alts,
                                    optional: close == ")?",
                                });
                                break;
                            }
                            _ => return Err(self.err("unclosed `(`".into())),
                        }
                    }
                }
                part => {
                    self.pos += 1;
                    nodes.push(Node::Elem(self.elem(part)?));
                }
            }
        }
        Ok(nodes)
    }

    fn elem(&self, part: &str) -> Result<Elem, PatternError> {
        if part == "$" {
            return Ok(Elem {
                end: true,
                min: 1,
                max: 1,
                ..Elem::default()
            });
        }
        if let Some(n) = part.strip_prefix("..") {
            let n: u8 = n
                .parse()
                .map_err(|_| self.err(format!("bad gap {part:?}: want ..N")))?;
            return Ok(Elem {
                any: true,
                min: 0,
                max: n,
                ..Elem::default()
            });
        }
        let (body, optional) = match part.strip_suffix('?') {
            Some(b) if !b.is_empty() => (b, true),
            _ => (part, false),
        };
        let mut e = Elem {
            min: u8::from(!optional),
            max: 1,
            ..Elem::default()
        };
        for alt in body.split('|') {
            add_alternative(&mut e, alt, self.classes, self.line)?;
        }
        Ok(e)
    }
}

/// The words a sequence can start with, or `None` when it can start with anything or nothing.
fn first_words(seq: &[Node], words: &mut Vec<Box<str>>, prefixes: &mut Vec<Box<str>>) -> bool {
    match seq.first() {
        Some(Node::Elem(e)) if e.min > 0 && !e.any => {
            words.extend(e.words.iter().cloned());
            // A capitals-only word is indexed by its lower-case form; the match checks the case.
            words.extend(e.upper.iter().cloned());
            prefixes.extend(e.prefixes.iter().cloned());
            true
        }
        Some(Node::Group {
            alts,
            optional: false,
        }) => alts.iter().all(|a| first_words(a, words, prefixes)),
        _ => false,
    }
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    nodes: Vec<Node>,
    first: Vec<Box<str>>,
    first_prefixes: Vec<Box<str>>,
}

impl Pattern {
    /// Compiles `src` (see the module docs); `line` is for error messages.
    pub fn parse(src: &str, classes: &Classes, line: usize) -> Result<Pattern, PatternError> {
        let mut p = Parser {
            chunks: chunks(src),
            pos: 0,
            classes,
            line,
        };
        let nodes = p.seq()?;
        if p.pos < p.chunks.len() {
            return Err(p.err(format!("unexpected `{}`", p.chunks[p.pos])));
        }
        if nodes.is_empty() {
            return Err(p.err("empty pattern".into()));
        }
        let (mut first, mut first_prefixes) = (Vec::new(), Vec::new());
        if !first_words(&nodes, &mut first, &mut first_prefixes) {
            return Err(
                p.err("a pattern must start with a required word, not a gap or option".into())
            );
        }
        Ok(Pattern {
            nodes,
            first,
            first_prefixes,
        })
    }

    /// Whether the pattern names `word` itself (not through a gap or wildcard).
    pub fn names(&self, word: &str) -> bool {
        fn walk(nodes: &[Node], word: &str) -> bool {
            nodes.iter().any(|n| match n {
                Node::Elem(e) => e.words.contains(word),
                Node::Group { alts, .. } => alts.iter().any(|a| walk(a, word)),
            })
        }
        walk(&self.nodes, word)
    }

    /// The end (exclusive token index) of a match starting at `start`, if any.
    pub fn match_at(&self, toks: &[Token], start: usize) -> Option<usize> {
        let sent = toks[start].sent;
        let mut limit = start;
        while limit < toks.len() && toks[limit].sent == sent {
            limit += 1;
        }
        self.match_within(toks, start, limit)
    }

    /// As `match_at`, with the end of `start`'s sentence already known.
    fn match_within(&self, toks: &[Token], start: usize, sentence_end: usize) -> Option<usize> {
        step(&self.nodes, &toks[..sentence_end], start, &|end| Some(end))
    }
}

/// Matches `nodes` at `at`, then hands the end to `rest`; backtracks over options, gaps and groups.
fn step(
    nodes: &[Node],
    toks: &[Token],
    at: usize,
    rest: &dyn Fn(usize) -> Option<usize>,
) -> Option<usize> {
    let Some((node, tail)) = nodes.split_first() else {
        return rest(at);
    };
    match node {
        Node::Elem(elem) if elem.end => {
            if at == toks.len() {
                step(tail, toks, at, rest)
            } else {
                None
            }
        }
        Node::Elem(elem) if elem.any && elem.max > 1 => {
            // Gaps are lazy: the nearest continuation wins.
            (elem.min as usize..=elem.max as usize)
                .take_while(|skip| at + skip <= toks.len())
                .find_map(|skip| step(tail, toks, at + skip, rest))
        }
        Node::Elem(elem) => {
            if at < toks.len()
                && elem.accepts(&toks[at])
                && let Some(end) = step(tail, toks, at + 1, rest)
            {
                return Some(end);
            }
            if elem.min == 0 {
                return step(tail, toks, at, rest);
            }
            None
        }
        Node::Group { alts, optional } => {
            let then = |end: usize| step(tail, toks, end, rest);
            if let Some(end) = alts.iter().find_map(|a| step(a, toks, at, &then)) {
                return Some(end);
            }
            if *optional {
                return step(tail, toks, at, rest);
            }
            None
        }
    }
}

/// One match: which rule, and the token range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Index of the rule in the set.
    pub rule: usize,
    /// First token.
    pub start: usize,
    /// One past the last token.
    pub end: usize,
}

/// Patterns indexed by their first word.
#[derive(Debug, Default)]
pub struct PatternSet {
    patterns: Vec<Pattern>,
    by_word: FxHashMap<Box<str>, Vec<usize>>,
    by_prefix: FxHashMap<Box<str>, Vec<usize>>,
    /// Patterns that can start with any number (`0*` ... `9*`): tried only at tokens that start
    /// with a digit.
    by_digit: Vec<usize>,
    always: Vec<usize>,
}

impl PatternSet {
    /// Adds a pattern; its index is the number of patterns added before it.
    pub fn push(&mut self, p: Pattern) -> usize {
        let id = self.patterns.len();
        for w in &p.first {
            let ids = self.by_word.entry(w.clone()).or_default();
            if ids.last() != Some(&id) {
                ids.push(id);
            }
        }
        for pre in &p.first_prefixes {
            // Prefixes are indexed by their first three characters; shorter ones are tried always.
            match pre.char_indices().nth(3) {
                Some((at, _)) => self.by_prefix.entry(pre[..at].into()).or_default().push(id),
                None if pre.chars().count() == 3 => {
                    self.by_prefix.entry(pre.clone()).or_default().push(id)
                }
                // A digit prefix ("3*") is tried at numbers only; any other short one at every
                // token. Each pattern once.
                None if pre.bytes().all(|b| b.is_ascii_digit()) => {
                    if self.by_digit.last() != Some(&id) {
                        self.by_digit.push(id);
                    }
                }
                None => {
                    if self.always.last() != Some(&id) {
                        self.always.push(id);
                    }
                }
            }
        }
        self.patterns.push(p);
        id
    }

    /// How many patterns the set holds.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Pattern number `id`.
    pub fn get(&self, id: usize) -> &Pattern {
        &self.patterns[id]
    }

    /// Every match of every pattern, by start token.
    pub fn find_all(&self, toks: &[Token]) -> Vec<Hit> {
        let mut hits = Vec::new();
        // Where each token's sentence ends, computed once rather than per attempt.
        let mut sentence_end = vec![toks.len(); toks.len()];
        for i in (0..toks.len().saturating_sub(1)).rev() {
            sentence_end[i] = if toks[i + 1].sent == toks[i].sent {
                sentence_end[i + 1]
            } else {
                i + 1
            };
        }
        for (i, t) in toks.iter().enumerate() {
            let listed = self.by_word.get(&*t.norm).map_or(&[][..], Vec::as_slice);
            let head = match t.norm.char_indices().nth(3) {
                Some((at, _)) => Some(&t.norm[..at]),
                None if t.norm.chars().count() == 3 => Some(&*t.norm),
                None => None,
            };
            let prefixed = head
                .and_then(|h| self.by_prefix.get(h))
                .map_or(&[][..], Vec::as_slice);
            let numeric = if t.norm.starts_with(|c: char| c.is_ascii_digit()) {
                &self.by_digit[..]
            } else {
                &[][..]
            };
            for &rule in listed
                .iter()
                .chain(prefixed)
                .chain(numeric)
                .chain(&self.always)
            {
                if let Some(end) = self.patterns[rule].match_within(toks, i, sentence_end[i]) {
                    hits.push(Hit {
                        rule,
                        start: i,
                        end,
                    });
                }
            }
        }
        hits.sort_unstable_by_key(|h| (h.start, h.rule));
        hits.dedup();
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::super::text::tokenize;
    use super::*;

    fn set(classes: &Classes, pats: &[&str]) -> PatternSet {
        let mut s = PatternSet::default();
        for (i, p) in pats.iter().enumerate() {
            s.push(Pattern::parse(p, classes, i + 1).unwrap());
        }
        s
    }

    fn spans(s: &PatternSet, text: &str) -> Vec<(usize, usize, usize)> {
        s.find_all(&tokenize(text))
            .iter()
            .map(|h| (h.rule, h.start, h.end))
            .collect()
    }

    #[test]
    fn words_inflections_options_and_gaps() {
        let mut c = Classes::default();
        c.define("self", ["myself".into(), "me".into()]);
        let s = set(
            &c,
            &[
                "kill~ @self",
                "want to die",
                "going to ..2 hurt~ someone",
                "=SI",
                "end it (right now | tonight)?",
            ],
        );
        assert_eq!(spans(&s, "I keep killing myself"), [(0, 2, 4)]);
        assert_eq!(
            spans(&s, "I'm gonna really badly hurt someone"),
            [(2, 2, 8)]
        );
        assert_eq!(spans(&s, "I wanna die"), [(1, 1, 4)]);
        assert_eq!(spans(&s, "si"), []);
        assert_eq!(spans(&s, "denies SI"), [(3, 1, 2)]);
        assert_eq!(spans(&s, "end it right now"), [(4, 0, 4)]);
        let mut c2 = Classes::default();
        c2.define("x", ["a".into()]);
        let ends = set(&c2, &["last post $"]);
        assert_eq!(spans(&ends, "my last post."), [(0, 1, 3)]);
        assert_eq!(spans(&ends, "my last post before vacation"), []);
        assert_eq!(spans(&s, "end it"), [(4, 0, 2)]);
        // Word boundaries are token boundaries: "skilled" is not "killed".
        assert_eq!(spans(&s, "skilled me"), []);
        // Never across a sentence.
        assert_eq!(spans(&s, "I want to. Die."), []);
    }

    #[test]
    fn bad_patterns_name_their_line() {
        let c = Classes::default();
        let e = Pattern::parse("..3 kill", &c, 7).unwrap_err();
        assert_eq!(e.line, 7);
        assert!(Pattern::parse("kill @nope", &c, 1).is_err());
        assert!(Pattern::parse("kill ..x", &c, 1).is_err());
        assert!(Pattern::parse("(a b | c", &c, 1).is_err());
        assert!(Pattern::parse("(a b)? c", &c, 1).is_err());
    }
}
