//! Command-line pieces both binaries share: writing the example config and reporting validation.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Problems;

/// Writes `example` to `output` (`-` for stdout); refuses to overwrite without `force`.
pub fn write_example(output: &Path, force: bool, example: &str) -> Result<ExitCode, String> {
    if output == Path::new("-") {
        print!("{example}");
        return Ok(ExitCode::SUCCESS);
    }
    if output.exists() && !force {
        return Err(format!(
            "{} exists; pass --force to overwrite it",
            output.display()
        ));
    }
    std::fs::write(output, example).map_err(|e| format!("writing {}: {e}", output.display()))?;
    eprintln!("wrote {}", output.display());
    Ok(ExitCode::SUCCESS)
}

/// Prints the outcome of validating `path`: `ok`, or every problem; exit code 2 when invalid.
pub fn report_validation<T>(path: &Path, result: Result<T, Problems>) -> ExitCode {
    match result {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{}: invalid", path.display());
            for p in &problems.0 {
                eprintln!("  {}: {}", p.key, p.message);
            }
            ExitCode::from(2)
        }
    }
}
