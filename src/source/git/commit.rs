//! Serin's own commits, made in the bare mirror without a working tree, and reading back
//! what a commit holds.
//!
//! Commits are queued on `refs/serin/pending/<branch>` until a push delivers them (see
//! `push.rs`). The commit a queue starts on is recorded in `refs/serin/base/<branch>`: the
//! queue is exactly the commits between the two, so a force push that removes history from
//! the remote can never make Serin mistake a person's discarded commits for its own.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use git2::build::TreeUpdateBuilder;
use git2::{ErrorCode, FileMode, ObjectType, Oid, Repository, Signature, Sort, Tree};

use super::super::SourceError;
use super::url::scrub_url;
use super::{CommitId, GitError};

/// The directory of Serin's ledger (and of approvals): Serin's alone, never configuration.
pub(super) const SERIN_DIR: &str = ".serin";
/// The file mode Git records for a symbolic link.
const LINK_MODE: i32 = 0o120000;
/// The mode of a regular, non-executable file.
const BLOB_MODE: i32 = 0o100644;
const EXECUTABLE_MODE: i32 = 0o100755;

/// One file to write or delete in a queued commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Relative to the repository root, '/'-separated.
    pub path: String,
    /// The new content; `None` deletes the file.
    pub content: Option<Vec<u8>>,
}

/// Who a queued commit is by; it is also its committer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

pub(super) fn pending_ref(branch: &str) -> String {
    format!("refs/serin/pending/{branch}")
}

pub(super) fn base_ref(branch: &str) -> String {
    format!("refs/serin/base/{branch}")
}

pub(super) fn tracking_ref(branch: &str) -> String {
    format!("refs/remotes/origin/{branch}")
}

/// Whether `path` lies in a `.serin` directory (at any depth, as snapshots leave them out).
pub(super) fn is_serin_path(path: &str) -> bool {
    let mut segments = path.split('/');
    segments.next_back();
    segments.any(|s| s == SERIN_DIR)
}

/// Checks a path given for a commit: repository-relative, '/'-separated, and nothing Git
/// would refuse in a tree (`.git`, `..`, empty segments).
pub(super) fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the path is empty");
    }
    if path.contains('\0') {
        // libgit2 takes paths as C strings; git2 would panic on an inner NUL.
        return Err("the path contains a NUL byte");
    }
    if path.starts_with('/') {
        return Err("the path must be relative to the repository root");
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err("the path has an empty segment"),
            "." | ".." => return Err("the path has a '.' or '..' segment"),
            s if s.eq_ignore_ascii_case(".git") => return Err("the path enters .git"),
            _ => {}
        }
    }
    Ok(())
}

/// A directory argument: "" (or "." or "/") means the root; surrounding slashes are ignored.
fn normalize_dir(dir: &str) -> Result<String, &'static str> {
    let dir = dir.trim_matches('/');
    let dir = dir.strip_prefix("./").unwrap_or(dir);
    if dir.is_empty() || dir == "." {
        return Ok(String::new());
    }
    check_path(dir)?;
    Ok(dir.to_string())
}

