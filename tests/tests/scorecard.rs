//! Scorecards end to end: a real controller with reports from six enrolled clinics, vendors scoped
//! to their own applications over gRPC, the CLI and HTTP, and the dashboard driven in headless
//! Chromium (skipped, saying so, where Chromium is not installed).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use prost::Message as _;
use readi_proto::controller::v1::{self as cpb, controller_client::ControllerClient};
use readi_proto::report::v1::{self as pb, Metric};
use readi_tests::{Process, artifacts_dir, binary, log_field, run_to_end, run_to_end_env};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

struct Controller {
    dir: tempfile::TempDir,
    process: Process,
    grpc: SocketAddr,
    http: SocketAddr,
}

fn cli(dir: &Path, args: &[&str]) -> String {
    let cfg = dir.join("controller.toml");
    let mut all = vec![args[0], args[1], "--config", cfg.to_str().unwrap()];
    all.extend_from_slice(&args[2..]);
    let (code, out, err) = run_to_end(&binary("readi-controller"), &all, dir);
    assert_eq!(code, 0, "{args:?}: {err}");
    out.trim().to_owned()
}

fn start() -> Controller {
    start_in(tempfile::tempdir().unwrap())
}

/// Starts a controller on `dir` (a fresh one, or a stopped controller's, to restart it).
fn start_in(dir: tempfile::TempDir) -> Controller {
    let cfg = dir.path().join("controller.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 5\n[storage]\ndata_dir = \"{}\"\n\
             [dashboard]\nlisten = \"127.0.0.1:0\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let process = Process::start(
        &binary("readi-controller"),
        &["run", "--log-json", "--config", cfg.to_str().unwrap()],
        dir.path(),
    );
    let line = process.wait_for_log("Dashboard", Duration::from_secs(60));
    let http = log_field(&line, "dashboard_addr").parse().unwrap();
    let grpc = process.wait_serving();
    Controller {
        dir,
        process,
        grpc,
        http,
    }
}

fn count(metric: Metric, n: i64) -> pb::Cell {
    pb::Cell {
        metric: metric as i32,
        labels: None,
        value: Some(pb::cell::Value::Count(n)),
        suppressed: false,
    }
}

fn lang(metric: Metric, language: &str, n: i64) -> pb::Cell {
    pb::Cell {
        labels: Some(pb::Labels {
            language: language.into(),
            ..Default::default()
        }),
        ..count(metric, n)
    }
}

fn hist(metric: Metric, labels: Option<pb::Labels>, bounds: &[i64], counts: &[i64]) -> pb::Cell {
    pb::Cell {
        metric: metric as i32,
        labels,
        value: Some(pb::cell::Value::Histogram(pb::Histogram {
            upper_bounds: bounds.to_vec(),
            counts: counts.to_vec(),
        })),
        suppressed: false,
    }
}

/// One clinic-day of a healthy application, except that the Spanish-language flag rate is high.
fn day_cells() -> Vec<pb::Cell> {
    vec![
        count(Metric::Exchanges, 200),
        lang(Metric::Exchanges, "en", 150),
        lang(Metric::Exchanges, "es", 50),
        count(Metric::FlaggedExchanges, 35),
        lang(Metric::FlaggedExchanges, "en", 10),
        lang(Metric::FlaggedExchanges, "es", 25),
        count(Metric::MissedEscalations, 0),
        // Enough acknowledgements that the share acknowledged late is known despite the noise.
        count(Metric::EscalationsRaised, 90),
        count(Metric::EscalationsAcknowledged, 90),
        hist(
            Metric::SecondsToAcknowledge,
            None,
            &[60, 300, 900, 1800, 3600, 14_400, 86_400],
            &[30, 60, 0, 0, 0, 0, 0, 0],
        ),
        count(Metric::PhiRedacted, 300),
        count(Metric::ResidualPhi, 0),
        count(Metric::Requests, 500),
        count(Metric::Errors, 1),
        count(Metric::Sessions, 40),
        count(Metric::OverUse, 1),
        hist(
            Metric::OutcomeChange,
            Some(pb::Labels {
                measure: 1,
                arm: 1,
                ..Default::default()
            }),
            &[-10, -5, -3, -1, 0, 2, 4],
            &[0, 20, 30, 10, 0, 0, 0, 0],
        ),
        hist(
            Metric::OutcomeChange,
            Some(pb::Labels {
                measure: 1,
                arm: 2,
                ..Default::default()
            }),
            &[-10, -5, -3, -1, 0, 2, 4],
            &[0, 10, 30, 20, 0, 0, 0, 0],
        ),
    ]
}

