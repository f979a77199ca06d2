//! The file watch: a sync when files change under a local directory (a checkout, a mounted
//! volume, or a local repository someone commits to).
//!
//! notify (8.x) watches recursively and calls back on its own thread; the callback keeps only
//! changes that matter and hands them to a tokio task over an unbounded channel. That task
//! debounces: an editor's save, a `git checkout` or a `kubectl cp` is dozens of events, and
//! one sync after they stop is what the user wants.
//!
//! Reads never count (Serin reading the directory must not trigger Serin), nor do writes under
//! `.serin/` (its own ledger). Inside `.git/` only the refs count — `refs/`, `packed-refs`,
//! `HEAD`, which move on a commit or checkout — and not objects, the index or logs, which
//! change on every `git status` or `gc` without changing what is checked out.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use notify::event::ModifyKind;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::{Sender, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Requested, SyncRequest, TriggerReason, request_sync};

/// Quiet time after the last change before a sync is requested.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(500);

/// A directory that never stops changing still gets a sync every this many debounce periods.
const MAX_WAIT_DEBOUNCES: u32 = 20;

/// Why a directory cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {dir}: it is not a directory")]
    NotADirectory { dir: String },
    #[error("cannot watch {dir}: {source}")]
    Watch {
        dir: String,
        #[source]
        source: notify::Error,
    },
    #[error("cannot watch {dir}: the file watch must be started inside the tokio runtime")]
    NoRuntime { dir: String },
}

/// A running file watch. Dropping it (or [`WatchHandle::stop`]) ends the watch.
pub struct WatchHandle {
    // Held for its Drop: it owns the inotify descriptor and the callback's sender.
    _watcher: RecommendedWatcher,
    task: JoinHandle<()>,
}

impl WatchHandle {
    pub fn stop(self) {}
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the notify callback passes on.
#[derive(Debug)]
enum Change {
    Path(PathBuf),
    /// notify lost events (e.g. the inotify queue overflowed) or failed: anything may have
    /// changed, so a sync is due.
    Unknown,
}

/// Watches `dir` recursively and sends a [`TriggerReason::FileWatch`] request once changes
/// have been quiet for `debounce` ([`DEFAULT_DEBOUNCE`]). Must be called inside a tokio
/// runtime.
pub fn spawn_watch(
    dir: &Path,
    tx: Sender<SyncRequest>,
    debounce: Duration,
) -> Result<WatchHandle, WatchError> {
    let shown = dir.display().to_string();
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| WatchError::NoRuntime { dir: shown.clone() })?;
    let failed = |source| WatchError::Watch {
        dir: shown.clone(),
        source,
    };
    // Events name paths under the watched path as given; canonical, they can be compared
    // with the root whatever symlinks (/tmp on macOS, a mounted volume) lie above it.
    let root = std::fs::canonicalize(dir).map_err(|e| failed(notify::Error::io(e)))?;
    if !root.is_dir() {
        return Err(WatchError::NotADirectory { dir: shown });
    }
    let (changes_tx, changes_rx) = tokio::sync::mpsc::unbounded_channel();
    let callback_root = root.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        forward(&callback_root, event, &changes_tx);
    })
    .map_err(failed)?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(failed)?;
    let task = runtime.spawn(debounce_changes(changes_rx, tx, debounce));
    tracing::info!("watching {} for changes", root.display());
    Ok(WatchHandle {
        _watcher: watcher,
        task,
    })
}

/// Runs on notify's thread: keeps what matters, so that the many reads and ledger writes
/// never wake the tokio side.
fn forward(root: &Path, event: notify::Result<Event>, changes: &UnboundedSender<Change>) {
    // A send fails only once the debounce task has ended, when nobody cares any more.
    let event = match event {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!("file watch of {}: {e}; requesting a sync", root.display());
            let _ = changes.send(Change::Unknown);
            return;
        }
    };
    if event.need_rescan() {
        let _ = changes.send(Change::Unknown);
        return;
    }
    match event.kind {
        // Opening and reading files (Serin's own sync does) changes nothing; neither do
        // permission or timestamp changes, which `git status` and backups cause.
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => return,
        _ => {}
    }
    for path in event.paths {
        if counts(root, &path) {
            let _ = changes.send(Change::Path(path));
        }
    }
}