/// The commit a ref points at, if the ref exists.
pub(super) fn ref_target(repo: &Repository, name: &str) -> Result<Option<Oid>, git2::Error> {
    match repo.refname_to_id(name) {
        Ok(id) => Ok(Some(id)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The entry at `path` in `tree`: (object, mode), or `None` when nothing is there.
pub(super) fn entry_at(tree: &Tree<'_>, path: &str) -> Result<Option<(Oid, i32)>, git2::Error> {
    match tree.get_path(Path::new(path)) {
        Ok(entry) => Ok(Some((entry.id(), entry.filemode()))),
        // Also what libgit2 says when a leading part of the path is a file.
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn is_tree_mode(mode: i32) -> bool {
    mode & 0o170000 == 0o040000
}

/// Looks paths up in one tree, parsing each directory once. libgit2 does not cache trees
/// over 4 KiB, and `.serin/status` with a thousand canaries is eight times that: a lookup by
/// full path per file would parse it again for every file of a cycle.
pub(super) struct TreeIndex<'r> {
    repo: &'r Repository,
    dirs: HashMap<String, Option<Tree<'r>>>,
}

impl<'r> TreeIndex<'r> {
    pub(super) fn new(repo: &'r Repository, root: Tree<'r>) -> TreeIndex<'r> {
        let mut dirs = HashMap::new();
        dirs.insert(String::new(), Some(root));
        TreeIndex { repo, dirs }
    }

    /// The directory at `dir` ("" for the root), if there is one.
    fn dir(&mut self, dir: &str) -> Result<Option<Tree<'r>>, git2::Error> {
        if let Some(tree) = self.dirs.get(dir) {
            return Ok(tree.clone());
        }
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let found = match self.dir(parent)? {
            Some(parent) => match parent.get_name(name) {
                Some(entry) if is_tree_mode(entry.filemode()) => {
                    Some(self.repo.find_tree(entry.id())?)
                }
                _ => None,
            },
            None => None,
        };
        self.dirs.insert(dir.to_string(), found.clone());
        Ok(found)
    }

    /// The entry at `path`: (object, mode), or `None` when nothing is there.
    pub(super) fn entry(&mut self, path: &str) -> Result<Option<(Oid, i32)>, git2::Error> {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        Ok(self
            .dir(parent)?
            .and_then(|tree| tree.get_name(name).map(|e| (e.id(), e.filemode()))))
    }

    /// Why a file cannot be written at `path`, if it cannot: a file where a directory is
    /// needed, or a directory where the file would go. libgit2 refuses both.
    pub(super) fn file_conflict(
        &mut self,
        path: &str,
    ) -> Result<Option<&'static str>, git2::Error> {
        let mut end = 0;
        loop {
            let next = path[end..].find('/').map(|i| end + i);
            let prefix = &path[..next.unwrap_or(path.len())];
            match (self.entry(prefix)?, next) {
                (None, _) => return Ok(None),
                (Some((_, mode)), None) if is_tree_mode(mode) => {
                    return Ok(Some("a directory is in the way"));
                }
                (Some(_), None) => return Ok(None),
                (Some((_, mode)), Some(_)) if !is_tree_mode(mode) => {
                    return Ok(Some("a file is in the way of its directory"));
                }
                (Some(_), Some(slash)) => end = slash + 1,
            }
        }
    }
}

/// A change to a tree, by path.
pub(super) enum Update {
    Put { path: String, blob: Oid, mode: i32 },
    Remove { path: String },
}

/// The tree `base` with `updates` applied (the paths must be distinct; removals must name
/// existing entries, as libgit2 fails on others). Directories left empty disappear.
pub(super) fn updated_tree(
    repo: &Repository,
    base: &Tree<'_>,
    updates: &[Update],
) -> Result<Oid, git2::Error> {
    if updates.is_empty() {
        return Ok(base.id());
    }
    let mut builder = TreeUpdateBuilder::new();
    for update in updates {
        match update {
            Update::Put { path, blob, mode } => {
                builder.upsert(path.as_str(), *blob, file_mode(*mode));
            }
            Update::Remove { path } => {
                builder.remove(path.as_str());
            }
        }
    }
    builder.create_updated(repo, base)
}

fn file_mode(mode: i32) -> FileMode {
    match mode {
        EXECUTABLE_MODE => FileMode::BlobExecutable,
        LINK_MODE => FileMode::Link,
        _ => FileMode::Blob,
    }
}

/// The tree of `commit`'s first parent, or the empty tree for a root commit.
pub(super) fn parent_tree<'r>(
    repo: &'r Repository,
    commit: &git2::Commit<'r>,
) -> Result<Tree<'r>, git2::Error> {
    if commit.parent_count() == 0 {
        empty_tree(repo)
    } else {
        commit.parent(0)?.tree()
    }
}

pub(super) fn empty_tree(repo: &Repository) -> Result<Tree<'_>, git2::Error> {
    let id = repo.treebuilder(None)?.write()?;
    repo.find_tree(id)
}