/// Enrolls six clinics for both applications and submits a report per clinic per day for ten days.
async fn seed(c: &Controller) {
    let mut client = ControllerClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();
    let rng = ring::rand::SystemRandom::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = now / 86_400;
    for _ in 0..6 {
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let token = enroll_token(c.dir.path());
        let agent = client
            .enroll(cpb::EnrollRequest {
                enrollment_token: token,
                public_key: key.public_key().as_ref().to_vec(),
            })
            .await
            .unwrap()
            .into_inner()
            .agent_id;
        for (seq, day) in (today - 10..today).enumerate() {
            let report = pb::Report {
                egress_head: None,
                audit_head: None,
                schema_version: 1,
                agent_id: agent.clone(),
                sequence: seq as u64 + 1,
                window_start: Some(prost_types::Timestamp {
                    seconds: day * 86_400 + 7200,
                    nanos: 0,
                }),
                window_end: Some(prost_types::Timestamp {
                    seconds: day * 86_400 + 10_800,
                    nanos: 0,
                }),
                apps: ["notes-app", "chat-app"]
                    .iter()
                    .map(|app| pb::AppMetrics {
                        app_id: (*app).into(),
                        cells: day_cells(),
                        budget_exhausted: false,
                        micro_epsilon_spent: 10_000_000,
                    })
                    .collect(),
                privacy: Some(pb::PrivacyParameters {
                    k: 11,
                    mechanism: pb::NoiseMechanism::DiscreteLaplace as i32,
                    micro_epsilon: 500_000,
                    scale_numerator: 1_000_000,
                    scale_denominator: 500_000,
                }),
            }
            .encode_to_vec();
            client
                .submit_report(cpb::SubmitReportRequest {
                    report: Some(pb::SignedReport {
                        signature: key.sign(&report).as_ref().to_vec(),
                        report,
                    }),
                })
                .await
                .unwrap();
        }
    }
}

fn enroll_token(dir: &Path) -> String {
    let cfg = dir.join("controller.toml");
    let (code, out, err) = run_to_end(
        &binary("readi-controller"),
        &[
            "enroll-token",
            "--config",
            cfg.to_str().unwrap(),
            "--app",
            "notes-app",
            "--app",
            "chat-app",
        ],
        dir,
    );
    assert_eq!(code, 0, "{err}");
    out.trim().to_owned()
}

/// Vendors `acme` (notes-app) and `other` (chat-app): (acme token, other token, operator token).
fn register(dir: &Path) -> (String, String, String) {
    let acme = cli(
        dir,
        &["vendor", "add", "--id", "acme", "--name", "Acme Health"],
    );
    let other = cli(
        dir,
        &["vendor", "add", "--id", "other", "--name", "Other Co"],
    );
    cli(
        dir,
        &[
            "app",
            "add",
            "--id",
            "notes-app",
            "--vendor",
            "acme",
            "--name",
            "Acme Notes",
        ],
    );
    cli(
        dir,
        &[
            "app",
            "add",
            "--id",
            "chat-app",
            "--vendor",
            "other",
            "--name",
            "Other Chat",
        ],
    );
    let operator = cli(dir, &["token", "add", "--operator"]);
    assert!(acme.starts_with("rdc_") && operator.starts_with("rdc_"));
    (acme, other, operator)
}

fn with_token<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn scorecard_req(app: &str, period: cpb::Period) -> cpb::GetScorecardRequest {
    cpb::GetScorecardRequest {
        app_id: app.into(),
        period: period as i32,
        until: None,
    }
}

fn status(card: &cpb::Scorecard, c: cpb::Criterion) -> (cpb::Status, String) {
    let s = card
        .criteria
        .iter()
        .find(|s| s.criterion == c as i32)
        .unwrap();
    (cpb::Status::try_from(s.status).unwrap(), s.rule_id.clone())
}

