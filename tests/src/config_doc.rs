//! The configuration reference (docs/configuration.md), generated from the shipped example configs.
//!
//! The examples in deploy/config are the source: every key with its default and the comment above it.
//! Keys written as comments (`# url = ...`) are optional settings without a default; uncommenting them
//! all must still give a config the binary accepts, which ties the reference to the config structs.

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One line of an example config, classified.
#[derive(Debug, PartialEq)]
enum Line<'a> {
    Blank,
    Comment(&'a str),
    /// `[section]` or `[[section]]`; `optional` when written as a comment.
    Section {
        name: &'a str,
        array: bool,
        optional: bool,
    },
    /// `key = value  # note`; `optional` when written as a comment.
    Key {
        key: &'a str,
        value: &'a str,
        note: &'a str,
        optional: bool,
    },
}

fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Splits `value  # note` at the first `#` outside a string.
fn split_note(rest: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in rest.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return (rest[..i].trim(), rest[i + 1..].trim()),
            _ => {}
        }
    }
    (rest.trim(), "")
}

fn classify_body(body: &str, optional: bool) -> Option<Line<'_>> {
    let t = body.trim();
    if let Some(inner) = t.strip_prefix("[[").and_then(|s| s.strip_suffix("]]")) {
        return Some(Line::Section {
            name: inner,
            array: true,
            optional,
        });
    }
    if let Some(inner) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']'))
        && inner.split('.').all(is_key)
    {
        return Some(Line::Section {
            name: inner,
            array: false,
            optional,
        });
    }
    let (key, rest) = t.split_once(" = ")?;
    if !is_key(key) {
        return None;
    }
    let (value, note) = split_note(rest);
    Some(Line::Key {
        key,
        value,
        note,
        optional,
    })
}

fn classify(line: &str) -> Line<'_> {
    let t = line.trim();
    if t.is_empty() {
        return Line::Blank;
    }
    match t.strip_prefix('#') {
        None => classify_body(t, false).unwrap_or(Line::Comment("")),
        Some(c) => {
            let c = c.strip_prefix(' ').unwrap_or(c);
            // "# # text" is a comment inside a commented-out section.
            if let Some(inner) = c.strip_prefix('#') {
                return Line::Comment(inner.trim());
            }
            classify_body(c, true).unwrap_or(Line::Comment(c.trim_end()))
        }
    }
}

/// The example with every commented-out section and key written in, as a binary would read it.
pub fn uncommented(example: &str) -> String {
    let mut out = String::new();
    for line in example.lines() {
        match classify(line) {
            Line::Section { name, array, .. } => {
                let (l, r) = if array { ("[[", "]]") } else { ("[", "]") };
                let _ = writeln!(out, "{l}{name}{r}");
            }
            Line::Key { key, value, .. } => {
                let _ = writeln!(out, "{key} = {value}");
            }
            Line::Blank | Line::Comment(_) => {}
        }
    }
    out
}

/// Every section and key path (`server.tls`, `server.tls.cert`) the example documents, commented or not.
pub fn documented_keys(example: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in example.lines() {
        match classify(line) {
            Line::Section { name, .. } => {
                section = name.to_owned();
                keys.insert(section.clone());
            }
            Line::Key { key, .. } if section.is_empty() => {
                keys.insert(key.to_owned());
            }
            Line::Key { key, .. } => {
                keys.insert(format!("{section}.{key}"));
            }
            _ => {}
        }
    }
    keys
}

/// `{ env = .. }`, `{ file = .. }` or `{ credential = .. }`: one setting, not a section.
fn is_secret_source(t: &toml::Table) -> bool {
    t.len() == 1
        && t.keys()
            .all(|k| matches!(k.as_str(), "env" | "file" | "credential"))
}

