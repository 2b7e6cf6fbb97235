//! The `readi-agent` command: thin wrapper that loads config and calls the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use readi_agent::{Config, config::EXAMPLE};
use readi_common::config::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "readi-agent",
    version,
    about = "readi agent: PHI redaction and READI checks inside the clinic"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gRPC API. Without --config, runs on safe embedded defaults (loopback, ./readi-data).
    Run {
        /// Config file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Log as JSON lines, whatever the config says.
        #[arg(long)]
        log_json: bool,
    },
    /// Write a commented example config.
    Init {
        /// Where to write it; `-` for standard output.
        #[arg(long, short, default_value = "readi-agent.toml")]
        output: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Detect PHI in JSONL `{"id","text"}` lines; write `{"id","spans","redacted"}` lines.
    Detect {
        /// Input file, or `-` for standard input.
        #[arg(long, short, default_value = "-")]
        input: PathBuf,
        /// Output file, or `-` for standard output.
        #[arg(long, short, default_value = "-")]
        output: PathBuf,
    },
    /// Run the safety checks on JSONL `{"id","text","role"}` lines; write the verdict and findings.
    Assess {
        /// Input file, or `-` for standard input.
        #[arg(long, short, default_value = "-")]
        input: PathBuf,
        /// Output file, or `-` for standard output.
        #[arg(long, short, default_value = "-")]
        output: PathBuf,
        /// The rules alone, without the learned scorer (the baseline its thresholds are picked
        /// against; see docs/safety.md).
        #[arg(long)]
        rules_only: bool,
    },
    /// Check the HIPAA technical safeguards (45 CFR 164.312) with live evidence. Exit code 3 when
    /// any fails. Asks the running agent when it holds the store.
    Safeguards {
        /// Config file (TOML); embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The running agent's gRPC address, when it is not `server.listen`.
        #[arg(long)]
        addr: Option<String>,
        /// `text`, `json`, or `html` (a page to print).
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// API tokens for callers.
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
    /// Data keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Print every report that left (or will leave) the clinic: the exact bytes, decoded, with the
    /// ledger's hash chain checked. Exit code 3 when the chain fails. Asks the running agent when it
    /// holds the store.
    Egress {
        /// Config file (TOML); embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The running agent's gRPC address, when it is not `server.listen`.
        #[arg(long)]
        addr: Option<String>,
        /// Start at this ledger sequence number.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// One JSON object per entry.
        #[arg(long)]
        json: bool,
    },
    /// Clinicians' feedback kept at this clinic.
    Feedback {
        #[command(subcommand)]
        action: FeedbackAction,
    },
    /// Check a config file and name every problem.
    Validate {
        /// Config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum FeedbackAction {
    /// Write the sealed detail of clinicians' reports (free text included) as JSONL for the clinic's
    /// own quality review. Needs a compliance token in READI_TOKEN; asks the running agent, or reads
    /// the store when the agent is stopped. Audited.
    Export {
        /// Config file (TOML); embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The running agent's gRPC address, when it is not `server.listen`.
        #[arg(long)]
        addr: Option<String>,
        /// Reports recorded on or after this UTC date (YYYY-MM-DD).
        #[arg(long)]
        since: String,
        /// Where to write the JSONL; standard output without it.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TokensAction {
    /// Create a token and print it once. Run with the agent stopped; audited.
    Add {
        /// Config file (TOML); embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// `app`, `compliance` or `admin`.
        #[arg(long)]
        role: String,
        /// The application an `app` token is scoped to.
        #[arg(long)]
        app: Option<String>,
    },
    /// List tokens (ids, roles, applications; never secrets).
    List {
        /// Config file (TOML); embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Revoke a token by id. Run with the agent stopped; audited.
    Revoke {
        /// Config file (TOML); embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The token id (the part after `rdi_`, before the second `_`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Start a new data-key epoch for every data class; old data stays readable. Run it with the
    /// agent stopped (it needs the store); the rotation is written to the audit log.
    Rotate {
        /// Config file (TOML); embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// List data keys by class and epoch (never the keys).
    List {
        /// Config file (TOML); embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Verify the hash chain and signed checkpoints; name each edited, deleted, reordered or
    /// truncated record. Exit code 3 when the log fails. Asks the running agent when it holds the store.
    Verify {
        /// Config file (TOML); embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The running agent's gRPC address, when it is not `server.listen`.
        #[arg(long)]
        addr: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, log_json } => run(config.as_deref(), log_json),
        Command::Init { output, force } => init(&output, force),
        Command::Validate { config } => validate(&config),
        Command::Detect { input, output } => detect(&input, &output),
        Command::Assess {
            input,
            output,
            rules_only,
        } => assess(&input, &output, rules_only),
        Command::Safeguards {
            config,
            addr,
            format,
        } => safeguards(config.as_deref(), addr, &format),
        Command::Tokens { action } => tokens_command(action),
        Command::Egress {
            config,
            addr,
            from,
            json,
        } => egress(config.as_deref(), addr, from, json),
        Command::Feedback {
            action:
                FeedbackAction::Export {
                    config,
                    addr,
                    since,
                    output,
                },
        } => feedback_export(config.as_deref(), addr, &since, output.as_deref()),
        Command::Keys {
            action: KeysAction::Rotate { config },
        } => keys_command(config.as_deref(), true),
        Command::Keys {
            action: KeysAction::List { config },
        } => keys_command(config.as_deref(), false),
        Command::Audit {
            action: AuditAction::Verify { config, addr, json },
        } => audit_verify(config.as_deref(), addr, json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("readi-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let Some(path) = path else {
        let config = Config::default();
        config
            .validate()
            .map_err(|p| anyhow::anyhow!("default config is unusable here:\n{p}"))?;
        return Ok(config);
    };
    Config::load(path).map_err(|p| anyhow::anyhow!("invalid config {}:\n{p}", path.display()))
}

fn run(path: Option<&Path>, log_json: bool) -> anyhow::Result<ExitCode> {
    let mut config = load(path)?;
    if log_json {
        config.log.format = LogFormat::Json;
    }
    readi_common::telemetry::init(&config.log);
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .with_context(|| format!("server.listen: cannot bind {}", config.server.listen))?;
        readi_agent::run(listener, config, readi_common::shutdown::signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn init(output: &Path, force: bool) -> anyhow::Result<ExitCode> {
    readi_common::cli::write_example(output, force, EXAMPLE).map_err(anyhow::Error::msg)
}

fn validate(path: &Path) -> anyhow::Result<ExitCode> {
    Ok(readi_common::cli::report_validation(
        path,
        Config::load(path),
    ))
}

fn open_input(path: &Path) -> anyhow::Result<Box<dyn std::io::BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(Box::new(std::io::BufReader::new(f)))
}

fn open_output(path: &Path) -> anyhow::Result<Box<dyn std::io::Write>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::BufWriter::new(std::io::stdout().lock())));
    }
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(Box::new(std::io::BufWriter::new(f)))
}

fn detect(input: &Path, output: &Path) -> anyhow::Result<ExitCode> {
    let detector = readi_agent::phi::Detector::global();
    batch(input, output, |i, o| {
        readi_agent::batch::detect(detector, i, o)
    })
}

/// Runs a JSONL batch; malformed lines are named on stderr and make the exit code 2.
fn batch(
    input: &Path,
    output: &Path,
    run: impl FnOnce(
        Box<dyn std::io::BufRead>,
        Box<dyn std::io::Write>,
    ) -> Result<readi_agent::batch::BatchSummary, readi_agent::batch::BatchError>,
) -> anyhow::Result<ExitCode> {
    let summary = run(open_input(input)?, open_output(output)?)?;
    for (line, problem) in &summary.bad {
        eprintln!("{}:{line}: {problem}", input.display());
    }
    Ok(if summary.bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn assess(input: &Path, output: &Path, rules_only: bool) -> anyhow::Result<ExitCode> {
    let assessor = if rules_only {
        readi_agent::safety::Assessor::rules_only()
    } else {
        readi_agent::safety::Assessor::global()
    };
    batch(input, output, |i, o| {
        readi_agent::batch::assess(assessor, i, o)
    })
}

/// What `audit verify` prints, from the store or from the running agent.
#[derive(serde::Serialize)]
struct AuditReport {
    ok: bool,
    records: u64,
    checkpoints: u64,
    signed_through: Option<u64>,
    first_bad_sequence: Option<u64>,
    problems: Vec<String>,
    public_key: Option<String>,
    source: &'static str,
}

fn audit_verify(path: Option<&Path>, addr: Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let addr = addr.unwrap_or_else(|| config.server.listen.clone());
    let report = match verify_store(&config) {
        Ok(r) => r,
        // The running agent holds the store's lock: ask it instead.
        Err(local) => verify_remote(&addr).with_context(|| {
            format!(
                "the store could not be opened ({local}) and the agent at {addr} did not answer"
            )
        })?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "audit log ({}): {} records, {} signed checkpoints{}",
            report.source,
            report.records,
            report.checkpoints,
            report
                .signed_through
                .map(|s| format!(", signed through #{s}"))
                .unwrap_or_default()
        );
        if let Some(k) = &report.public_key {
            println!("checkpoint key (Ed25519): {k}");
        }
        if report.ok {
            println!("OK: every record and checkpoint verifies");
        } else {
            for p in &report.problems {
                println!("FAILED: {p}");
            }
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn verify_store(config: &Config) -> anyhow::Result<AuditReport> {
    let v = offline(config)?.audit.verify()?;
    Ok(AuditReport {
        ok: v.ok(),
        records: v.records,
        checkpoints: v.checkpoints,
        signed_through: (v.signed_through > 0).then_some(v.signed_through),
        first_bad_sequence: v.problem.as_ref().map(|p| p.0),
        problems: v.problems.into_iter().map(|p| p.1).collect(),
        public_key: Some(v.public_key),
        source: "store",
    })
}

fn verify_remote(addr: &str) -> anyhow::Result<AuditReport> {
    use readi_proto::agent::v1::{VerifyAuditRequest, compliance_client::ComplianceClient};
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async {
        let mut client = ComplianceClient::connect(format!("http://{addr}")).await?;
        let r = client
            .verify_audit(VerifyAuditRequest {})
            .await?
            .into_inner();
        Ok(AuditReport {
            ok: r.ok,
            records: r.records,
            checkpoints: r.checkpoints,
            signed_through: None,
            first_bad_sequence: (!r.ok).then_some(r.first_bad_sequence),
            problems: if r.ok { Vec::new() } else { vec![r.problem] },
            public_key: None,
            source: "running agent",
        })
    })
}

/// An existing store opened by an offline command, with its keys and audit log.
struct Offline {
    store: readi_common::embedded::Store,
    keys: std::sync::Arc<readi_agent::keys::Keys>,
    audit: readi_agent::audit::Audit,
}

fn offline(config: &Config) -> anyhow::Result<Offline> {
    let store = open_existing(config)?;
    let keys = std::sync::Arc::new(readi_agent::keys::Keys::load(
        config.keys.kek.as_ref(),
        &config.storage.data_dir,
        store.db(),
    )?);
    let audit = readi_agent::audit::Audit::open(store.db(), &keys, 64)?;
    Ok(Offline { store, keys, audit })
}

/// Opens an existing store for an offline command; never creates one.
fn open_existing(config: &Config) -> anyhow::Result<readi_common::embedded::Store> {
    let path = config.storage.data_dir.join("agent.db");
    if !path.exists() {
        anyhow::bail!(
            "no agent store at {} (storage.data_dir): start the agent once, or pass --config",
            path.display()
        );
    }
    Ok(readi_common::embedded::Store::open(
        &config.storage.data_dir,
        "agent.db",
    )?)
}

fn keys_command(path: Option<&Path>, rotate: bool) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let Offline { keys, audit, .. } =
        offline(&config).context("the store is in use or missing: stop the agent first")?;
    if rotate {
        let rotated = keys.sealer.rotate_all()?;
        if rotated.is_empty() {
            println!("no data keys yet: nothing to rotate");
        }
        for (class, epoch) in &rotated {
            audit.record_by("key_rotate", "cli", "", &format!("{class} epoch {epoch}"))?;
            println!("{class}: now epoch {epoch}");
        }
        audit.checkpoint()?;
    }
    for k in keys.sealer.describe() {
        println!(
            "{:<16} epoch {:>4}  created {}  seals {:>8}{}",
            k.class,
            k.epoch,
            k.created_unix,
            k.seals,
            if k.current { "  current" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn safeguards(path: Option<&Path>, addr: Option<String>, format: &str) -> anyhow::Result<ExitCode> {
    if !matches!(format, "text" | "json" | "html") {
        anyhow::bail!("--format must be text, json or html");
    }
    let config = load(path)?;
    let addr = addr.unwrap_or_else(|| config.server.listen.clone());
    let local = || -> anyhow::Result<_> {
        let o = offline(&config)?;
        let tokens = readi_agent::tokens::Tokens::open(o.store.db(), config.auth.required)?;
        Ok(readi_agent::safeguards::report(
            &config,
            &o.keys,
            &o.audit,
            &tokens,
            &config.server.listen,
            o.store.db(),
        ))
    };
    let report = match local() {
        Ok(r) => r,
        Err(e) => {
            use readi_proto::agent::v1::{SafeguardsRequest, compliance_client::ComplianceClient};
            let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
            runtime
                .block_on(async {
                    let mut c = ComplianceClient::connect(format!("http://{addr}")).await?;
                    Ok::<_, anyhow::Error>(c.safeguards(SafeguardsRequest {}).await?.into_inner())
                })
                .with_context(|| {
                    format!(
                        "the store could not be opened ({e}) and the agent at {addr} did not answer"
                    )
                })?
        }
    };
    let out = match format {
        "json" => readi_agent::safeguards::render_json(&report),
        "html" => readi_agent::safeguards::render_html(&report),
        _ => readi_agent::safeguards::render_text(&report),
    };
    print!("{out}");
    let failed = report
        .safeguards
        .iter()
        .any(|g| g.status == readi_proto::agent::v1::CheckStatus::Fail as i32);
    Ok(if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn tokens_command(action: TokensAction) -> anyhow::Result<ExitCode> {
    use readi_agent::tokens::{Role, Tokens};
    let path = match &action {
        TokensAction::Add { config, .. }
        | TokensAction::List { config }
        | TokensAction::Revoke { config, .. } => config.clone(),
    };
    let config = load(path.as_deref())?;
    let Offline { store, audit, .. } =
        offline(&config).context("stop the agent first: tokens need the store")?;
    let tokens = Tokens::open(store.db(), config.auth.required)?;
    match action {
        TokensAction::Add { role, app, .. } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be app, compliance or admin"))?;
            let app = match (role, app) {
                (Role::App, Some(a)) if !a.is_empty() && a.len() <= 128 => a,
                (Role::App, _) => anyhow::bail!("an app token needs --app <application id>"),
                (_, Some(_)) => anyhow::bail!("--app applies to app tokens only"),
                (_, None) => String::new(),
            };
            let (info, token) = tokens.add(role, &app)?;
            audit.record_by(
                "token_add",
                "cli",
                &app,
                &format!("token {} role {}", info.id, role.as_str()),
            )?;
            audit.checkpoint()?;
            println!("{token}");
            eprintln!(
                "token {} ({}{}) created; it is shown once: store it in the caller's secret store",
                info.id,
                role.as_str(),
                if app.is_empty() {
                    String::new()
                } else {
                    format!(", app {app}")
                }
            );
        }
        TokensAction::List { .. } => {
            for t in tokens.list()? {
                println!(
                    "{}  {:<10} {:<24} created {}",
                    t.id,
                    t.role.as_str(),
                    t.app_id,
                    t.created_unix
                );
            }
        }
        TokensAction::Revoke { id, .. } => {
            tokens.revoke(&id)?;
            audit.record_by("token_revoke", "cli", "", &format!("token {id}"))?;
            audit.checkpoint()?;
            println!("token {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn egress(
    path: Option<&Path>,
    addr: Option<String>,
    from: u64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let addr = addr.unwrap_or_else(|| config.server.listen.clone());
    let (entries, chain_ok, source) = match open_existing(&config) {
        Ok(store) => {
            let mut all = Vec::new();
            let mut ok = true;
            let mut next = from;
            loop {
                let (page, page_ok) = readi_agent::egress::list(store.db(), next, 1000)?;
                ok &= page_ok;
                let Some(last) = page.last().map(|e| e.sequence) else {
                    break;
                };
                all.extend(page);
                next = last + 1;
            }
            (all, ok, "store")
        }
        Err(local) => {
            let (entries, ok) = egress_remote(&addr, from).with_context(|| {
                format!(
                    "the store could not be opened ({local}) and the agent at {addr} did not answer"
                )
            })?;
            (entries, ok, "running agent")
        }
    };
    let ts = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| t.seconds);
    for e in &entries {
        let decoded = e.report.as_ref().map(readi_proto::json::report);
        if json {
            let line = serde_json::json!({
                "sequence": e.sequence,
                "recorded_at": ts(&e.recorded_at),
                "destination": e.destination,
                "delivered_at": ts(&e.delivered_at),
                "payload_hex": readi_common::identity::hex(&e.payload),
                "entry_hash": readi_common::identity::hex(&e.entry_hash),
                "report": decoded,
            });
            println!("{line}");
        } else {
            println!(
                "#{} recorded {} to {} — {} — {} bytes, hash {}",
                e.sequence,
                ts(&e.recorded_at).unwrap_or(0),
                e.destination,
                match ts(&e.delivered_at) {
                    Some(t) => format!("delivered {t}"),
                    None => "in the outbox".to_owned(),
                },
                e.payload.len(),
                readi_common::identity::hex(&e.entry_hash)
            );
            println!("  bytes: {}", readi_common::identity::hex(&e.payload));
            if let Some(d) = decoded {
                println!(
                    "  decoded: {}",
                    serde_json::to_string_pretty(&d)?.replace('\n', "\n  ")
                );
            }
        }
    }
    if !json {
        println!(
            "egress ledger ({source}): {} entries; hash chain {}",
            entries.len(),
            if chain_ok { "verifies" } else { "FAILED" }
        );
    }
    Ok(if chain_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// Unix seconds at the start of a UTC date written YYYY-MM-DD.
fn parse_date(s: &str) -> anyhow::Result<u64> {
    readi_common::date::parse_ymd(s)
        .map(|day| (day * 86_400) as u64)
        .ok_or_else(|| anyhow::anyhow!("--since {s:?} is not a date: write YYYY-MM-DD"))
}

fn feedback_export(
    path: Option<&Path>,
    addr: Option<String>,
    since: &str,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let since = parse_date(since)?;
    let token = std::env::var("READI_TOKEN").map_err(|_| {
        anyhow::anyhow!(
            "set READI_TOKEN to a compliance token (readi-agent tokens add --role compliance): \
             feedback detail is decrypted for the compliance role only"
        )
    })?;
    let config = load(path)?;
    let addr = addr.unwrap_or_else(|| config.server.listen.clone());
    let (lines, source) = match offline(&config) {
        Ok(Offline { store, keys, audit }) => {
            let tokens = readi_agent::tokens::Tokens::open(store.db(), config.auth.required)?;
            use readi_agent::tokens::Role;
            let caller = tokens
                .check(token.trim())
                .filter(|c| matches!(c.role, Role::Compliance | Role::Admin))
                .ok_or_else(|| {
                    let _ = audit.record(
                        "auth_refused",
                        "",
                        "feedback export without a compliance token",
                    );
                    anyhow::anyhow!("READI_TOKEN is not a valid compliance token on this agent")
                })?;
            let records = readi_agent::feedback::Feedback::open(store.db(), keys)?.since(since)?;
            audit.record_by(
                "feedback_export",
                &caller.token_id,
                "",
                &format!("{} records since {since} (cli)", records.len()),
            )?;
            let lines: Vec<String> = records
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<_, _>>()?;
            (lines, "store")
        }
        Err(local) => {
            let lines = feedback_remote(&addr, token.trim(), since).with_context(|| {
                format!(
                    "the store could not be opened ({local}) and the agent at {addr} did not answer"
                )
            })?;
            (lines, "running agent")
        }
    };
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    match output {
        Some(p) => {
            // The detail holds clinicians' free text: readable by the owner only, from creation.
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(p)
                .with_context(|| format!("creating {}", p.display()))?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("writing {}", p.display()))?;
        }
        None => print!("{text}"),
    }
    eprintln!(
        "{} feedback records exported from the {source}",
        lines.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn feedback_remote(addr: &str, token: &str, since: u64) -> anyhow::Result<Vec<String>> {
    use readi_proto::agent::v1::{ExportFeedbackRequest, compliance_client::ComplianceClient};
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async {
        let mut client = ComplianceClient::connect(format!("http://{addr}")).await?;
        let mut req = tonic::Request::new(ExportFeedbackRequest {
            since: Some(prost_types::Timestamp {
                seconds: since as i64,
                nanos: 0,
            }),
        });
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let r = client
            .export_feedback(req)
            .await
            .map_err(|s| anyhow::anyhow!("{}", s.message()))?;
        Ok(r.into_inner().records_json)
    })
}

fn egress_remote(
    addr: &str,
    from: u64,
) -> anyhow::Result<(Vec<readi_proto::agent::v1::EgressEntry>, bool)> {
    use readi_proto::agent::v1::{ListEgressRequest, compliance_client::ComplianceClient};
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async {
        let mut client = ComplianceClient::connect(format!("http://{addr}")).await?;
        let mut all = Vec::new();
        let mut ok = true;
        let mut next = from;
        loop {
            let r = client
                .list_egress(ListEgressRequest {
                    from_sequence: next,
                    limit: 1000,
                })
                .await?
                .into_inner();
            ok &= r.chain_ok;
            let Some(last) = r.entries.last().map(|e| e.sequence) else {
                break;
            };
            all.extend(r.entries);
            next = last + 1;
        }
        Ok((all, ok))
    })
}
