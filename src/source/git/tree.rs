//! Reading a snapshot from the tree of a commit, with exactly the rules of `dir.rs`.
//!
//! Symlinks are Git blobs with mode 120000 whose content is the target. They are resolved
//! with [`resolve_link`] (lexically, inside the repository) and followed through the tree,
//! including symlinked directories on the way, for at most [`MAX_LINK_HOPS`] links.

use std::collections::VecDeque;

use git2::{ObjectType, Oid, Repository, Tree};

use super::super::{
    EXCLUDED_DIRS, FileContent, Snapshot, SnapshotFile, SnapshotOptions, SourceError, resolve_link,
    wanted,
};
use super::url::scrub_url;
use super::{CommitId, GitError};

/// The file mode Git records for a symbolic link.
const LINK_MODE: i32 = 0o120000;
/// Like the kernel's ELOOP limit, but small: a config repo has no reason for long chains.
pub const MAX_LINK_HOPS: u32 = 8;
/// A symlink blob is a path; anything longer than PATH_MAX is not a real link.
const MAX_LINK_TARGET_BYTES: usize = 4096;

/// What a repository-relative path leads to after following symlinks.
enum Found<'r> {
    Blob(Oid),
    Tree(Tree<'r>),
    Missing,
    Outside,
    TooManyLinks,
}

