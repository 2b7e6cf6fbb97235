//! The rule book: hand-written rules (`data/safety/rules.txt`), Suicide Risk Lexicon phrases and the
//! medspaCy / negspaCy context triggers, parsed once into indexed pattern sets.

use super::pattern::{Classes, Hit, Pattern, PatternError, PatternSet};
use super::text::{Token, tokenize};
use super::{Category, Role, Severity};

const RULES: &str = include_str!("../../data/safety/rules.txt");
const SRL: &str = include_str!("../../data/safety/srl_phrases.tsv");
const MEDSPACY: &str = include_str!("../../data/safety/medspacy_context_rules.en.json");
const NEGSPACY: &str = include_str!("../../data/safety/negspacy_en_clinical.json");

/// Whose experience a target describes by its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Whoever is speaking (the patient in chat; the patient in a note).
    Speaker,
    /// Third person: someone else in chat, the patient in a clinician's note.
    Third,
    /// Always someone else ("kill yourself").
    Other,
    /// Always the patient, whatever relative is in scope ("my uncle touched me").
    Patient,
}

/// What a context trigger does to the targets in its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Negated ("denies").
    Negated,
    /// In the past ("hx of").
    Historical,
    /// Now ("again", "lately"): overrides a farther historical cue.
    Current,
    /// Conditional or topic-only ("if", "screened for").
    Hypothetical,
    /// Someone else's experience ("brother").
    Other,
    /// The patient's own ("pt", "I"): overrides a farther `Other`.
    Patient,
    /// Someone else's words ("saying that ...").
    Reported,
    /// Ends every scope.
    Terminate,
    /// Looks like a trigger but is not ("no one", "can't stop").
    Pseudo,
    /// "going to": C-SSRS intent.
    Intent,
    /// "want to": active ideation.
    Desire,
    /// "should", "deserve": a wish.
    Wish,
    /// "how to": asking for a method.
    Request,
    /// Discussed as a topic ("warning signs of", "what is"): never a disclosure.
    Topic,
    /// A game, a story, or someone asking how to help: not a disclosure, whatever the framing.
    Aside,
    /// "tonight", "plan": a plan.
    Plan,
    /// "tried to": behaviour.
    Attempt,
    /// A lethal means in scope.
    Method,
}

/// How far a trigger reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Targets after it.
    Forward,
    /// Targets before it.
    Backward,
    /// Either side.
    Both,
}

/// Which roles a rule applies to, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    const ALL_INPUT: Roles = Roles(0b011);
    const ALL: Roles = Roles(0b111);

    fn bit(role: Role) -> u8 {
        match role {
            Role::User => 1,
            Role::Note => 2,
            Role::Assistant => 4,
        }
    }

    /// Whether `role` is in the set.
    pub fn has(self, role: Role) -> bool {
        self.0 & Self::bit(role) != 0
    }
}

/// A target rule's meaning.
#[derive(Debug, Clone)]
pub struct Target {
    /// Rule id, shown with every finding.
    pub id: &'static str,
    /// What it finds.
    pub category: Category,
    /// Severity before context cues.
    pub severity: Severity,
    /// Whose experience by its own words.
    pub who: Who,
    /// Roles it applies to.
    pub roles: Roles,
    /// Needs an intent, desire, wish, request, plan or attempt cue.
    pub framed: bool,
    /// A mention is already the risk ("binge and purge"), even at low severity.
    pub present: bool,
    /// In the past by its own words ("used to cut") unless a cue says now.
    pub past: bool,
    /// In a reply that urges emergency care now, read as what the user took (not a method).
    pub urgent_ok: bool,
    /// For a model-output rule: the risk category the reply itself carries (`carries=`), listed
    /// beside the output category when the finding is affirmed ("how to poison someone" is harmful
    /// instructions that carry harm to others). It never escalates: a reply is not the patient's risk.
    pub carries: Option<Category>,
    /// A weak cue from the lexicon (`cue` or `means` in srl_phrases.tsv): counts only when the
    /// message corroborates it (see `Assessor::findings`).
    pub cue: Option<Cue>,
}

/// What a weak lexicon phrase is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    /// An ideation or self-injury cue ("giving up", "no way out", "scars").
    Cue,
    /// A lethal means ("bridge", "pills", "rope"): never counts without a cue or a rule finding.
    Means,
}

