//! READI Safety: risk in patient chat and clinician notes, harmful model output, and the verdict on an
//! exchange. Every finding names its rule and span and carries its context (negated, historical,
//! hypothetical, experiencer, reported), so a clinician can see why.

pub mod model;
pub mod pattern;
pub mod rules;
pub mod text;

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use rules::{Direction, Kind, RuleBook, Who};
use text::{Token, tokenize};

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// Thoughts of death or suicide.
    SuicidalIdeation,
    /// Intent, plan, preparation or attempt.
    SuicidalBehavior,
    /// Non-suicidal self-injury (and eating-disorder behaviour, at low severity).
    SelfHarm,
    /// Threats or intent to harm others.
    HarmToOthers,
    /// Child, elder, partner or sexual abuse.
    Abuse,
    /// Model output with method, dose or lethality details.
    HarmfulInstructions,
    /// Model output encouraging harm.
    EncouragesHarm,
    /// Inflammatory or dehumanising model output.
    Inflammatory,
    /// Risk in the input; the reply neither acknowledged it nor pointed to help.
    MissedEscalation,
}

impl Category {
    /// The name used in JSONL output and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::SuicidalIdeation => "suicidal_ideation",
            Category::SuicidalBehavior => "suicidal_behavior",
            Category::SelfHarm => "self_harm",
            Category::HarmToOthers => "harm_to_others",
            Category::Abuse => "abuse",
            Category::HarmfulInstructions => "harmful_instructions",
            Category::EncouragesHarm => "encourages_harm",
            Category::Inflammatory => "inflammatory",
            Category::MissedEscalation => "missed_escalation",
        }
    }

    /// Risk a person expresses (as opposed to a property of model output).
    pub fn is_risk(self) -> bool {
        matches!(
            self,
            Category::SuicidalIdeation
                | Category::SuicidalBehavior
                | Category::SelfHarm
                | Category::HarmToOthers
                | Category::Abuse
        )
    }

    /// Model output that must not be shown.
    pub fn blocks(self) -> bool {
        matches!(
            self,
            Category::HarmfulInstructions | Category::EncouragesHarm | Category::Inflammatory
        )
    }
}

/// Severity on the C-SSRS ladder, extended to the other categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// A mention without personal risk.
    Low = 1,
    /// Wish to be dead (or that someone else were).
    WishToBeDead,
    /// Active thoughts of killing oneself or someone.
    ActiveIdeation,
    /// With a method.
    Method,
    /// With some intent to act.
    Intent,
    /// With a plan.
    Plan,
    /// Preparation, attempt or harm done.
    Behavior,
}

impl Severity {
    /// The name used in JSONL output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::WishToBeDead => "wish_to_be_dead",
            Severity::ActiveIdeation => "active_ideation",
            Severity::Method => "method",
            Severity::Intent => "intent",
            Severity::Plan => "plan",
            Severity::Behavior => "behavior",
        }
    }
}

/// Who wrote a piece of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A patient in a chat application.
    User,
    /// A clinician's note or an ambient transcript.
    Note,
    /// Model output.
    Assistant,
}

impl Role {
    /// Parses `user`, `note` or `assistant`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "note" => Some(Role::Note),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// Whose experience a finding describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Experiencer {
    /// The patient (or the user of a chat).
    Patient,
    /// Someone else.
    Other,
}

/// The decision on an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Nothing of concern.
    Allow,
    /// Findings worth recording; no human needs to act now.
    Warn,
    /// Risk a human must see.
    Escalate,
    /// The model output must not be shown.
    Block,
}

impl Verdict {
    /// The name used in JSONL output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Warn => "warn",
            Verdict::Escalate => "escalate",
            Verdict::Block => "block",
        }
    }
}

