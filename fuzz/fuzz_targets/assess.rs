//! READI assessment of any turns: no panic, every finding inside its turn with a rule id, and
//! escalation exactly when a finding escalates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use readi_agent::safety::{Assessor, Role};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Turns separated by NUL; the last one is the model's output.
    let mut turns: Vec<&str> = text.split('\0').collect();
    let output = (turns.len() > 1).then(|| turns.pop()).flatten();
    let input: Vec<(Role, &str)> = turns.iter().map(|t| (Role::User, *t)).collect();
    let a = Assessor::global().assess(&input, output);
    for f in &a.findings {
        let turn = if f.turn < 0 {
            output.expect("an output finding needs an output")
        } else {
            turns[f.turn as usize]
        };
        assert!(f.start <= f.end && f.end <= turn.chars().count(), "{f:?}");
        assert!(!f.rule.is_empty());
    }
    assert_eq!(a.escalates(), a.findings.iter().any(|f| f.escalates));
});
