//! A Git source: a bare mirror per repository URL, fetched branch by branch, snapshots of
//! the tree at any commit, and Serin's own commits, queued in the mirror and pushed without
//! ever losing one of them or anyone else's (`commit.rs`, `push.rs`).
//!
//! The remote is the truth: a fetch moves `refs/remotes/origin/<branch>` to whatever the
//! server advertises, including after a force push, and never merges. The mirror is only a
//! cache; it holds no credentials (the URL is given to every fetch, never stored in its
//! config). [`GitRepo`] is synchronous; async code uses it through [`GitWorker`].

mod auth;
mod commit;
mod fetch;
mod known_hosts;
mod push;
mod tree;
mod url;
mod worker;

use std::fmt;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};
use sha2::{Digest, Sha256};

use super::{Snapshot, SnapshotOptions, SourceError};

pub use auth::{DEFAULT_USER, GitAuth, Secret, SecretSource};
pub use commit::{Author, FileChange};
pub use known_hosts::{HostKeyError, KnownHosts, fingerprint};
pub use push::{DroppedCommit, PushReport};
pub use tree::MAX_LINK_HOPS;
pub use url::scrub_url;
pub use worker::GitWorker;

/// Why a Git operation failed. No variant ever holds a credential: URLs are scrubbed with
/// [`scrub_url`], and so are libgit2's messages, which echo the URL.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot create the mirror of {url} at {path}: {message}")]
    Mirror {
        url: String,
        path: String,
        message: String,
    },
    #[error("cannot open the Git repository at {path}: {message}")]
    Open { path: String, message: String },
    #[error("cannot read the credentials for {url} from {what}: {reason}")]
    Secret {
        url: String,
        what: String,
        reason: String,
    },
    #[error("{branch:?} is not a valid branch name")]
    InvalidBranch { branch: String },
    #[error("{url} has no branch {branch:?}")]
    BranchNotFound { url: String, branch: String },
    #[error("cannot fetch branch {branch:?} from {url}: {message}")]
    Fetch {
        url: String,
        branch: String,
        message: String,
    },
    #[error("{url} rejected the credentials ({credentials}); Serin tries them only once")]
    AuthRejected { url: String, credentials: String },
    #[error(
        "{url} asks for {wanted} credentials, but the configured ones ({configured}) are not of that kind"
    )]
    AuthUnavailable {
        url: String,
        wanted: String,
        configured: String,
    },
    #[error("the SSH server of {url} is not trusted")]
    HostKey {
        url: String,
        // Boxed: the host key details would otherwise double the size of every GitError.
        #[source]
        source: Box<HostKeyError>,
    },
    #[error("{origin} is a local repository; Serin does not fetch into it or push from it")]
    NoRemote { origin: String },
    #[error("cannot resolve {rev:?} in {origin}: {message}")]
    Resolve {
        origin: String,
        rev: String,
        message: String,
    },
    #[error("cannot read {path:?} at {origin}: {message}")]
    Read {
        origin: String,
        path: String,
        message: String,
    },
    #[error("cannot commit {path:?} to {origin}: {reason}")]
    InvalidPath {
        origin: String,
        path: String,
        reason: &'static str,
    },
    #[error("cannot queue or rebuild commits for branch {branch:?} of {origin}: {message}")]
    Commit {
        origin: String,
        branch: String,
        message: String,
    },
    #[error("cannot push branch {branch:?} to {url}: {message}; the commits stay queued")]
    Push {
        url: String,
        branch: String,
        message: String,
    },
    #[error(
        "{url} rejected the push to branch {branch:?} {attempts} times (last: {reason}); the commits stay queued"
    )]
    PushRejected {
        url: String,
        branch: String,
        attempts: u32,
        reason: String,
    },
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot start the Git worker for {origin}")]
    WorkerStart {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the Git worker for {origin} has stopped: {reason}")]
    WorkerStopped {
        origin: String,
        reason: &'static str,
    },
    #[error("{origin} did not answer within {timeout:?}")]
    Timeout {
        origin: String,
        timeout: std::time::Duration,
    },
}

/// A commit, by its full hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(Oid);

impl CommitId {
    pub fn oid(&self) -> Oid {
        self.0
    }

    /// The first 7 hex digits, as `git log --oneline` shows them (messages only).
    pub fn short(&self) -> String {
        self.0.to_string().chars().take(7).collect()
    }
}

impl From<Oid> for CommitId {
    fn from(oid: Oid) -> Self {
        CommitId(oid)
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Where fetches come from; absent for a local working repository.
struct Upstream {
    /// As configured, possibly with credentials: handed to libgit2, never shown.
    url: String,
    auth: GitAuth,
}

/// One repository: a bare mirror of a remote, or a local checkout.
pub struct GitRepo {
    repo: Repository,
    upstream: Option<Upstream>,
    /// The URL without credentials, or the local path: what messages and snapshots show.
    origin: String,
}

impl fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitRepo")
            .field("origin", &self.origin)
            .field("path", &self.repo.path())
            .finish()
    }
}