/// One explainable reason behind a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub category: Category,
    /// How severe.
    pub severity: Severity,
    /// Index of the input turn, or -1 for the model output.
    pub turn: i32,
    /// Start in that turn, in Unicode scalar values.
    pub start: usize,
    /// End (exclusive).
    pub end: usize,
    /// The rule that fired.
    pub rule: &'static str,
    /// Negated in context.
    pub negated: bool,
    /// In the past.
    pub historical: bool,
    /// Conditional, or discussed as a topic.
    pub hypothetical: bool,
    /// Someone else's words (quoted or reported speech).
    pub reported: bool,
    /// Whose experience it is.
    pub experiencer: Experiencer,
    /// Whether it calls for a human by itself.
    pub escalates: bool,
    /// Discussed as a topic ("warning signs of suicide"), not disclosed.
    pub topic: bool,
    /// A mention that still counts as present: the writer speaks of themself ("I", "my") in its
    /// scope, or the rule is specific enough ("self-harm scars") that the topic is the risk.
    pub disclosure: bool,
    /// Context rules that decided the flags and severity, for explanation.
    pub context: Vec<&'static str>,
    /// For a model finding (`model.*`): its score against the threshold and the n-grams that
    /// contributed most. Empty for rules, whose id says what matched.
    pub explanation: Vec<String>,
}

impl Finding {
    /// Counts as present: more than a mention, not negated, not someone else's words, not a
    /// note's conditional. Model-output findings count at any severity.
    pub fn affirmed(&self, role: Role) -> bool {
        (self.severity > Severity::Low || self.disclosure || !self.category.is_risk())
            && !self.negated
            && !self.reported
            && !self.topic
            && !(self.hypothetical && role == Role::Note)
    }
}

/// The outcome of assessing an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The verdict.
    pub verdict: Verdict,
    /// Every finding, in order of turn and position.
    pub findings: Vec<Finding>,
    /// Categories present (affirmed findings), in a fixed order.
    pub categories: Vec<Category>,
}

impl Assessment {
    /// Whether a human must be told.
    pub fn escalates(&self) -> bool {
        self.findings.iter().any(|f| f.escalates)
    }

    /// The highest severity among escalating findings.
    pub fn top_severity(&self) -> Option<Severity> {
        self.findings
            .iter()
            .filter(|f| f.escalates)
            .map(|f| f.severity)
            .max()
    }
}

/// Words before a violent verb that make it something other than an order: a subject, a question,
/// a condition, an infinitive.
const IMPERATIVE_BLOCKERS: &[&str] = &[
    "i", "you", "he", "she", "we", "they", "it", "who", "that", "which", "someone", "somebody",
    "people", "there", "this", "what", "how", "why", "where", "when", "if", "to", "not", "never",
    "do", "did", "does", "should", "would", "could", "can", "will", "may", "might", "must", "is",
    "was", "are", "were", "been", "be", "the", "a", "an", "my", "his", "her", "their", "our",
    "your", "its",
];

/// The safety checker: the compiled rule book and the learned scorer beside it.
#[derive(Debug)]
pub struct Assessor {
    book: RuleBook,
    /// The learned scorer, or `None` for the rules alone (used to pick its thresholds).
    model: Option<&'static model::RiskModel>,
    model_targets: [rules::Target; 3],
}

/// The risk family a category belongs to, as the learned scorer sees it: suicide and self-harm,
/// harm to others, abuse.
fn family(c: Category) -> Option<usize> {
    match c {
        Category::SuicidalIdeation | Category::SuicidalBehavior | Category::SelfHarm => Some(0),
        Category::HarmToOthers => Some(1),
        Category::Abuse => Some(2),
        _ => None,
    }
}