impl Target {
    /// The target a learned-scorer finding is read as: the speaker's own, in user and note text,
    /// unframed, at the lowest severity that escalates; context cues raise it as they do a rule's.
    pub fn model(cat: super::model::ModelCategory) -> Target {
        Target::new(cat.rule(), cat.category(), Severity::WishToBeDead)
    }

    /// A target with the defaults: the speaker's own, in user and note text, unframed.
    fn new(id: &'static str, category: Category, severity: Severity) -> Target {
        Target {
            id,
            category,
            severity,
            who: Who::Speaker,
            roles: Roles::ALL_INPUT,
            framed: false,
            present: false,
            past: false,
            urgent_ok: false,
            carries: None,
            cue: None,
        }
    }
}

/// A context trigger's meaning.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// Rule id.
    pub id: &'static str,
    /// Effect.
    pub kind: Kind,
    /// Reach.
    pub direction: Direction,
    /// Tokens between the trigger and a target, at most.
    pub window: usize,
    /// Roles it applies to.
    pub roles: Roles,
}

/// Every rule, compiled.
#[derive(Debug, Default)]
pub struct RuleBook {
    /// Target patterns; `targets_meta[i]` describes pattern `i`.
    pub targets: PatternSet,
    /// Meaning of each target pattern.
    pub targets_meta: Vec<Target>,
    /// The target patterns that apply to each role (user, note, assistant), with the index in
    /// `targets` of each, so a text is matched only against its own role's rules (reply rules
    /// cost nothing on patients' text).
    role_targets: Vec<(PatternSet, Vec<usize>)>,
    /// The context triggers that apply to each role, likewise.
    role_triggers: Vec<(PatternSet, Vec<usize>)>,
    /// Context trigger patterns.
    pub triggers: PatternSet,
    /// Meaning of each trigger pattern.
    pub triggers_meta: Vec<Trigger>,
    /// Idioms and benign uses.
    pub nots: PatternSet,
    /// Ids of the idiom rules.
    pub nots_meta: Vec<&'static str>,
    /// Replies that acknowledge risk or point to help.
    pub safe: PatternSet,
    /// Replies that urge emergency care now (`urgent` lines).
    pub urgent: PatternSet,
}

