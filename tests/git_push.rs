//! The write side of the Git source against real repositories and real transports on
//! 127.0.0.1: `file://`, `git daemon` (git://, with receive-pack and server-side hooks) and
//! smart HTTP (`git http-backend` behind a small server demanding Basic auth). People are
//! played by the `git` CLI pushing to the same upstream.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serin::source::git::{
    Author, CommitId, FileChange, GitAuth, GitError, GitRepo, SecretSource, scrub_url,
};

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// A directory removed when the test ends, pass or fail.
struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Temp {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("serin-push-test-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        Temp(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs git isolated from the machine's and the user's configuration, as "Person".
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Person")
        .env("GIT_AUTHOR_EMAIL", "person@example.com")
        .env("GIT_COMMITTER_NAME", "Person")
        .env("GIT_COMMITTER_EMAIL", "person@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare upstream repository and a person's clone that pushes to it.
struct Upstream {
    tmp: Temp,
}

impl Upstream {
    /// An upstream whose `main` has `apps/podinfo.yaml` and a README.
    fn new() -> Upstream {
        let tmp = Temp::new("upstream");
        git(
            tmp.path(),
            &["init", "-q", "--bare", "-b", "main", "bare.git"],
        );
        git(tmp.path(), &["init", "-q", "-b", "main", "work"]);
        let up = Upstream { tmp };
        let bare = up.bare().display().to_string();
        git(&up.work(), &["remote", "add", "origin", &bare]);
        up.write("apps/podinfo.yaml", "image: podinfo:6.0.0\n");
        up.write("README.md", "config repo\n");
        up.person_commit("initial");
        up
    }

    fn bare(&self) -> PathBuf {
        self.tmp.path().join("bare.git")
    }

    fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    fn file_url(&self) -> String {
        format!("file://{}", self.bare().display())
    }

    fn write(&self, rel: &str, body: &str) {
        let p = self.work().join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, body).expect("write");
    }

    /// Brings the person's clone up to date with the upstream (Serin may have pushed).
    fn sync(&self) {
        git(&self.work(), &["fetch", "-q", "origin"]);
        let has_main = Command::new("git")
            .args(["rev-parse", "-q", "--verify", "origin/main"])
            .current_dir(self.work())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if has_main {
            git(&self.work(), &["reset", "-q", "--hard", "origin/main"]);
        }
    }

    /// Commits everything in the clone as the person and pushes it; returns the commit.
    fn person_commit(&self, message: &str) -> String {
        git(&self.work(), &["add", "-A"]);
        git(&self.work(), &["commit", "-q", "-m", message]);
        git(&self.work(), &["push", "-q", "origin", "main"]);
        self.head()
    }

    /// A person's change pushed on top of whatever the upstream has now.
    fn person_change(&self, rel: &str, body: &str, message: &str) -> String {
        self.sync();
        self.write(rel, body);
        self.person_commit(message)
    }

    fn head(&self) -> String {
        git(&self.work(), &["rev-parse", "HEAD"])
    }

    /// `rev` of the upstream branch: "<subject>|<author name> <author email>", newest first.
    fn log(&self, rev: &str) -> Vec<String> {
        git(&self.bare(), &["log", "--format=%s|%an <%ae>", rev])
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn show(&self, rev_path: &str) -> String {
        git(&self.bare(), &["show", rev_path])
    }

    fn rev(&self, rev: &str) -> String {
        git(&self.bare(), &["rev-parse", rev])
    }

    /// Installs a server-side pre-receive hook (run by `git daemon`'s receive-pack, not by
    /// libgit2's local transport).
    fn pre_receive(&self, script: &str) {
        let hook = self.bare().join("hooks/pre-receive");
        fs::write(&hook, script).expect("write hook");
        let status = Command::new("chmod")
            .args(["+x"])
            .arg(&hook)
            .status()
            .expect("chmod");
        assert!(status.success());
    }

    fn remove_pre_receive(&self) {
        fs::remove_file(self.bare().join("hooks/pre-receive")).expect("remove hook");
    }
}

fn serin() -> Author {
    Author {
        name: "Serin".into(),
        email: "serin@example.com".into(),
    }
}

fn put(path: &str, body: &str) -> FileChange {
    FileChange {
        path: path.into(),
        content: Some(body.as_bytes().to_vec()),
    }
}

fn delete(path: &str) -> FileChange {
    FileChange {
        path: path.into(),
        content: None,
    }
}

fn status_change(phase: &str) -> Vec<FileChange> {
    vec![put(
        ".serin/status/test/podinfo.yaml",
        &format!("phase: {phase}\n"),
    )]
}

/// Queues `changes` and expects a commit.
fn queue(repo: &mut GitRepo, changes: &[FileChange], message: &str) -> CommitId {
    repo.queue_commit("main", changes, message, &serin())
        .unwrap_or_else(|e| panic!("queue {message:?}: {}", chain(&e)))
        .unwrap_or_else(|| panic!("{message:?} changed nothing"))
}

/// The error and all its causes, as `serin` prints them.
fn chain(err: &GitError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A mirror of `url` in a fresh cache directory, fetched once.
fn mirror(url: &str) -> (Temp, GitRepo) {
    let cache = Temp::new("cache");
    let mut repo = GitRepo::open_or_init(url, cache.path(), GitAuth::None).expect("open mirror");
    repo.fetch("main")
        .unwrap_or_else(|e| panic!("fetch: {}", chain(&e)));
    (cache, repo)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// `git daemon` serving every repository under a directory, with pushes enabled.
struct Daemon {
    child: Option<Child>,
    root: PathBuf,
    port: u16,
}

impl Daemon {
    fn start(root: &Path) -> Daemon {
        let mut daemon = Daemon {
            child: None,
            root: root.to_path_buf(),
            port: free_port(),
        };
        daemon.restart();
        daemon
    }

    /// Starts the daemon (again) on its port and waits until it accepts connections.
    fn restart(&mut self) {
        // git-daemon itself, not the `git` wrapper: the wrapper runs it as a child process,
        // and killing the wrapper would leave the daemon listening.
        let exec_path = git(&self.root, &["--exec-path"]);
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .arg("--reuseaddr")
            .arg(format!("--base-path={}", self.root.display()))
            .arg("--export-all")
            .arg("--enable=receive-pack")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(&self.root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Nothing may answer any more before the test goes on.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "git daemon did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Queue and push
// ---------------------------------------------------------------------------------------

#[test]
fn queued_commits_reach_the_remote_in_order() {
    let up = Upstream::new();
    let daemon = Daemon::start(up.tmp.path());
    let (_cache, mut repo) = mirror(&daemon.url("bare.git"));

    let first = queue(
        &mut repo,
        &status_change("Progressing"),
        "podinfo.test: advance canary weight 10",
    );
    let second = queue(
        &mut repo,
        &status_change("Succeeded"),
        "podinfo.test: promotion completed",
    );
    assert_eq!(repo.pending("main").expect("pending"), vec![first, second]);

    let report = repo
        .push("main")
        .unwrap_or_else(|e| panic!("push: {}", chain(&e)));
    assert_eq!(
        report.pushed,
        vec![first, second],
        "no one pushed: nothing rebuilt"
    );
    assert_eq!(report.rebuilt, 0);
    assert!(report.dropped.is_empty());
    assert_eq!(report.remote_head, second);
    assert_eq!(up.rev("main"), second.to_string());
    assert_eq!(
        up.log("main"),
        vec![
            "podinfo.test: promotion completed|Serin <serin@example.com>",
            "podinfo.test: advance canary weight 10|Serin <serin@example.com>",
            "initial|Person <person@example.com>",
        ]
    );
    assert_eq!(
        up.show("main:.serin/status/test/podinfo.yaml"),
        "phase: Succeeded"
    );
    assert_eq!(
        git(&up.bare(), &["log", "-1", "--format=%cn <%ce>", "main"]),
        "Serin <serin@example.com>"
    );
    assert!(repo.pending("main").expect("pending").is_empty());
    assert_eq!(repo.resolve("main").expect("tracking"), second);

    // Nothing queued: a push is a fetch that reports the remote head.
    let again = repo.push("main").expect("push nothing");
    assert!(again.pushed.is_empty());
    assert_eq!(again.remote_head, second);
}

#[test]
fn a_person_pushing_meanwhile_gets_the_queue_rebuilt_on_top() {
    let up = Upstream::new();
    let (_cache, mut repo) = mirror(&up.file_url());
    let queued = queue(
        &mut repo,
        &status_change("Progressing"),
        "podinfo.test: advance canary weight 10",
    );
    let queued_time = git(
        repo.repository().path(),
        &["log", "-1", "--format=%at %an", &queued.to_string()],
    );
    // The rebuild happens at least a second later, so a new author time would show.
    std::thread::sleep(Duration::from_millis(1100));
    let person = up.person_change(
        "apps/podinfo.yaml",
        "image: podinfo:6.0.1\n",
        "podinfo 6.0.1",
    );

    let report = repo
        .push("main")
        .unwrap_or_else(|e| panic!("push: {}", chain(&e)));
    assert_eq!(report.rebuilt, 1);
    assert_eq!(report.pushed.len(), 1);
    assert_ne!(report.pushed[0], queued, "rebuilt on the person's commit");
    assert!(report.dropped.is_empty());
    let pushed = report.pushed[0].to_string();
    assert_eq!(up.rev("main"), pushed);
    assert_eq!(
        up.rev("main~1"),
        person,
        "linear: Serin's commit sits on the person's"
    );
    assert_eq!(git(&up.bare(), &["rev-list", "--merges", "main"]), "");
    assert_eq!(
        up.log("main"),
        vec![
            "podinfo.test: advance canary weight 10|Serin <serin@example.com>",
            "podinfo 6.0.1|Person <person@example.com>",
            "initial|Person <person@example.com>",
        ]
    );
    assert_eq!(up.show("main:apps/podinfo.yaml"), "image: podinfo:6.0.1");
    assert_eq!(
        up.show("main:.serin/status/test/podinfo.yaml"),
        "phase: Progressing"
    );
    // The author (time included) is the queued commit's.
    assert_eq!(
        git(&up.bare(), &["log", "-1", "--format=%at %an", "main"]),
        queued_time
    );
}

#[test]
fn an_unreachable_remote_keeps_the_queue_until_it_is_back() {
    let up = Upstream::new();
    let mut daemon = Daemon::start(up.tmp.path());
    let url = daemon.url("bare.git");
    let (_cache, mut repo) = mirror(&url);
    let first = queue(&mut repo, &status_change("Progressing"), "weight 10");

    daemon.stop();
    let err = repo.push("main").expect_err("the daemon is gone");
    let text = chain(&err);
    assert!(text.contains(&url), "names the URL: {text}");
    assert_eq!(repo.pending("main").expect("pending"), vec![first]);

    // Serin goes on working while the remote is away.
    let second = queue(&mut repo, &status_change("Promoting"), "promoting");
    let third = queue(
        &mut repo,
        &[put(".serin/status/test/other.yaml", "phase: Initialized\n")],
        "other initialized",
    );
    assert_eq!(
        repo.pending("main").expect("pending"),
        vec![first, second, third]
    );
    let err = repo.push("main").expect_err("still gone");
    assert!(matches!(err, GitError::Fetch { .. }), "{err:?}");

    daemon.restart();
    let report = repo
        .push("main")
        .unwrap_or_else(|e| panic!("push: {}", chain(&e)));
    assert_eq!(report.pushed, vec![first, second, third]);
    assert_eq!(
        up.log("main"),
        vec![
            "other initialized|Serin <serin@example.com>",
            "promoting|Serin <serin@example.com>",
            "weight 10|Serin <serin@example.com>",
            "initial|Person <person@example.com>",
        ]
    );
    assert!(repo.pending("main").expect("pending").is_empty());
}

#[test]
fn a_new_process_pushes_what_the_old_one_queued() {
    let up = Upstream::new();
    let cache = Temp::new("cache");
    let queued = {
        let mut repo =
            GitRepo::open_or_init(&up.file_url(), cache.path(), GitAuth::None).expect("open");
        repo.fetch("main").expect("fetch");
        let a = queue(&mut repo, &status_change("Progressing"), "weight 10");
        let b = queue(&mut repo, &status_change("Promoting"), "promoting");
        vec![a, b]
        // The process "dies" here with its commits queued.
    };
    up.person_change("docs/notes.md", "notes\n", "notes");

    let mut repo =
        GitRepo::open_or_init(&up.file_url(), cache.path(), GitAuth::None).expect("reopen");
    assert_eq!(repo.pending("main").expect("pending"), queued);
    let report = repo
        .push("main")
        .unwrap_or_else(|e| panic!("push: {}", chain(&e)));
    assert_eq!(report.pushed.len(), 2);
    assert_eq!(report.rebuilt, 2);
    assert_eq!(
        up.log("main"),
        vec![
            "promoting|Serin <serin@example.com>",
            "weight 10|Serin <serin@example.com>",
            "notes|Person <person@example.com>",
            "initial|Person <person@example.com>",
        ]
    );
}

#[test]
fn a_commit_changing_a_file_a_person_changed_is_dropped_and_the_ledger_goes_on() {
    let up = Upstream::new();
    let (_cache, mut repo) = mirror(&up.file_url());
    queue(
        &mut repo,
        &[put(".serin/status/test/podinfo.yaml", "phase: Failed\n")],
        "podinfo.test: canary failed",
    );
    queue(
        &mut repo,
        &[
            put("apps/podinfo.yaml", "image: podinfo:6.0.0 # reverted\n"),
            put(".serin/status/test/podinfo.yaml", "phase: Reverted\n"),
        ],
        "podinfo.test: revert to 6.0.0",
    );
    queue(
        &mut repo,
        &[put(".serin/status/test/other.yaml", "phase: Succeeded\n")],
        "other.test: promotion completed",
    );
    // Meanwhile a person fixes forward in the same file.
    up.person_change(
        "apps/podinfo.yaml",
        "image: podinfo:6.0.2\n",
        "podinfo 6.0.2",
    );

    let report = repo
        .push("main")
        .unwrap_or_else(|e| panic!("push: {}", chain(&e)));
    assert_eq!(report.dropped.len(), 1, "{report:?}");
    assert_eq!(report.dropped[0].summary, "podinfo.test: revert to 6.0.0");
    assert_eq!(report.dropped[0].path, "apps/podinfo.yaml");
    assert_eq!(report.pushed.len(), 2);
    assert_eq!(report.rebuilt, 2);
    assert_eq!(
        up.log("main"),
        vec![
            "other.test: promotion completed|Serin <serin@example.com>",
            "podinfo.test: canary failed|Serin <serin@example.com>",
            "podinfo 6.0.2|Person <person@example.com>",
            "initial|Person <person@example.com>",
        ]
    );
    assert_eq!(
        up.show("main:apps/podinfo.yaml"),
        "image: podinfo:6.0.2",
        "the person's change stands"
    );
    assert_eq!(
        up.show("main:.serin/status/test/podinfo.yaml"),
        "phase: Failed"
    );
    assert_eq!(
        up.show("main:.serin/status/test/other.yaml"),
        "phase: Succeeded"
    );
    assert!(repo.pending("main").expect("pending").is_empty());
}

#[test]
fn ledger_files_are_serins_even_when_someone_else_wrote_them() {
    let up = Upstream::new();
    let (_cache, mut repo) = mirror(&up.file_url());
    queue(
        &mut repo,
        &status_change("Succeeded"),
        "promotion completed",
    );
    // Someone edits a ledger file by hand: Serin's version wins in .serin/.
    up.person_change(
        ".serin/status/test/podinfo.yaml",
        "phase: Edited\n",
        "hand edit",
    );
    let report = repo.push("main").expect("push");
    assert!(report.dropped.is_empty());
    assert_eq!(
        up.show("main:.serin/status/test/podinfo.yaml"),
        "phase: Succeeded"
    );
    assert_eq!(up.log("main").len(), 3);
}

#[test]
fn a_change_that_changes_nothing_queues_nothing() {
    let up = Upstream::new();
    let (_cache, mut repo) = mirror(&up.file_url());
    let author = serin();
    let none = |repo: &mut GitRepo, changes: &[FileChange]| {
        repo.queue_commit("main", changes, "noop", &author)
            .expect("queue")
    };
    assert_eq!(none(&mut repo, &[]), None);
    assert_eq!(
        none(
            &mut repo,
            &[put("apps/podinfo.yaml", "image: podinfo:6.0.0\n")]
        ),
        None
    );
    assert_eq!(
        none(&mut repo, &[delete(".serin/status/absent.yaml")]),
        None
    );
    // Written then put back within one change set: the last change of a path counts.
    assert_eq!(
        none(
            &mut repo,
            &[
                put("README.md", "other\n"),
                put("README.md", "config repo\n")
            ]
        ),
        None
    );
    assert!(repo.pending("main").expect("pending").is_empty());

    // On top of a queued commit, the same content again is nothing either.
    queue(&mut repo, &status_change("Progressing"), "weight 10");
    assert_eq!(none(&mut repo, &status_change("Progressing")), None);
    assert_eq!(repo.pending("main").expect("pending").len(), 1);
}

#[test]
fn deleting_files_removes_directories_left_empty() {
    let up = Upstream::new();
    let (_cache, mut repo) = mirror(&up.file_url());
    let added = queue(
        &mut repo,
        &[
            put(".serin/status/a/one.yaml", "1\n"),
            put(".serin/status/b/two.yaml", "2\n"),
        ],
        "add",
    );
    let removed = queue(&mut repo, &[delete(".serin/status/a/one.yaml")], "remove");
    assert_eq!(repo.read_dir(added, ".serin").expect("dir").len(), 2);
    assert_eq!(
        repo.read_dir(removed, ".serin").expect("dir"),
        vec![(".serin/status/b/two.yaml".to_string(), b"2\n".to_vec())]
    );
    repo.push("main").expect("push");
    assert_eq!(
        git(
            &up.bare(),
            &["ls-tree", "--name-only", "main:.serin/status"]
        ),
        "b"
    );
}

#[test]
fn invalid_paths_are_refused() {
    let up = Upstream::new();
    let (_cache, mut repo) = mirror(&up.file_url());
    for bad in ["/etc/passwd", "../x", ".git/config", "a//b", ""] {
        let err = repo
            .queue_commit("main", &[put(bad, "x")], "bad", &serin())
            .expect_err(bad);
        assert!(
            matches!(err, GitError::InvalidPath { .. }),
            "{bad}: {err:?}"
        );
    }
    // A file where a directory is, and a directory where a file is.
    let err = repo
        .queue_commit("main", &[put("apps", "x")], "bad", &serin())
        .expect_err("directory in the way");
    assert!(matches!(err, GitError::InvalidPath { .. }), "{err:?}");
    let err = repo
        .queue_commit("main", &[put("README.md/x", "x")], "bad", &serin())
        .expect_err("file in the way");
    assert!(matches!(err, GitError::InvalidPath { .. }), "{err:?}");
    assert!(repo.pending("main").expect("pending").is_empty());
}

#[test]
fn commits_queued_before_the_first_fetch_are_rebuilt_onto_the_remote() {
    // Serin started while the remote was unreachable: nothing fetched, a root commit queued.
    let up = Upstream::new();
    let cache = Temp::new("cache");
    let mut repo =
        GitRepo::open_or_init(&up.file_url(), cache.path(), GitAuth::None).expect("open");
    let queued = queue(
        &mut repo,
        &status_change("Initialized"),
        "podinfo.test initialized",
    );
    assert_eq!(repo.pending("main").expect("pending"), vec![queued]);
    let report = repo.push("main").expect("push");
    assert_eq!(report.rebuilt, 1);
    assert_eq!(
        up.log("main"),
        vec![
            "podinfo.test initialized|Serin <serin@example.com>",
            "initial|Person <person@example.com>",
        ]
    );
    assert_eq!(up.show("main:README.md"), "config repo");
}

#[test]
fn a_status_branch_that_does_not_exist_yet_is_created() {
    let up = Upstream::new();
    let cache = Temp::new("cache");
    let mut repo =
        GitRepo::open_or_init(&up.file_url(), cache.path(), GitAuth::None).expect("open");
    let first = repo
        .queue_commit(
            "serin/status",
            &status_change("Progressing"),
            "weight 10",
            &serin(),
        )
        .expect("queue")
        .expect("a commit");
    let report = repo.push("serin/status").expect("push");
    assert_eq!(report.pushed, vec![first]);
    assert_eq!(
        up.log("serin/status"),
        vec!["weight 10|Serin <serin@example.com>"]
    );
    let second = repo
        .queue_commit(
            "serin/status",
            &status_change("Succeeded"),
            "done",
            &serin(),
        )
        .expect("queue")
        .expect("a commit");
    repo.push("refs/heads/serin/status").expect("push again");
    assert_eq!(up.rev("serin/status"), second.to_string());
    assert_eq!(up.log("main").len(), 1, "main is untouched");
}

#[test]
fn local_repositories_neither_queue_nor_push() {
    let up = Upstream::new();
    let mut repo = GitRepo::open_local(&up.work()).expect("open local");
    let err = repo
        .queue_commit("main", &status_change("Progressing"), "x", &serin())
        .expect_err("local");
    assert!(matches!(err, GitError::NoRemote { .. }), "{err:?}");
    let err = repo.push("main").expect_err("local");
    assert!(matches!(err, GitError::NoRemote { .. }), "{err:?}");
    // Reading works on a checkout too.
    let head = repo.resolve("HEAD").expect("head");
    assert_eq!(
        repo.read_file(head, "README.md").expect("read"),
        Some(b"config repo\n".to_vec())
    );
}

// ---------------------------------------------------------------------------------------
// Rejections: a person pushing between Serin's fetch and push, and a server that refuses
// ---------------------------------------------------------------------------------------

/// A pre-receive hook that, the first time it runs, has the person push a commit they
/// prepared: the branch moves while Serin's push is in flight, so the server refuses it.
fn racing_hook(up: &Upstream, marker: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         cat >/dev/null\n\
         if [ ! -e '{marker}' ]; then\n\
           touch '{marker}'\n\
           env -i PATH=\"$PATH\" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
             git -C '{work}' push -q origin main >&2 || exit 1\n\
         fi\n\
         exit 0\n",
        marker = marker.display(),
        work = up.work().display(),
    )
}

#[test]
fn a_push_racing_a_person_is_rejected_then_rebuilt_and_retried() {
    let up = Upstream::new();
    let daemon = Daemon::start(up.tmp.path());
    let (_cache, mut repo) = mirror(&daemon.url("bare.git"));
    let queued = queue(&mut repo, &status_change("Progressing"), "weight 10");
    // The person's commit, ready in their clone, goes out from inside Serin's push.
    up.write("apps/podinfo.yaml", "image: podinfo:6.0.1\n");
    git(&up.work(), &["commit", "-q", "-am", "podinfo 6.0.1"]);
    let person = up.head();
    let marker = up.tmp.path().join("raced");
    up.pre_receive(&racing_hook(&up, &marker));

    let report = repo
        .push("main")
        .unwrap_or_else(|e| panic!("push: {}", chain(&e)));
    assert!(marker.exists(), "the hook ran");
    assert_eq!(report.rebuilt, 1);
    assert_ne!(report.pushed, vec![queued]);
    assert_eq!(up.rev("main~1"), person, "the person's commit is kept");
    assert_eq!(
        up.log("main"),
        vec![
            "weight 10|Serin <serin@example.com>",
            "podinfo 6.0.1|Person <person@example.com>",
            "initial|Person <person@example.com>",
        ]
    );
}

#[test]
fn a_push_refused_every_time_keeps_the_queue_rebuilt() {
    let up = Upstream::new();
    let daemon = Daemon::start(up.tmp.path());
    let (_cache, mut repo) = mirror(&daemon.url("bare.git"));
    let queued = queue(&mut repo, &status_change("Progressing"), "weight 10");
    let person = up.person_change("docs/notes.md", "notes\n", "notes");
    up.pre_receive("#!/bin/sh\ncat >/dev/null\necho 'branch is protected' >&2\nexit 1\n");

    let started = Instant::now();
    let err = repo.push("main").expect_err("always refused");
    let GitError::PushRejected {
        attempts, reason, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*attempts, 5);
    assert!(reason.contains("refs/heads/main"), "{reason}");
    // 100 + 200 + 400 + 800 ms between the five attempts.
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(
        chain(&err).contains(&daemon.url("bare.git")),
        "{}",
        chain(&err)
    );

    // The queue survived, rebuilt onto the person's commit.
    let pending = repo.pending("main").expect("pending");
    assert_eq!(pending.len(), 1);
    assert_ne!(pending[0], queued);
    assert_eq!(
        git(&up.bare(), &["rev-parse", "main"]),
        person,
        "nothing was forced"
    );

    up.remove_pre_receive();
    let report = repo.push("main").expect("push once allowed");
    assert_eq!(report.pushed, pending);
    assert_eq!(up.rev("main~1"), person);
}

// ---------------------------------------------------------------------------------------
// Reading back and the manifest identity
// ---------------------------------------------------------------------------------------

#[test]
fn files_read_back_and_the_manifest_id_ignores_the_ledger() {
    let up = Upstream::new();
    up.write("clusters/prod/app.yaml", "kind: Deployment\n");
    up.write("clusters/prod/sub/cm.yaml", "kind: ConfigMap\n");
    up.person_commit("prod");
    let (_cache, mut repo) = mirror(&up.file_url());
    let base = repo.resolve("main").expect("main");

    assert_eq!(
        repo.read_file(base, "clusters/prod/app.yaml")
            .expect("read"),
        Some(b"kind: Deployment\n".to_vec())
    );
    assert_eq!(
        repo.read_file(base, "clusters/none.yaml").expect("read"),
        None
    );
    assert_eq!(repo.read_file(base, "README.md/x").expect("read"), None);
    assert!(repo.read_file(base, "clusters").is_err(), "a directory");
    assert_eq!(
        repo.read_dir(base, "clusters/prod").expect("dir"),
        vec![
            (
                "clusters/prod/app.yaml".to_string(),
                b"kind: Deployment\n".to_vec()
            ),
            (
                "clusters/prod/sub/cm.yaml".to_string(),
                b"kind: ConfigMap\n".to_vec()
            ),
        ]
    );
    assert_eq!(repo.read_dir(base, "clusters/prod/").expect("dir").len(), 2);
    assert!(repo.read_dir(base, "absent").expect("dir").is_empty());
    assert!(repo.read_dir(base, "README.md").expect("dir").is_empty());
    assert_eq!(repo.read_dir(base, "").expect("dir").len(), 4);

    let id = |repo: &GitRepo, c: CommitId, path: &str| repo.manifest_tree_id(c, path).expect("id");
    // Without a .serin directory, the id is Git's own tree id.
    assert_eq!(
        id(&repo, base, "clusters/prod"),
        up.rev(&format!("{base}:clusters/prod"))
    );
    assert_eq!(id(&repo, base, ""), up.rev(&format!("{base}^{{tree}}")));

    let ledger = queue(
        &mut repo,
        &[
            put(".serin/status/test/podinfo.yaml", "phase: Progressing\n"),
            put("clusters/prod/.serin/approvals/x.yaml", "approved\n"),
        ],
        "ledger only",
    );
    assert_eq!(
        id(&repo, ledger, "clusters/prod"),
        id(&repo, base, "clusters/prod")
    );
    assert_eq!(id(&repo, ledger, ""), id(&repo, base, ""));
    assert_eq!(
        id(&repo, ledger, "./clusters/prod/"),
        id(&repo, base, "clusters/prod")
    );

    let outside = queue(&mut repo, &[put("README.md", "changed\n")], "outside");
    assert_eq!(
        id(&repo, outside, "clusters/prod"),
        id(&repo, base, "clusters/prod")
    );
    assert_ne!(id(&repo, outside, ""), id(&repo, base, ""));

    let manifest = queue(
        &mut repo,
        &[put(
            "clusters/prod/sub/cm.yaml",
            "kind: ConfigMap\ndata: {}\n",
        )],
        "manifest",
    );
    assert_ne!(
        id(&repo, manifest, "clusters/prod"),
        id(&repo, base, "clusters/prod")
    );

    let err = repo
        .manifest_tree_id(base, "absent")
        .expect_err("no such path");
    assert!(err.to_string().contains("absent"), "{err}");
    assert_eq!(
        repo.read_file(ledger, "clusters/prod/.serin/approvals/x.yaml")
            .expect("read"),
        Some(b"approved\n".to_vec())
    );
}

// ---------------------------------------------------------------------------------------
// Credentials: push over smart HTTP with a token; never shown in an error
// ---------------------------------------------------------------------------------------

const USER: &str = "serin-bot";
const TOKEN: &str = "tok-51ab90e2-right";
const WRONG: &str = "tok-wrong-c0ffee";

#[path = "support/http_git.rs"]
mod http_git;
use http_git::HttpGit;

fn token_file(dir: &Path, value: &str) -> SecretSource {
    let path = dir.join("token");
    fs::write(&path, format!("{value}\n")).expect("write token");
    SecretSource::File(path)
}

#[test]
fn http_push_with_a_token() {
    let up = Upstream::new();
    let server = HttpGit::start(up.tmp.path(), USER, TOKEN);
    let secrets = Temp::new("secrets");
    let auth = GitAuth::Token {
        username: USER.into(),
        token: token_file(secrets.path(), TOKEN),
    };
    let cache = Temp::new("cache");
    let mut repo =
        GitRepo::open_or_init(&server.url("bare.git"), cache.path(), auth).expect("open");
    repo.fetch("main")
        .unwrap_or_else(|e| panic!("fetch: {}", chain(&e)));
    let queued = queue(&mut repo, &status_change("Progressing"), "weight 10");
    up.person_change("docs/notes.md", "notes\n", "notes");
    let report = repo
        .push("main")
        .unwrap_or_else(|e| panic!("push: {}", chain(&e)));
    assert_eq!(report.rebuilt, 1);
    assert_ne!(report.pushed, vec![queued]);
    assert_eq!(up.rev("main"), report.remote_head.to_string());
    assert_eq!(up.log("main").len(), 3);
}

#[test]
fn credentials_in_a_push_url_never_show() {
    let up = Upstream::new();
    let server = HttpGit::start(up.tmp.path(), USER, TOKEN);

    // The right token in the URL: pushes work, and nothing shown has it.
    let url = server.url_with(&format!("{USER}:{TOKEN}"), "bare.git");
    let cache = Temp::new("cache");
    let mut repo = GitRepo::open_or_init(&url, cache.path(), GitAuth::None).expect("open");
    queue(&mut repo, &status_change("Progressing"), "weight 10");
    let report = repo
        .push("main")
        .unwrap_or_else(|e| panic!("push: {}", chain(&e)));
    assert_eq!(report.pushed.len(), 1);
    assert!(!format!("{repo:?} {report:?}").contains(TOKEN));

    // A wrong token in the URL: refused once, and the error shows neither token.
    let wrong = server.url_with(&format!("{USER}:{WRONG}"), "bare.git");
    let cache = Temp::new("cache");
    let mut repo = GitRepo::open_or_init(&wrong, cache.path(), GitAuth::None).expect("open");
    queue(&mut repo, &status_change("Succeeded"), "done");
    let before = server.refused.load(Ordering::SeqCst);
    let err = repo.push("main").expect_err("wrong token");
    let text = format!("{} / {err:?}", chain(&err));
    assert!(matches!(err, GitError::AuthRejected { .. }), "{text}");
    assert!(!text.contains(WRONG), "{text}");
    assert!(text.contains(&server.url("bare.git")), "{text}");
    assert!(
        server.refused.load(Ordering::SeqCst) - before <= 2,
        "retried a refused token"
    );
    assert_eq!(repo.pending("main").expect("pending").len(), 1);

    // A server that is gone: the transport's message is scrubbed as well.
    let port = free_port();
    let gone = format!("http://{USER}:{TOKEN}@127.0.0.1:{port}/bare.git");
    let cache = Temp::new("cache");
    let mut repo = GitRepo::open_or_init(&gone, cache.path(), GitAuth::None).expect("open");
    queue(&mut repo, &status_change("Succeeded"), "done");
    let err = repo.push("main").expect_err("nothing listens");
    let text = format!("{} / {err:?}", chain(&err));
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains(&scrub_url(&gone)), "{text}");
    assert_eq!(repo.pending("main").expect("pending").len(), 1);
}
