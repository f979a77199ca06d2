//! Fetching one branch, and the tags that point into it, into the mirror.

use std::collections::{HashMap, HashSet};

use git2::{
    AutotagOption, Direction, FetchOptions, Oid, RemoteHead, RemoteUpdateFlags, Repository,
};

use super::GitError;
use super::auth::Session;

/// Fetches `branch` from `url` and returns the commit the server advertises for it, which
/// `refs/remotes/origin/<branch>` and the mirror's (detached) HEAD then point at.
pub(super) fn fetch_branch(
    repo: &Repository,
    url: &str,
    origin: &str,
    session: &Session,
    branch: &str,
) -> Result<Oid, GitError> {
    let fail = |e: git2::Error| session.explain(branch, &e);
    let head_ref = format!("refs/heads/{branch}");
    let tracking = format!("refs/remotes/origin/{branch}");
    let mut remote = repo.remote_anonymous(url).map_err(fail)?;
    // Connecting first shows what the server has: a branch that does not exist (any more)
    // is an error, not a silently kept stale ref.
    let (head, advertised) = {
        let mut connection = remote
            .connect_auth(Direction::Fetch, Some(session.callbacks()), None)
            .map_err(fail)?;
        let advertised = Advertised::new(connection.list().map_err(fail)?);
        let head = advertised
            .get(&head_ref)
            .ok_or_else(|| GitError::BranchNotFound {
                url: origin.to_string(),
                branch: branch.to_string(),
            })?;
        let mut specs = vec![format!("+{head_ref}:{tracking}")];
        specs.extend(missing_tags(repo, &advertised));
        let mut options = FetchOptions::new();
        options.remote_callbacks(session.callbacks());
        options.download_tags(AutotagOption::Auto);
        connection
            .remote()
            .download(&specs, Some(&mut options))
            .map_err(fail)?;
        (head, advertised)
    };
    let log = format!("serin: fetch {branch}");
    remote
        .update_tips(
            None,
            RemoteUpdateFlags::UPDATE_FETCHHEAD,
            AutotagOption::Auto,
            Some(&log),
        )
        .map_err(fail)?;
    point_at(repo, &tracking, head, &log).map_err(fail)?;
    prune_tags(repo, &advertised).map_err(fail)?;
    Ok(head)
}

/// The refs a server advertised, by name (annotated tags also as `<tag>^{}` → commit).
struct Advertised(HashMap<String, Oid>);

impl Advertised {
    fn new(heads: &[RemoteHead<'_>]) -> Advertised {
        Advertised(
            heads
                .iter()
                .map(|h| (h.name().to_string(), h.oid()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<Oid> {
        self.0.get(name).copied()
    }

    /// `(ref name, tag or commit, commit it peels to)` for every tag.
    fn tags(&self) -> impl Iterator<Item = (&str, Oid, Oid)> {
        self.0
            .iter()
            .filter(|(name, _)| name.starts_with("refs/tags/") && !name.ends_with("^{}"))
            .map(|(name, &oid)| {
                let peeled = self.get(&format!("{name}^{{}}")).unwrap_or(oid);
                (name.as_str(), oid, peeled)
            })
    }
}

/// Refspecs for tags on commits the mirror already has, where the tag itself is missing or
/// moved. Git's include-tag sends tags only along with new commits, so a release tagged
/// after its commit was fetched would otherwise never arrive.
fn missing_tags(repo: &Repository, advertised: &Advertised) -> Vec<String> {
    advertised
        .tags()
        .filter(|&(name, oid, peeled)| {
            repo.find_commit(peeled).is_ok() && repo.refname_to_id(name).ok() != Some(oid)
        })
        .map(|(name, _, _)| format!("+{name}:{name}"))
        .collect()
}

/// Sets the tracking ref to exactly what the server advertised (whatever update_tips made
/// of it) and detaches HEAD there, so that `HEAD~1` means "before what was fetched last".
fn point_at(repo: &Repository, tracking: &str, head: Oid, log: &str) -> Result<(), git2::Error> {
    repo.find_commit(head)?;
    repo.reference(tracking, head, true, log)?;
    repo.set_head_detached(head)
}

/// Deletes tags the server no longer has: the remote is the truth for tags too.
fn prune_tags(repo: &Repository, advertised: &Advertised) -> Result<(), git2::Error> {
    let keep: HashSet<&str> = advertised.tags().map(|(name, _, _)| name).collect();
    let mut gone = Vec::new();
    for reference in repo.references_glob("refs/tags/*")? {
        let reference = reference?;
        if let Ok(name) = reference.name()
            && !keep.contains(name)
        {
            gone.push(reference);
        }
    }
    for mut reference in gone {
        reference.delete()?;
    }
    Ok(())
}
