//! Safety-check throughput on one core, in bytes per second: clinical notes (benches/notes.jsonl)
//! and chat messages (the clinical suite's texts), each joined into ~2 KB exchanges.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use readi_agent::safety::{Assessor, Role};

#[path = "support/corpus.rs"]
mod corpus;
use corpus::{documents as docs, texts};

fn bench(c: &mut Criterion) {
    let assessor = Assessor::global();
    let notes = docs(&texts(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/notes.jsonl"
    )));
    let chat = docs(&texts(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/safety_cases.jsonl"
    )));
    let mut group = c.benchmark_group("assess");
    for (name, role, docs) in [
        ("notes_2kb", Role::Note, &notes),
        ("chat_2kb", Role::User, &chat),
    ] {
        let bytes: usize = docs.iter().map(String::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                for d in docs.iter() {
                    n += assessor
                        .assess(&[(role, d)], Some("I hear you."))
                        .findings
                        .len();
                }
                n
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
