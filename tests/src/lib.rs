//! Helpers for end-to-end tests: building and starting the real binaries, reading their logs.

pub mod config_doc;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The workspace's target directory, derived from this test executable's location.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// A directory for test artifacts (screenshots) under the target directory, created on demand.
pub fn artifacts_dir() -> PathBuf {
    let dir = target_dir()
        .parent()
        .map_or_else(target_dir, Path::to_path_buf)
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("creating the test artifact directory");
    dir
}

/// Says that a test skipped work and why: in its own output, and as a line of
/// `target/test-artifacts/skipped.txt`, which `.ci/run` prints after the tests so the skip is seen in
/// the summary (the test harness hides a passing test's output).
pub fn skipped(reason: &str) {
    use std::io::Write as _;
    eprintln!("SKIPPED: {reason}");
    let exe = std::env::current_exe().ok();
    let binary = exe
        .as_deref()
        .and_then(Path::file_stem)
        .and_then(|s| s.to_str())
        .map_or("?", |s| s.split('-').next().unwrap_or(s))
        .to_owned();
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let line = format!("{binary}::{test}: {reason}\n");
    let file = artifacts_dir().join("skipped.txt");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("(could not note the skip in {}: {e})", file.display());
    }
}

/// Every file under `dir`, recursively: what a canary search of a data directory must read.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("reading a test directory") {
            let p = e.expect("directory entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The files under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            std::fs::read(p)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle)
        })
        .collect()
}

/// The value of the string field `field` in a JSON log line.
pub fn log_field(line: &str, field: &str) -> String {
    let key = format!("\"{field}\":\"");
    let start = line
        .find(&key)
        .unwrap_or_else(|| panic!("{field} in {line}"))
        + key.len();
    let end = start + line[start..].find('"').expect("closing quote");
    line[start..end].to_owned()
}