/// A rule that does not load, with where it came from.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A line of rules.txt.
    #[error("rules.txt {0}")]
    Rules(#[from] PatternError),
    /// The lexicon table.
    #[error("srl_phrases.tsv line {0}: {1}")]
    Lexicon(usize, String),
    /// The ConText or NegEx trigger files.
    #[error("{0}: {1}")]
    Context(&'static str, String),
}

fn category(s: &str) -> Option<Category> {
    Some(match s {
        "suicidal_ideation" => Category::SuicidalIdeation,
        "suicidal_behavior" => Category::SuicidalBehavior,
        "self_harm" => Category::SelfHarm,
        "harm_to_others" => Category::HarmToOthers,
        "abuse" => Category::Abuse,
        "harmful_instructions" => Category::HarmfulInstructions,
        "encourages_harm" => Category::EncouragesHarm,
        "inflammatory" => Category::Inflammatory,
        _ => return None,
    })
}

fn severity(s: &str) -> Option<Severity> {
    Some(match s {
        "low" => Severity::Low,
        "wish_to_be_dead" => Severity::WishToBeDead,
        "active_ideation" => Severity::ActiveIdeation,
        "method" => Severity::Method,
        "intent" => Severity::Intent,
        "plan" => Severity::Plan,
        "behavior" => Severity::Behavior,
        _ => return None,
    })
}

fn kind(s: &str) -> Option<Kind> {
    Some(match s {
        "negated" => Kind::Negated,
        "historical" => Kind::Historical,
        "current" => Kind::Current,
        "hypothetical" => Kind::Hypothetical,
        "topic" => Kind::Topic,
        "aside" => Kind::Aside,
        "other" => Kind::Other,
        "patient" => Kind::Patient,
        "reported" => Kind::Reported,
        "terminate" => Kind::Terminate,
        "pseudo" => Kind::Pseudo,
        "intent" => Kind::Intent,
        "desire" => Kind::Desire,
        "wish" => Kind::Wish,
        "request" => Kind::Request,
        "plan" => Kind::Plan,
        "attempt" => Kind::Attempt,
        "method" => Kind::Method,
        _ => return None,
    })
}

fn roles(s: &str) -> Option<Roles> {
    let mut bits = 0;
    for r in s.split(',') {
        bits |= Roles::bit(match r {
            "user" => Role::User,
            "note" => Role::Note,
            "assistant" => Role::Assistant,
            _ => return None,
        });
    }
    Some(Roles(bits))
}

/// Rule ids built from lexicon phrases live as long as the process: the rule book is built once.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A phrase in the canonical token form patterns are written in (`don't` -> `do not`).
fn canonical(phrase: &str) -> String {
    tokenize(phrase)
        .iter()
        .map(|t| t.norm.as_ref())
        .collect::<Vec<_>>()
        .join(" ")
}

fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

impl RuleBook {
    /// The risk a model-output rule's reply carries (`carries=`), by rule id.
    pub fn carries(&self, rule: &str) -> Option<Category> {
        self.targets_meta
            .iter()
            .find(|t| t.id == rule)
            .and_then(|t| t.carries)
    }

    /// Parses every rule source.
    pub fn load() -> Result<RuleBook, RuleError> {
        let mut book = RuleBook::default();
        let mut classes = Classes::default();
        book.load_rules(&mut classes)?;
        book.load_lexicon(&classes)?;
        book.load_medspacy(&classes)?;
        book.load_negspacy(&classes)?;
        let split = |set: &PatternSet, roles: &dyn Fn(usize) -> Roles| {
            [Role::User, Role::Note, Role::Assistant]
                .iter()
                .map(|&role| {
                    let mut own = PatternSet::default();
                    let mut ids = Vec::new();
                    for i in 0..set.len() {
                        if roles(i).has(role) {
                            own.push(set.get(i).clone());
                            ids.push(i);
                        }
                    }
                    (own, ids)
                })
                .collect::<Vec<_>>()
        };
        book.role_targets = split(&book.targets, &|i| book.targets_meta[i].roles);
        book.role_triggers = split(&book.triggers, &|i| book.triggers_meta[i].roles);
        Ok(book)
    }

    /// Every match of the target rules that apply to `role`, by start token; `Hit::rule` indexes
    /// `targets` and `targets_meta`.
    pub fn find_targets(&self, role: Role, toks: &[Token]) -> Vec<Hit> {
        find_for(&self.role_targets, role, toks)
    }

    /// Every match of the context triggers that apply to `role`; `Hit::rule` indexes `triggers`
    /// and `triggers_meta`.
    pub fn find_triggers(&self, role: Role, toks: &[Token]) -> Vec<Hit> {
        find_for(&self.role_triggers, role, toks)
    }

    fn load_rules(&mut self, classes: &mut Classes) -> Result<(), RuleError> {
        // The ConText family words are a class the hand-written rules use too.
        classes.define("family", family_words()?);
        for (n, line) in RULES.lines().enumerate() {
            let n = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |m: String| PatternError {
                line: n,
                message: m,
            };
            if let Some(def) = line.strip_prefix('@') {
                let (name, words) = def
                    .split_once('=')
                    .ok_or_else(|| err("a class needs `@name = words`".into()))?;
                classes.define(
                    name.trim(),
                    words
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                );
                continue;
            }
            let (head, pattern) = line
                .split_once(" : ")
                .ok_or_else(|| err("expected `<head> : <pattern>`".into()))?;
            let mut head = head.split_whitespace();
            let what = head.next().unwrap_or_default();
            let id = head.next().ok_or_else(|| err("missing rule id".into()))?;
            let p = Pattern::parse(pattern, classes, n)?;
            match what {
                "target" => {
                    let cat = head.next().and_then(category);
                    let sev = head.next().and_then(severity);
                    let (Some(category), Some(severity)) = (cat, sev) else {
                        return Err(err(format!("{id}: bad category or severity")).into());
                    };
                    let mut t = Target::new(id, category, severity);
                    for opt in head {
                        match opt.split_once('=') {
                            Some(("who", "third")) => t.who = Who::Third,
                            Some(("who", "other")) => t.who = Who::Other,
                            Some(("roles", r)) => {
                                t.roles =
                                    roles(r).ok_or_else(|| err(format!("{id}: bad roles {r}")))?
                            }
                            None if opt == "framed" => t.framed = true,
                            None if opt == "present" => t.present = true,
                            None if opt == "past" => t.past = true,
                            None if opt == "urgent_ok" => t.urgent_ok = true,
                            None if opt == "cue" => t.cue = Some(Cue::Cue),
                            None if opt == "means" => t.cue = Some(Cue::Means),
                            Some(("carries", c)) => {
                                t.carries = Some(
                                    self::category(c)
                                        .filter(|c| c.is_risk())
                                        .ok_or_else(|| err(format!("{id}: bad carries {c}")))?,
                                )
                            }
                            Some(("who", "self")) => t.who = Who::Patient,
                            _ => return Err(err(format!("{id}: unknown option {opt}")).into()),
                        }
                    }
                    self.targets.push(p);
                    self.targets_meta.push(t);
                }
                "ctx" => {
                    let k = head.next().and_then(kind);
                    let d = match head.next() {
                        Some("forward") => Some(Direction::Forward),
                        Some("backward") => Some(Direction::Backward),
                        Some("both") => Some(Direction::Both),
                        _ => None,
                    };
                    let w = head.next().and_then(|w| w.parse().ok());
                    let (Some(kind), Some(direction), Some(window)) = (k, d, w) else {
                        return Err(
                            err(format!("{id}: want `ctx id kind direction window`")).into()
                        );
                    };
                    let mut roles_set = Roles::ALL;
                    for opt in head {
                        match opt.split_once('=') {
                            Some(("roles", r)) => {
                                roles_set =
                                    roles(r).ok_or_else(|| err(format!("{id}: bad roles {r}")))?
                            }
                            _ => return Err(err(format!("{id}: unknown option {opt}")).into()),
                        }
                    }
                    self.push_trigger(p, id, kind, direction, window, roles_set);
                }
                "not" => {
                    self.nots.push(p);
                    self.nots_meta.push(id);
                }
                "safe" => {
                    self.safe.push(p);
                }
                "urgent" => {
                    self.urgent.push(p);
                }
                other => return Err(err(format!("unknown rule type {other:?}")).into()),
            }
        }
        Ok(())
    }

    fn push_trigger(
        &mut self,
        p: Pattern,
        id: &'static str,
        kind: Kind,
        direction: Direction,
        window: usize,
        roles: Roles,
    ) {
        self.triggers.push(p);
        self.triggers_meta.push(Trigger {
            id,
            kind,
            direction,
            window,
            roles,
        });
    }

    fn load_lexicon(&mut self, classes: &Classes) -> Result<(), RuleError> {
        for (n, line) in SRL.lines().enumerate() {
            if n == 0 || line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            let (construct, cat, sev, phrase, cue) = match cols[..] {
                [a, b, c, d] => (a, b, c, d, None),
                [a, b, c, d, "cue"] => (a, b, c, d, Some(Cue::Cue)),
                [a, b, c, d, "means"] => (a, b, c, d, Some(Cue::Means)),
                _ => {
                    return Err(RuleError::Lexicon(
                        n + 1,
                        "want 4 tab-separated columns, or 5 ending in cue or means".into(),
                    ));
                }
            };
            let (Some(category), Some(severity)) = (category(cat), severity(sev)) else {
                return Err(RuleError::Lexicon(
                    n + 1,
                    format!("bad category {cat} or severity {sev}"),
                ));
            };
            let p = Pattern::parse(&canonical(phrase), classes, n + 1)
                .map_err(|e| RuleError::Lexicon(n + 1, e.message))?;
            let construct = construct.split_whitespace().next().unwrap_or("x");
            self.targets.push(p);
            let prefix = if cue.is_some() { "srlcue" } else { "srl" };
            // The id names the lexicon's line, not its phrase: a rule id travels to webhooks and
            // reports, and the phrase would repeat what the person wrote ("pills").
            let mut t = Target::new(
                leak(format!("{prefix}.{}.l{}", slug(construct), n + 1)),
                category,
                severity,
            );
            if cue.is_some() {
                // Forum and chat language; notes have their own shorthand.
                t.roles = roles("user").expect("valid role list");
                t.cue = cue;
            }
            self.targets_meta.push(t);
        }
        Ok(())
    }

    fn load_medspacy(&mut self, classes: &Classes) -> Result<(), RuleError> {
        let err = |m: String| RuleError::Context("medspacy_context_rules.en.json", m);
        let doc: serde_json::Value =
            serde_json::from_str(MEDSPACY).map_err(|e| err(e.to_string()))?;
        let rules = doc["context_rules"]
            .as_array()
            .ok_or_else(|| err("no context_rules array".into()))?;
        for r in rules {
            let literal = r["literal"].as_str().unwrap_or_default();
            let (kind, window) = match (r["category"].as_str(), r["direction"].as_str()) {
                (_, Some("TERMINATE")) => (Kind::Terminate, 0),
                (Some("NEGATED_EXISTENCE"), _) => (Kind::Negated, 5),
                (Some("HISTORICAL"), _) => (Kind::Historical, 8),
                (Some("HYPOTHETICAL"), _) => (Kind::Hypothetical, 8),
                (Some("FAMILY"), _) => (Kind::Other, 6),
                // Possible existence of risk is still risk.
                _ => continue,
            };
            let direction = match r["direction"].as_str() {
                Some("BACKWARD") => Direction::Backward,
                _ => Direction::Forward,
            };
            let src = match r["pattern"].as_array() {
                None => canonical(literal),
                Some(tokens) => {
                    let mut parts = Vec::new();
                    for t in tokens {
                        let alts: Vec<String> = match &t["LOWER"] {
                            serde_json::Value::String(s) => vec![s.clone()],
                            v => v["IN"]
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|x| x.as_str().map(str::to_owned))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        };
                        let alts: Vec<String> = alts
                            .iter()
                            .map(|a| {
                                if a == "n't" {
                                    "not".to_owned()
                                } else {
                                    a.clone()
                                }
                            })
                            .filter(|a| !a.is_empty())
                            .collect();
                        if alts.is_empty() {
                            return Err(err(format!("{literal:?}: unsupported token pattern")));
                        }
                        let optional = matches!(t["OP"].as_str(), Some("?") | Some("*"));
                        // A multi-word "token" (upstream never matches it) is read as the phrase.
                        if alts.iter().any(|a| a.contains(char::is_whitespace)) {
                            let phrases: Vec<String> = alts.iter().map(|a| canonical(a)).collect();
                            let close = if optional { ")?" } else { ")" };
                            parts.push(format!("({}{close}", phrases.join(" | ")));
                        } else {
                            let op = if optional { "?" } else { "" };
                            parts.push(format!("{}{op}", alts.join("|")));
                        }
                    }
                    parts.join(" ")
                }
            };
            let p = Pattern::parse(&src, classes, 0)
                .map_err(|e| err(format!("{literal:?}: {}", e.message)))?;
            let id = leak(format!("medspacy.{}", slug(literal)));
            self.push_trigger(p, id, kind, direction, window, Roles::ALL);
        }
        Ok(())
    }

    fn load_negspacy(&mut self, classes: &Classes) -> Result<(), RuleError> {
        let err = |m: String| RuleError::Context("negspacy_en_clinical.json", m);
        let doc: serde_json::Value =
            serde_json::from_str(NEGSPACY).map_err(|e| err(e.to_string()))?;
        let lists = [
            ("preceding_negations", Kind::Negated, Direction::Forward, 5),
            ("following_negations", Kind::Negated, Direction::Backward, 3),
            ("termination", Kind::Terminate, Direction::Forward, 0),
            ("pseudo_negations", Kind::Pseudo, Direction::Forward, 0),
        ];
        for (key, kind, direction, window) in lists {
            let terms = doc[key]
                .as_array()
                .ok_or_else(|| err(format!("no {key} list")))?;
            for term in terms.iter().filter_map(|t| t.as_str()) {
                let src = canonical(term);
                if src.is_empty() {
                    continue;
                }
                let p = Pattern::parse(&src, classes, 0)
                    .map_err(|e| err(format!("{term:?}: {}", e.message)))?;
                let id = leak(format!(
                    "negspacy.{}.{}",
                    key.split('_').next().unwrap_or(key),
                    slug(term)
                ));
                self.push_trigger(p, id, kind, direction, window, Roles::ALL);
            }
        }
        Ok(())
    }
}

/// Matches of one role's own pattern set, with rule numbers of the whole book.
fn find_for(sets: &[(PatternSet, Vec<usize>)], role: Role, toks: &[Token]) -> Vec<Hit> {
    let at = match role {
        Role::User => 0,
        Role::Note => 1,
        Role::Assistant => 2,
    };
    let (set, ids) = &sets[at];
    let mut hits = set.find_all(toks);
    for h in &mut hits {
        h.rule = ids[h.rule];
    }
    hits
}

/// The relatives medspaCy's FAMILY rule lists, shared with the hand-written rules as `@family`.
fn family_words() -> Result<Vec<String>, RuleError> {
    let err = |m: String| RuleError::Context("medspacy_context_rules.en.json", m);
    let doc: serde_json::Value = serde_json::from_str(MEDSPACY).map_err(|e| err(e.to_string()))?;
    let words = doc["context_rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["category"] == "FAMILY"))
        .and_then(|r| r["pattern"][0]["LOWER"]["IN"].as_array())
        .ok_or_else(|| err("no FAMILY rule".into()))?;
    Ok(words
        .iter()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect())
}
