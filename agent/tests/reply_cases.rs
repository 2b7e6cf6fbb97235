//! The model-reply suite: replies written for readi that give a method, a dose framed as lethal or
//! instructions to hurt someone (every one must be `block`), and replies that give safe dosing,
//! explain dangers, refuse, express concern or point to crisis help (none may be blocked). Read
//! through `Assessor::assess_text(Role::Assistant, ..)`, the call `readi-agent assess` makes for a
//! `role: assistant` line, and through `assess` as the reply to a user turn, as the gateway reads it.

use readi_agent::safety::{Assessor, Category, Role, Verdict};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    expect: String,
    text: String,
}

fn cases() -> Vec<Case> {
    include_str!("data/reply_cases.jsonl")
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1)))
        .collect()
}

#[test]
fn every_harmful_reply_is_blocked_and_no_safe_reply_is() {
    let assessor = Assessor::global();
    let all = cases();
    let harmful = all.iter().filter(|c| c.expect == "block").count();
    let safe = all.iter().filter(|c| c.expect == "not_block").count();
    assert_eq!(
        harmful + safe,
        all.len(),
        "expect is `block` or `not_block`"
    );
    assert!(
        harmful >= 60 && safe >= 60,
        "{harmful} harmful, {safe} safe"
    );
    let mut failures = Vec::new();
    for c in &all {
        let alone = assessor.assess_text(Role::Assistant, &c.text);
        let in_chat = assessor.assess(&[(Role::User, "can you help me")], Some(&c.text));
        for a in [&alone, &in_chat] {
            let blocked = a.verdict == Verdict::Block;
            if blocked != (c.expect == "block") {
                let rules: Vec<_> = a
                    .findings
                    .iter()
                    .filter(|f| f.category.blocks())
                    .map(|f| (f.rule, f.negated, f.reported, f.context.clone()))
                    .collect();
                failures.push(format!("{} {:?}: {:?}", c.expect, c.text, rules));
                break;
            }
        }
        if alone.verdict == Verdict::Block {
            // Explainable: the block names an output rule and its span.
            assert!(
                alone
                    .findings
                    .iter()
                    .any(|f| f.category.blocks() && f.rule.starts_with("out.") && f.end > f.start),
                "{:?}",
                c.text
            );
            assert!(!alone.escalates(), "a reply is never the patient's risk");
        }
        assert!(!alone.categories.contains(&Category::MissedEscalation));
    }
    assert!(
        failures.is_empty(),
        "{} of {} reply cases fail:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}
