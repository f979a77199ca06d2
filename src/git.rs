//! Reading manifests from Git for the CLI: a fetched remote (`validate --repo`) or two commits
//! of a local checkout (`plan`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serin::source::git::{GitAuth, GitRepo, SecretSource};
use serin::source::{Snapshot, SnapshotOptions};

use crate::cli::GitArgs;

pub fn auth(args: &GitArgs) -> anyhow::Result<GitAuth> {
    Ok(match (&args.git_token_file, &args.git_ssh_key) {
        (Some(_), Some(_)) => {
            anyhow::bail!("give either --git-token-file or --git-ssh-key, not both")
        }
        (Some(token), None) => GitAuth::Token {
            username: args.git_username.clone(),
            token: SecretSource::File(token.clone()),
        },
        (None, Some(key)) => GitAuth::Ssh {
            private_key: SecretSource::File(key.clone()),
            passphrase: None,
            known_hosts: args
                .git_known_hosts
                .clone()
                .context("--git-ssh-key needs --git-known-hosts: the server's key must be known")?,
        },
        (None, None) => GitAuth::None,
    })
}

pub fn cache_dir(args: &GitArgs) -> PathBuf {
    args.cache_dir.clone().unwrap_or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("serin").join("repos")
    })
}

/// Fetches `reference` (a branch, or a tag/commit reachable from the fetched branches) of `url`.
pub fn fetch_snapshot(
    url: &str,
    reference: &str,
    args: &GitArgs,
    options: &SnapshotOptions,
) -> anyhow::Result<Snapshot> {
    let mut repo = GitRepo::open_or_init(url, &cache_dir(args), auth(args)?)?;
    let commit = match repo.fetch(reference) {
        Ok(commit) => commit,
        // Not a branch: a tag or a commit, resolved in what is already mirrored.
        Err(serin::source::git::GitError::BranchNotFound { .. }) => repo.resolve(reference)?,
        Err(e) => return Err(e.into()),
    };
    Ok(repo.snapshot(commit, options)?)
}

/// The snapshots of `base` and `head` in the checkout at `path`.
pub fn local_snapshots(
    path: &Path,
    base: &str,
    head: &str,
    options: &SnapshotOptions,
) -> anyhow::Result<(Snapshot, Snapshot)> {
    let repo = GitRepo::open_local(path)?;
    let base = repo.snapshot(repo.resolve(base)?, options)?;
    let head = repo.snapshot(repo.resolve(head)?, options)?;
    Ok((base, head))
}
