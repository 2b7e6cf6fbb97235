//! Live-transcript redaction never lets PHI through because of where the text was split: every span
//! the whole-text detector finds is redacted whatever the chunk boundaries, on the development
//! corpora (skipped, saying so, when ../shared/data is absent) and on built-in transcripts.

use std::sync::Arc;

use readi_agent::config::RedactionConfig;
use readi_agent::keys::Keys;
use readi_agent::phi::Detector;
use readi_agent::pipeline::Redactor;
use readi_agent::pipeline::stream::STREAM_HOLD;
use readi_agent::vault::Vault;

const BUILT_IN: &[&str] = &[
    "Patient Zebulon Quackenbush, DOB 04/12/1961, MRN 88412093, called from 617-555-0199 about his \
     appointment at 1200 Beacon Street, Brookline MA 02446. Email zq@example.org.",
    "Dr. Okonkwo saw Maria Delgado-Ruiz on March 4th; her son Tomás drove her from Springfield. \
     Follow up 3/18/2024, SSN 078-05-1120 on file.",
];

fn corpus() -> Vec<String> {
    let mut out: Vec<String> = BUILT_IN.iter().map(|s| (*s).to_owned()).collect();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/phi/scq-dev.jsonl"
    );
    match std::fs::read_to_string(path) {
        Ok(text) => out.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["text"].as_str().map(str::to_owned))
                .take(150),
        ),
        Err(_) => {
            eprintln!("SKIPPED the development corpus: {path} is absent; built-in transcripts only")
        }
    }
    out
}

/// Feeds `chunks` through the redactor as StreamRedact does; returns the concatenated released text.
fn stream(redactor: &Redactor, session: &str, chunks: &[&str]) -> String {
    let mut pending = String::new();
    let mut out = String::new();
    for (i, chunk) in chunks.iter().enumerate() {
        pending.push_str(chunk);
        let last = i == chunks.len() - 1;
        let (cut, redacted, _) = redactor
            .redact_stream("app", session, &pending, (!last).then_some(STREAM_HOLD))
            .unwrap();
        out.push_str(&redacted);
        pending = pending[cut..].to_owned();
    }
    assert!(pending.is_empty(), "everything is released at the end");
    out
}

#[test]
fn phi_is_redacted_wherever_the_transcript_is_split() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
    let vault = Vault::open(&db, keys, std::time::Duration::from_secs(600)).unwrap();
    let policy = RedactionConfig {
        style: readi_agent::redact::Style::Tag,
        ..Default::default()
    }
    .policy();
    let redactor = Redactor::new(Arc::new(vault), policy);
    let detector = Detector::global();
    let (mut docs, mut splits, mut identical) = (0, 0, 0);
    for (d, text) in corpus().iter().enumerate() {
        let spans = detector.detect(text);
        if spans.is_empty() {
            continue;
        }
        docs += 1;
        let (whole, _, _) = redactor
            .redact(&format!("whole-{d}"), "s", text, None)
            .unwrap();
        // Split inside and at the edges of every span, plus a few fixed chunk sizes.
        let mut points: Vec<usize> = spans
            .iter()
            .flat_map(|s| {
                [
                    s.start,
                    s.start + 1,
                    (s.start + s.end) / 2,
                    s.end - 1,
                    s.end,
                ]
            })
            .collect();
        points.retain(|&p| p > 0 && p < text.len() && text.is_char_boundary(p));
        let mut cases: Vec<Vec<&str>> = points
            .iter()
            .map(|&p| vec![&text[..p], &text[p..]])
            .collect();
        for size in [1usize, 7, 23] {
            let mut parts = Vec::new();
            let mut at = 0;
            while at < text.len() {
                let mut end = (at + size).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                parts.push(&text[at..end]);
                at = end;
            }
            cases.push(parts);
        }
        for (c, chunks) in cases.iter().enumerate() {
            splits += 1;
            let out = stream(&redactor, &format!("{d}-{c}"), chunks);
            for s in &spans {
                let value = &text[s.start..s.end];
                assert!(
                    !out.contains(value),
                    "{value:?} ({}) leaked when split as {chunks:?}:\n{out}",
                    s.rule
                );
            }
            // Tags are numbered per session, so compare with the tags stripped of their numbers.
            let strip = |t: &str| {
                t.chars()
                    .filter(|c| !c.is_ascii_digit())
                    .collect::<String>()
            };
            if strip(&out) == strip(&whole) {
                identical += 1;
            }
        }
    }
    eprintln!("{docs} documents, {splits} splits, {identical} identical to whole-text redaction");
    assert!(docs >= BUILT_IN.len());
}
