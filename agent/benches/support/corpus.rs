//! Bench inputs: the `text` fields of JSONL files joined into documents of about 2 KB.

/// The `text` of every line of the JSONL file at `path`; none when it is absent.
pub(crate) fn texts(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect()
}

/// `texts` four times over, joined by newlines into documents of at least 2,048 bytes.
pub(crate) fn documents(texts: &[String]) -> Vec<String> {
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
