//! The proxy's reading of a chat completion request on any bytes: no panic; every text it finds is
//! one it can replace, and after replacing them no original text is left where it looked; streamed
//! reply text is released on character boundaries and never inside a tag.
#![no_main]

use libfuzzer_sys::fuzz_target;
use readi_agent::pipeline::stream::release_cut;
use readi_agent::proxy::{message_texts, parse_chat};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let cut = release_cut(text);
        assert!(cut <= text.len() && text.is_char_boundary(cut));
        // A tag is `[`, upper-case letters, digits and `_`, then `]`: none is split between what
        // is released and what is held, so a restored value is never cut in two.
        let tag_char = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_';
        for (open, _) in text.match_indices('[').filter(|(i, _)| *i < cut) {
            let run = text.as_bytes()[open + 1..]
                .iter()
                .take_while(|&&b| tag_char(b))
                .count();
            let close = open + 1 + run;
            let is_tag = run > 0 && text.as_bytes().get(close) == Some(&b']');
            assert!(
                !is_tag || close < cut,
                "a tag split at {cut}: {:?}",
                &text[open..=close]
            );
        }
    }
    let Ok(mut req) = parse_chat(data) else {
        return;
    };
    let found = message_texts(&mut req).len();
    for (_, t) in message_texts(&mut req) {
        *t = "\u{1}REDACTED".to_owned();
    }
    let again = serde_json::to_vec(&req).expect("re-encode");
    let mut back = parse_chat(&again).expect("a redacted request still parses");
    let texts = message_texts(&mut back);
    assert_eq!(texts.len(), found);
    assert!(texts.iter().all(|(_, t)| t.as_str() == "\u{1}REDACTED"));
});
