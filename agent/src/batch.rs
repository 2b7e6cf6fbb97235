//! Batch evaluation over JSONL (the contract in DESIGN.md): `detect` reads `{"id","text"}` lines and
//! writes `{"id","spans","redacted"}`; `assess` reads `{"id","text","role"}` and writes the verdict
//! with its findings. Offsets are in Unicode scalar values.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::phi::{CharOffsets, Detector};
use crate::redact::{self, Policy, TagMap};
use crate::safety::{Assessor, Experiencer, Role};

/// Why a batch stopped.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Reading input or writing output failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// What a batch run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    /// Lines processed.
    pub ok: usize,
    /// Malformed lines, with their 1-based line number and the problem (never the line's text).
    pub bad: Vec<(usize, String)>,
}

#[derive(Deserialize)]
struct DetectIn {
    id: serde_json::Value,
    text: String,
}

#[derive(Serialize)]
struct SpanOut {
    start: usize,
    end: usize,
    #[serde(rename = "type")]
    kind: &'static str,
    rule: &'static str,
}

#[derive(Serialize)]
struct DetectOut {
    id: serde_json::Value,
    spans: Vec<SpanOut>,
    redacted: String,
}

/// Runs detection over every line of `input`.
pub fn detect(
    detector: &Detector,
    input: impl BufRead,
    output: impl Write,
) -> Result<BatchSummary, BatchError> {
    each_line(input, output, "{\"id\",\"text\"}", |rec: DetectIn| {
        let spans = detector.detect(&rec.text);
        let (redacted, _) = redact::apply(
            &rec.text,
            &spans,
            &Policy::default(),
            None,
            &mut TagMap::default(),
        );
        let mut chars = CharOffsets::new(&rec.text);
        Ok(DetectOut {
            id: rec.id,
            spans: spans
                .iter()
                .map(|s| SpanOut {
                    start: chars.at(s.start),
                    end: chars.at(s.end),
                    kind: s.kind.as_str(),
                    rule: s.rule,
                })
                .collect(),
            redacted,
        })
    })
}

/// Reads JSONL records of type `T`, writes what `each` makes of every good one, and names every
/// bad line by number (never its text): not UTF-8, not the `shape` wanted, or refused by `each`.
/// Lines are read in chunks and each chunk is shared out over every core, its output written in
/// input order.
fn each_line<T: serde::de::DeserializeOwned, O: Serialize>(
    input: impl BufRead,
    mut output: impl Write,
    shape: &str,
    each: impl Fn(T) -> Result<O, String> + Sync,
) -> Result<BatchSummary, BatchError> {
    const CHUNK_LINES: usize = 4096;
    const CHUNK_BYTES: usize = 4 << 20;
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let one = |line: &[u8]| -> Result<Vec<u8>, String> {
        let s = std::str::from_utf8(line)
            .map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
        let rec = serde_json::from_str::<T>(s)
            .map_err(|e| format!("not a {shape} object: {}", describe(&e)))?;
        let out = each(rec)?;
        serde_json::to_vec(&out).map_err(|_| "could not encode the result".to_owned())
    };
    let mut summary = BatchSummary::default();
    let mut lines = input.split(b'\n').enumerate();
    loop {
        let mut chunk: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut bytes = 0;
        for (n, line) in lines.by_ref() {
            let line = line?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            bytes += line.len();
            chunk.push((n + 1, line));
            if chunk.len() >= CHUNK_LINES || bytes >= CHUNK_BYTES {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        // Workers take every `workers`-th line, so long and short documents even out.
        let mut results: Vec<Result<Vec<u8>, String>> = Vec::with_capacity(chunk.len());
        results.resize_with(chunk.len(), || Err("the detector failed".to_owned()));
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers.min(chunk.len()))
                .map(|w| {
                    let (chunk, one) = (&chunk, &one);
                    scope.spawn(move || {
                        (w..chunk.len())
                            .step_by(workers)
                            .map(|k| (k, one(&chunk[k].1)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            // A worker that panicked leaves its lines answered with an error: nothing passes unread.
            for h in handles {
                for (k, done) in h.join().unwrap_or_default() {
                    results[k] = done;
                }
            }
        });
        for ((n, _), done) in chunk.iter().zip(results) {
            match done {
                Ok(out) => {
                    output.write_all(&out)?;
                    output.write_all(b"\n")?;
                    summary.ok += 1;
                }
                Err(problem) => summary.bad.push((*n, problem)),
            }
        }
    }
    output.flush()?;
    Ok(summary)
}

/// A serde error without the input text it may quote.
fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => format!("invalid JSON at column {}", e.column()),
        Category::Data => {
            let msg = e.to_string();
            // serde's data errors name fields and types, not values, except "invalid type: string \"...\"".
            if msg.contains("invalid type") {
                "wrong field type (need string \"text\")".to_owned()
            } else {
                msg.split(" at line").next().unwrap_or("").to_owned()
            }
        }
        Category::Io => "read error".to_owned(),
    }
}

#[derive(Deserialize)]
struct AssessIn {
    id: serde_json::Value,
    text: String,
    #[serde(default)]
    role: Option<String>,
}

#[derive(Serialize)]
struct FindingOut {
    criterion: &'static str,
    category: &'static str,
    severity: &'static str,
    turn: i32,
    start: usize,
    end: usize,
    rule: &'static str,
    negated: bool,
    historical: bool,
    hypothetical: bool,
    reported: bool,
    experiencer: &'static str,
    escalates: bool,
    context: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    explanation: Vec<String>,
}

#[derive(Serialize)]
struct AssessOut {
    id: serde_json::Value,
    categories: Vec<&'static str>,
    escalate: bool,
    verdict: &'static str,
    findings: Vec<FindingOut>,
}

/// Runs the safety checks over every line of `input`: `{"id","text","role"}` in (role defaults to
/// `user`), `{"id","categories","escalate","verdict","findings"}` out.
pub fn assess(
    assessor: &Assessor,
    input: impl BufRead,
    output: impl Write,
) -> Result<BatchSummary, BatchError> {
    each_line(
        input,
        output,
        "{\"id\",\"text\",\"role\"}",
        |rec: AssessIn| {
            let role = match rec.role.as_deref() {
                None => Role::User,
                Some(s) => Role::parse(s)
                    .ok_or_else(|| "role must be \"user\", \"note\" or \"assistant\"".to_owned())?,
            };
            let a = assessor.assess_text(role, &rec.text);
            Ok(AssessOut {
                id: rec.id,
                categories: a.categories.iter().map(|c| c.as_str()).collect(),
                escalate: a.escalates(),
                verdict: a.verdict.as_str(),
                findings: a
                    .findings
                    .iter()
                    .map(|f| FindingOut {
                        criterion: "safety",
                        category: f.category.as_str(),
                        severity: f.severity.as_str(),
                        turn: f.turn,
                        start: f.start,
                        end: f.end,
                        rule: f.rule,
                        negated: f.negated,
                        historical: f.historical,
                        hypothetical: f.hypothetical,
                        reported: f.reported,
                        experiencer: match f.experiencer {
                            Experiencer::Patient => "patient",
                            Experiencer::Other => "other",
                        },
                        escalates: f.escalates,
                        context: f.context.clone(),
                        explanation: f.explanation.clone(),
                    })
                    .collect(),
            })
        },
    )
}
