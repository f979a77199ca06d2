//! YAML files → documents: the first line of defence against bad input.
//!
//! Every file becomes zero or more JSON values, or problems — never a panic and never
//! unbounded work: serde-saphyr's budgets cap events, aliases (billion laughs) and nesting.
//! Error snippets are off, because a syntax error in a Secret manifest must not echo its content.

use serde_saphyr::Options;

use super::problem::{Location, Problem};
use crate::api::Severity;
use crate::source::{FileContent, SnapshotFile};

/// One parsed YAML document and where it is.
#[derive(Debug, Clone)]
pub struct Document {
    pub location: Location,
    pub value: serde_json::Value,
}

fn options() -> Options {
    serde_saphyr::options! { with_snippet: false }
}

/// The documents of one file, or the problems that kept it from being read.
pub fn parse(file: &SnapshotFile, problems: &mut Vec<Problem>) -> Vec<Document> {
    let error = |problems: &mut Vec<Problem>, problem: String, fix: &str| {
        problems.push(Problem::file(Severity::Error, &file.path, problem, fix));
    };
    let bytes = match &file.content {
        FileContent::Bytes(b) => b,
        FileContent::TooLarge { size, limit } => {
            error(
                problems,
                format!(
                    "the file is {}, over the {} limit for a manifest file",
                    human_size(*size),
                    human_size(*limit)
                ),
                "split it into smaller files, or raise the limit with --max-file-size",
            );
            return Vec::new();
        }
        FileContent::SymlinkOutside { target } => {
            error(
                problems,
                format!("symlink to {target} points outside the repository; it is not read"),
                "copy the manifest into the repository, or point the link at a file inside it",
            );
            return Vec::new();
        }
        FileContent::SymlinkUnresolved { target, reason } => {
            error(
                problems,
                format!("symlink to {target} cannot be followed: {reason}"),
                "fix or remove the link",
            );
            return Vec::new();
        }
    };
    if bytes.contains(&0) {
        error(
            problems,
            "the file contains NUL bytes: it is binary, not YAML".into(),
            "remove it, or rename it so it does not end in .yaml/.yml",
        );
        return Vec::new();
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        error(
            problems,
            "the file is not UTF-8 text".into(),
            "save it as UTF-8, or rename it so it does not end in .yaml/.yml",
        );
        return Vec::new();
    };
    if text.trim().is_empty() {
        problems.push(Problem::file(
            Severity::Warning,
            &file.path,
            "the file is empty".into(),
            "add manifests or delete the file",
        ));
        return Vec::new();
    }
    let values: Vec<serde_json::Value> =
        match serde_saphyr::from_multiple_with_options(text, options()) {
            Ok(values) => values,
            Err(e) => {
                error(
                    problems,
                    format!("invalid YAML: {}", one_line(&e.to_string())),
                    "fix the YAML syntax at the position shown",
                );
                return Vec::new();
            }
        };
    let mut out = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        // An empty document (a stray `---`) is not an object, and not a mistake worth a warning.
        if value.is_null() {
            continue;
        }
        out.push(Document {
            location: Location {
                file: file.path.clone(),
                document: i + 1,
            },
            value,
        });
    }
    if out.is_empty() {
        problems.push(Problem::file(
            Severity::Warning,
            &file.path,
            "the file has no YAML documents, only comments or separators".into(),
            "add manifests or delete the file",
        ));
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn human_size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / MIB)
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}
