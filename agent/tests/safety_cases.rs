//! The clinical-shorthand and chat suite: cases written from a clinician's reading (negations,
//! history, family history, hypotheticals, idioms, model output, missed escalations), all of which
//! must pass. Failures are collected and reported together.

use readi_agent::safety::{Assessor, Experiencer, Role};
use serde::Deserialize;

#[derive(Deserialize)]
struct Turn {
    role: String,
    text: String,
}

#[derive(Deserialize)]
struct Case {
    role: Option<String>,
    text: Option<String>,
    input: Option<Vec<Turn>>,
    output: Option<String>,
    categories: Option<Vec<String>>,
    escalate: bool,
    verdict: Option<String>,
    historical: Option<bool>,
    experiencer: Option<String>,
}

fn role(s: &str) -> Role {
    Role::parse(s).unwrap_or_else(|| panic!("bad role {s}"))
}

#[test]
fn every_case_in_the_suite_passes() {
    let src = include_str!("data/safety_cases.jsonl");
    let assessor = Assessor::global();
    let mut failures = Vec::new();
    let mut n = 0;
    for (i, line) in src.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        n += 1;
        let case: Case =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        let a = match (&case.text, &case.input) {
            (Some(text), None) => assessor.assess_text(role(case.role.as_deref().unwrap()), text),
            (None, Some(turns)) => {
                let input: Vec<(Role, &str)> = turns
                    .iter()
                    .map(|t| (role(&t.role), t.text.as_str()))
                    .collect();
                assessor.assess(&input, case.output.as_deref())
            }
            _ => panic!("line {}: want text or input", i + 1),
        };
        let label = case
            .text
            .clone()
            .unwrap_or_else(|| case.input.as_ref().unwrap()[0].text.clone());
        let mut problems = Vec::new();
        let cats: Vec<&str> = a.categories.iter().map(|c| c.as_str()).collect();
        if let Some(want) = &case.categories {
            let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
            want.sort_unstable();
            let mut got = cats.clone();
            got.sort_unstable();
            if want != got {
                problems.push(format!("categories {got:?}, want {want:?}"));
            }
        }
        if a.escalates() != case.escalate {
            problems.push(format!(
                "escalate {}, want {}",
                a.escalates(),
                case.escalate
            ));
        }
        if let Some(v) = &case.verdict
            && a.verdict.as_str() != v
        {
            problems.push(format!("verdict {}, want {v}", a.verdict.as_str()));
        }
        if let Some(h) = case.historical
            && a.findings.iter().any(|f| f.historical) != h
        {
            problems.push(format!("historical should be {h}"));
        }
        if let Some(e) = &case.experiencer {
            let want = if e == "other" {
                Experiencer::Other
            } else {
                Experiencer::Patient
            };
            if !a.findings.iter().any(|f| f.experiencer == want) {
                problems.push(format!("no finding with experiencer {e}"));
            }
        }
        if !problems.is_empty() {
            let rules: Vec<String> = a
                .findings
                .iter()
                .map(|f| {
                    format!(
                        "{}[{}{}{}{} {:?} {}]",
                        f.rule,
                        if f.negated { "N" } else { "" },
                        if f.historical { "H" } else { "" },
                        if f.hypothetical { "Y" } else { "" },
                        if f.reported { "R" } else { "" },
                        f.experiencer,
                        f.severity.as_str()
                    )
                })
                .collect();
            failures.push(format!(
                "line {}: {label:?}: {} (findings: {})",
                i + 1,
                problems.join("; "),
                rules.join(", ")
            ));
        }
    }
    assert!(n >= 150, "the suite must keep at least 150 cases, has {n}");
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Forum-style disclosures written for readi and never trained on (subject dropped, preparations,
/// farewells, methods in plain words), beside everyday lines with the same words: a floor on recall
/// where the dev sets hold no forum posts, and no everyday line flagged.
#[test]
fn forum_language_is_read_as_risk_and_everyday_lines_are_not() {
    #[derive(Deserialize)]
    struct Probe {
        text: String,
        risk: bool,
    }
    let assessor = Assessor::global();
    let (mut caught, mut risky, mut flagged) = (0, 0, Vec::new());
    let mut missed = Vec::new();
    for line in include_str!("data/forum_probe.jsonl").lines() {
        let p: Probe = serde_json::from_str(line).unwrap();
        let a = assessor.assess_text(Role::User, &p.text);
        let self_harm = a.categories.iter().any(|c| {
            matches!(
                c.as_str(),
                "suicidal_ideation" | "suicidal_behavior" | "self_harm"
            )
        });
        if p.risk {
            risky += 1;
            if self_harm {
                caught += 1;
            } else {
                missed.push(p.text);
            }
        } else if self_harm || a.escalates() {
            flagged.push(p.text);
        }
    }
    assert!(risky >= 40, "{risky}");
    // 32 of 40 when written; the floor leaves room for a rule change, not for a regression.
    assert!(
        caught >= 30,
        "{caught} of {risky} caught; missed: {missed:#?}"
    );
    assert!(flagged.is_empty(), "everyday lines flagged: {flagged:#?}");
}
