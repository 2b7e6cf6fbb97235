//! `readi-agent assess`: the JSONL batch contract `score_safety.py` relies on, and the dev-set floors
//! when the shared data is present.

use std::io::Write as _;
use std::process::{Command, Stdio};

use readi_tests::binary;

fn run(input: &[u8], args: &[&str]) -> (Option<i32>, String, Vec<serde_json::Value>) {
    let mut child = Command::new(binary("readi-agent"))
        .arg("assess")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        lines,
    )
}

#[test]
fn assess_writes_verdicts_with_explained_findings_and_names_bad_lines() {
    let mut input = Vec::new();
    input.extend_from_slice(
        "{\"id\":\"a\",\"text\":\"Señora dice: I'm going to kill myself tonight.\",\"role\":\"user\"}\n"
            .as_bytes(),
    );
    input.extend_from_slice(b"{\"id\":\"b\",\"text\":\"Pt denies SI/HI.\",\"role\":\"note\"}\n");
    input.extend_from_slice(b"{\"id\":\"c\",\"text\":\"kill-canary not json\n");
    input.extend_from_slice(b"{\"id\":\"d\",\"text\":\"hello\",\"role\":\"doctor\"}\n");
    input.extend_from_slice(b"{\"id\":\"e\",\"text\":\"\xff bad\"}\n");
    input.extend_from_slice(
        b"{\"id\":9,\"text\":\"You should just kill yourself.\",\"role\":\"assistant\"}\n",
    );
    let (code, stderr, lines) = run(&input, &[]);
    assert_eq!(code, Some(2), "malformed lines make the exit code 2");
    for n in ["-:3:", "-:4:", "-:5:"] {
        assert!(stderr.contains(n), "{n} missing: {stderr}");
    }
    assert!(stderr.contains("role must be"), "{stderr}");
    assert!(
        !stderr.contains("canary"),
        "errors must not echo input: {stderr}"
    );
    assert_eq!(lines.len(), 3, "good lines are still processed");

    let a = &lines[0];
    assert_eq!(a["escalate"], true);
    assert_eq!(a["verdict"], "escalate");
    assert_eq!(a["categories"], serde_json::json!(["suicidal_behavior"]));
    let f = &a["findings"][0];
    let text: Vec<char> = "Señora dice: I'm going to kill myself tonight."
        .chars()
        .collect();
    let span: String = text
        [f["start"].as_u64().unwrap() as usize..f["end"].as_u64().unwrap() as usize]
        .iter()
        .collect();
    assert_eq!(span, "kill myself");
    assert!(f["rule"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(f["criterion"], "safety");
    assert!(f["context"].as_array().is_some_and(|c| !c.is_empty()));

    let b = &lines[1];
    assert_eq!(b["escalate"], false);
    assert_eq!(b["verdict"], "allow");
    assert!(
        b["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["negated"] == true)
    );

    let c = &lines[2];
    assert_eq!(c["id"], 9);
    assert_eq!(c["verdict"], "block");
    assert_eq!(c["categories"], serde_json::json!(["encourages_harm"]));
}

#[test]
fn dev_set_meets_the_floors_when_shared_data_is_present() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    let gold = root.join("data/safety/dev.jsonl");
    let scorer = root.join("eval/score_safety.py");
    if !gold.exists() || !scorer.exists() {
        readi_tests::skipped(&format!("{} not present", gold.display()));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pred = dir.path().join("pred.jsonl");
    let (code, stderr, _) = run(
        b"",
        &[
            "--input",
            gold.to_str().unwrap(),
            "--output",
            pred.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let Ok(out) = Command::new("python3")
        .arg(&scorer)
        .args([&gold, &pred])
        .arg("--json")
        .output()
    else {
        readi_tests::skipped("python3 not available");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |label: &str| {
        let r = &report["labels"]["ALL"][label];
        (
            r["recall"].as_f64().unwrap_or(0.0),
            r["precision"].as_f64().unwrap_or(0.0),
        )
    };
    let sh = row("self_harm");
    assert!(
        sh.0 >= 0.90 && sh.1 >= 0.80,
        "self_harm recall/precision {sh:?}"
    );
    let hto = row("harm_to_others");
    assert!(
        hto.0 >= 0.85 && hto.1 >= 0.80,
        "harm_to_others recall/precision {hto:?}"
    );
}
