//! Delivering queued commits: fetch, rebuild the queue on the remote head, push without
//! force, and try again when someone pushed in between.
//!
//! The rules of a rebuild follow from who owns what. Files in `.serin/` are Serin's alone
//! (approvals are written by people, but only through Serin and never edited in place), so
//! Serin's version of them always wins. Every other file belongs to people: a queued commit
//! changes one only if nobody touched it since the commit was made; otherwise the commit is
//! dropped and reported, and the person's change stands. A push is never forced, so
//! nothing anyone pushed is ever lost.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use git2::{Commit, ErrorCode, Oid, PushOptions, Repository, Signature, Tree};

use super::auth::{GitAuth, Session};
use super::commit::{
    TreeIndex, Update, commit_error, is_serin_path, is_tree_mode, parent_tree, pending_chain,
    pending_ref, set_queue, tracking_ref, updated_tree,
};
use super::fetch::fetch_branch;
use super::url::scrub_url;
use super::{CommitId, GitError};

/// Pushes tried before giving up; each rejection means someone pushed in between.
pub(super) const MAX_ATTEMPTS: u32 = 5;
/// The wait after the first rejection; it doubles after each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// What a push delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The commits as they now are on the remote (rebuilt ones with new ids), oldest first.
    pub pushed: Vec<CommitId>,
    /// The branch on the remote after the push.
    pub remote_head: CommitId,
    /// How many of `pushed` were rebuilt on a newer remote head than they were queued on.
    pub rebuilt: usize,
    /// Queued commits given up because a person changed a file they change.
    pub dropped: Vec<DroppedCommit>,
}

/// A queued commit that was not pushed, so as not to overwrite a person's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedCommit {
    /// The first line of its message.
    pub summary: String,
    /// The file someone else changed in the meantime.
    pub path: String,
}

/// Where a push goes.
pub(super) struct Target<'a> {
    pub repo: &'a Repository,
    /// With credentials, for libgit2 only.
    pub url: &'a str,
    /// Without credentials, for messages.
    pub origin: &'a str,
    pub auth: &'a GitAuth,
    pub branch: &'a str,
}