/// Every key path in a TOML value; tables inside arrays count under the array's name, and a map whose
/// keys are data (per-type styles) counts as the map itself.
pub fn value_keys(value: &toml::Value, open_maps: &[&str]) -> BTreeSet<String> {
    fn walk(v: &toml::Value, path: &str, open: &[&str], out: &mut BTreeSet<String>) {
        match v {
            toml::Value::Table(t)
                if path.is_empty() || !open.contains(&path) && !is_secret_source(t) =>
            {
                for (k, v) in t {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(v, &p, open, out);
                }
            }
            toml::Value::Array(items)
                if items.iter().all(toml::Value::is_table) && !items.is_empty() =>
            {
                for item in items {
                    walk(item, path, open, out);
                }
            }
            _ => {
                out.insert(path.to_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(value, "", open_maps, &mut out);
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('<', "&lt;")
}

/// The Markdown reference for one binary's example config.
pub fn reference(title: &str, source: &str, example: &str) -> String {
    struct Row {
        key: String,
        value: String,
        optional: bool,
        meaning: String,
        /// The meaning came from comment lines above (which may cover the keys after it too).
        commented: bool,
    }
    struct Section {
        name: String,
        optional: bool,
        array: bool,
        about: Vec<String>,
        rows: Vec<Row>,
    }
    let mut intro: Vec<String> = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for line in example.lines() {
        match classify(line) {
            Line::Blank => {}
            Line::Comment(c) => pending.push(c.to_owned()),
            Line::Section {
                name,
                array,
                optional,
            } => {
                let about = std::mem::take(&mut pending);
                if sections.is_empty() {
                    intro = about;
                    sections.push(Section {
                        name: name.to_owned(),
                        optional,
                        array,
                        about: Vec::new(),
                        rows: Vec::new(),
                    });
                } else {
                    sections.push(Section {
                        name: name.to_owned(),
                        optional,
                        array,
                        about,
                        rows: Vec::new(),
                    });
                }
            }
            Line::Key {
                key,
                value,
                note,
                optional,
            } => {
                let mut meaning = std::mem::take(&mut pending).join(" ");
                let commented = !meaning.is_empty();
                if !note.is_empty() {
                    if !meaning.is_empty() {
                        meaning.push(' ');
                    }
                    let mut chars = note.chars();
                    meaning.extend(chars.next().map(|c| c.to_ascii_uppercase()));
                    meaning.push_str(chars.as_str());
                    if !meaning.ends_with('.') {
                        meaning.push('.');
                    }
                }
                if let Some(s) = sections.last_mut() {
                    s.rows.push(Row {
                        key: key.to_owned(),
                        value: value.to_owned(),
                        optional: optional || s.optional,
                        meaning,
                        commented,
                    });
                }
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "## {title}\n");
    let _ = writeln!(out, "From `{source}`.");
    let intro: Vec<&str> = intro
        .iter()
        .map(String::as_str)
        .filter(|l| !l.is_empty())
        .collect();
    if !intro.is_empty() {
        let _ = writeln!(out, "{}", md_cell(intro[1..].join(" ").trim()));
    }
    out.push('\n');
    for s in &sections {
        let (l, r) = if s.array { ("[[", "]]") } else { ("[", "]") };
        let _ = writeln!(out, "### `{l}{}{r}`\n", s.name);
        if s.optional {
            let _ = writeln!(out, "Optional: absent unless written in the file.\n");
        }
        if !s.about.is_empty() {
            let _ = writeln!(out, "{}\n", md_cell(&s.about.join(" ")));
        }
        if s.rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "| Key | Default | Meaning |\n|---|---|---|");
        let mut last_commented = false;
        for row in &s.rows {
            let default = if row.optional {
                format!("unset (example: `{}`)", md_cell(&row.value))
            } else {
                format!("`{}`", md_cell(&row.value))
            };
            let meaning = if row.meaning.is_empty() && last_commented {
                "See above.".to_owned()
            } else {
                md_cell(&row.meaning)
            };
            if row.commented {
                last_commented = true;
            }
            let _ = writeln!(out, "| `{}` | {default} | {meaning} |", row.key);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# top\n# Intro text.\n\n[server]\n# Where it listens.\nlisten = \"a\"\nport = 1  # a note\n# [server.tls]\n# cert = \"/x#y\"  # chain\n\n# Hooks.\n# [[hooks]]\n# url = \"u\"\n# # inner prose\n";

    #[test]
    fn lines_are_classified() {
        assert_eq!(classify("# # inner"), Line::Comment("inner"));
        assert_eq!(
            classify("# Two words = prose"),
            Line::Comment("Two words = prose")
        );
        assert_eq!(
            classify("# cert = \"/x#y\"  # chain"),
            Line::Key {
                key: "cert",
                value: "\"/x#y\"",
                note: "chain",
                optional: true
            }
        );
    }

    #[test]
    fn uncommenting_writes_every_key_in() {
        assert_eq!(
            uncommented(SAMPLE),
            "[server]\nlisten = \"a\"\nport = 1\n[server.tls]\ncert = \"/x#y\"\n[[hooks]]\nurl = \"u\"\n"
        );
        let keys: Vec<String> = documented_keys(SAMPLE).into_iter().collect();
        assert_eq!(
            keys,
            [
                "hooks",
                "hooks.url",
                "server",
                "server.listen",
                "server.port",
                "server.tls",
                "server.tls.cert"
            ]
        );
    }

    #[test]
    fn reference_lists_defaults_and_optional_keys() {
        let md = reference("Sample", "sample.toml", SAMPLE);
        assert!(
            md.contains("| `listen` | `\"a\"` | Where it listens. |"),
            "{md}"
        );
        assert!(md.contains("| `port` | `1` | A note. |"), "{md}");
        assert!(md.contains("### `[[hooks]]`\n\nOptional"), "{md}");
        assert!(
            md.contains("| `cert` | unset (example: `\"/x#y\"`) | Chain. |"),
            "{md}"
        );
    }

    #[test]
    fn value_keys_walks_tables_and_arrays() {
        let v: toml::Value =
            toml::from_str("[a]\nb = 1\n[a.m]\nX = 1\n[[h]]\nu = 1\n[[h]]\nu = 2\n").unwrap();
        let keys: Vec<String> = value_keys(&v, &["a.m"]).into_iter().collect();
        assert_eq!(keys, ["a.b", "a.m", "h.u"]);
    }
}
