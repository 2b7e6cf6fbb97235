//! What every fuzz target checks of a redaction: each replacement sits where it says, and outside
//! the replacements the output is the input outside the detected spans, byte for byte, so nothing
//! detected survives and nothing else is lost.

use readi_agent::redact::Replacement;

/// Panics (a libFuzzer finding) when `out` is not `text` with exactly `reps` replaced.
pub fn check_redaction(text: &str, out: &str, reps: &[Replacement]) {
    let (mut at_in, mut at_out) = (0, 0);
    for r in reps {
        assert!(r.span.start >= at_in && r.span.start < r.span.end && r.span.end <= text.len());
        assert!(text.is_char_boundary(r.span.start) && text.is_char_boundary(r.span.end));
        assert!(!r.span.rule.is_empty(), "a span without a rule id");
        assert_eq!(
            &out[r.out_start..r.out_end],
            r.text,
            "replacement misplaced"
        );
        assert_eq!(
            &out[at_out..r.out_start],
            &text[at_in..r.span.start],
            "text outside the spans changed"
        );
        at_in = r.span.end;
        at_out = r.out_end;
    }
    assert_eq!(
        &out[at_out..],
        &text[at_in..],
        "text after the last span changed"
    );
}
