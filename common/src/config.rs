//! Config problems reported all at once, each naming its key; shared config value types.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One problem with a config value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key (`server.listen`), or `<file>` for problems with the file itself.
    pub key: String,
    /// What is wrong, without secret values.
    pub message: String,
}

/// Every problem found in a config.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records a problem with `key`.
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// `Ok(())` when nothing was found.
    pub fn into_result(self) -> Result<(), Problems> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Whether `key` has a problem.
    pub fn names(&self, key: &str) -> bool {
        self.0.iter().any(|p| p.key == key)
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {}", p.key, p.message)?;
        }
        Ok(())
    }
}

/// Parses TOML text into `T`, turning a syntax or schema error into a problem that names the key.
/// Every unknown key is reported, not just the first: each is set aside and the rest parsed again.
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Problems> {
    let mut problems = Problems::default();
    let mut text = text.to_owned();
    // Bounded: a file with more misspellings than this is reported in part.
    for _ in 0..32 {
        let e = match toml::from_str(&text) {
            Ok(value) if problems.0.is_empty() => return Ok(value),
            Ok(_) => return Err(problems),
            Err(e) => e,
        };
        let key = match e.span() {
            Some(span) => {
                let line = text[..span.start].matches('\n').count() + 1;
                format!("<line {line}>")
            }
            None => "<file>".to_owned(),
        };
        problems.push(key, e.message().to_owned());
        // Only an unknown key can be set aside without changing what the rest means.
        let Some(span) = e
            .span()
            .filter(|_| e.message().starts_with("unknown field"))
        else {
            break;
        };
        let start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
        // A misspelt table header would move its keys into the table above: stop there.
        if text[start..].starts_with('#') || text[start..].trim_start().starts_with('[') {
            break;
        }
        text.insert(start, '#');
    }
    Err(problems)
}

/// Checks that `value` is a socket address; records a problem under `key` otherwise.
pub fn check_addr(problems: &mut Problems, key: &str, value: &str) -> Option<SocketAddr> {
    match value.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            problems.push(
                key,
                format!(
                    "{value:?} is not a socket address (expected host:port, e.g. 127.0.0.1:50051)"
                ),
            );
            None
        }
    }
}

/// Checks that `dir` is, or can become, a directory the process can write to. Creates nothing.
pub fn check_data_dir(problems: &mut Problems, key: &str, dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if dir.as_os_str().is_empty() {
        problems.push(key, "must not be empty");
        return;
    }
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => problems.push(
            key,
            format!("{} exists and is not a directory", dir.display()),
        ),
        Ok(m) => {
            if m.permissions().mode() & 0o200 == 0 {
                problems.push(key, format!("{} is not writable", dir.display()));
            } else if let Err(e) = std::fs::read_dir(dir) {
                problems.push(key, format!("{} cannot be read: {e}", dir.display()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // It will be created; its nearest existing ancestor must be a directory.
            let mut parent = dir.parent();
            while let Some(p) = parent {
                let p = if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                };
                match std::fs::metadata(p) {
                    Ok(m) if m.is_dir() => return,
                    Ok(_) => {
                        problems.push(
                            key,
                            format!(
                                "{} is not a directory, so {} cannot be created",
                                p.display(),
                                dir.display()
                            ),
                        );
                        return;
                    }
                    Err(_) => parent = p.parent(),
                }
            }
        }
        Err(e) => problems.push(key, format!("{} cannot be read: {e}", dir.display())),
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings, the same for both binaries.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter (`info`, `readi_agent=debug`).
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

impl LogConfig {
    /// Records a problem when the level is not a valid filter.
    pub fn check(&self, problems: &mut Problems) {
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            problems.push(
                "log.level",
                format!("{:?} is not a valid log filter (try \"info\")", self.level),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        listen: Option<String>,
        #[serde(default)]
        inner: Inner,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        size: Option<u32>,
    }

    #[test]
    fn every_unknown_key_is_named() {
        let text = "listn = \"x\"\n[inner]\nsize = 3\nszie = 4\n";
        let problems = parse_toml::<Sample>(text).unwrap_err();
        let said = problems.to_string();
        assert_eq!(problems.0.len(), 2, "{said}");
        assert!(
            said.contains("<line 1>") && said.contains("listn"),
            "{said}"
        );
        assert!(said.contains("<line 4>") && said.contains("szie"), "{said}");
        assert!(parse_toml::<Sample>("listen = \"x\"\n").is_ok());
        // A misspelt table is reported once, not as every key under it.
        let one = parse_toml::<Sample>("[innr]\nsize = 3\n").unwrap_err();
        assert_eq!(one.0.len(), 1, "{one}");
    }

    #[test]
    fn data_dir_that_is_a_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let mut p = Problems::default();
        check_data_dir(&mut p, "storage.data_dir", &file);
        assert!(p.names("storage.data_dir"), "{p}");
        let mut p = Problems::default();
        check_data_dir(&mut p, "storage.data_dir", &file.join("below"));
        assert!(p.names("storage.data_dir"), "{p}");
        let mut p = Problems::default();
        check_data_dir(&mut p, "storage.data_dir", &dir.path().join("new/deeper"));
        assert!(p.0.is_empty(), "{p}");
        assert!(
            !dir.path().join("new").exists(),
            "validation must create nothing"
        );
    }

    #[test]
    fn bad_address_names_key() {
        let mut p = Problems::default();
        assert!(check_addr(&mut p, "server.listen", "localhost").is_none());
        assert!(p.to_string().starts_with("server.listen: "));
    }
}
