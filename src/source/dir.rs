//! A plain local directory as a source (e.g. a checkout in CI, or a mounted volume).

use std::fs;
use std::path::{Path, PathBuf};

use super::{FileContent, Snapshot, SnapshotFile, SnapshotOptions, SourceError, wanted};

/// Reads the YAML files of `root` (under `options.path`) into a snapshot.
pub fn read_dir(root: &Path, options: &SnapshotOptions) -> Result<Snapshot, SourceError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| SourceError::Io { path, source }
    };
    let canonical_root = fs::canonicalize(root).map_err(io(root))?;
    let sub = options.normalized_path();
    let start = canonical_root.join(&sub);
    if !start.is_dir() {
        return Err(SourceError::PathNotFound {
            origin: root.display().to_string(),
            path: sub,
        });
    }
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = vec![start];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(io(&path))?;
            let Some(rel) = relative(&canonical_root, &path) else {
                continue;
            };
            if file_type.is_dir() {
                if !super::EXCLUDED_DIRS.contains(&entry.file_name().to_string_lossy().as_ref()) {
                    pending.push(path);
                }
                continue;
            }
            if !wanted(&rel, &sub) {
                continue;
            }
            let content = if file_type.is_symlink() {
                symlink_content(&canonical_root, &path, options.max_file_bytes)?
            } else {
                file_content(&path, options.max_file_bytes)?
            };
            files.push(SnapshotFile { path: rel, content });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Snapshot {
        origin: root.display().to_string(),
        commit: None,
        files,
    })
}

fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

fn file_content(path: &Path, limit: u64) -> Result<FileContent, SourceError> {
    let io = |source| SourceError::Io {
        path: path.display().to_string(),
        source,
    };
    let size = fs::metadata(path).map_err(io)?.len();
    if size > limit {
        return Ok(FileContent::TooLarge { size, limit });
    }
    Ok(FileContent::Bytes(fs::read(path).map_err(io)?))
}

/// A symlink is read only if what it finally points to is a file inside the repository.
fn symlink_content(root: &Path, link: &Path, limit: u64) -> Result<FileContent, SourceError> {
    let target = fs::read_link(link)
        .map(|t| t.display().to_string())
        .map_err(|source| SourceError::Io {
            path: link.display().to_string(),
            source,
        })?;
    let resolved = match fs::canonicalize(link) {
        Ok(p) => p,
        Err(e) => {
            return Ok(FileContent::SymlinkUnresolved {
                target,
                reason: e.to_string(),
            });
        }
    };
    if !resolved.starts_with(root) {
        return Ok(FileContent::SymlinkOutside { target });
    }
    if !resolved.is_file() {
        return Ok(FileContent::SymlinkUnresolved {
            target,
            reason: "not a regular file".into(),
        });
    }
    file_content(&resolved, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("serin-dir-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    fn write(root: &Path, rel: &str, body: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, body).expect("write");
    }

    #[test]
    fn reads_yaml_files_with_the_documented_rules() {
        let root = tempdir("rules");
        write(&root, "apps/podinfo.yaml", "kind: A\n");
        write(&root, "apps/nested/more.yml", "kind: B\n");
        write(&root, "apps/README.md", "# no\n");
        write(&root, "apps/.serin/status/x.yaml", "kind: Ledger\n");
        write(&root, "other/x.yaml", "kind: Other\n");
        write(&root, "apps/big.yaml", &"x".repeat(2048));
        let outside = tempdir("outside");
        write(&outside, "secret.yaml", "kind: Secret\n");
        std::os::unix::fs::symlink(outside.join("secret.yaml"), root.join("apps/escape.yaml"))
            .expect("symlink");
        std::os::unix::fs::symlink("../other/x.yaml", root.join("apps/inside.yaml"))
            .expect("symlink");
        std::os::unix::fs::symlink("missing.yaml", root.join("apps/dangling.yaml"))
            .expect("symlink");

        let options = SnapshotOptions {
            path: "./apps/".into(),
            max_file_bytes: 1024,
        };
        let snap = read_dir(&root, &options).expect("read");
        let got: Vec<(String, String)> = snap
            .files
            .iter()
            .map(|f| (f.path.clone(), format!("{:?}", f.content)))
            .collect();
        let want = [
            (
                "apps/big.yaml",
                "TooLarge { size: 2048, limit: 1024 }".to_string(),
            ),
            (
                "apps/dangling.yaml",
                "SymlinkUnresolved(\"missing.yaml\": No such file or directory (os error 2))"
                    .into(),
            ),
            (
                "apps/escape.yaml",
                format!(
                    "SymlinkOutside({:?})",
                    outside.join("secret.yaml").display().to_string()
                ),
            ),
            ("apps/inside.yaml", "Bytes(12 bytes)".into()),
            ("apps/nested/more.yml", "Bytes(8 bytes)".into()),
            ("apps/podinfo.yaml", "Bytes(8 bytes)".into()),
        ];
        let want: Vec<(String, String)> =
            want.into_iter().map(|(p, c)| (p.to_string(), c)).collect();
        assert_eq!(got, want);
        let _ = fs::remove_dir_all(&root);
        let _ = fs::remove_dir_all(&outside);
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let root = tempdir("missing");
        let options = SnapshotOptions {
            path: "nope".into(),
            ..Default::default()
        };
        let err = read_dir(&root, &options).expect_err("missing path");
        assert!(
            err.to_string()
                .starts_with("path \"nope\" does not exist in"),
            "{err}"
        );
        let _ = fs::remove_dir_all(&root);
    }
}
