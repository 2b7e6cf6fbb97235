//! The Kubernetes examples in deploy/kubernetes: every controller config they embed is one the real
//! binary accepts, and the replicas example keeps what replicas need (the PostgreSQL backend with
//! its URL from the environment the Deployment sets, the agents' CA shared from a Secret).

use std::path::{Path, PathBuf};

fn manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    out.sort();
    out
}

/// The `config.toml: |` blocks of a manifest, dedented.
fn embedded_configs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != "config.toml: |" {
            continue;
        }
        let base = indent(line);
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || indent(l) > base)
            .copied()
            .collect();
        let cut = block
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| indent(l))
            .min()
            .unwrap_or(0);
        out.push(
            block
                .iter()
                .map(|l| l.get(cut..).unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    out
}

#[test]
fn every_embedded_config_validates() {
    let files = manifests();
    assert!(files.len() >= 2, "{files:?}");
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        let yaml = std::fs::read_to_string(&file).unwrap();
        let configs = embedded_configs(&yaml);
        assert_eq!(configs.len(), 1, "{}: one config", file.display());
        let path = dir.path().join("config.toml");
        std::fs::write(&path, &configs[0]).unwrap();
        let (code, out, err) = readi_tests::run_to_end(
            &readi_tests::binary("readi-controller"),
            &["validate", "--config", path.to_str().unwrap()],
            dir.path(),
        );
        assert_eq!(code, 0, "{}: {out}{err}", file.display());
    }
}

#[test]
fn the_replicas_example_shares_the_database_and_the_ca() {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/controller-replicas.yaml");
    let yaml = std::fs::read_to_string(file).unwrap();
    let config: toml::Value = toml::from_str(&embedded_configs(&yaml)[0]).unwrap();
    let storage = &config["storage"];
    assert_eq!(storage["backend"].as_str(), Some("postgres"));
    let var = storage["postgres_url"]["env"].as_str().unwrap();
    assert!(
        yaml.contains(&format!("- name: {var}")),
        "the Deployment sets {var}"
    );
    assert!(config["server"].get("tls").is_some(), "replicas serve TLS");
    let data_dir = storage["data_dir"].as_str().unwrap();
    assert!(
        yaml.contains(&format!(
            "{{ name: ca, mountPath: {data_dir}/tls, readOnly: true }}"
        )),
        "the shared CA is mounted where the controller looks for it"
    );
    let ca = storage["postgres_ca"].as_str().unwrap();
    let ca_dir = Path::new(ca).parent().unwrap().to_str().unwrap();
    assert!(yaml.contains(&format!("mountPath: {ca_dir},")), "{ca}");
    let replicas: u32 = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("replicas: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(replicas >= 2);
    let per_replica = storage["postgres_connections"].as_integer().unwrap();
    assert!(
        (i64::from(replicas) + 1) * per_replica < 100,
        "replicas (and one surge pod) stay below PostgreSQL's default max_connections"
    );
}

/// `readi-controller init-ca` makes the agents' CA once, where the controller looks for it, and a
/// second run keeps it: what an operator runs before sharing it with replicas.
#[test]
fn init_ca_makes_the_ca_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("controller.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\nnames = [\"localhost\"]\n\
             [storage]\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let bin = readi_tests::binary("readi-controller");
    let run = || {
        let (code, out, err) = readi_tests::run_to_end(
            &bin,
            &["init-ca", "--config", cfg.to_str().unwrap()],
            dir.path(),
        );
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("kubectl create secret"), "{err}");
        std::path::PathBuf::from(out.trim())
    };
    let tls = run();
    assert_eq!(tls, dir.path().join("data/tls"));
    let pem = std::fs::read(tls.join("ca.pem")).unwrap();
    assert!(tls.join("ca.key").exists());
    run();
    assert_eq!(std::fs::read(tls.join("ca.pem")).unwrap(), pem, "kept");

    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let (code, _, err) = readi_tests::run_to_end(
        &bin,
        &["init-ca", "--config", cfg.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("server.tls"), "{err}");
}
