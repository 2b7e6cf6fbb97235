//! The proxy's reading of a chat completion request on any bytes: no panic; every text it finds is
//! one it can replace, and after replacing them no original text is left where it looked; streamed
//! reply text is released on character boundaries and never inside an open tag.
#![no_main]

use libfuzzer_sys::fuzz_target;
use readi_agent::proxy::{message_texts, parse_chat, release_cut};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let cut = release_cut(text);
        assert!(cut <= text.len() && text.is_char_boundary(cut));
        if let Some(open) = text[..cut].rfind('[') {
            assert!(text[open..cut].contains(']'), "released inside an open tag");
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
