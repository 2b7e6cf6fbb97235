//! The controller's operator commands as an operator meets them: registering never overwrites
//! (renames need `--update`), tokens name registered applications only, agents are listed and
//! revoked while the controller runs and only when they enrolled, `/metrics` passes `promtool`
//! and counts revocations, and a busy port names the key and the address.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use readi_proto::controller::v1::{self as cpb, controller_client::ControllerClient};
use readi_tests::{Process, binary, ephemeral_config, log_field, run_to_end};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

/// Runs `readi-controller ARGS --config dir/readi-controller.toml`: (exit code, stdout, stderr).
fn ctl(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let cfg = dir.join("readi-controller.toml");
    let mut all = args.to_vec();
    all.extend(["--config", cfg.to_str().unwrap()]);
    run_to_end(&binary("readi-controller"), &all, dir)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = ctl(dir, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn refused(dir: &Path, args: &[&str], says: &str) -> String {
    let (code, out, err) = ctl(dir, args);
    assert_eq!(code, 2, "{args:?} must be refused as bad input: {out}{err}");
    assert!(err.contains(says), "{args:?}: {err}");
    assert!(
        out.is_empty(),
        "a refused command prints nothing on stdout: {out}"
    );
    err
}

#[test]
fn registering_never_overwrites_and_tokens_need_registered_apps() {
    let dir = tempfile::tempdir().unwrap();
    ephemeral_config(dir.path(), "readi-controller.toml");
    let d = dir.path();

    let token = ok(
        d,
        &["vendor", "add", "--id", "acme", "--name", "Acme Health"],
    );
    assert!(token.trim().starts_with("rdc_"), "{token}");
    refused(
        d,
        &["vendor", "add", "--id", "acme", "--name", "Someone Else"],
        "already registered",
    );
    refused(
        d,
        &["vendor", "add", "--update", "--id", "nobody", "--name", "X"],
        "not registered",
    );
    // A rename issues no token and keeps the old one.
    let renamed = ok(
        d,
        &[
            "vendor", "add", "--update", "--id", "acme", "--name", "Acme",
        ],
    );
    assert!(renamed.trim().is_empty(), "{renamed}");
    assert_eq!(ok(d, &["vendor", "list"]), "acme\tAcme\n");
    let tokens = ok(d, &["token", "list"]);
    let id = token.trim()["rdc_".len()..].split('_').next().unwrap();
    assert_eq!(tokens, format!("{id}\tvendor=acme\n"));
    assert!(
        !tokens.contains(token.trim()),
        "token list never shows a secret"
    );

    ok(d, &["vendor", "add", "--id", "other", "--name", "Other"]);
    ok(
        d,
        &[
            "app",
            "add",
            "--id",
            "notes-app",
            "--vendor",
            "acme",
            "--name",
            "Notes",
        ],
    );
    refused(
        d,
        &[
            "app",
            "add",
            "--id",
            "notes-app",
            "--vendor",
            "acme",
            "--name",
            "Renamed",
        ],
        "already registered",
    );
    refused(
        d,
        &[
            "app",
            "add",
            "--update",
            "--id",
            "notes-app",
            "--vendor",
            "other",
            "--name",
            "Mine",
        ],
        "another vendor",
    );
    ok(
        d,
        &[
            "app",
            "add",
            "--update",
            "--id",
            "notes-app",
            "--vendor",
            "acme",
            "--name",
            "Acme Notes",
        ],
    );
    assert_eq!(
        ok(d, &["app", "list"]),
        "notes-app\tvendor=acme\tAcme Notes\n"
    );

    refused(
        d,
        &["enroll-token", "--app", "notes-app", "--app", "unknown-app"],
        "\"unknown-app\" is not registered",
    );
    assert!(ok(d, &["enroll-token", "--app", "notes-app"]).starts_with("rde_"));
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n")
        .map(|p| p.1.to_owned())
        .unwrap_or_default()
}

fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_listed_and_revoked_while_the_controller_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = ephemeral_config(d, "readi-controller.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("[metrics]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&cfg, text).unwrap();
    ok(d, &["vendor", "add", "--id", "acme", "--name", "Acme"]);
    ok(
        d,
        &[
            "app",
            "add",
            "--id",
            "notes-app",
            "--vendor",
            "acme",
            "--name",
            "Notes",
        ],
    );

    let mut p = Process::start(
        &binary("readi-controller"),
        &["run", "--log-json", "--config", cfg.to_str().unwrap()],
        d,
    );
    let grpc = p.wait_serving();
    let line = p.wait_for_log("Self-metrics", Duration::from_secs(30));
    let metrics: SocketAddr = log_field(&line, "metrics_addr").parse().unwrap();

    let token = ok(d, &["enroll-token", "--app", "notes-app"]);
    let key = Ed25519KeyPair::from_pkcs8(
        Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let mut client = ControllerClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let agent = client
        .enroll(cpb::EnrollRequest {
            enrollment_token: token.trim().to_owned(),
            public_key: key.public_key().as_ref().to_vec(),
        })
        .await
        .unwrap()
        .into_inner()
        .agent_id;

    // Listed while the controller holds its store, with a UTC time, not epoch seconds.
    let listed = ok(d, &["agents", "list"]);
    assert!(
        listed.starts_with(&format!("{agent}\tenrolled_at=")),
        "{listed}"
    );
    assert!(listed.contains("Z\tapps=notes-app\tactive"), "{listed}");
    let before = get(metrics, "/metrics");
    assert_eq!(
        metric(&before, "readi_controller_agents"),
        Some(1),
        "{before}"
    );
    assert_eq!(metric(&before, "readi_controller_agents_revoked"), Some(0));

    refused(
        d,
        &["agents", "revoke", "agt-0123456789abcdef"],
        "no agent agt-0123456789abcdef has enrolled",
    );
    let (code, _, err) = ctl(d, &["agents", "revoke", &agent]);
    assert_eq!(code, 0, "{err}");
    assert!(ok(d, &["agents", "list"]).contains("\trevoked"));

    let after = get(metrics, "/metrics");
    assert_eq!(
        metric(&after, "readi_controller_agents_revoked"),
        Some(1),
        "the gauge counts revocations: {after}"
    );
    for name in ["readi_controller_agents", "readi_controller_agents_revoked"] {
        assert!(after.contains(&format!("# HELP {name} ")), "{after}");
        assert!(after.contains(&format!("# TYPE {name} gauge")), "{after}");
    }
    readi_tests::promtool_check(&after);
    p.terminate();
    assert!(p.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn a_busy_port_names_the_key_and_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let cfg = ephemeral_config(dir.path(), "readi-controller.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!("[metrics]\nlisten = \"{addr}\"\n"));
    std::fs::write(&cfg, text).unwrap();
    let (code, _, err) = run_to_end(
        &binary("readi-controller"),
        &["run", "--config", cfg.to_str().unwrap()],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("metrics.listen") && err.contains(&addr),
        "the error names the key and the address: {err}"
    );
}

#[test]
fn validate_names_every_misspelt_key_and_loose_secret_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let kek = d.join("kek");
    std::fs::write(&kek, "00".repeat(32)).unwrap();
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let agent = d.join("agent.toml");
    std::fs::write(
        &agent,
        format!(
            "[server]\nlistn = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\ncache_mb = 64\n\
             [keys]\nkek = {{ file = \"{}\" }}\n",
            d.join("data").display(),
            kek.display()
        ),
    )
    .unwrap();
    let (code, _, err) = run_to_end(
        &binary("readi-agent"),
        &["validate", "--config", agent.to_str().unwrap()],
        d,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("listn") && err.contains("cache_mb"),
        "both keys: {err}"
    );

    // With the spelling fixed, the secret file's mode is what is left.
    let text = std::fs::read_to_string(&agent)
        .unwrap()
        .replace("listn", "listen")
        .replace("cache_mb", "cache_mib");
    std::fs::write(&agent, text).unwrap();
    let (code, _, err) = run_to_end(
        &binary("readi-agent"),
        &["validate", "--config", agent.to_str().unwrap()],
        d,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("keys.kek") && err.contains("mode 644") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(!err.contains(&"00".repeat(32)), "never the secret: {err}");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, out, err) = run_to_end(
        &binary("readi-agent"),
        &["validate", "--config", agent.to_str().unwrap()],
        d,
    );
    assert_eq!(code, 0, "{out}{err}");

    // The controller: the same for its keys, and an invalid config is refused input (exit 2).
    let cfg = d.join("controller.toml");
    std::fs::write(
        &cfg,
        "[server]\nlistn = \"127.0.0.1:0\"\n[release]\nmin_clinic = 3\n",
    )
    .unwrap();
    let (code, _, err) = run_to_end(
        &binary("readi-controller"),
        &["validate", "--config", cfg.to_str().unwrap()],
        d,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("listn") && err.contains("min_clinic"), "{err}");
    let (code, _, err) = run_to_end(
        &binary("readi-controller"),
        &["vendor", "list", "--config", cfg.to_str().unwrap()],
        d,
    );
    assert_eq!(code, 2, "an invalid config is refused input: {err}");
}

#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ephemeral_config(dir.path(), "readi-controller.toml");
    let mut p = Process::start(
        &binary("readi-controller"),
        &["run", "--config", cfg.to_str().unwrap()],
        dir.path(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let out = loop {
        let out = p.output();
        if out.contains("Serving") {
            break out;
        }
        assert!(std::time::Instant::now() < deadline, "not serving: {out}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        !out.contains('\u{1b}'),
        "ANSI escapes in a piped log: {out:?}"
    );
    p.terminate();
    assert!(p.wait_exit(Duration::from_secs(30)).success());
}

/// `--addr` always asks that agent, even from a directory holding another agent's store, accepts
/// the URL form, and every report says where it came from; commands that need the store say a
/// running agent holds it rather than printing a lock error.
#[test]
fn addr_always_wins_and_the_source_is_named() {
    // Agent A runs with its data in its own directory.
    let a = tempfile::tempdir().unwrap();
    let (mut agent, addr) = readi_tests::start_served("readi-agent", a.path());
    // Directory B holds a different store, where the default config looks (./readi-data).
    let b = tempfile::tempdir().unwrap();
    let (mut other, _) = readi_tests::start_served_with(
        "readi-agent",
        b.path(),
        "", // its data under b/data; point the default data dir at it below
    );
    other.terminate();
    assert!(other.wait_exit(Duration::from_secs(30)).success());
    std::fs::rename(b.path().join("data"), b.path().join("readi-data")).unwrap();

    let run = |args: &[&str]| run_to_end(&binary("readi-agent"), args, b.path());
    for form in [addr.to_string(), format!("http://{addr}/")] {
        let (code, out, err) = run(&["audit", "verify", "--addr", &form]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains(&format!("agent at {addr}")), "{out}");
        let (code, out, err) = run(&["egress", "--addr", &form, "--summary"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains(&format!("egress ledger (agent at {addr})")),
            "{out}"
        );
        let (_, _, err) = run(&["safeguards", "--addr", &form]);
        assert!(
            err.contains(&format!("safeguards from the agent at {addr}")),
            "{err}"
        );
    }
    // Without --addr, the local store, named by its directory.
    let (code, out, err) = run(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(store ./readi-data)"), "{out}");
    let (code, _, err) = run(&["audit", "verify", "--addr", "https://x:1"]);
    assert_ne!(code, 0);
    assert!(err.contains("host:port"), "{err}");

    // A's store is held by A: a clear word, not a lock error.
    let cfg = a.path().join("readi-agent.toml");
    let (code, _, err) = run_to_end(
        &binary("readi-agent"),
        &["tokens", "list", "--config", cfg.to_str().unwrap()],
        a.path(),
    );
    assert_ne!(code, 0);
    assert!(err.contains("in use by a running agent"), "{err}");
    assert!(!err.contains("WouldBlock"), "{err}");
    agent.terminate();
    assert!(agent.wait_exit(Duration::from_secs(30)).success());

    // Stopped: times in UTC, seals as the upper bound they are.
    let (code, out, err) = run_to_end(
        &binary("readi-agent"),
        &["keys", "list", "--config", cfg.to_str().unwrap()],
        a.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Z  at most"), "{out}");
}
