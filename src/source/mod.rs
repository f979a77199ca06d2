//! Where manifests come from: a local directory or a commit of a Git repository.
//!
//! Every source yields a [`Snapshot`]: the YAML files under the configured path, read into
//! memory with the same rules whatever the origin — `.yaml`/`.yml` only, `.git/` and `.serin/`
//! (Serin's own ledger) left out, files over the size limit not read, and symlinks followed only
//! while they stay inside the repository. The catalog never touches the file system or Git.

pub mod dir;
pub mod git;
pub mod trigger;

use std::fmt;

/// Why a source could not be read at all (problems with single files are in the snapshot).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("path {path:?} does not exist in {origin}")]
    PathNotFound { origin: String, path: String },
}

/// Files larger than this are reported, not read: a manifest is never this big, and a huge
/// file in the config repo must not exhaust Serin's memory.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Directories a snapshot never contains: Git's own and Serin's ledger (status commits must
/// never look like configuration changes).
pub const EXCLUDED_DIRS: [&str; 2] = [".git", ".serin"];

/// What to read from a source.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// Subdirectory of the repository to read ("" or "." for all of it), '/'-separated.
    pub path: String,
    pub max_file_bytes: u64,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            path: String::new(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

impl SnapshotOptions {
    /// The configured path without leading "./" or trailing '/', "" for the whole repository.
    pub fn normalized_path(&self) -> String {
        let p = self.path.trim().trim_matches('/');
        let p = p.strip_prefix("./").unwrap_or(p);
        if p == "." {
            String::new()
        } else {
            p.to_string()
        }
    }
}

/// The YAML files of one version of the configuration.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Where it came from, for messages: a directory path or `<url>@<commit>`.
    pub origin: String,
    /// The commit read, for Git sources.
    pub commit: Option<String>,
    /// Sorted by path.
    pub files: Vec<SnapshotFile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Relative to the repository root, '/'-separated.
    pub path: String,
    pub content: FileContent,
}

#[derive(Clone, PartialEq, Eq)]
pub enum FileContent {
    Bytes(Vec<u8>),
    /// Over the size limit; not read.
    TooLarge {
        size: u64,
        limit: u64,
    },
    /// A symlink whose target leaves the repository; never followed.
    SymlinkOutside {
        target: String,
    },
    /// A symlink that cannot be resolved (dangling, a loop, or a directory).
    SymlinkUnresolved {
        target: String,
        reason: String,
    },
}

impl fmt::Debug for FileContent {
    // Debug output of a snapshot must stay readable (and never dump a Secret manifest).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileContent::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            FileContent::TooLarge { size, limit } => {
                write!(f, "TooLarge {{ size: {size}, limit: {limit} }}")
            }
            FileContent::SymlinkOutside { target } => write!(f, "SymlinkOutside({target:?})"),
            FileContent::SymlinkUnresolved { target, reason } => {
                write!(f, "SymlinkUnresolved({target:?}: {reason})")
            }
        }
    }
}

/// Whether a repository-relative path belongs in a snapshot taken with `options`.
pub fn wanted(path: &str, options_path: &str) -> bool {
    let under = options_path.is_empty()
        || path == options_path
        || path
            .strip_prefix(options_path)
            .is_some_and(|rest| rest.starts_with('/'));
    let excluded = path
        .split('/')
        .any(|segment| EXCLUDED_DIRS.contains(&segment));
    let yaml = path.ends_with(".yaml") || path.ends_with(".yml");
    under && !excluded && yaml
}

/// Resolves `target` of a symlink at `link` (both repository-relative, '/'-separated) to a
/// repository-relative path, or `None` if it leaves the repository.
pub fn resolve_link(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for segment in target.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yaml_under_the_path_outside_excluded_dirs() {
        let cases = [
            ("apps/podinfo.yaml", "", true),
            ("apps/podinfo.yml", "apps", true),
            ("apps/podinfo.json", "", false),
            ("apps/README.md", "", false),
            ("appsx/podinfo.yaml", "apps", false),
            (".serin/status/test/podinfo.yaml", "", false),
            ("apps/.serin/x.yaml", "", false),
            (".git/config.yaml", "", false),
            ("apps/deep/nested/x.yaml", "apps", true),
        ];
        for (path, under, want) in cases {
            assert_eq!(wanted(path, under), want, "{path} under {under:?}");
        }
    }

    #[test]
    fn links_resolve_inside_the_repository_only() {
        let cases = [
            ("apps/a.yaml", "b.yaml", Some("apps/b.yaml")),
            ("apps/a.yaml", "../base/b.yaml", Some("base/b.yaml")),
            ("apps/a.yaml", "./x/../b.yaml", Some("apps/b.yaml")),
            ("apps/a.yaml", "../../etc/passwd", None),
            ("a.yaml", "../x.yaml", None),
            ("apps/a.yaml", "/etc/passwd", None),
        ];
        for (link, target, want) in cases {
            assert_eq!(
                resolve_link(link, target).as_deref(),
                want,
                "{link} -> {target}"
            );
        }
    }

    #[test]
    fn path_option_is_normalized() {
        for (raw, want) in [("", ""), (".", ""), ("./apps/", "apps"), ("/apps", "apps")] {
            let o = SnapshotOptions {
                path: raw.into(),
                ..Default::default()
            };
            assert_eq!(o.normalized_path(), want, "{raw:?}");
        }
    }
}