/// Creates a commit with `changes` on top of the queue for `branch` and queues it.
pub(super) fn queue(
    repo: &Repository,
    origin: &str,
    branch: &str,
    changes: &[FileChange],
    message: &str,
    author: &Author,
) -> Result<Option<Oid>, GitError> {
    // Later changes to one path win, as if applied in order; libgit2 refuses duplicates.
    let mut wanted: BTreeMap<&str, Option<&[u8]>> = BTreeMap::new();
    for change in changes {
        check_path(&change.path).map_err(|reason| GitError::InvalidPath {
            origin: origin.to_string(),
            path: change.path.clone(),
            reason,
        })?;
        wanted.insert(&change.path, change.content.as_deref());
    }
    let failed = |e: git2::Error| commit_error(origin, branch, &e);
    let pending = ref_target(repo, &pending_ref(branch)).map_err(failed)?;
    let parent_id = match pending {
        Some(id) => Some(id),
        // Nothing fetched yet (the remote unreachable since start, or a branch that does
        // not exist yet): a root commit, which the push rebuilds onto whatever is there.
        None => ref_target(repo, &tracking_ref(branch)).map_err(failed)?,
    };
    let parent = parent_id
        .map(|id| repo.find_commit(id))
        .transpose()
        .map_err(failed)?;
    let base = match &parent {
        Some(c) => c.tree(),
        None => empty_tree(repo),
    }
    .map_err(failed)?;

    let mut index = TreeIndex::new(repo, base.clone());
    let mut updates = Vec::new();
    for (path, content) in wanted {
        let existing = index.entry(path).map_err(failed)?;
        let invalid = |reason| GitError::InvalidPath {
            origin: origin.to_string(),
            path: path.to_string(),
            reason,
        };
        match content {
            Some(bytes) => {
                if let Some(reason) = index.file_conflict(path).map_err(failed)? {
                    return Err(invalid(reason));
                }
                let blob = repo.blob(bytes).map_err(failed)?;
                // An executable bit someone set is kept; a symlink replaced becomes a file.
                let mode = match existing {
                    Some((_, EXECUTABLE_MODE)) => EXECUTABLE_MODE,
                    _ => BLOB_MODE,
                };
                if existing != Some((blob, mode)) {
                    updates.push(Update::Put {
                        path: path.to_string(),
                        blob,
                        mode,
                    });
                }
            }
            None => match existing {
                None => {}
                Some((_, mode)) if is_tree_mode(mode) => {
                    return Err(invalid("it is a directory; changes delete files"));
                }
                Some(_) => updates.push(Update::Remove {
                    path: path.to_string(),
                }),
            },
        }
    }
    let tree_id = updated_tree(repo, &base, &updates).map_err(failed)?;
    if tree_id == base.id() {
        return Ok(None);
    }
    let tree = repo.find_tree(tree_id).map_err(failed)?;
    let signature = Signature::now(&author.name, &author.email).map_err(|e| GitError::Commit {
        origin: origin.to_string(),
        branch: branch.to_string(),
        message: format!(
            "invalid author {:?} <{}>: {}",
            author.name,
            author.email,
            e.message()
        ),
    })?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = repo
        .commit(None, &signature, &signature, message, &tree, &parents)
        .map_err(failed)?;
    if pending.is_none() {
        // The base is recorded before the queue exists: a crash in between leaves a stale
        // base, which the next first commit overwrites, never a queue without its base.
        match parent_id {
            Some(base) => {
                repo.reference(&base_ref(branch), base, true, "serin: queue base")
                    .map_err(failed)?;
            }
            None => delete_ref(repo, &base_ref(branch)).map_err(failed)?,
        }
    }
    repo.reference(&pending_ref(branch), id, true, "serin: queue")
        .map_err(failed)?;
    Ok(Some(id))
}

/// The queued commits of `branch` not yet on the remote-tracking branch, oldest first.
pub(super) fn pending_chain(repo: &Repository, branch: &str) -> Result<Vec<Oid>, git2::Error> {
    let Some(head) = ref_target(repo, &pending_ref(branch))? else {
        return Ok(Vec::new());
    };
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
    // The queue is linear; first parents only keep a walk from ever wandering into history
    // a rebuilt commit does not have.
    walk.simplify_first_parent()?;
    walk.push(head)?;
    // The base ends the queue; the tracking branch hides what a push already delivered
    // (also one whose success was not recorded before a crash).
    for name in [base_ref(branch), tracking_ref(branch)] {
        if let Some(id) = ref_target(repo, &name)? {
            walk.hide(id)?;
        }
    }
    walk.collect()
}