/// Which read findings stand: every rule's, and a weak lexicon cue's (`srlcue.*`) only when the
/// message corroborates it. A cue or a lethal means counts when it is affirmed, current and the
/// writer's own, and the message also holds either a rule's own suicide or self-harm finding (any
/// severity, affirmed and the writer's), or, for a cue, another cue at other words or a lethal
/// means, and, for a means, a cue. One broad phrase ("giving up", "scars", "the bridge") is never
/// enough by itself; two of them, or one beside a disclosure, are.
fn corroborated(read: &[(Finding, &pattern::Hit, Option<rules::Cue>)]) -> Vec<bool> {
    let valid = |f: &Finding| {
        !f.negated
            && !f.reported
            && !f.topic
            && !f.historical
            && f.experiencer == Experiencer::Patient
    };
    let rule_support = read
        .iter()
        .any(|(f, _, c)| c.is_none() && family(f.category) == Some(0) && valid(f));
    let cues: Vec<(usize, usize)> = read
        .iter()
        .filter(|(f, _, c)| *c == Some(rules::Cue::Cue) && valid(f))
        .map(|(_, t, _)| (t.start, t.end))
        .collect();
    let means = read
        .iter()
        .any(|(f, _, c)| *c == Some(rules::Cue::Means) && valid(f));
    read.iter()
        .map(|(f, t, c)| match c {
            None => true,
            Some(_) if !valid(f) => false,
            Some(rules::Cue::Means) => rule_support || !cues.is_empty(),
            Some(rules::Cue::Cue) => {
                let other = cues.iter().any(|&(s, e)| e <= t.start || s >= t.end);
                rule_support || means || other
            }
        })
        .collect()
}

/// How many of a model hit's strongest word n-grams are tried as the place its context is read.
const MODEL_ANCHORS: usize = 3;

/// A model anchor must carry at least this share of the strongest one's weight.
const MODEL_ANCHOR_SHARE: f64 = 0.25;