/// Whether a change of `path` (under `root`) can change what a sync reads.
fn counts(root: &Path, path: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<&OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect();
    if parts.iter().any(|p| *p == ".serin") {
        return false;
    }
    let Some(git) = parts.iter().position(|p| *p == ".git") else {
        return true;
    };
    let inside = &parts[git + 1..];
    // Git writes `<ref>.lock` and renames it over the ref: the rename names the ref itself.
    let lock = inside
        .last()
        .is_some_and(|p| p.to_string_lossy().ends_with(".lock"));
    let refs = inside
        .first()
        .is_some_and(|p| *p == "refs" || *p == "packed-refs" || *p == "HEAD");
    refs && !lock
}

async fn debounce_changes(
    mut changes: UnboundedReceiver<Change>,
    tx: Sender<SyncRequest>,
    debounce: Duration,
) {
    let max_wait = debounce.saturating_mul(MAX_WAIT_DEBOUNCES);
    loop {
        let Some(first) = changes.recv().await else {
            return;
        };
        let started = Instant::now();
        let mut paths = HashSet::new();
        note(first, &mut paths);
        loop {
            let deadline = (Instant::now() + debounce).min(started + max_wait);
            match tokio::time::timeout_at(deadline, changes.recv()).await {
                Ok(Some(change)) => note(change, &mut paths),
                // The watcher is gone: the watch was stopped.
                Ok(None) => return,
                Err(_quiet) => break,
            }
        }
        let reason = TriggerReason::FileWatch { paths: paths.len() };
        tracing::debug!("sync requested: {reason}");
        match request_sync(&tx, SyncRequest::now(reason)) {
            Requested::Sent => {}
            Requested::AlreadyPending => tracing::debug!("file watch: a sync is already pending"),
            Requested::Closed => return,
        }
    }
}