pub(super) fn push(target: &Target<'_>) -> Result<PushReport, GitError> {
    let Target {
        repo,
        url,
        origin,
        auth,
        branch,
    } = *target;
    let local = |e: git2::Error| commit_error(origin, branch, &e);
    let queued: HashSet<Oid> = pending_chain(repo, branch)
        .map_err(local)?
        .into_iter()
        .collect();
    let mut dropped = Vec::new();
    let mut backoff = FIRST_BACKOFF;
    let mut last_rejection = String::new();
    for attempt in 1..=MAX_ATTEMPTS {
        // A fresh session per network call: libgit2 asks for credentials once per
        // connection, and the session treats a second request as a refusal.
        let session = Session::start(auth, url)?;
        let remote_head = match fetch_branch(repo, url, origin, &session, branch) {
            Ok(head) => Some(head),
            // A branch that does not exist yet (a new status branch): the push creates it.
            Err(GitError::BranchNotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let mut chain = pending_chain(repo, branch).map_err(local)?;
        if let Some(head) = remote_head {
            let base = match chain.first() {
                Some(&first) => first_parent(repo, first).map_err(local)?,
                None => Some(head),
            };
            if base != Some(head) {
                let rebuilt = rebuild(repo, &chain, head).map_err(local)?;
                for d in &rebuilt.dropped {
                    tracing::warn!(
                        origin, branch, commit = %d.summary, path = %d.path,
                        "dropped a queued commit: someone else changed the file meanwhile"
                    );
                }
                dropped.extend(rebuilt.dropped);
                chain = rebuilt.chain;
                // Kept even if the push below fails: the next push starts from here.
                set_queue(repo, branch, chain.last().copied(), Some(head)).map_err(local)?;
            }
        }
        let Some(&head) = chain.last() else {
            set_queue(repo, branch, None, None).map_err(local)?;
            let Some(remote_head) = remote_head else {
                return Err(GitError::BranchNotFound {
                    url: origin.to_string(),
                    branch: branch.to_string(),
                });
            };
            return Ok(PushReport {
                pushed: Vec::new(),
                remote_head: CommitId(remote_head),
                rebuilt: 0,
                dropped,
            });
        };
        let session = Session::start(auth, url)?;
        match push_once(repo, url, &session, branch)? {
            Ok(()) => {
                repo.reference(&tracking_ref(branch), head, true, "serin: push")
                    .map_err(local)?;
                set_queue(repo, branch, None, None).map_err(local)?;
                let rebuilt = chain.iter().filter(|id| !queued.contains(id)).count();
                tracing::info!(origin, branch, commits = chain.len(), rebuilt, head = %head, "pushed");
                return Ok(PushReport {
                    pushed: chain.into_iter().map(CommitId).collect(),
                    remote_head: CommitId(head),
                    rebuilt,
                    dropped,
                });
            }
            Err(reason) => {
                tracing::info!(origin, branch, attempt, reason = %reason, "push rejected; fetching again");
                last_rejection = reason;
                if attempt < MAX_ATTEMPTS {
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
            }
        }
    }
    Err(GitError::PushRejected {
        url: origin.to_string(),
        branch: branch.to_string(),
        attempts: MAX_ATTEMPTS,
        reason: last_rejection,
    })
}

fn first_parent(repo: &Repository, id: Oid) -> Result<Option<Oid>, git2::Error> {
    let commit = repo.find_commit(id)?;
    Ok(commit.parent_ids().next())
}

/// Pushes the queue's head to the branch without force. `Ok(Err(reason))` is a rejection
/// (the branch moved, or the server refused the update); `Err` is any other failure.
fn push_once(
    repo: &Repository,
    url: &str,
    session: &Session,
    branch: &str,
) -> Result<Result<(), String>, GitError> {
    let fail = |e: git2::Error| push_error(session, branch, &e);
    let mut remote = repo.remote_anonymous(url).map_err(fail)?;
    let refused: Rc<RefCell<Vec<String>>> = Rc::default();
    let mut callbacks = session.callbacks();
    let seen = Rc::clone(&refused);
    // The server's verdict on each ref comes only through this callback; `push` itself
    // succeeds even when the server refused every update.
    callbacks.push_update_reference(move |refname, status| {
        if let Some(status) = status {
            seen.borrow_mut().push(format!("{refname}: {status}"));
        }
        Ok(())
    });
    let mut options = PushOptions::new();
    options.remote_callbacks(callbacks);
    let spec = format!("{}:refs/heads/{branch}", pending_ref(branch));
    match remote.push(&[spec.as_str()], Some(&mut options)) {
        // libgit2 checks fast-forward itself before sending anything, against what the
        // server advertised when the push connected.
        Err(e) if e.code() == ErrorCode::NotFastForward => Ok(Err(scrub_url(e.message()))),
        Err(e) => Err(fail(e)),
        Ok(()) => {
            let refused = refused.borrow();
            if refused.is_empty() {
                Ok(Ok(()))
            } else {
                Ok(Err(scrub_url(&refused.join("; "))))
            }
        }
    }
}

/// The error for a failed push: what the session saw (credentials, host key), or else the
/// transport's message under the push's name.
fn push_error(session: &Session, branch: &str, e: &git2::Error) -> GitError {
    match session.explain(branch, e) {
        GitError::Fetch {
            url,
            branch,
            message,
        } => GitError::Push {
            url,
            branch,
            message,
        },
        other => other,
    }
}

/// A queue rebuilt on a new head.
struct Rebuilt {
    chain: Vec<Oid>,
    dropped: Vec<DroppedCommit>,
}

/// What replaying one commit gives.
enum Replay {
    Tree(Oid),
    /// A person changed this file since the commit was made.
    Conflict(String),
}

/// Replays `chain` (oldest first) onto `onto`, commit by commit.
fn rebuild(repo: &Repository, chain: &[Oid], onto: Oid) -> Result<Rebuilt, git2::Error> {
    let mut parent = repo.find_commit(onto)?;
    let mut rebuilt = Rebuilt {
        chain: Vec::new(),
        dropped: Vec::new(),
    };
    for &id in chain {
        let commit = repo.find_commit(id)?;
        let base = parent.tree()?;
        match replay(repo, &parent_tree(repo, &commit)?, &commit.tree()?, &base)? {
            Replay::Conflict(path) => rebuilt.dropped.push(DroppedCommit {
                summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                    .into_owned(),
                path,
            }),
            // Its changes are all there already: an empty commit would only be noise.
            Replay::Tree(tree) if tree == base.id() => {
                tracing::debug!(commit = %id, "queued commit has nothing left to change");
            }
            Replay::Tree(tree) => {
                let new = recommit(repo, &commit, tree, &parent)?;
                rebuilt.chain.push(new);
                parent = repo.find_commit(new)?;
            }
        }
    }
    Ok(rebuilt)
}

/// Applies the changes `before` → `after` to `base`, by the rules of this module.
fn replay(
    repo: &Repository,
    before: &Tree<'_>,
    after: &Tree<'_>,
    base: &Tree<'_>,
) -> Result<Replay, git2::Error> {
    let diff = repo.diff_tree_to_tree(Some(before), Some(after), None)?;
    let mut index = TreeIndex::new(repo, base.clone());
    let mut updates = Vec::new();
    for delta in diff.deltas() {
        let (old, new) = (delta.old_file(), delta.new_file());
        let raw = new.path_bytes().or(old.path_bytes()).unwrap_or_default();
        // Serin writes only paths it checked as UTF-8 strings.
        let path = std::str::from_utf8(raw)
            .map_err(|_| git2::Error::from_str("a queued commit changes a path that is not UTF-8"))?
            .to_string();
        let side = |f: &git2::DiffFile<'_>| f.exists().then(|| (f.id(), i32::from(f.mode())));
        let at_base = index.entry(&path)?;
        if !is_serin_path(&path) && at_base != side(&old) {
            return Ok(Replay::Conflict(path));
        }
        match side(&new) {
            Some((blob, mode)) => {
                if index.file_conflict(&path)?.is_some() {
                    return Ok(Replay::Conflict(path));
                }
                updates.push(Update::Put { path, blob, mode });
            }
            None => match at_base {
                Some((_, mode)) if !is_tree_mode(mode) => updates.push(Update::Remove { path }),
                // Already gone, or a directory now: nothing of Serin's to delete.
                _ => {}
            },
        }
    }
    Ok(Replay::Tree(updated_tree(repo, base, &updates)?))
}

/// `commit` again with another tree and parent: the same message and author (time
/// included); the committer signs now, as `git rebase` does.
fn recommit(
    repo: &Repository,
    commit: &Commit<'_>,
    tree: Oid,
    parent: &Commit<'_>,
) -> Result<Oid, git2::Error> {
    let tree = repo.find_tree(tree)?;
    let committer = commit.committer();
    let now = Signature::now(
        &String::from_utf8_lossy(committer.name_bytes()),
        &String::from_utf8_lossy(committer.email_bytes()),
    )?;
    let message = String::from_utf8_lossy(commit.message_raw_bytes());
    repo.commit(None, &commit.author(), &now, &message, &tree, &[parent])
}

#[cfg(test)]
mod tests {
    use super::super::commit::{empty_tree, entry_at};
    use super::*;

    struct TempRepo(std::path::PathBuf, Repository);

    impl TempRepo {
        fn new(name: &str) -> TempRepo {
            let dir =
                std::env::temp_dir().join(format!("serin-push-unit-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let repo = Repository::init_bare(&dir).expect("init");
            TempRepo(dir, repo)
        }

        fn tree(&self, files: &[(&str, &str)]) -> Tree<'_> {
            let repo = &self.1;
            let updates: Vec<Update> = files
                .iter()
                .map(|(path, body)| Update::Put {
                    path: path.to_string(),
                    blob: repo.blob(body.as_bytes()).expect("blob"),
                    mode: 0o100644,
                })
                .collect();
            let base = empty_tree(repo).expect("empty");
            let id = updated_tree(repo, &base, &updates).expect("tree");
            repo.find_tree(id).expect("find")
        }
    }

    impl Drop for TempRepo {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn replays_follow_the_ownership_rules() {
        let t = TempRepo::new("replay");
        // Serin's commit: the ledger, a manifest, and a deleted ledger file.
        let before = t.tree(&[
            (".serin/status/a.yaml", "phase: Progressing\n"),
            (".serin/status/gone.yaml", "x\n"),
            ("apps/app.yaml", "image: 1\n"),
            ("README.md", "r\n"),
        ]);
        let after = t.tree(&[
            (".serin/status/a.yaml", "phase: Succeeded\n"),
            ("apps/app.yaml", "image: 1 # reverted\n"),
            ("README.md", "r\n"),
        ]);
        let tree_of = |r: Replay| match r {
            Replay::Tree(id) => t.1.find_tree(id).expect("tree"),
            Replay::Conflict(path) => panic!("conflict at {path}"),
        };
        let read = |tree: &Tree<'_>, path: &str| {
            entry_at(tree, path)
                .expect("lookup")
                .map(|(id, _)| t.1.find_blob(id).expect("blob").content().to_vec())
        };

        // A person changed only other files, and the ledger by hand: Serin's ledger wins,
        // Serin's manifest change applies, the person's README stays.
        let base = t.tree(&[
            (".serin/status/a.yaml", "phase: hand-edited\n"),
            ("apps/app.yaml", "image: 1\n"),
            ("README.md", "person\n"),
        ]);
        let replayed = tree_of(replay(&t.1, &before, &after, &base).expect("replay"));
        assert_eq!(
            read(&replayed, ".serin/status/a.yaml").as_deref(),
            Some(&b"phase: Succeeded\n"[..])
        );
        assert_eq!(
            read(&replayed, "apps/app.yaml").as_deref(),
            Some(&b"image: 1 # reverted\n"[..])
        );
        assert_eq!(
            read(&replayed, "README.md").as_deref(),
            Some(&b"person\n"[..])
        );
        assert_eq!(read(&replayed, ".serin/status/gone.yaml"), None);

        // A person changed the manifest Serin changes: the commit is dropped, whatever else.
        let base = t.tree(&[("apps/app.yaml", "image: 2\n"), ("README.md", "r\n")]);
        match replay(&t.1, &before, &after, &base).expect("replay") {
            Replay::Conflict(path) => assert_eq!(path, "apps/app.yaml"),
            Replay::Tree(_) => panic!("a person's change must not be overwritten"),
        }
        // A person deleted it: the same.
        let base = t.tree(&[("README.md", "r\n")]);
        assert!(matches!(
            replay(&t.1, &before, &after, &base).expect("replay"),
            Replay::Conflict(_)
        ));
        // A person created a file where Serin creates one: the same.
        let before = t.tree(&[("README.md", "r\n")]);
        let after = t.tree(&[("README.md", "r\n"), ("apps/new.yaml", "serin\n")]);
        let base = t.tree(&[("README.md", "r\n"), ("apps/new.yaml", "person\n")]);
        assert!(matches!(
            replay(&t.1, &before, &after, &base).expect("replay"),
            Replay::Conflict(_)
        ));
        // ... or a file where Serin needs a directory.
        let after = t.tree(&[("README.md", "r\n"), (".serin/status/x.yaml", "s\n")]);
        let base = t.tree(&[("README.md", "r\n"), (".serin/status", "a file\n")]);
        assert!(matches!(
            replay(&t.1, &before, &after, &base).expect("replay"),
            Replay::Conflict(_)
        ));
    }
}