/// Points the queue at `head` on `base`, or empties it when there is no head.
pub(super) fn set_queue(
    repo: &Repository,
    branch: &str,
    head: Option<Oid>,
    base: Option<Oid>,
) -> Result<(), git2::Error> {
    // The head moves first: a queue whose base is older than its first commit's parent is
    // still bounded by the tracking branch, which already points at the new base.
    match head {
        Some(head) => {
            repo.reference(&pending_ref(branch), head, true, "serin: rebuild")?;
        }
        None => delete_ref(repo, &pending_ref(branch))?,
    }
    match (head, base) {
        (Some(_), Some(base)) => {
            repo.reference(&base_ref(branch), base, true, "serin: rebuild")?;
        }
        _ => delete_ref(repo, &base_ref(branch))?,
    }
    Ok(())
}

fn delete_ref(repo: &Repository, name: &str) -> Result<(), git2::Error> {
    match repo.find_reference(name) {
        Ok(mut reference) => reference.delete(),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

pub(super) fn commit_error(origin: &str, branch: &str, e: &git2::Error) -> GitError {
    GitError::Commit {
        origin: origin.to_string(),
        branch: branch.to_string(),
        message: scrub_url(e.message()),
    }
}

// ---------------------------------------------------------------------------------------
// Reading what a commit holds
// ---------------------------------------------------------------------------------------

fn commit_tree<'r>(
    repo: &'r Repository,
    origin: &str,
    commit: CommitId,
) -> Result<Tree<'r>, GitError> {
    repo.find_commit(commit.oid())
        .and_then(|c| c.tree())
        .map_err(|e| read_error(origin, commit, "", &e))
}

fn read_error(origin: &str, commit: CommitId, path: &str, e: &git2::Error) -> GitError {
    GitError::Read {
        origin: format!("{origin}@{}", commit.short()),
        path: path.to_string(),
        message: scrub_url(e.message()),
    }
}

/// The bytes of the file at `path`, `None` when there is none. A symlink reads as its
/// target, as Git stores it.
pub(super) fn read_file(
    repo: &Repository,
    origin: &str,
    commit: CommitId,
    path: &str,
) -> Result<Option<Vec<u8>>, GitError> {
    let err = |e: &git2::Error| read_error(origin, commit, path, e);
    check_path(path).map_err(|reason| GitError::InvalidPath {
        origin: origin.to_string(),
        path: path.to_string(),
        reason,
    })?;
    let tree = commit_tree(repo, origin, commit)?;
    let Some((id, mode)) = entry_at(&tree, path).map_err(|e| err(&e))? else {
        return Ok(None);
    };
    if is_tree_mode(mode) {
        return Err(err(&git2::Error::from_str("it is a directory")));
    }
    match repo.find_blob(id) {
        Ok(blob) => Ok(Some(blob.content().to_vec())),
        // A submodule entry names a commit of another repository: no file here.
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(err(&e)),
    }
}

