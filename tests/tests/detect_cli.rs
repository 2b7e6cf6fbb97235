//! `readi-agent detect`: the JSONL batch contract the evaluation scripts rely on.

use std::io::Write as _;
use std::process::{Command, Stdio};

use readi_tests::binary;

#[test]
fn detect_writes_char_offsets_and_reports_bad_lines_by_number() {
    let mut input = Vec::new();
    input.extend_from_slice(
        "{\"id\":\"a\",\"text\":\"Señora Núñez: call José Ortiz at 617-555-0199 on 3/4.\"}\n"
            .as_bytes(),
    );
    input.extend_from_slice(b"{\"id\":\"b\",\"text\":\"Quackenbush-canary not json\n");
    input.extend_from_slice(b"{\"id\":\"c\",\"text\":\"\xff\xfe bad utf8\"}\n");
    input.extend_from_slice(b"\n{\"id\":7,\"text\":\"No PHI here.\"}\n");
    let mut child = Command::new(binary("readi-agent"))
        .args(["detect"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "malformed lines make the exit code 2"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("-:2:") && stderr.contains("-:3:"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Quackenbush"),
        "errors must not echo input text: {stderr}"
    );

    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "good lines are still processed");
    let text: Vec<char> = "Señora Núñez: call José Ortiz at 617-555-0199 on 3/4."
        .chars()
        .collect();
    let spans = lines[0]["spans"].as_array().unwrap();
    let got: Vec<String> = spans
        .iter()
        .map(|s| {
            text[s["start"].as_u64().unwrap() as usize..s["end"].as_u64().unwrap() as usize]
                .iter()
                .collect()
        })
        .collect();
    for want in ["José Ortiz", "617-555-0199", "3/4"] {
        assert!(got.iter().any(|g| g == want), "{want} missing from {got:?}");
    }
    assert!(
        spans
            .iter()
            .all(|s| s["rule"].as_str().is_some_and(|r| !r.is_empty()) && s["type"].is_string())
    );
    assert!(!lines[0]["redacted"].as_str().unwrap().contains("Ortiz"));
    assert_eq!(lines[1]["id"], 7);
    assert_eq!(lines[1]["spans"].as_array().unwrap().len(), 0);
}
