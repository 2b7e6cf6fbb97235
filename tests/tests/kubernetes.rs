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

/// Every probe is an HTTP GET for `/healthz` or `/livez` on the container port of the embedded
/// config's `metrics.listen`, which is on the pod address: the kubelet's probes speak neither TLS
/// nor gRPC-over-TLS, so the TLS-only gRPC port can never be a probe target.
#[test]
fn every_probe_targets_the_plaintext_health_port() {
    for file in manifests() {
        let yaml = std::fs::read_to_string(&file).unwrap();
        let config: toml::Value = toml::from_str(&embedded_configs(&yaml)[0]).unwrap();
        let listen: std::net::SocketAddr = config["metrics"]["listen"]
            .as_str()
            .expect("metrics.listen is set")
            .parse()
            .unwrap();
        assert!(
            !listen.ip().is_loopback(),
            "{}: the kubelet reaches the pod address, not its loopback",
            file.display()
        );
        let port_of = |name: &str| -> u16 {
            yaml.lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix(&format!("- {{ name: {name}, containerPort: "))?
                        .strip_suffix(" }")?
                        .parse()
                        .ok()
                })
                .unwrap_or_else(|| panic!("{}: no container port {name}", file.display()))
        };
        let lines: Vec<&str> = yaml.lines().map(str::trim).collect();
        let mut probes = 0;
        for (i, l) in lines.iter().enumerate() {
            if !l.ends_with("Probe:") {
                continue;
            }
            probes += 1;
            let how = lines[i + 1];
            let rest = how
                .strip_prefix("httpGet: { path: ")
                .unwrap_or_else(|| panic!("{}: {l} is not an HTTP GET: {how}", file.display()));
            let (path, port) = rest
                .strip_suffix(" }")
                .and_then(|r| r.split_once(", port: "))
                .unwrap();
            assert!(["/healthz", "/livez"].contains(&path), "{how}");
            assert_eq!(port_of(port), listen.port(), "{}: {how}", file.display());
        }
        assert!(probes >= 2, "{}: readiness and liveness", file.display());
    }
}

/// The single-replica example's controller, run with its own config (data and ports moved to the
/// test's), answers both probe paths over plain HTTP while its gRPC port speaks TLS.
#[test]
fn the_example_controller_answers_its_probes_in_plaintext() {
    use std::io::{Read as _, Write as _};
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/controller.yaml");
    let yaml = std::fs::read_to_string(file).unwrap();
    let mut config: toml::Value = toml::from_str(&embedded_configs(&yaml)[0]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    config["server"]["listen"] = "127.0.0.1:0".into();
    config["storage"]["data_dir"] = dir.path().join("data").to_str().unwrap().into();
    config["dashboard"]["listen"] = "127.0.0.1:0".into();
    config["metrics"]["listen"] = "0.0.0.0:0".into();
    let cfg = dir.path().join("controller.toml");
    std::fs::write(&cfg, toml::to_string(&config).unwrap()).unwrap();
    let mut p = readi_tests::Process::start(
        &readi_tests::binary("readi-controller"),
        &["run", "--log-json", "--config", cfg.to_str().unwrap()],
        dir.path(),
    );
    let line = p.wait_for_log("Self-metrics", std::time::Duration::from_secs(60));
    let port = readi_tests::log_field(&line, "metrics_addr")
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .port();
    p.wait_serving();
    for path in ["/healthz", "/livez"] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{path}: {out}");
    }
    p.terminate();
    assert!(p.wait_exit(std::time::Duration::from_secs(30)).success());
}

/// The manifests against the Kubernetes API schema, strictly (unknown fields refused), with
/// `kubernetes-validate` (PyPI; `.ci/run` installs it into a virtualenv on PATH).
#[test]
fn the_manifests_match_the_kubernetes_schema() {
    let files = manifests();
    let out = std::process::Command::new("kubernetes-validate")
        .arg("--strict")
        .arg("--quiet")
        .args(&files)
        .output();
    match out {
        Err(_) => readi_tests::skipped(
            "kubernetes-validate is not installed (pip install kubernetes-validate): manifests not checked against the API schema",
        ),
        Ok(out) => assert!(
            out.status.success(),
            "kubernetes-validate: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
