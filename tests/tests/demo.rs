//! The README's main job: `readi-demo --exit` runs a controller and two agents, plays the
//! sample traffic and narrates every step, then stops cleanly.

use readi_tests::{binary, run_to_end};

#[test]
fn the_demo_runs_start_to_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_to_end(&binary("readi-demo"), &["--exit"], dir.path());
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for want in [
        "[1/7]",
        "[7/7]",
        "rule name.",
        "escalation esc-",
        "acknowledged by dr-on-call",
        "hash chain verified",
        "suppressed under k",
        "notes-app READI scorecard",
        "chat-app READI scorecard",
        "2 clinic(s), released",
        "safety.no_missed_escalations",
        "reports a false alarm: adverse event ae-",
        "in standard care over",
        "weekly from",
        "drift.safety.feedback_rate",
        "Done.",
    ] {
        assert!(
            out.contains(want),
            "{want:?} missing from the demo's output:\n{out}"
        );
    }
    // The redacted note holds tags, not the sample names.
    let out_line = out
        .lines()
        .find(|l| l.trim_start().starts_with("out:"))
        .expect("a redacted note");
    assert!(!out_line.contains("Quackenbush"), "{out_line}");
    // Nothing is left behind in the working directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
