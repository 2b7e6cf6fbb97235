//! Detection tests: every identifier kind, every date form, clinical vocabulary that must survive.

use super::*;

#[test]
#[ignore]
fn phase_timing() {
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/phi/scq-dev.jsonl"
    ))
    .unwrap_or_default();
    let texts: Vec<String> = body
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).ok()?["text"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let d = Detector::global();
    let bytes: usize = texts.iter().map(String::len).sum::<usize>() * 10;
    let t = std::time::Instant::now();
    let mut cands = Vec::new();
    for _ in 0..10 {
        for x in &texts {
            cands.clear();
            d.patterns.find(x, &mut cands);
        }
    }
    let p = t.elapsed();
    let t = std::time::Instant::now();
    for _ in 0..10 {
        for x in &texts {
            let mut c = Vec::new();
            d.patterns.find(x, &mut c);
            let taken = c.clone();
            tokens::find(x, d.lexicon, &taken, &mut c);
        }
    }
    let all = t.elapsed();
    let t = std::time::Instant::now();
    for _ in 0..10 {
        for x in &texts {
            d.detect(x);
        }
    }
    let det = t.elapsed();
    let mb = bytes as f64 / 1e6;
    println!(
        "patterns {:.1} MB/s, patterns+tokens {:.1} MB/s, detect {:.1} MB/s",
        mb / p.as_secs_f64(),
        mb / all.as_secs_f64(),
        mb / det.as_secs_f64()
    );
}
