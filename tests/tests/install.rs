//! deploy/install.sh into a staging root: files and permissions, a re-run that keeps config and keys,
//! and uninstall (keeping, then purging, config, keys and data).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

fn install(root: &Path, extra: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/install.sh");
    let binary = readi_tests::binary("readi-agent");
    let out = Command::new("bash")
        .arg(&script)
        .args([
            "--root",
            root.to_str().unwrap(),
            "--binary",
            binary.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "install.sh {extra:?} failed:\n{text}");
    text
}

/// As `install`, returning the exit code and output instead of requiring success.
fn try_install(root: &Path, extra: &[&str]) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/install.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["--root", root.to_str().unwrap()])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn install_is_idempotent_and_uninstalls_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let out = install(&root, &[]);
    assert!(out.contains("system user and systemctl skipped"), "{out}");
    let etc = root.join("etc/readi");
    assert_eq!(mode(&root.join("usr/local/bin/readi-agent")), 0o755);
    assert_eq!(mode(&etc), 0o750);
    assert_eq!(mode(&etc.join("agent.toml")), 0o640);
    assert_eq!(mode(&etc.join("credentials")), 0o700);
    assert_eq!(mode(&etc.join("credentials/kek")), 0o600);
    assert_eq!(mode(&root.join("var/lib/readi")), 0o700);
    assert!(
        root.join("etc/systemd/system/readi-agent.service")
            .is_file()
    );
    assert!(
        root.join("usr/share/doc/readi/README.md").is_file(),
        "the unit's Documentation= file is installed"
    );
    let kek = std::fs::read_to_string(etc.join("credentials/kek")).unwrap();
    assert_eq!(kek.len(), 64);
    assert!(kek.bytes().all(|b| b.is_ascii_hexdigit()));
    let config = std::fs::read_to_string(etc.join("agent.toml")).unwrap();
    assert!(config.contains("data_dir = \"/var/lib/readi\""));
    assert!(config.contains("\nkek = { credential = \"readi-kek\" }"));

    // A re-run (an upgrade) keeps the operator's config and the key.
    std::fs::write(
        etc.join("agent.toml"),
        config.replace("level = \"info\"", "level = \"warn\""),
    )
    .unwrap();
    let out = install(&root, &[]);
    assert!(out.contains("kept the existing"), "{out}");
    assert_eq!(
        std::fs::read_to_string(etc.join("credentials/kek")).unwrap(),
        kek
    );
    assert!(
        std::fs::read_to_string(etc.join("agent.toml"))
            .unwrap()
            .contains("level = \"warn\"")
    );

    // Uninstall keeps config, keys and data unless purged.
    install(&root, &["--uninstall"]);
    assert!(!root.join("usr/local/bin/readi-agent").exists());
    assert!(!root.join("etc/systemd/system/readi-agent.service").exists());
    assert!(etc.join("credentials/kek").exists());

    // Purging needs a person's yes, or --yes from a script; it keeps a copy of the KEK.
    let (code, text) = try_install(&root, &["--uninstall", "--purge"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--yes"), "{text}");
    assert!(etc.join("credentials/kek").exists(), "nothing removed");
    let out = install(&root, &["--uninstall", "--purge", "--yes"]);
    assert!(!etc.exists() && !root.join("var/lib/readi").exists());
    let files: Vec<_> = readi_tests::files_under(&root);
    assert_eq!(files.len(), 1, "only the KEK copy is left: {files:?}");
    assert!(
        files[0].starts_with(root.join("var/backups/readi")),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), kek);
    assert_eq!(mode(&files[0]), 0o600);
    assert!(out.contains("kept the key-encryption key"), "{out}");

    // --discard-kek leaves nothing of this install behind.
    let again = dir.path().join("again");
    install(&again, &[]);
    install(
        &again,
        &["--uninstall", "--purge", "--yes", "--discard-kek"],
    );
    let files: Vec<_> = readi_tests::files_under(&again);
    assert!(files.is_empty(), "left behind: {files:?}");
}

/// The units' hardening as `systemd-analyze security` scores it (exposure 2.0 or below), and a
/// start of the agent under the unit's sandboxing properties where systemd runs.
#[test]
fn units_are_hardened() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd");
    let analyzed = Command::new("systemd-analyze").arg("--version").output();
    if analyzed.is_err() {
        readi_tests::skipped("systemd-analyze is not installed: unit hardening not scored");
        return;
    }
    for unit in ["readi-agent.service", "readi-controller.service"] {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=20"])
            .arg(units.join(unit))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let score = text
            .lines()
            .find_map(|l| l.split("exposure level for ").nth(1))
            .unwrap_or_default()
            .to_owned();
        assert!(
            out.status.success(),
            "{unit}: exposure above 2.0: {score}\n{text}"
        );
        assert!(!score.is_empty(), "{text}");
    }
    // Running them under those properties needs a running systemd (not a container's).
    let running = Command::new("systemctl")
        .arg("is-system-running")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if !matches!(running.as_str(), "running" | "degraded") {
        readi_tests::skipped(&format!(
            "systemd is {running:?} here, not running: the hardened units were scored, not started"
        ));
    }
}
