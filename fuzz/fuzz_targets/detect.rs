//! Detection and redaction of any UTF-8: no panic, spans well formed, every detected span replaced
//! and every other byte kept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use readi_agent::phi::Detector;
use readi_agent::redact::{Policy, TagMap, apply};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let spans = Detector::global().detect(text);
    let (out, reps) = apply(
        text,
        &spans,
        &Policy::default(),
        None,
        &mut TagMap::default(),
    );
    assert_eq!(reps.len(), spans.len());
    readi_fuzz::check_redaction(text, &out, &reps);
});