/// The path of a workspace binary (`readi-agent`, `readi-controller`, `readi-demo`), built once per
/// test run so the tests never run a stale binary.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let profile_dir = target_dir();
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "readi-agent", "-p", "readi-controller"]);
        cmd.args(["-p", "readi-demo"]);
        // Cargo gives this test process the variables of the package under test; a build script
        // that watches one (ring's watches CARGO_MANIFEST_DIR) would see it change, rerun, and make
        // the next `cargo test` rebuild everything above it. The nested build sees the shell's env.
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(package_scoped) {
                cmd.env_remove(&key);
            }
        }
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .map_err(|e| format!("running cargo build: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("cargo build failed: {status}"))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    let path = target_dir().join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Whether `key` is one of the variables Cargo sets for the package a test belongs to (not the
/// user's own `CARGO_HOME`, `CARGO_TARGET_DIR`, `CARGO_BUILD_*` and the like, which must carry on).
fn package_scoped(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    EXACT.contains(&key) || key.starts_with("CARGO_PKG_") || key.starts_with("CARGO_BIN_EXE_")
}

/// A running binary whose stderr is collected line by line; killed on drop.
#[derive(Debug)]
pub struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Mutex<Vec<String>>,
    /// Indices of log lines a wait already returned: each line satisfies one wait.
    taken: Mutex<std::collections::HashSet<usize>>,
}

impl Process {
    /// Starts `binary` with `args` in `cwd`.
    pub fn start(binary: &Path, args: &[&str], cwd: &Path) -> Process {
        Process::start_env(binary, args, cwd, &[])
    }

    /// Starts `binary` with `args` in `cwd` and extra environment variables.
    pub fn start_env(binary: &Path, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Process {
        let mut child = Command::new(binary)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            lines,
            log: Mutex::new(Vec::new()),
            taken: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Waits for a JSON log line whose message is `message` and returns it. A line logged earlier
    /// counts (processes log in any order around `Serving`) unless a wait already returned it.
    pub fn wait_for_log(&self, message: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let needle = format!("\"message\":\"{message}\"");
        let mut taken = self.taken.lock().unwrap();
        {
            let log = self.log.lock().unwrap();
            if let Some(i) =
                (0..log.len()).find(|i| !taken.contains(i) && log[*i].contains(&needle))
            {
                taken.insert(i);
                return log[i].clone();
            }
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let mut log = self.log.lock().unwrap();
                    log.push(line.clone());
                    if line.contains(&needle) {
                        taken.insert(log.len() - 1);
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no {message:?} log line within {timeout:?}; output so far:\n{}",
                    self.output()
                ),
            }
        }
    }

    /// Waits until the process logs `Serving` and returns the gRPC address it bound.
    pub fn wait_serving(&self) -> SocketAddr {
        let line = self.wait_for_log("Serving", Duration::from_secs(60));
        let start =
            line.find("\"grpc_addr\":\"").expect("grpc_addr field") + "\"grpc_addr\":\"".len();
        let end = start + line[start..].find('"').expect("closing quote");
        line[start..end].parse().expect("socket address")
    }

    /// Everything the process wrote to stderr so far.
    pub fn output(&self) -> String {
        let mut log = self.log.lock().unwrap();
        while let Ok(line) = self.lines.try_recv() {
            log.push(line);
        }
        log.join("\n")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the process with SIGKILL (no chance to flush) and reaps it.
    pub fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit within {timeout:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a binary to completion and returns (exit code, stdout, stderr).
pub fn run_to_end(binary: &Path, args: &[&str], cwd: &Path) -> (i32, String, String) {
    run_to_end_env(binary, args, cwd, &[])
}

/// As `run_to_end`, with extra environment variables.
pub fn run_to_end_env(
    binary: &Path,
    args: &[&str],
    cwd: &Path,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let out = Command::new(binary)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes a config that serves on an ephemeral loopback port with data in `dir/data`.
pub fn ephemeral_config(dir: &Path, file: &str) -> PathBuf {
    let path = dir.join(file);
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 5\n[storage]\ndata_dir = \"{}\"\n",
        dir.join("data").display()
    );
    if file.contains("controller") {
        // The dashboard too, so controllers in parallel tests never share a port.
        text.push_str("[dashboard]\nlisten = \"127.0.0.1:0\"\n");
    }
    std::fs::write(&path, text).expect("writing config");
    path
}

/// Starts `bin` (`readi-agent` or `readi-controller`) with an ephemeral-port config and data under
/// `dir`, JSON logs, and waits until it serves; returns the process and its gRPC address.
pub fn start_served(bin: &str, dir: &Path) -> (Process, SocketAddr) {
    start_served_with(bin, dir, "")
}

/// As `start_served`, with `extra` TOML appended to the config.
pub fn start_served_with(bin: &str, dir: &Path, extra: &str) -> (Process, SocketAddr) {
    start_served_env(bin, dir, extra, &[])
}

/// As `start_served_with`, with extra environment variables for the process.
pub fn start_served_env(
    bin: &str,
    dir: &Path,
    extra: &str,
    env: &[(&str, &str)],
) -> (Process, SocketAddr) {
    let cfg = ephemeral_config(dir, &format!("{bin}.toml"));
    if !extra.is_empty() {
        let mut text = std::fs::read_to_string(&cfg).expect("reading config");
        text.push_str(extra);
        std::fs::write(&cfg, text).expect("writing config");
    }
    let p = Process::start_env(
        &binary(bin),
        &[
            "run",
            "--log-json",
            "--config",
            cfg.to_str().expect("UTF-8 path"),
        ],
        dir,
        env,
    );
    let addr = p.wait_serving();
    (p, addr)
}

/// The audit records of a stopped agent whose data lives under `dir/data`, oldest first.
pub fn audit_records(dir: &Path) -> Vec<String> {
    let db = sled::open(dir.join("data/agent.db")).expect("opening the stopped agent's store");
    db.open_tree("audit")
        .expect("audit tree")
        .iter()
        .values()
        .map(|v| String::from_utf8(v.expect("audit record").to_vec()).expect("UTF-8 record"))
        .collect()
}

/// `msg` with `authorization: Bearer <token>`.
pub fn with_token<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII token"),
    );
    r
}

/// The safeguard `id` of a report.
pub fn safeguard<'a>(
    report: &'a readi_proto::agent::v1::SafeguardsReport,
    id: &str,
) -> &'a readi_proto::agent::v1::Safeguard {
    report
        .safeguards
        .iter()
        .find(|g| g.id == id)
        .unwrap_or_else(|| panic!("no safeguard {id}"))
}

/// Mounts a tmpfs of `mib` MiB at `at`; `None` where this host does not allow it.
pub fn mount_tmpfs(at: &Path, mib: u32) -> Option<()> {
    std::fs::create_dir_all(at).unwrap();
    let ok = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={mib}m,mode=0700"),
            "tmpfs",
        ])
        .arg(at)
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(())
}