/// One HTTP/1.1 request; returns (status, headers and body). Reads by Content-Length, since some
/// servers keep the connection open after answering.
fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let first = request.lines().next().unwrap_or("").to_owned();
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end].lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            if let Some(n) = length
                && buf.len() >= head_end + 4 + n
            {
                break;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "{first}: {e}; read so far: {}",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
    let out = String::from_utf8_lossy(&buf).into_owned();
    let code = out[9..12].parse().unwrap();
    (code, out)
}

fn login_cookie(addr: SocketAddr, token: &str) -> String {
    let body = format!("token={token}");
    let (code, resp) = http(
        addr,
        &format!(
            "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(code, 303, "{resp}");
    let line = resp
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    assert!(
        line.contains("HttpOnly") && line.contains("Secure") && line.contains("SameSite=Strict"),
        "{line}"
    );
    line.split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

fn get(addr: SocketAddr, path: &str, cookie: &str) -> (u16, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendors_see_scorecards_of_their_own_applications() {
    let mut c = start();
    let (acme, _other, operator) = register(c.dir.path());
    seed(&c).await;
    let mut client = ControllerClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();

    let card = client
        .get_scorecard(with_token(
            scorecard_req("notes-app", cpb::Period::Week),
            &acme,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(card.released, "{card:?}");
    assert_eq!(card.clinics, 6);
    assert_eq!(
        status(&card, cpb::Criterion::Safety),
        (cpb::Status::Meets, "safety.no_missed_escalations".into())
    );
    assert_eq!(status(&card, cpb::Criterion::Privacy).0, cpb::Status::Meets);
    // 6.7% of English exchanges flagged against 50% of Spanish ones.
    assert_eq!(
        status(&card, cpb::Criterion::Equity),
        (cpb::Status::Concern, "equity.flag_rate_gap".into())
    );
    assert_eq!(
        status(&card, cpb::Criterion::Engagement).0,
        cpb::Status::Meets
    );
    assert_eq!(
        status(&card, cpb::Criterion::Effectiveness).0,
        cpb::Status::Meets
    );
    assert_eq!(
        status(&card, cpb::Criterion::Implementation).0,
        cpb::Status::Meets
    );
    let safety = &card.criteria[0];
    assert!(
        safety
            .evidence
            .iter()
            .all(|e| e.clinics == 6 && e.error >= 0.0)
    );
    // Ten days of reports: the last two of eight weekly points are released, with the equity
    // concern in each; two weeks are too little history to judge drift.
    let equity = &card.criteria[2];
    assert_eq!(equity.trend.len(), 8);
    let released: Vec<bool> = equity.trend.iter().map(|w| w.released).collect();
    assert_eq!(
        released,
        [false, false, false, false, false, false, true, true]
    );
    assert!(equity.trend[6..]
        .iter()
        .all(|w| w.status == cpb::Status::Concern as i32 && w.rule_id == "equity.flag_rate_gap"));
    let flag = safety
        .rates
        .iter()
        .find(|r| r.rule_id == "drift.safety.flag_rate")
        .expect("the flag rate is watched");
    assert!(!flag.drift && !safety.review);
    assert!(
        flag.explanation.contains("needed to know"),
        "{}",
        flag.explanation
    );
    assert!(flag.points[7].released && flag.points[7].base > 0.0);

    // Scope: another vendor's application is denied; no token, no answer; operators see all.
    let err = client
        .get_scorecard(with_token(
            scorecard_req("chat-app", cpb::Period::Week),
            &acme,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let err = client
        .get_scorecard(with_token(
            scorecard_req("no-such-app", cpb::Period::Week),
            &acme,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::PermissionDenied,
        "existence is not revealed"
    );
    let err = client
        .get_scorecard(scorecard_req("notes-app", cpb::Period::Week))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let err = client
        .get_scorecard(with_token(
            scorecard_req("no-such-app", cpb::Period::Week),
            &operator,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let apps = |token: &str| {
        let mut client = client.clone();
        let token = token.to_owned();
        async move {
            client
                .list_applications(with_token(cpb::ListApplicationsRequest {}, &token))
                .await
                .unwrap()
                .into_inner()
                .applications
                .into_iter()
                .map(|a| (a.app_id, a.clinics))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(apps(&acme).await, vec![("notes-app".to_owned(), 6)]);
    assert_eq!(apps(&operator).await.len(), 2);

    // The CLI asks the running controller with a token.
    let cfg = c.dir.path().join("controller.toml");
    let (code, out, err) = run_to_end_env(
        &binary("readi-controller"),
        &[
            "scorecard",
            "--config",
            cfg.to_str().unwrap(),
            "--app",
            "notes-app",
            "--period",
            "week",
            "--addr",
            &c.grpc.to_string(),
        ],
        c.dir.path(),
        &[("READI_CONTROLLER_TOKEN", operator.as_str())],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("equity.flag_rate_gap")
            && out.contains("6 clinic(s)")
            && out.contains("weekly from")
            && out.contains("drift.safety.flag_rate"),
        "{out}"
    );

    // HTTP: a vendor's session opens its own page and not the other vendor's.
    let cookie = login_cookie(c.http, &acme);
    let (code, page) = get(c.http, "/apps/notes-app?period=week", &cookie);
    assert_eq!(code, 200);
    assert!(
        page.contains("Acme Notes")
            && page.contains("<svg")
            && page.contains("Week by week")
            && page.contains("Watched for drift"),
        "{page}"
    );
    assert!(page.contains("content-security-policy"), "security headers");
    let (code, _) = get(c.http, "/apps/chat-app", &cookie);
    assert_eq!(code, 403);
    let (code, resp) = get(c.http, "/", "readi_session=forged");
    assert_eq!(code, 303, "{resp}");

    browser(c.http, &acme).await;

    // The session is a signed cookie, not one process's memory: it holds after a restart (and on
    // any replica sharing the records), until its token is revoked.
    c.process.terminate();
    assert!(c.process.wait_exit(Duration::from_secs(30)).success());
    let Controller { dir, .. } = c;
    let mut c = start_in(dir);
    let (code, page) = get(c.http, "/apps/notes-app?period=week", &cookie);
    assert_eq!(code, 200, "the login holds after a restart: {page}");
    let acme_id = acme["rdc_".len()..].split('_').next().unwrap();
    cli(c.dir.path(), &["token", "revoke", acme_id]);
    let (code, _) = get(c.http, "/apps/notes-app?period=week", &cookie);
    assert_eq!(code, 303, "a revoked token ends its sessions");

    c.process.terminate();
    c.process.wait_exit(Duration::from_secs(30));
    // Offline, the same scorecard from the store, as JSON.
    let (code, out, err) = run_to_end(
        &binary("readi-controller"),
        &[
            "scorecard",
            "--config",
            cfg.to_str().unwrap(),
            "--app",
            "notes-app",
            "--period",
            "week",
            "--format",
            "json",
        ],
        c.dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["clinics"], 6);
    assert_eq!(v["criteria"][2]["status"], "concern");

    // The same as a FHIR R4 MeasureReport, valid against the official schema.
    let (code, fhir, err) = run_to_end(
        &binary("readi-controller"),
        &[
            "scorecard",
            "--config",
            cfg.to_str().unwrap(),
            "--app",
            "notes-app",
            "--period",
            "week",
            "--format",
            "fhir",
        ],
        c.dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&fhir).unwrap();
    assert_eq!(r["resourceType"], "MeasureReport");
    assert_eq!(r["type"], "summary");
    let groups = r["group"].as_array().unwrap();
    assert_eq!(groups.len(), 6, "one group per READI criterion");
    let status = |g: &serde_json::Value| {
        g["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"].as_str().unwrap().ends_with(":criterion-status"))
            .unwrap()["valueCode"]
            .clone()
    };
    assert_eq!(groups[2]["code"]["coding"][0]["code"], "equity");
    assert_eq!(status(&groups[2]), "concern", "as in the JSON scorecard");
    assert!(
        groups.iter().any(|g| g.get("stratifier").is_some()),
        "broken-down figures are stratifiers: {fhir}"
    );
    readi_tests::fhir_check(&fhir);
}

/// Drives headless Chromium through chromedriver's WebDriver API: log in, open the application page,
/// check it, save a screenshot, and fail to open another vendor's page.
async fn browser(http: SocketAddr, token: &str) {
    let (chromium, driver) = (
        Path::new("/usr/bin/chromium"),
        Path::new("/usr/bin/chromedriver"),
    );
    if !chromium.exists() || !driver.exists() {
        readi_tests::skipped(
            "browser check: Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
        );
        return;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = std::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wd = WebDriver::new(port).await;
    let session = wd
        .post(
            "/session",
            serde_json::json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,2400"]
            }}}}),
        )
        .await;
    let sid = session["value"]["sessionId"].as_str().unwrap().to_owned();
    let s = format!("/session/{sid}");
    let go = |path: String| {
        let (wd, s) = (&wd, s.clone());
        async move {
            wd.post(
                &format!("{s}/url"),
                serde_json::json!({"url": format!("http://{http}{path}")}),
            )
            .await;
        }
    };
    go("/login".into()).await;
    let find = |css: &'static str| {
        let (wd, s) = (&wd, s.clone());
        async move {
            let r = wd
                .post(
                    &format!("{s}/element"),
                    serde_json::json!({"using": "css selector", "value": css}),
                )
                .await;
            r["value"]
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let input = find("input[name=token]").await;
    wd.post(
        &format!("{s}/element/{input}/value"),
        serde_json::json!({"text": token}),
    )
    .await;
    let button = find("button[type=submit]").await;
    wd.post(
        &format!("{s}/element/{button}/click"),
        serde_json::json!({}),
    )
    .await;
    // The form submission navigates on its own time: wait for the overview.
    let mut html = String::new();
    for _ in 0..100 {
        html = wd.get(&format!("{s}/source")).await["value"]
            .as_str()
            .unwrap()
            .to_owned();
        if html.contains("<h1>Applications</h1>") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        html.contains("Acme Notes") && !html.contains("Other Chat"),
        "overview: {html}"
    );
    go("/apps/notes-app".into()).await;
    let html = wd.get(&format!("{s}/source")).await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    for want in [
        "Acme Notes",
        "6 clinic(s)",
        "equity.flag_rate_gap",
        "<svg",
        "concern",
    ] {
        assert!(html.contains(want), "{want} on the application page");
    }
    let shot = wd.get(&format!("{s}/screenshot")).await;
    let png = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(shot["value"].as_str().unwrap())
            .unwrap()
    };
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let path = artifacts_dir().join("dashboard-notes-app.png");
    std::fs::write(&path, png).unwrap();
    eprintln!("dashboard screenshot: {}", path.display());
    go("/apps/chat-app".into()).await;
    let html = wd.get(&format!("{s}/source")).await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        html.contains("may not see") && !html.contains("Other Chat"),
        "{html}"
    );
    wd.delete(&s).await;
    let _ = child.kill();
    let _ = child.wait();
}

/// A minimal WebDriver client over HTTP/1.1.
struct WebDriver {
    port: u16,
}

impl WebDriver {
    async fn new(port: u16) -> WebDriver {
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return WebDriver { port };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start");
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let port = self.port;
        let (method, path) = (method.to_owned(), path.to_owned());
        tokio::task::spawn_blocking(move || {
            let body = body.map(|b| b.to_string()).unwrap_or_default();
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let (code, resp) = http(SocketAddr::from(([127, 0, 0, 1], port)), &req);
            let json = resp.split_once("\r\n\r\n").map_or("", |p| p.1);
            // chromedriver may answer chunked; take the JSON object inside.
            let start = json.find('{').unwrap_or(0);
            let end = json.rfind('}').map_or(json.len(), |e| e + 1);
            let v: serde_json::Value = serde_json::from_str(&json[start..end]).unwrap_or_default();
            assert!(code < 400, "WebDriver {path}: {code} {v}");
            v
        })
        .await
        .unwrap()
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        self.call("POST", path, Some(body)).await
    }

    async fn get(&self, path: &str) -> serde_json::Value {
        self.call("GET", path, None).await
    }

    async fn delete(&self, path: &str) -> serde_json::Value {
        self.call("DELETE", path, None).await
    }
}
