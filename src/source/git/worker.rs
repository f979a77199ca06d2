//! The async face of a [`GitRepo`]: one thread owns it and runs operations one at a time.
//!
//! libgit2 blocks (network I/O, pack indexing) and a `Repository` is `Send` but not `Sync`.
//! A dedicated thread fed through a channel keeps that work off the tokio runtime and makes
//! it impossible for two operations (a fetch and a status commit, say) to interleave on one
//! repository, without a lock around it. Waits are bounded by the caller with
//! `tokio::time::timeout`; libgit2's own network timeouts are global `unsafe` settings this
//! crate does not touch (`unsafe_code` is forbidden).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{GitError, GitRepo};

/// Operations waiting beyond this make callers wait in `send` instead of queueing without
/// bound behind a slow fetch.
const QUEUE: usize = 16;

type Job = Box<dyn FnOnce(&mut GitRepo) + Send>;

/// A handle to the thread that owns one repository. Clones share the thread; it ends when
/// the last handle is dropped.
#[derive(Clone)]
pub struct GitWorker {
    jobs: mpsc::Sender<Job>,
    origin: Arc<str>,
}

impl std::fmt::Debug for GitWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitWorker")
            .field("origin", &self.origin)
            .finish()
    }
}

impl GitWorker {
    /// Moves `repo` onto its own thread.
    pub fn spawn(repo: GitRepo) -> Result<GitWorker, GitError> {
        let origin: Arc<str> = repo.origin().into();
        let (jobs, queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("serin-git".into())
            .spawn(move || run(repo, queue))
            .map_err(|source| GitError::WorkerStart {
                origin: origin.to_string(),
                source,
            })?;
        Ok(GitWorker { jobs, origin })
    }

    /// The repository as shown in messages (URL without credentials, or local path).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Runs `f` on the worker thread, after every operation sent before it.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut GitRepo) -> R + Send + 'static,
    ) -> Result<R, GitError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |repo| {
            // The caller may have stopped waiting (a timeout); the result is then dropped.
            let _ = reply.send(f(repo));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| self.stopped("it is no longer running"))?;
        answer
            .await
            .map_err(|_| self.stopped("the operation panicked"))
    }

    /// [`GitWorker::with`] for a fallible operation, waiting at most `timeout`: libgit2 has no
    /// network timeouts of its own here, so every network operation goes through this.
    pub async fn within<R: Send + 'static>(
        &self,
        timeout: std::time::Duration,
        f: impl FnOnce(&mut GitRepo) -> Result<R, GitError> + Send + 'static,
    ) -> Result<R, GitError> {
        match tokio::time::timeout(timeout, self.with(f)).await {
            Ok(result) => result?,
            Err(_) => Err(GitError::Timeout {
                origin: self.origin.to_string(),
                timeout,
            }),
        }
    }

    fn stopped(&self, reason: &'static str) -> GitError {
        GitError::WorkerStopped {
            origin: self.origin.to_string(),
            reason,
        }
    }
}

fn run(mut repo: GitRepo, mut queue: mpsc::Receiver<Job>) {
    while let Some(job) = queue.blocking_recv() {
        // One panicking operation must not take the repository away from every later caller;
        // its caller learns of it through the dropped reply.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut repo))).is_err() {
            tracing::error!(origin = repo.origin(), "a Git operation panicked");
        }
    }
}
