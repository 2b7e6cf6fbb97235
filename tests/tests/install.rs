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
    install(&root, &["--uninstall", "--purge"]);
    assert!(!etc.exists() && !root.join("var/lib/readi").exists());
    let files: Vec<_> = readi_tests::files_under(&root);
    assert!(files.is_empty(), "left behind: {files:?}");
}