/// Unmounts its mount point (lazily) when dropped.
#[derive(Debug)]
pub struct Unmount(pub std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system holding `dir` until writes fail.
pub fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write as _;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    path
}

/// A URL to a fresh, empty schema in the test database named by READI_TEST_POSTGRES_URL (`.ci/postgres`
/// starts one); `None`, with a note, where none is given.
pub fn postgres_schema_url() -> Option<String> {
    static SCHEMAS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Ok(url) = std::env::var("READI_TEST_POSTGRES_URL") else {
        skipped("READI_TEST_POSTGRES_URL is not set (.ci/postgres starts a server)");
        return None;
    };
    let schema = format!(
        "e2e{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    // The blocking client runs its own runtime: keep it off the caller's (a test's) runtime.
    let (admin_url, create) = (url.clone(), format!("CREATE SCHEMA {schema}"));
    std::thread::spawn(move || {
        let mut admin =
            postgres::Client::connect(&admin_url, postgres::NoTls).expect("the test database");
        admin.batch_execute(&create).expect("creating a schema");
    })
    .join()
    .expect("creating the test schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}options=-csearch_path%3D{schema}"))
}

/// Runs `promtool check metrics` on a `/metrics` body and fails the test on any complaint; where
/// promtool is not installed (Debian's prometheus package), says so as a skip.
pub fn promtool_check(text: &str) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        skipped("promtool is not installed (Debian's prometheus package): /metrics not linted");
        return;
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("writing to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Validates a FHIR R4 resource (JSON) against the official R4 JSON schema vendored in
/// `tests/data/fhir` (the definition its `resourceType` names) and fails the test on any error.
/// Uses Python's `jsonschema` (`.ci/run` installs it); without it, says so as a skip.
pub fn fhir_check(resource: &str) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    const CHECK: &str = "import json, sys\n\
try:\n    import jsonschema\nexcept ImportError:\n    sys.exit(3)\n\
full = json.load(open(sys.argv[1]))\n\
doc = json.load(sys.stdin)\n\
schema = {'definitions': full['definitions'], '$ref': '#/definitions/' + doc['resourceType']}\n\
errors = list(jsonschema.Draft6Validator(schema).iter_errors(doc))\n\
for e in errors[:20]:\n    print('/'.join(map(str, e.absolute_path)) or '<root>', ':', e.message[:300])\n\
sys.exit(1 if errors else 0)\n";
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fhir/fhir.schema.json");
    let mut child = Command::new("python3")
        .args(["-c", CHECK])
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(resource.as_bytes())
        .expect("writing to python3");
    let out = child.wait_with_output().expect("python3 runs");
    if out.status.code() == Some(3) {
        skipped(
            "Python's jsonschema is not installed: FHIR output not validated against the R4 schema",
        );
        return;
    }
    assert!(
        out.status.success(),
        "not valid FHIR R4: {}{}\n{resource}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
