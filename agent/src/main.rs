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
    },
    /// Check a config file and name every problem.
    Validate {
        /// Config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, log_json } => run(config.as_deref(), log_json),
        Command::Init { output, force } => init(&output, force),
        Command::Validate { config } => validate(&config),
        Command::Detect { input, output } => detect(&input, &output),
        Command::Assess { input, output } => assess(&input, &output),
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
    let summary = readi_agent::batch::detect(detector, open_input(input)?, open_output(output)?)?;
    for (line, problem) in &summary.bad {
        eprintln!("{}:{line}: {problem}", input.display());
    }
    Ok(if summary.bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn assess(input: &Path, output: &Path) -> anyhow::Result<ExitCode> {
    let assessor = readi_agent::safety::Assessor::global();
    let summary = readi_agent::batch::assess(assessor, open_input(input)?, open_output(output)?)?;
    for (line, problem) in &summary.bad {
        eprintln!("{}:{line}: {problem}", input.display());
    }
    Ok(if summary.bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