impl GitRepo {
    /// Opens the mirror of `url` in `cache_dir`, creating it on first use.
    ///
    /// The directory is named after the SHA-256 of the scrubbed URL: a rotated token must
    /// not orphan the mirror, and a hash of a secret does not belong in a file name.
    pub fn open_or_init(url: &str, cache_dir: &Path, auth: GitAuth) -> Result<GitRepo, GitError> {
        let origin = scrub_url(url);
        let path = mirror_path(cache_dir, &origin);
        let repo = open_mirror(&path).map_err(|e| GitError::Mirror {
            url: origin.clone(),
            path: path.display().to_string(),
            message: scrub_url(&e.to_string()),
        })?;
        Ok(GitRepo {
            repo,
            upstream: Some(Upstream {
                url: url.to_string(),
                auth,
            }),
            origin,
        })
    }

    /// Opens an existing working repository (e.g. the checkout `serin plan` runs in) for
    /// resolving and reading; `path` may be any directory inside it.
    pub fn open_local(path: &Path) -> Result<GitRepo, GitError> {
        let repo = Repository::discover(path).map_err(|e| GitError::Open {
            path: path.display().to_string(),
            message: scrub_url(e.message()),
        })?;
        let root = repo.workdir().unwrap_or_else(|| repo.path());
        let origin = root.display().to_string();
        Ok(GitRepo {
            repo,
            upstream: None,
            origin,
        })
    }

    /// The repository as shown in messages: the URL without credentials, or the local path.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The underlying repository, for the write side (status commits).
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// Fetches `branch` and returns the commit the server has for it.
    ///
    /// Only that branch is fetched, into `refs/remotes/origin/<branch>`, with the tags that
    /// point into the mirror's history (tags deleted on the server are deleted here too).
    /// The mirror's HEAD is detached at the result, so that `HEAD~1` and the like resolve
    /// against what was fetched last.
    ///
    /// This blocks for as long as the server takes: libgit2's connect and read timeouts are
    /// process-wide `unsafe` settings, which this crate (`unsafe_code` forbidden) leaves
    /// alone. Callers bound their wait with `tokio::time::timeout` around [`GitWorker::with`].
    pub fn fetch(&mut self, branch: &str) -> Result<CommitId, GitError> {
        let upstream = self.upstream.as_ref().ok_or_else(|| GitError::NoRemote {
            origin: self.origin.clone(),
        })?;
        let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        let head_ref = format!("refs/heads/{branch}");
        if !git2::Reference::is_valid_name(&head_ref) {
            return Err(GitError::InvalidBranch {
                branch: branch.to_string(),
            });
        }
        let session = auth::Session::start(&upstream.auth, &upstream.url)?;
        let head = fetch::fetch_branch(&self.repo, &upstream.url, &self.origin, &session, branch)?;
        tracing::debug!(origin = %self.origin, branch, commit = %head, "fetched");
        Ok(CommitId(head))
    }

    /// Resolves a revision: a branch name, a full or short hash, a tag, `HEAD~1`, ... (any
    /// `git rev-parse` expression). In a mirror, `main` and `main~2` mean the fetched
    /// `origin/main`, since the mirror has no local branches.
    pub fn resolve(&self, rev: &str) -> Result<CommitId, GitError> {
        let first = self.peel(rev);
        let result = match (&first, tracking_form(rev)) {
            (Err(_), Some(alt)) => self.peel(&alt).or(first),
            _ => first,
        };
        result.map(CommitId).map_err(|e| GitError::Resolve {
            origin: self.origin.clone(),
            rev: rev.to_string(),
            message: scrub_url(e.message()),
        })
    }

    fn peel(&self, rev: &str) -> Result<Oid, git2::Error> {
        Ok(self.repo.revparse_single(rev)?.peel_to_commit()?.id())
    }

    /// Reads the YAML files of the tree at `commit`, by the rules of [`super::dir`].
    pub fn snapshot(
        &self,
        commit: CommitId,
        options: &SnapshotOptions,
    ) -> Result<Snapshot, GitError> {
        let origin = format!("{}@{}", self.origin, commit.short());
        tree::snapshot(&self.repo, commit, origin, options)
    }

    /// Creates a commit with `changes` on top of the queue for `branch`
    /// (`refs/serin/pending/<branch>`), or on `refs/remotes/origin/<branch>` when nothing is
    /// queued, and queues it for [`GitRepo::push`]. `Ok(None)` when the changes change
    /// nothing. Author and committer are `author`, the time is now.
    ///
    /// Works offline: before any fetch the commit is a root commit, which the push rebuilds
    /// onto the remote head.
    pub fn queue_commit(
        &mut self,
        branch: &str,
        changes: &[FileChange],
        message: &str,
        author: &Author,
    ) -> Result<Option<CommitId>, GitError> {
        let (_, branch) = self.remote_branch(branch)?;
        let id = commit::queue(&self.repo, &self.origin, branch, changes, message, author)?;
        if let Some(id) = id {
            tracing::debug!(origin = %self.origin, branch, commit = %id, "queued commit");
        }
        Ok(id.map(CommitId))
    }

