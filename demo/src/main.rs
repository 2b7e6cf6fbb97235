//! `readi-demo`: a controller and two clinic agents on loopback with sample traffic, narrated
//! (`tour`). It links both sides, so the clinic binary does not have to.

mod tour;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

/// A controller and two clinic agents on loopback with temporary stores, sample traffic with
/// (invented) PHI and risk, narrated; then the vendor dashboard until Ctrl-C.
#[derive(Parser)]
#[command(name = "readi-demo", version)]
struct Cli {
    /// Stop after the tour instead of keeping the dashboard up.
    #[arg(long)]
    exit: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    readi_common::telemetry::init(&readi_common::config::LogConfig {
        level: "warn".into(),
        ..Default::default()
    });
    let result = tokio::runtime::Runtime::new()
        .context("starting async runtime")
        .and_then(|rt| rt.block_on(tour::run(cli.exit)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
