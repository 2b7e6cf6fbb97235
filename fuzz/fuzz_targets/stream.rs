//! A live transcript cut into arbitrary chunks and redacted as StreamRedact does (detect over the
//! pending buffer, release up to a cut that keeps look-ahead, flush at the end): every byte is
//! released exactly once, and each released piece is its original with exactly its spans replaced.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use readi_agent::keys::Keys;
use readi_agent::pipeline::Redactor;
use readi_agent::pipeline::stream::STREAM_HOLD;
use readi_agent::redact::Policy;
use readi_agent::vault::Vault;

fn redactor() -> &'static Redactor {
    static REDACTOR: OnceLock<(tempfile::TempDir, Redactor)> = OnceLock::new();
    &REDACTOR
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let db = sled::Config::new()
                .path(dir.path().join("db"))
                .temporary(true)
                .open()
                .expect("sled");
            let keys = Arc::new(Keys::load(None, dir.path(), &db).expect("keys"));
            let v = Vault::open(&db, keys, Duration::from_secs(600)).expect("vault");
            (dir, Redactor::new(Arc::new(v), Policy::default()))
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    // The first bytes are chunk lengths, the rest the transcript.
    let n = data.first().map_or(0, |b| usize::from(b % 8));
    if data.len() < 1 + n {
        return;
    }
    let Ok(text) = std::str::from_utf8(&data[1 + n..]) else {
        return;
    };
    static SESSION: AtomicU64 = AtomicU64::new(0);
    let session = format!("s{}", SESSION.fetch_add(1, Ordering::Relaxed));
    let mut chunks = Vec::new();
    let mut at = 0;
    for &len in &data[1..1 + n] {
        let mut end = (at + usize::from(len)).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        chunks.push(&text[at..end]);
        at = end;
    }
    chunks.push(&text[at..]);
    let (mut pending, mut released) = (String::new(), String::new());
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        pending.push_str(chunk);
        let hold = (i < last).then_some(STREAM_HOLD);
        let (cut, out, reps) = redactor()
            .redact_stream("fuzz", &session, &pending, hold)
            .expect("vault");
        assert!(cut <= pending.len() && pending.is_char_boundary(cut));
        if hold.is_none() {
            assert_eq!(cut, pending.len(), "a flush releases everything");
        }
        readi_fuzz::check_redaction(&pending[..cut], &out, &reps);
        released.push_str(&pending[..cut]);
        pending.drain(..cut);
    }
    assert!(pending.is_empty());
    assert_eq!(released, text, "every byte released exactly once, in order");
});