    /// The queued commits of `branch` not yet on the remote-tracking branch, oldest first.
    pub fn pending(&self, branch: &str) -> Result<Vec<CommitId>, GitError> {
        let (_, branch) = self.remote_branch(branch)?;
        let chain = commit::pending_chain(&self.repo, branch)
            .map_err(|e| commit::commit_error(&self.origin, branch, &e))?;
        Ok(chain.into_iter().map(CommitId).collect())
    }

    /// Delivers the queued commits of `branch`: fetches it, rebuilds the queue onto the
    /// fetched head (see `push.rs` for the rules), and pushes without force; a rejection
    /// (someone pushed in between) starts over, up to 5 attempts with a backoff from 100 ms,
    /// doubling. On success the remote-tracking branch moves to the pushed head and the
    /// queue is empty. Commits dropped by the rebuild are in the report, never pushed.
    ///
    /// On any failure the queue stays (in its rebuilt form, if it was rebuilt), so a later
    /// push, also by a new process on the same mirror, delivers everything in order. Like
    /// [`GitRepo::fetch`], this blocks for as long as the server takes.
    pub fn push(&mut self, branch: &str) -> Result<PushReport, GitError> {
        let (upstream, branch) = self.remote_branch(branch)?;
        push::push(&push::Target {
            repo: &self.repo,
            url: &upstream.url,
            origin: &self.origin,
            auth: &upstream.auth,
            branch,
        })
    }

    /// The bytes of the file at `path` (repository-relative) in `commit`; `None` if there
    /// is no such file.
    pub fn read_file(&self, commit: CommitId, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        commit::read_file(&self.repo, &self.origin, commit, path)
    }

    /// Every file under directory `dir` ("" for all) in `commit`, recursively, as
    /// (repository-relative path, bytes), sorted by path. Empty if there is no such directory.
    pub fn read_dir(
        &self,
        commit: CommitId,
        dir: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, GitError> {
        commit::read_dir(&self.repo, &self.origin, commit, dir)
    }

    /// What the configuration under `path` ("" for the root) at `commit` is: the Git tree id
    /// of that directory with every `.serin` directory left out. Commits that differ only in
    /// `.serin/` (the ledger) or outside `path` give the same value, unless a symlink under
    /// `path` may lead outside it: then the whole repository counts, as a snapshot would.
    pub fn manifest_tree_id(&self, commit: CommitId, path: &str) -> Result<String, GitError> {
        commit::manifest_tree_id(&self.repo, &self.origin, commit, path)
    }

    /// The upstream and the branch name (without `refs/heads/`) for a write operation.
    fn remote_branch<'b>(&self, branch: &'b str) -> Result<(&Upstream, &'b str), GitError> {
        let upstream = self.upstream.as_ref().ok_or_else(|| GitError::NoRemote {
            origin: self.origin.clone(),
        })?;
        let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(GitError::InvalidBranch {
                branch: branch.to_string(),
            });
        }
        Ok((upstream, branch))
    }
}

fn mirror_path(cache_dir: &Path, scrubbed_url: &str) -> PathBuf {
    let digest = Sha256::digest(scrubbed_url.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    cache_dir.join(format!("{hex}.git"))
}

fn open_mirror(path: &Path) -> Result<Repository, Box<dyn std::error::Error>> {
    if path.exists() {
        match Repository::open_bare(path) {
            Ok(repo) => return Ok(repo),
            Err(e) => {
                // The mirror is only a cache, and one that cannot be opened would stop Serin
                // for good; it is rebuilt by the next fetch.
                tracing::warn!(path = %path.display(), error = %e, "recreating unreadable Git mirror");
                std::fs::remove_dir_all(path)?;
            }
        }
    }
    std::fs::create_dir_all(path)?;
    Ok(Repository::init_bare(path)?)
}

/// `main~2` → `refs/remotes/origin/main~2`: the branch part of a revision, as tracked.
fn tracking_form(rev: &str) -> Option<String> {
    let end = rev.find(['~', '^', '@', ':']).unwrap_or(rev.len());
    let (name, suffix) = rev.split_at(end);
    if name.is_empty() || name == "HEAD" || name.starts_with("refs/") {
        return None;
    }
    Some(format!("refs/remotes/origin/{name}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_map_to_the_tracking_branch() {
        let cases = [
            ("main", Some("refs/remotes/origin/main")),
            ("main~2", Some("refs/remotes/origin/main~2")),
            ("feature/x^", Some("refs/remotes/origin/feature/x^")),
            ("HEAD~1", None),
            ("refs/tags/v1", None),
            ("~1", None),
        ];
        for (rev, want) in cases {
            assert_eq!(tracking_form(rev).as_deref(), want, "{rev}");
        }
    }

    #[test]
    fn mirrors_are_named_after_the_url_without_credentials() {
        let cache = Path::new("/cache");
        let a = mirror_path(cache, &scrub_url("https://u:one@h/r.git"));
        let b = mirror_path(cache, &scrub_url("https://u:two@h/r.git"));
        assert_eq!(a, b);
        let name = a.file_name().map(|n| n.to_string_lossy().into_owned());
        assert_eq!(name.map(|n| n.len()), Some(64 + 4));
    }
}