pub(super) fn snapshot(
    repo: &Repository,
    commit: CommitId,
    origin: String,
    options: &SnapshotOptions,
) -> Result<Snapshot, GitError> {
    let sub = options.normalized_path();
    let root = repo
        .find_commit(commit.oid())
        .and_then(|c| c.tree())
        .map_err(|e| read_error(&origin, "", &e))?;
    let reader = Reader {
        repo,
        root,
        origin,
        limit: options.max_file_bytes,
    };
    let start = reader.start(&sub)?;
    let mut files = Vec::new();
    let mut pending = vec![(start, sub.clone())];
    while let Some((tree, prefix)) = pending.pop() {
        for entry in tree.iter() {
            let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
            let rel = join(&prefix, &name);
            match entry.kind() {
                Some(ObjectType::Tree) if !EXCLUDED_DIRS.contains(&name.as_str()) => {
                    pending.push((reader.tree(entry.id(), &rel)?, rel));
                }
                Some(ObjectType::Blob) if wanted(&rel, &sub) => {
                    let content = reader.content(&rel, entry.id(), entry.filemode())?;
                    files.push(SnapshotFile { path: rel, content });
                }
                // Submodules (commit entries) are another repository; excluded dirs are
                // Git's and Serin's own.
                _ => {}
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Snapshot {
        origin: reader.origin,
        commit: Some(commit.to_string()),
        files,
    })
}

struct Reader<'r> {
    repo: &'r Repository,
    root: Tree<'r>,
    origin: String,
    limit: u64,
}

impl<'r> Reader<'r> {
    /// The tree at the configured path; like `dir.rs`, it must be a directory.
    fn start(&self, sub: &str) -> Result<Tree<'r>, GitError> {
        if sub.is_empty() {
            return Ok(self.root.clone());
        }
        match self.lookup(sub, &mut 0)? {
            Found::Tree(tree) => Ok(tree),
            _ => Err(GitError::Source(SourceError::PathNotFound {
                origin: self.origin.clone(),
                path: sub.to_string(),
            })),
        }
    }

    fn content(&self, rel: &str, id: Oid, mode: i32) -> Result<FileContent, GitError> {
        if mode == LINK_MODE {
            self.link_content(rel, id)
        } else {
            self.blob_content(rel, id)
        }
    }

    /// The size comes from the object header, so an oversized blob is never inflated.
    fn blob_content(&self, rel: &str, id: Oid) -> Result<FileContent, GitError> {
        let err = |e: git2::Error| read_error(&self.origin, rel, &e);
        let (size, _) = self
            .repo
            .odb()
            .and_then(|o| o.read_header(id))
            .map_err(err)?;
        let size = size as u64;
        if size > self.limit {
            return Ok(FileContent::TooLarge {
                size,
                limit: self.limit,
            });
        }
        let blob = self.repo.find_blob(id).map_err(err)?;
        Ok(FileContent::Bytes(blob.content().to_vec()))
    }

    fn link_content(&self, rel: &str, id: Oid) -> Result<FileContent, GitError> {
        let target = match self.link_target(rel, id)? {
            Ok(target) => target,
            Err(reason) => {
                return Ok(FileContent::SymlinkUnresolved {
                    target: String::new(),
                    reason,
                });
            }
        };
        let Some(resolved) = resolve_link(rel, &target) else {
            return Ok(FileContent::SymlinkOutside { target });
        };
        let unresolved = |reason: String| FileContent::SymlinkUnresolved {
            target: target.clone(),
            reason,
        };
        Ok(match self.lookup(&resolved, &mut 1)? {
            Found::Blob(blob) => self.blob_content(&resolved, blob)?,
            Found::Tree(_) => unresolved("not a regular file".into()),
            Found::Missing => unresolved(format!("{resolved}: no such file in the commit")),
            Found::TooManyLinks => unresolved(format!("more than {MAX_LINK_HOPS} symlinks")),
            Found::Outside => FileContent::SymlinkOutside { target },
        })
    }

    /// The target stored in a symlink blob, or why it is not a usable path.
    fn link_target(&self, rel: &str, id: Oid) -> Result<Result<String, String>, GitError> {
        let err = |e: git2::Error| read_error(&self.origin, rel, &e);
        let (size, _) = self
            .repo
            .odb()
            .and_then(|o| o.read_header(id))
            .map_err(err)?;
        if size > MAX_LINK_TARGET_BYTES {
            return Ok(Err(format!("symlink target of {size} bytes")));
        }
        let blob = self.repo.find_blob(id).map_err(err)?;
        Ok(Ok(String::from_utf8_lossy(blob.content()).into_owned()))
    }

    /// Walks `path` from the root, following every symlink met on the way (a link in the
    /// middle is a symlinked directory) and counting them in `hops`.
    fn lookup(&self, path: &str, hops: &mut u32) -> Result<Found<'r>, GitError> {
        let mut todo: VecDeque<String> = segments(path).collect();
        let mut done: Vec<String> = Vec::new();
        let mut tree = self.root.clone();
        while let Some(name) = todo.pop_front() {
            let Some((id, mode, kind)) = tree
                .get_name(&name)
                .map(|e| (e.id(), e.filemode(), e.kind()))
            else {
                return Ok(Found::Missing);
            };
            let here = join(&done.join("/"), &name);
            if mode == LINK_MODE {
                *hops += 1;
                if *hops > MAX_LINK_HOPS {
                    return Ok(Found::TooManyLinks);
                }
                let Ok(target) = self.link_target(&here, id)? else {
                    return Ok(Found::Missing);
                };
                let Some(resolved) = resolve_link(&here, &target) else {
                    return Ok(Found::Outside);
                };
                let rest = std::mem::take(&mut todo);
                todo = segments(&resolved).chain(rest).collect();
                done.clear();
                tree = self.root.clone();
                continue;
            }
            match kind {
                Some(ObjectType::Tree) => {
                    tree = self.tree(id, &here)?;
                    done.push(name);
                }
                Some(ObjectType::Blob) if todo.is_empty() => return Ok(Found::Blob(id)),
                _ => return Ok(Found::Missing),
            }
        }
        Ok(Found::Tree(tree))
    }

    fn tree(&self, id: Oid, rel: &str) -> Result<Tree<'r>, GitError> {
        self.repo
            .find_tree(id)
            .map_err(|e| read_error(&self.origin, rel, &e))
    }
}

fn segments(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_string)
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

fn read_error(origin: &str, path: &str, e: &git2::Error) -> GitError {
    GitError::Read {
        origin: origin.to_string(),
        path: path.to_string(),
        message: scrub_url(e.message()),
    }
}