/// Every blob under `dir` at `commit`, recursively, sorted by path; empty if `dir` is not a
/// directory there.
pub(super) fn read_dir(
    repo: &Repository,
    origin: &str,
    commit: CommitId,
    dir: &str,
) -> Result<Vec<(String, Vec<u8>)>, GitError> {
    let dir = normalize_dir(dir).map_err(|reason| GitError::InvalidPath {
        origin: origin.to_string(),
        path: dir.to_string(),
        reason,
    })?;
    let err = |path: &str, e: &git2::Error| read_error(origin, commit, path, e);
    let root = commit_tree(repo, origin, commit)?;
    let start = if dir.is_empty() {
        root
    } else {
        match entry_at(&root, &dir).map_err(|e| err(&dir, &e))? {
            Some((id, mode)) if is_tree_mode(mode) => {
                repo.find_tree(id).map_err(|e| err(&dir, &e))?
            }
            _ => return Ok(Vec::new()),
        }
    };
    let mut files = Vec::new();
    let mut todo = vec![(start, dir)];
    while let Some((tree, prefix)) = todo.pop() {
        for entry in tree.iter() {
            let name = String::from_utf8_lossy(entry.name_bytes());
            let path = if prefix.is_empty() {
                name.into_owned()
            } else {
                format!("{prefix}/{name}")
            };
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    let sub = repo.find_tree(entry.id()).map_err(|e| err(&path, &e))?;
                    todo.push((sub, path));
                }
                Some(ObjectType::Blob) => {
                    let blob = repo.find_blob(entry.id()).map_err(|e| err(&path, &e))?;
                    files.push((path, blob.content().to_vec()));
                }
                // Submodules are another repository.
                _ => {}
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// The Git tree id of the tree at `path` with every `.serin` directory left out: equal to
/// `git rev-parse <commit>:<path>` when there is none, and unchanged by ledger commits.
///
/// A symlink in the tree may point outside `path`, and snapshots follow it; then the
/// whole repository (still without `.serin`) is hashed, so that no change a snapshot
/// would see is ever missed.
pub(super) fn manifest_tree_id(
    repo: &Repository,
    origin: &str,
    commit: CommitId,
    path: &str,
) -> Result<String, GitError> {
    let sub = normalize_dir(path).map_err(|reason| GitError::InvalidPath {
        origin: origin.to_string(),
        path: path.to_string(),
        reason,
    })?;
    let err = |e: &git2::Error| read_error(origin, commit, &sub, e);
    let root = commit_tree(repo, origin, commit)?;
    let start = if sub.is_empty() {
        root.clone()
    } else {
        match entry_at(&root, &sub).map_err(|e| err(&e))? {
            Some((id, mode)) if is_tree_mode(mode) => repo.find_tree(id).map_err(|e| err(&e))?,
            _ => {
                return Err(GitError::Source(SourceError::PathNotFound {
                    origin: format!("{origin}@{}", commit.short()),
                    path: sub.clone(),
                }));
            }
        }
    };
    let mut has_link = false;
    let mut id = without_serin(repo, &start, &mut has_link).map_err(|e| err(&e))?;
    if has_link && !sub.is_empty() {
        id = without_serin(repo, &root, &mut has_link).map_err(|e| err(&e))?;
    }
    Ok(id.to_string())
}

/// The id `tree` would have without its `.serin` directories, computed without writing
/// anything: a tree untouched keeps its own id, so only paths down to a `.serin` cost work.
fn without_serin(
    repo: &Repository,
    tree: &Tree<'_>,
    has_link: &mut bool,
) -> Result<Oid, git2::Error> {
    let mut changed = false;
    let mut entries = Vec::with_capacity(tree.len());
    for entry in tree.iter() {
        let mode = entry.filemode();
        if mode == LINK_MODE {
            *has_link = true;
        }
        if is_tree_mode(mode) {
            if entry.name_bytes() == SERIN_DIR.as_bytes() {
                changed = true;
                continue;
            }
            let sub = repo.find_tree(entry.id())?;
            let id = without_serin(repo, &sub, has_link)?;
            changed |= id != entry.id();
            entries.push((mode, entry.name_bytes().to_vec(), id));
        } else {
            entries.push((mode, entry.name_bytes().to_vec(), entry.id()));
        }
    }
    if !changed {
        return Ok(tree.id());
    }
    // Git's tree format: "<octal mode> <name>\0<raw id>", in the order the tree already
    // has (leaving entries out keeps it sorted).
    let mut bytes = Vec::with_capacity(entries.len() * 48);
    for (mode, name, id) in entries {
        bytes.extend_from_slice(format!("{mode:o} ").as_bytes());
        bytes.extend_from_slice(&name);
        bytes.push(0);
        bytes.extend_from_slice(id.as_bytes());
    }
    Oid::hash_object(ObjectType::Tree, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_repo(name: &str) -> (std::path::PathBuf, Repository) {
        let dir =
            std::env::temp_dir().join(format!("serin-commit-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let repo = Repository::init_bare(&dir).expect("init");
        (dir, repo)
    }

    fn tree_with(repo: &Repository, files: &[(&str, &str)]) -> Oid {
        let base = empty_tree(repo).expect("empty tree");
        let updates: Vec<Update> = files
            .iter()
            .map(|(path, body)| Update::Put {
                path: path.to_string(),
                blob: repo.blob(body.as_bytes()).expect("blob"),
                mode: BLOB_MODE,
            })
            .collect();
        updated_tree(repo, &base, &updates).expect("tree")
    }

    #[test]
    fn paths_are_checked() {
        for ok in ["a.yaml", ".serin/status/ns/app.yaml", "a/b/c"] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/",
            "./a",
            "a/../b",
            ".git/config",
            "x/.GIT/y",
            "a\0b",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serin_paths_are_those_in_a_serin_directory() {
        assert!(is_serin_path(".serin/status/test/podinfo.yaml"));
        assert!(is_serin_path("clusters/prod/.serin/approvals/x.yaml"));
        assert!(!is_serin_path(".serin"));
        assert!(!is_serin_path("apps/serin.yaml"));
        assert!(!is_serin_path("apps/.serinx/a.yaml"));
    }

    #[test]
    fn directories_are_normalized() {
        assert_eq!(normalize_dir("").as_deref(), Ok(""));
        assert_eq!(normalize_dir("/").as_deref(), Ok(""));
        assert_eq!(normalize_dir(".").as_deref(), Ok(""));
        assert_eq!(normalize_dir("./apps/").as_deref(), Ok("apps"));
        assert!(normalize_dir("../x").is_err());
    }

    #[test]
    fn the_manifest_id_is_the_git_tree_id_without_serin() {
        let (dir, repo) = temp_repo("manifest");
        let plain = tree_with(&repo, &[("apps/a.yaml", "a: 1\n"), ("b.yaml", "b\n")]);
        let with_ledger = tree_with(
            &repo,
            &[
                ("apps/a.yaml", "a: 1\n"),
                ("apps/.serin/x.yaml", "x\n"),
                ("b.yaml", "b\n"),
                (".serin/status/t/p.yaml", "phase: Succeeded\n"),
            ],
        );
        let mut link = false;
        let id_of = |id: Oid, link: &mut bool| {
            let tree = repo.find_tree(id).expect("tree");
            without_serin(&repo, &tree, link).expect("hash")
        };
        // Without a .serin directory the result is Git's own id, so the format is right.
        assert_eq!(id_of(plain, &mut link), plain);
        assert_eq!(id_of(with_ledger, &mut link), plain);
        assert!(!link);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_symlink_makes_the_manifest_id_cover_the_whole_repository() {
        let (dir, repo) = temp_repo("links");
        let build = |shared: &str| {
            let base = empty_tree(&repo).expect("empty");
            let updates = vec![
                Update::Put {
                    path: "apps/shared.yaml".into(),
                    blob: repo.blob(b"../shared/cm.yaml").expect("blob"),
                    mode: LINK_MODE,
                },
                Update::Put {
                    path: "shared/cm.yaml".into(),
                    blob: repo.blob(shared.as_bytes()).expect("blob"),
                    mode: BLOB_MODE,
                },
            ];
            let tree = updated_tree(&repo, &base, &updates).expect("tree");
            let sig = Signature::now("t", "t@example.com").expect("sig");
            let tree = repo.find_tree(tree).expect("tree");
            CommitId(
                repo.commit(None, &sig, &sig, "m", &tree, &[])
                    .expect("commit"),
            )
        };
        let (one, two) = (build("a: 1\n"), build("a: 2\n"));
        let id = |c| manifest_tree_id(&repo, "test", c, "apps").expect("id");
        // The link's target changed outside "apps"; a snapshot of "apps" would see it.
        assert_ne!(id(one), id(two));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn conflicts_between_files_and_directories_are_found() {
        let (dir, repo) = temp_repo("conflicts");
        let id = tree_with(&repo, &[("a/b.yaml", "x"), ("f", "y")]);
        let mut index = TreeIndex::new(&repo, repo.find_tree(id).expect("tree"));
        let mut conflict = |p: &str| index.file_conflict(p).expect("lookup");
        assert_eq!(conflict("a/b.yaml"), None);
        assert_eq!(conflict("a/c.yaml"), None);
        assert_eq!(conflict("new/x"), None);
        assert!(conflict("a").is_some());
        assert!(conflict("f/x").is_some());
        let _ = std::fs::remove_dir_all(dir);
    }
}
