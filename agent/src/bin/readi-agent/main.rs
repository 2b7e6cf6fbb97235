//! The `readi-agent` command: parses the command line, loads the config and hands over to the
//! library (`run`) or to a subcommand (`batch`, `store`, `ledger`).

mod batch;
mod ledger;
mod store;

use batch::{assess, detect};
use ledger::{egress, feedback_export};
use store::{audit_verify, keys_command, safeguards, scrub, tokens_command};

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
        /// Ask the running agent at this gRPC address (`host:port`), never the local store.
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
        /// Ask the running agent at this gRPC address (`host:port`), never the local store.
        #[arg(long)]
        addr: Option<String>,
        /// Start at this ledger sequence number.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// One JSON object per entry.
        #[arg(long)]
        json: bool,
        /// One line per report: when, where to, size and hash; no bytes, no decoded report.
        #[arg(long, conflicts_with = "json")]
        summary: bool,
    },
    /// Clinicians' feedback kept at this clinic.
    Feedback {
        #[command(subcommand)]
        action: FeedbackAction,
    },
    /// Open every sealed value and check every chain (audit, egress) and the high-water mark; name
    /// each damaged record by tree and key, never its content. Exit code 3 on damage. Run it with
    /// the agent stopped.
    Scrub {
        /// Config file (TOML); embedded defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
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
        /// Ask the running agent at this gRPC address (`host:port`), never the local store.
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
        /// Ask the running agent at this gRPC address (`host:port`), never the local store.
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
        Command::Scrub { config, json } => scrub(config.as_deref(), json),
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
            summary,
        } => egress(config.as_deref(), addr, from, json, summary),
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
