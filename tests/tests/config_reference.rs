//! docs/configuration.md is generated from the example configs and checked against the config structs.

use readi_tests::config_doc::{documented_keys, reference, uncommented, value_keys};

const AGENT: &str = readi_agent::config::EXAMPLE;
const CONTROLLER: &str = readi_controller::config::EXAMPLE;

/// Maps whose keys are data (PHI type names), not settings.
const OPEN_MAPS: &[&str] = &["redaction.styles", "redaction.deny"];

fn docs_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md")
}

fn generated() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the shipped example configs in `deploy/config/`, which tests keep equal to the \
         built-in defaults and check key by key against the config structs: every key below is \
         accepted, and every setting the binaries read is listed. Regenerate after changing an example \
         with `READI_BLESS=1 cargo test -p readi-tests --test config_reference`.\n\n\
         Check a file before use with `readi-agent validate --config FILE` or \
         `readi-controller validate --config FILE`; every problem is reported with its key.\n\n",
    );
    out.push_str(&reference("Agent", "deploy/config/agent.toml", AGENT));
    out.push_str(&reference(
        "Controller",
        "deploy/config/controller.toml",
        CONTROLLER,
    ));
    out.trim_end().to_owned() + "\n"
}

fn check_against_structs<T>(name: &str, example: &str)
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let full = uncommented(example);
    // Every documented key, commented ones included, is one the binary accepts (unknown keys are refused).
    let config: T = readi_common::config::parse_toml(&full)
        .unwrap_or_else(|e| panic!("{name}: the uncommented example is refused: {e}\n{full}"));
    // Every setting the binary reads (with every optional one set) is documented.
    let value = toml::Value::try_from(&config).expect("config serializes");
    let read = value_keys(&value, OPEN_MAPS);
    let documented = documented_keys(example);
    let missing: Vec<&String> = read.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "{name}: settings not in the example: {missing:?}"
    );
    assert!(read.len() >= 15, "{name}: the walk found only {read:?}");
}

#[test]
fn every_documented_key_is_read_and_every_read_key_documented() {
    check_against_structs::<readi_agent::config::Config>("agent", AGENT);
    check_against_structs::<readi_controller::config::Config>("controller", CONTROLLER);
}

#[test]
fn an_undocumented_setting_is_caught() {
    // The control: dropping a documented key from the example must fail the check above.
    let trimmed: String = AGENT
        .lines()
        .filter(|l| !l.starts_with("vault_ttl_secs"))
        .map(|l| format!("{l}\n"))
        .collect();
    let result = std::panic::catch_unwind(|| {
        check_against_structs::<readi_agent::config::Config>("agent", &trimmed)
    });
    assert!(result.is_err(), "a missing key went unnoticed");
}

#[test]
fn configuration_reference_is_current() {
    let want = generated();
    if std::env::var_os("READI_BLESS").is_some() {
        std::fs::write(docs_path(), &want).expect("writing docs/configuration.md");
        return;
    }
    let have = std::fs::read_to_string(docs_path()).unwrap_or_default();
    assert!(
        have == want,
        "docs/configuration.md is out of date: run READI_BLESS=1 cargo test -p readi-tests --test \
         config_reference"
    );
}
