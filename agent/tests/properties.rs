//! Properties over arbitrary input, run with the normal tests: detection, redaction, assessment and
//! config parsing never panic, and what they return is well formed. Inputs mix arbitrary Unicode with
//! fragments that make the rules fire, so the properties reach the code that matters.

use proptest::prelude::*;
use readi_agent::phi::Detector;
use readi_agent::redact::{Policy, TagMap, apply};
use readi_agent::safety::{Assessor, Role};

/// Text built from arbitrary pieces and PHI-, date- and risk-shaped ones.
fn clinical() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "\\PC{0,12}",
        "[ -~]{0,12}",
        "[0-9]{1,12}",
        "[A-Z][a-z]{2,9}",
        "[ \t\n./:#@-]",
        Just("Dr. ".to_owned()),
        Just("MRN: ".to_owned()),
        Just("617-555-0199".to_owned()),
        Just("SSN 123-45-6789".to_owned()),
        Just("John Smith".to_owned()),
        Just("3/4/2019".to_owned()),
        Just("March 4th".to_owned()),
        Just("on the 4th".to_owned()),
        Just("jane.doe@example.org".to_owned()),
        Just("12 Elm Street, Springfield, IL 62704".to_owned()),
        Just("I want to kill myself".to_owned()),
        Just("denies SI/HI".to_owned()),
        Just("\u{e9}\u{301}\u{1f44d}\u{200d}".to_owned()),
    ];
    prop::collection::vec(piece, 0..32).prop_map(|v| v.concat())
}

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn detected_spans_are_sorted_disjoint_and_on_char_boundaries(text in clinical()) {
        let spans = Detector::global().detect(&text);
        let mut prev = 0;
        for s in &spans {
            prop_assert!(s.start < s.end && s.end <= text.len(), "{s:?} in {} bytes", text.len());
            prop_assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            prop_assert!(s.start >= prev, "spans overlap or are out of order: {spans:?}");
            prop_assert!(!s.rule.is_empty());
            prev = s.end;
        }
    }

    #[test]
    fn redaction_replaces_every_detected_span_and_keeps_the_rest(text in clinical()) {
        let spans = Detector::global().detect(&text);
        let (out, reps) = apply(&text, &spans, &Policy::default(), None, &mut TagMap::default());
        prop_assert_eq!(reps.len(), spans.len());
        // Outside the replacements the output is the input outside the spans, byte for byte.
        let (mut kept_out, mut kept_in) = (String::new(), String::new());
        let (mut at_out, mut at_in) = (0, 0);
        for r in &reps {
            prop_assert_eq!(&out[r.out_start..r.out_end], r.text.as_str());
            kept_out.push_str(&out[at_out..r.out_start]);
            kept_in.push_str(&text[at_in..r.span.start]);
            at_out = r.out_end;
            at_in = r.span.end;
        }
        kept_out.push_str(&out[at_out..]);
        kept_in.push_str(&text[at_in..]);
        prop_assert_eq!(&kept_out, &kept_in);
        // So no detected value survives, unless the same characters stand undetected elsewhere.
        for s in &spans {
            let value = &text[s.start..s.end];
            if value.chars().count() >= 4 && !kept_in.contains(value) {
                prop_assert!(!out.contains(value), "{value:?} survived in {out:?}");
            }
        }
    }

    #[test]
    fn assessment_findings_point_inside_their_turn(
        turns in prop::collection::vec(clinical(), 1..4),
        output in prop::option::of(clinical()),
    ) {
        let input: Vec<(Role, &str)> = turns.iter().map(|t| (Role::User, t.as_str())).collect();
        let a = Assessor::global().assess(&input, output.as_deref());
        for f in &a.findings {
            let turn = if f.turn < 0 {
                output.as_deref().expect("an output finding needs an output")
            } else {
                turns[f.turn as usize].as_str()
            };
            prop_assert!(f.start <= f.end && f.end <= turn.chars().count(), "{f:?}");
            prop_assert!(!f.rule.is_empty());
        }
        prop_assert_eq!(a.escalates(), a.findings.iter().any(|f| f.escalates));
    }

    #[test]
    fn any_config_text_parses_or_is_refused_with_a_message(text in "\\PC{0,200}") {
        if let Err(problems) = readi_agent::Config::from_toml(&text) {
            prop_assert!(!problems.to_string().is_empty());
        }
    }

    #[test]
    fn config_with_arbitrary_values_for_real_keys_never_panics(
        key in prop::sample::select(vec![
            "server.listen", "limits.max_text_bytes", "reporting.k", "reporting.window_secs",
            "reporting.epsilon_per_cell", "redaction.vault_ttl_secs", "retention.audit_days",
        ]),
        value in prop_oneof![
            "-?[0-9]{1,25}".prop_map(|s| s),
            "\\PC{0,20}".prop_map(|s| format!("{s:?}")),
            Just("1e309".to_owned()),
            Just("nan".to_owned()),
            Just("[]".to_owned()),
        ],
    ) {
        let (section, name) = key.split_once('.').expect("section.key");
        let text = format!("[{section}]\n{name} = {value}\n");
        if let Err(problems) = readi_agent::Config::from_toml(&text) {
            prop_assert!(!problems.to_string().is_empty());
        }
    }
}
