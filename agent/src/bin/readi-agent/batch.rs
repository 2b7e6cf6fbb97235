//! `detect` and `assess`: the batch evaluation contract over JSONL files or stdin/stdout.

use super::*;

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

pub(crate) fn detect(input: &Path, output: &Path) -> anyhow::Result<ExitCode> {
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

pub(crate) fn assess(input: &Path, output: &Path, rules_only: bool) -> anyhow::Result<ExitCode> {
    let assessor = if rules_only {
        readi_agent::safety::Assessor::rules_only()
    } else {
        readi_agent::safety::Assessor::global()
    };
    batch(input, output, |i, o| {
        readi_agent::batch::assess(assessor, i, o)
    })
}
