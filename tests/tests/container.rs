//! The container build context (`.dockerignore`, read by podman and docker): every source file the
//! build needs goes in, and build outputs and local data directories (keys, sealed records) never do.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn patterns() -> Vec<String> {
    std::fs::read_to_string(root().join(".dockerignore"))
        .expect("a .dockerignore at the repository root")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches('/').trim_end_matches('/').to_owned())
        .collect()
}

/// One path segment against one pattern segment with `*` wildcards (as Go's filepath.Match).
fn segment(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((head, tail)) => {
            s.starts_with(head) && (head.len()..=s.len()).any(|i| segment(tail, &s[i..]))
        }
    }
}

/// A pattern against a whole relative path; `**` spans any number of segments.
fn matches(pat: &[&str], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|i| matches(rest, &path[i..])),
        Some((p, rest)) => path
            .split_first()
            .is_some_and(|(s, tail)| segment(p, s) && matches(rest, tail)),
    }
}

/// Excluded when a pattern matches the path or a directory above it.
fn excluded(patterns: &[String], path: &str) -> bool {
    let segs: Vec<&str> = path.split('/').collect();
    patterns.iter().any(|p| {
        let pat: Vec<&str> = p.split('/').collect();
        (1..=segs.len()).any(|n| matches(&pat, &segs[..n]))
    })
}

#[test]
fn outputs_and_local_data_stay_out_of_the_build_context() {
    let p = patterns();
    for path in [
        "target/release/readi-agent",
        ".git/config",
        "readi-data/kek",
        "readi-data/agent.db/conf",
        "readi-controller-data/tls/ca.key",
        "deploy/somewhere/readi-data/kek",
        "tests/target/x",
        "fuzz/artifacts/crash-1",
        "my-data/kek",
    ] {
        assert!(
            excluded(&p, path),
            "{path} would be sent into the image build"
        );
    }
}

#[test]
fn every_tracked_source_goes_into_the_build_context() {
    let p = patterns();
    let out = std::process::Command::new("git")
        .args(["ls-files"])
        .current_dir(root())
        .output();
    let files = match out {
        Ok(o) if o.status.success() => String::from_utf8(o.stdout).unwrap(),
        _ => {
            readi_tests::skipped("not a git checkout: tracked files not listed");
            return;
        }
    };
    let mut n = 0;
    for f in files.lines() {
        n += 1;
        assert!(!excluded(&p, f), "{f} is tracked but left out of the build");
    }
    assert!(n > 100, "{n} tracked files");
    for needed in ["Cargo.toml", "Cargo.lock", "agent/src/lib.rs", "proto"] {
        assert!(!excluded(&p, needed), "{needed}");
    }
}
