//! Detection throughput on clinical text, in bytes per second on one core.
//!
//! Input: the bundled synthetic nursing notes (benches/notes.jsonl), plus ../shared/data/phi/scq-dev.jsonl
//! when present, concatenated into documents of about 2 KB (a typical note).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use readi_agent::phi::Detector;

#[path = "support/corpus.rs"]
mod corpus;

fn corpus() -> Vec<String> {
    let mut texts = corpus::texts(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/notes.jsonl"));
    texts.extend(corpus::texts(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/phi/scq-dev.jsonl"
    )));
    corpus::documents(&texts)
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