fn note(change: Change, paths: &mut HashSet<PathBuf>) {
    if let Change::Path(path) = change {
        paths.insert(path);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::fs;
    use tokio::sync::mpsc;

    #[test]
    fn only_changes_that_can_change_a_sync_count() {
        let root = Path::new("/repo");
        let cases = [
            ("apps/podinfo.yaml", true),
            ("README.md", true),
            ("apps", true),
            (".serin/status/test/podinfo.yaml", false),
            ("apps/.serin/x.yaml", false),
            (".serin", false),
            (".git/objects/ab/cdef0123", false),
            (".git/objects/pack/pack-1.pack", false),
            (".git/index", false),
            (".git/logs/HEAD", false),
            (".git/FETCH_HEAD", false),
            (".git", false),
            (".git/refs/heads/main", true),
            (".git/refs/heads/main.lock", false),
            (".git/packed-refs", true),
            (".git/HEAD", true),
            ("apps/.git/refs/heads/main", true),
            (".git-notes/x.yaml", true),
            ("apps/my.serin.yaml", true),
        ];
        for (rel, want) in cases {
            assert_eq!(counts(root, &root.join(rel)), want, "{rel}");
        }
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("serin-watch-test-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const DEBOUNCE: Duration = Duration::from_millis(400);
    /// Generous: the test machine may be busy compiling.
    const PATIENCE: Duration = Duration::from_secs(10);

    async fn assert_quiet(rx: &mut mpsc::Receiver<SyncRequest>, what: &str) {
        tokio::time::sleep(DEBOUNCE * 3).await;
        if let Ok(request) = rx.try_recv() {
            panic!("{what}: unexpected {:?}", request.reason);
        }
    }

    #[tokio::test]
    async fn a_burst_of_writes_is_one_request_after_the_quiet_period() {
        let dir = TempDir::new("burst");
        fs::create_dir_all(dir.0.join("apps")).unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let handle = spawn_watch(&dir.0, tx, DEBOUNCE).unwrap();
        let start = Instant::now();
        for i in 0..20 {
            fs::write(
                dir.0.join(format!("apps/app-{i}.yaml")),
                format!("n: {i}\n"),
            )
            .unwrap();
        }
        let request = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(request.reason, TriggerReason::FileWatch { paths: 20 });
        assert!(start.elapsed() >= DEBOUNCE, "sent before the quiet period");
        assert_quiet(&mut rx, "after the burst").await;

        // Reading files, as a sync does, is no change.
        for i in 0..20 {
            fs::read(dir.0.join(format!("apps/app-{i}.yaml"))).unwrap();
        }
        assert_quiet(&mut rx, "after reads").await;
        handle.stop();
    }

    #[tokio::test]
    async fn ledger_and_object_writes_are_ignored_but_refs_count() {
        let dir = TempDir::new("ledger");
        for sub in [".serin/status/test", ".git/objects/ab", ".git/refs/heads"] {
            fs::create_dir_all(dir.0.join(sub)).unwrap();
        }
        let (tx, mut rx) = mpsc::channel(8);
        let _handle = spawn_watch(&dir.0, tx, DEBOUNCE).unwrap();

        fs::write(
            dir.0.join(".serin/status/test/podinfo.yaml"),
            "phase: Succeeded\n",
        )
        .unwrap();
        fs::create_dir_all(dir.0.join(".serin/approvals/test")).unwrap();
        fs::write(dir.0.join(".git/objects/ab/cdef0123"), "blob").unwrap();
        fs::write(dir.0.join(".git/index"), "index").unwrap();
        assert_quiet(&mut rx, "after ledger and object writes").await;

        // A commit: the ref is written to a lock file that replaces it, and HEAD moves.
        let lock = dir.0.join(".git/refs/heads/main.lock");
        fs::write(&lock, format!("{}\n", "a".repeat(40))).unwrap();
        fs::rename(&lock, dir.0.join(".git/refs/heads/main")).unwrap();
        fs::write(dir.0.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        let request = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(request.reason, TriggerReason::FileWatch { paths: 2 });
    }

    #[tokio::test]
    async fn stopping_ends_the_watch() {
        let dir = TempDir::new("stop");
        let (tx, mut rx) = mpsc::channel(8);
        let handle = spawn_watch(&dir.0, tx, DEBOUNCE).unwrap();
        handle.stop();
        fs::write(dir.0.join("late.yaml"), "x: 1\n").unwrap();
        // Every sender is gone with the watch: the channel closes without a request.
        let next = tokio::time::timeout(PATIENCE, rx.recv()).await.unwrap();
        assert!(next.is_none());
    }

    #[tokio::test]
    async fn a_missing_directory_is_an_error_naming_it() {
        let (tx, _rx) = mpsc::channel(1);
        let err = spawn_watch(Path::new("/nonexistent/serin-config"), tx.clone(), DEBOUNCE)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("cannot watch /nonexistent/serin-config: "),
            "{err}"
        );
        let dir = TempDir::new("file");
        let file = dir.0.join("a.yaml");
        fs::write(&file, "").unwrap();
        let err = spawn_watch(&file, tx, DEBOUNCE).err().unwrap();
        assert!(matches!(err, WatchError::NotADirectory { .. }), "{err}");
    }

    #[test]
    fn outside_a_runtime_is_an_error() {
        let (tx, _rx) = mpsc::channel(1);
        let err = spawn_watch(Path::new("."), tx, DEBOUNCE).err().unwrap();
        assert!(matches!(err, WatchError::NoRuntime { .. }), "{err}");
    }
}