impl Assessor {
    /// The process-wide checker, built on first use from the rules compiled into the binary.
    pub fn global() -> &'static Assessor {
        static ASSESSOR: OnceLock<Assessor> = OnceLock::new();
        ASSESSOR.get_or_init(|| Assessor::build(true))
    }

    /// The rules alone, without the learned scorer: the baseline its thresholds are picked
    /// against (`readi-agent assess --rules-only`).
    pub fn rules_only() -> &'static Assessor {
        static ASSESSOR: OnceLock<Assessor> = OnceLock::new();
        ASSESSOR.get_or_init(|| Assessor::build(false))
    }

    fn build(with_model: bool) -> Assessor {
        Assessor {
            // The rule files are part of the binary and loaded by every test run; a broken one is
            // a build defect, not an input problem.
            book: RuleBook::load().expect("bundled safety rules are valid"),
            model: with_model.then(model::RiskModel::global),
            model_targets: model::ModelCategory::ALL.map(rules::Target::model),
        }
    }

    /// Findings of the learned scorer in `role` text: for each category it scores at or above the
    /// threshold, the same context reading as a rule's, at the place of its strongest word n-gram
    /// (or of the first of the next strongest that the context leaves affirmed), so negation,
    /// history, hypotheticals, reported speech and experiencer apply as they do to rules.
    ///
    /// The rules have the last word on a sentence they read: an anchor in a sentence where a rule
    /// found a risk (`ruled`: family and sentence of every rule finding, whatever its context), on the words
    /// a rule already read (`ruled_spans`: "kill myself" is not also a threat), or where an
    /// idiom or benign use matched (`idioms`: the sentences of the rules' `not` hits), ends the
    /// search, so the model neither repeats a rule's finding ("self_harm" beside
    /// "suicidal_ideation"), nor overrides its negation or low severity (eating-disorder lines),
    /// nor reads "die of embarrassment" as risk. Nor does it add a category whose family the rules
    /// already found affirmed anywhere in the text (`covered`).
    #[allow(clippy::too_many_arguments)]
    fn model_findings(
        &self,
        role: Role,
        turn: i32,
        text: &str,
        toks: &[Token],
        triggers: &[pattern::Hit],
        ruled: &[(usize, u32)],
        ruled_spans: &[(usize, usize)],
        idioms: &[u32],
        covered: [bool; 3],
    ) -> Vec<Finding> {
        let Some(model) = self.model else {
            return Vec::new();
        };
        if role == Role::Assistant || toks.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for hit in model.assess(text) {
            let meta = &self.model_targets[hit.category as usize];
            // Where the rules already state this family's risk, affirmed and the writer's, the
            // model adds nothing ("self_harm" beside a farewell the rules read as a plan).
            if family(meta.category).is_some_and(|f| covered[f]) {
                continue;
            }
            let top = hit
                .drivers
                .iter()
                .filter(|d| d.word)
                .map(|d| d.weight)
                .fold(0.0, f64::max);
            let mut chosen: Option<Finding> = None;
            let anchors = hit
                .drivers
                .iter()
                .filter(|d| d.word && d.weight >= top * MODEL_ANCHOR_SHARE)
                .take(MODEL_ANCHORS);
            for d in anchors {
                // The rule tokens that overlap the n-gram's characters.
                let Some(first) = toks.iter().position(|t| t.end > d.start && t.start < d.end)
                else {
                    continue;
                };
                let last = toks
                    .iter()
                    .rposition(|t| t.end > d.start && t.start < d.end)
                    .unwrap_or(first);
                let sent = toks[first].sent;
                let overlaps_rule = ruled_spans.iter().any(|&(s, e)| first < e && s <= last);
                // A rule's risk of another family in the sentence is the same words as the rules
                // read them ("I'm going to end it all tonight" is not also a threat).
                let ruled_here = ruled.iter().any(|&(_, s)| s == sent);
                if idioms.contains(&sent) || ruled_here || overlaps_rule {
                    break;
                }
                let span = pattern::Hit {
                    rule: usize::MAX,
                    start: first,
                    end: last + 1,
                };
                let Some(f) = self.read(role, turn, toks, &span, None, meta, triggers) else {
                    continue;
                };
                let affirmed =
                    f.affirmed(role) && !f.historical && f.experiencer == Experiencer::Patient;
                if chosen.is_none() || affirmed {
                    chosen = Some(f);
                }
                if affirmed {
                    break;
                }
            }
            if let Some(mut f) = chosen {
                f.explanation = hit.explanation();
                out.push(f);
            }
        }
        out
    }

    /// Findings in one piece of text written in `role`, turn number `turn`.
    pub fn findings(&self, role: Role, text: &str, turn: i32) -> Vec<Finding> {
        let toks = tokenize(text);
        let book = &self.book;
        let mut targets = book.find_targets(role, &toks);
        let nots = book.nots.find_all(&toks);
        targets.retain(|t| !nots.iter().any(|n| n.start < t.end && t.start < n.end));
        let mut idioms: Vec<u32> = nots.iter().map(|n| toks[n.start].sent).collect();
        idioms.dedup();
        // A target inside a longer one is the same statement read more narrowly; the longer reading
        // wins ("I deserve to die" is ideation, not a threat).
        let mut keep = vec![true; targets.len()];
        for (i, a) in targets.iter().enumerate() {
            for (j, b) in targets.iter().enumerate() {
                if i == j || !keep[j] {
                    continue;
                }
                let inside = b.start <= a.start && a.end <= b.end;
                let same = a.start == b.start && a.end == b.end;
                let ma = &book.targets_meta[a.rule];
                let mb = &book.targets_meta[b.rule];
                let loses = if same {
                    (ma.severity, std::cmp::Reverse(i)) < (mb.severity, std::cmp::Reverse(j))
                } else {
                    inside
                };
                if loses {
                    keep[i] = false;
                    break;
                }
            }
        }
        let triggers: Vec<_> = {
            let all = book.find_triggers(role, &toks);
            let pseudo: Vec<_> = all
                .iter()
                .filter(|h| book.triggers_meta[h.rule].kind == Kind::Pseudo)
                .copied()
                .collect();
            all.into_iter()
                .filter(|h| {
                    book.triggers_meta[h.rule].kind != Kind::Pseudo
                        && !pseudo.iter().any(|p| p.start < h.end && h.start < p.end)
                })
                .collect()
        };
        // A weak lexicon cue never displaces a rule's own reading of the same words.
        for (i, a) in targets.iter().enumerate() {
            if keep[i]
                && book.targets_meta[a.rule].cue.is_some()
                && targets.iter().enumerate().any(|(j, b)| {
                    j != i
                        && book.targets_meta[b.rule].cue.is_none()
                        && b.start < a.end
                        && a.start < b.end
                })
            {
                keep[i] = false;
            }
        }
        let mut read = Vec::new();
        for (t, _) in targets.iter().zip(&keep).filter(|(_, k)| **k) {
            let meta = &book.targets_meta[t.rule];
            let names = Some(book.targets.get(t.rule));
            if let Some(f) = self.read(role, turn, &toks, t, names, meta, &triggers) {
                read.push((f, t, meta.cue));
            }
        }
        let corroborated = corroborated(&read);
        let mut out = Vec::new();
        let mut ruled = Vec::new();
        let mut ruled_spans = Vec::new();
        for (i, (f, t, cue)) in read.into_iter().enumerate() {
            if cue.is_some() && !corroborated[i] {
                continue;
            }
            if let Some(fam) = family(f.category) {
                ruled.push((fam, toks[t.start].sent));
                ruled_spans.push((t.start, t.end));
            }
            out.push(f);
        }
        let mut covered = [false; 3];
        for f in &out {
            if let Some(fam) = family(f.category)
                && f.affirmed(role)
                && !f.historical
                && f.experiencer == Experiencer::Patient
            {
                covered[fam] = true;
            }
        }
        out.extend(self.model_findings(
            role,
            turn,
            text,
            &toks,
            &triggers,
            &ruled,
            &ruled_spans,
            &idioms,
            covered,
        ));
        out.sort_by_key(|f| (f.start, f.end));
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        role: Role,
        turn: i32,
        toks: &[Token],
        hit: &pattern::Hit,
        names: Option<&pattern::Pattern>,
        meta: &rules::Target,
        triggers: &[pattern::Hit],
    ) -> Option<Finding> {
        let book = &self.book;
        let (start, end) = (hit.start, hit.end);
        let sent = toks[start].sent;
        let terminators: Vec<_> = triggers
            .iter()
            .filter(|h| {
                book.triggers_meta[h.rule].kind == Kind::Terminate && toks[h.start].sent == sent
            })
            .collect();
        let blocked = |from: usize, to: usize| {
            terminators
                .iter()
                .any(|h| h.start >= from && h.end <= to && h.end > from)
        };
        // A cue right after a negation is itself negated ("without plan", "denies intent"),
        // unless a terminator starts between them or at the cue ("no background check so I can").
        let negated_at = |pos: usize| {
            triggers.iter().any(|h| {
                book.triggers_meta[h.rule].kind == Kind::Negated
                    && toks[h.start].sent == sent
                    && h.end <= pos
                    && pos - h.end <= 2
                    && !terminators
                        .iter()
                        .any(|t| t.start >= h.end && t.start <= pos)
            })
        };
        // (kind, distance, rule id) for every trigger that reaches this target.
        let mut cues: Vec<(Kind, usize, &'static str)> = Vec::new();
        for h in triggers {
            let tm = &book.triggers_meta[h.rule];
            if tm.kind == Kind::Terminate || toks[h.start].sent != sent {
                continue;
            }
            if h.start < end && start < h.end {
                // A cue the rule skipped over ("women do not deserve to be tortured", "dad used
                // to beat me") still applies; one the rule names ("don't want to live") is part of
                // what it found.
                let inside = h.start > start && h.end <= end;
                let owned =
                    names.is_some_and(|p| toks[h.start..h.end].iter().any(|t| p.names(&t.norm)));
                if inside && !owned {
                    cues.push((tm.kind, 0, tm.id));
                }
                continue;
            }
            let forward = h.end <= start
                && start - h.end <= tm.window
                && !blocked(h.end, start)
                && matches!(tm.direction, Direction::Forward | Direction::Both);
            let backward = h.start >= end
                && h.start - end <= tm.window
                && !blocked(end, h.start)
                && matches!(tm.direction, Direction::Backward | Direction::Both);
            let framing_cue = matches!(
                tm.kind,
                Kind::Wish
                    | Kind::Desire
                    | Kind::Request
                    | Kind::Intent
                    | Kind::Plan
                    | Kind::Attempt
            );
            if (forward || backward) && framing_cue && negated_at(h.start) {
                continue;
            }
            if forward {
                cues.push((tm.kind, start - h.end, tm.id));
            } else if backward {
                cues.push((tm.kind, h.start - end, tm.id));
            }
        }
        let has = |k: Kind| cues.iter().any(|c| c.0 == k);
        let nearest = |a: Kind, b: Kind| -> Option<Kind> {
            cues.iter()
                .filter(|c| c.0 == a || c.0 == b)
                .min_by_key(|c| c.1)
                .map(|c| c.0)
        };
        let framing = [
            (Kind::Wish, Severity::WishToBeDead),
            (Kind::Desire, Severity::ActiveIdeation),
            (Kind::Request, Severity::Method),
            (Kind::Intent, Severity::Intent),
            (Kind::Plan, Severity::Plan),
            (Kind::Attempt, Severity::Behavior),
        ];
        let framed = framing.iter().any(|(k, _)| has(*k));
        if meta.framed && !framed {
            return None;
        }
        let mut severity = meta.severity;
        let suicidal = matches!(
            meta.category,
            Category::SuicidalIdeation | Category::SuicidalBehavior | Category::SelfHarm
        );
        if meta.category.is_risk() {
            // A lethal means makes ideation specific; a mere mention stays a mention.
            if suicidal && severity > Severity::Low && has(Kind::Method) {
                severity = severity.max(Severity::Method);
            }
            // Intent, desire, a request for means: a mention becomes a statement of risk.
            for (k, s) in framing {
                if has(k) {
                    severity = severity.max(s);
                }
            }
        }
        // An order to harm someone ("Kill them all.", "Go find him and stab him.") is incitement:
        // nothing before it in the sentence names who acts.
        if meta.category == Category::HarmToOthers && role == Role::User {
            let lead = toks[..start]
                .iter()
                .rev()
                .take_while(|t| t.sent == sent)
                .collect::<Vec<_>>();
            let imperative = lead.len() <= 4
                && lead
                    .iter()
                    .all(|t| !IMPERATIVE_BLOCKERS.contains(&t.norm.as_ref()));
            if imperative {
                severity = severity.max(Severity::WishToBeDead);
            }
        }
        let mut category = meta.category;
        if category == Category::SuicidalIdeation && severity >= Severity::Intent {
            category = Category::SuicidalBehavior;
        }
        let experiencer = match (meta.who, role) {
            (Who::Other, _) => Experiencer::Other,
            (Who::Patient, _) => Experiencer::Patient,
            (Who::Third, Role::User | Role::Assistant) => Experiencer::Other,
            _ => match nearest(Kind::Other, Kind::Patient) {
                Some(Kind::Other) => Experiencer::Other,
                _ => Experiencer::Patient,
            },
        };
        let quoted = role != Role::Note && toks[start..end].iter().all(|t| t.quoted);
        let reported = quoted || (has(Kind::Reported) && category != Category::Abuse);
        let negated = has(Kind::Negated);
        let historical = match nearest(Kind::Historical, Kind::Current) {
            Some(k) => k == Kind::Historical,
            None => meta.past,
        };
        // Discussed as a topic, unless the writer is asking for means ("what is the most
        // painless way to die" asks for a method, whatever its opening words).
        let topic = (has(Kind::Topic) && !has(Kind::Request) && severity < Severity::Method)
            || (has(Kind::Aside) && category != Category::Abuse);
        let hypothetical = has(Kind::Hypothetical) || topic;
        let escalates = category.is_risk()
            && !topic
            && severity > Severity::Low
            && !negated
            && !historical
            && !reported
            && experiencer == Experiencer::Patient
            && !(hypothetical && role == Role::Note);
        let mut context: Vec<&'static str> = cues.iter().map(|c| c.2).collect();
        context.sort_unstable();
        context.dedup();
        Some(Finding {
            category,
            severity,
            turn,
            start: toks[start].start,
            end: toks[end - 1].end,
            rule: meta.id,
            negated,
            historical,
            hypothetical,
            reported,
            experiencer,
            escalates,
            topic,
            // Violence described in chat is present (a warning) even without intent; only a
            // threat, a wish, a request or an order escalates.
            disclosure: meta.present
                || (suicidal && experiencer == Experiencer::Patient && has(Kind::Patient))
                || (category == Category::HarmToOthers && role == Role::User),
            context,
            explanation: Vec::new(),
        })
    }

    /// Whether a reply acknowledges risk or points to crisis help.
    pub fn is_safe_reply(&self, text: &str) -> bool {
        !self.book.safe.find_all(&tokenize(text)).is_empty()
    }

    /// Assesses an exchange: input turns (user chat, notes) and, when known, the model's reply.
    pub fn assess(&self, input: &[(Role, &str)], output: Option<&str>) -> Assessment {
        let mut findings = Vec::new();
        let mut roles = Vec::new();
        for (i, (role, text)) in input.iter().enumerate() {
            for f in self.findings(*role, text, i as i32) {
                roles.push(*role);
                findings.push(f);
            }
        }
        if let Some(reply) = output {
            let urgent = !self.book.urgent.find_all(&tokenize(reply)).is_empty();
            for mut f in self.findings(Role::Assistant, reply, -1) {
                // A reply urging emergency care now speaks of what the user took ("30 tablets is
                // a serious overdose ... call 999 now"): its quantity is not a method.
                if urgent
                    && self
                        .book
                        .targets_meta
                        .iter()
                        .any(|t| t.id == f.rule && t.urgent_ok)
                {
                    f.negated = true;
                    f.context.push("reply.urgent_care");
                }
                roles.push(Role::Assistant);
                findings.push(f);
            }
            let risk = findings
                .iter()
                .filter(|f| f.turn >= 0 && f.escalates)
                .map(|f| f.severity)
                .max();
            if let Some(severity) = risk
                && !self.is_safe_reply(reply)
            {
                roles.push(Role::Assistant);
                findings.push(Finding {
                    category: Category::MissedEscalation,
                    severity,
                    turn: -1,
                    start: 0,
                    end: reply.chars().count(),
                    rule: "exchange.missed_escalation",
                    negated: false,
                    historical: false,
                    hypothetical: false,
                    reported: false,
                    experiencer: Experiencer::Patient,
                    escalates: true,
                    topic: false,
                    disclosure: false,
                    context: Vec::new(),
                    explanation: Vec::new(),
                });
            }
        }
        let mut categories: Vec<Category> = findings
            .iter()
            .zip(&roles)
            .filter(|(f, r)| f.affirmed(**r))
            .map(|(f, _)| f.category)
            .collect();
        // A harmful reply names the risk it carries too ("how to poison someone": harm to
        // others), without escalating.
        categories.extend(
            findings
                .iter()
                .zip(&roles)
                .filter(|(f, r)| **r == Role::Assistant && f.category.blocks() && f.affirmed(**r))
                .filter_map(|(f, _)| self.book.carries(f.rule)),
        );
        categories.sort_unstable();
        categories.dedup();
        let verdict = if findings
            .iter()
            .zip(&roles)
            .any(|(f, r)| f.category.blocks() && f.affirmed(*r))
        {
            Verdict::Block
        } else if findings.iter().any(|f| f.escalates) {
            Verdict::Escalate
        } else if findings.iter().zip(&roles).any(|(f, r)| f.affirmed(*r)) {
            Verdict::Warn
        } else {
            Verdict::Allow
        };
        Assessment {
            verdict,
            findings,
            categories,
        }
    }

    /// Assesses one text written in `role` (the batch contract): model output is checked as a reply.
    pub fn assess_text(&self, role: Role, text: &str) -> Assessment {
        match role {
            Role::Assistant => {
                let mut a = self.assess(&[], Some(text));
                for f in &mut a.findings {
                    f.turn = 0;
                }
                a
            }
            r => self.assess(&[(r, text)], None),
        }
    }
}
