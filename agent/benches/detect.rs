//! Detection throughput on clinical text, in bytes per second on one core.
//!
//! Input: the bundled synthetic nursing notes (benches/notes.jsonl), plus ../shared/data/phi/scq-dev.jsonl
//! when present, concatenated into documents of about 2 KB (a typical note).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use readi_agent::phi::Detector;

fn corpus() -> Vec<String> {
    let mut texts: Vec<String> = Vec::new();
    let mut add = |path: &str| {
        if let Ok(body) = std::fs::read_to_string(path) {
            for line in body.lines() {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                    && let Some(t) = v["text"].as_str()
                {
                    texts.push(t.to_owned());
                }
            }
        }
    };
    add(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/notes.jsonl"));
    add(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/phi/scq-dev.jsonl"
    ));
    let mut docs = Vec::new();
    let mut cur = String::new();
    for t in texts.iter().cycle().take(texts.len().max(1) * 4) {
        cur.push_str(t);
        cur.push('\n');
        if cur.len() >= 2048 {
            docs.push(std::mem::take(&mut cur));
        }
    }
    docs
}

fn bench(c: &mut Criterion) {
    let detector = Detector::global();
    let docs = corpus();
    let bytes: usize = docs.iter().map(String::len).sum();
    let mut group = c.benchmark_group("detect");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("clinical_notes_2kb", |b| {
        b.iter(|| {
            let mut n = 0;
            for d in &docs {
                n += detector.detect(d).len();
            }
            n
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
