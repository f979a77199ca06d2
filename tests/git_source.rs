//! The Git source against real repositories and real transports on 127.0.0.1: `file://`,
//! smart HTTP (`git http-backend` behind a small server demanding Basic auth) and SSH (a
//! real sshd started for the test). Upstream repositories are built with the `git` CLI.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serin::source::git::{
    CommitId, GitAuth, GitError, GitRepo, GitWorker, HostKeyError, SecretSource, scrub_url,
};
use serin::source::{FileContent, Snapshot, SnapshotOptions, SourceError, dir};

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
            std::env::temp_dir().join(format!("serin-git-test-{}-{n}-{name}", std::process::id()));
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

/// Runs git isolated from the machine's and the user's configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare upstream repository and a working clone that pushes to it.
struct Upstream {
    tmp: Temp,
}

impl Upstream {
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

    fn link(&self, rel: &str, target: &str) {
        let p = self.work().join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(target, p).expect("symlink");
    }

    /// Commits everything and pushes; returns the new commit.
    fn commit(&self, message: &str) -> String {
        git(&self.work(), &["add", "-A"]);
        git(&self.work(), &["commit", "-q", "-m", message]);
        git(&self.work(), &["push", "-q", "origin", "main"]);
        self.head()
    }

    fn head(&self) -> String {
        git(&self.work(), &["rev-parse", "HEAD"])
    }

    /// Replaces the last commit with another one and force-pushes it.
    fn rewrite_last(&self, rel: &str, body: &str) -> String {
        git(&self.work(), &["reset", "-q", "--hard", "HEAD~1"]);
        self.write(rel, body);
        git(&self.work(), &["add", "-A"]);
        git(&self.work(), &["commit", "-q", "-m", "rewritten"]);
        git(&self.work(), &["push", "-q", "--force", "origin", "main"]);
        self.head()
    }
}

fn all_yaml() -> SnapshotOptions {
    SnapshotOptions::default()
}

fn bytes_of(snap: &Snapshot, path: &str) -> Option<Vec<u8>> {
    snap.files
        .iter()
        .find(|f| f.path == path)
        .and_then(|f| match &f.content {
            FileContent::Bytes(b) => Some(b.clone()),
            _ => None,
        })
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

fn fetch_new(url: &str, auth: GitAuth) -> (Temp, Result<(GitRepo, CommitId), GitError>) {
    let cache = Temp::new("cache");
    let result = GitRepo::open_or_init(url, cache.path(), auth)
        .and_then(|mut repo| repo.fetch("main").map(|c| (repo, c)));
    (cache, result)
}

// ---------------------------------------------------------------------------------------
// file://: fetching, following the branch, resolving
// ---------------------------------------------------------------------------------------

#[test]
fn fetch_follows_the_branch_including_force_pushes() {
    let up = Upstream::new();
    up.write("apps/a.yaml", "v: 1\n");
    let first = up.commit("first");
    let cache = Temp::new("cache");
    let mut repo =
        GitRepo::open_or_init(&up.file_url(), cache.path(), GitAuth::None).expect("open");
    assert_eq!(repo.fetch("main").expect("fetch").to_string(), first);

    up.write("apps/a.yaml", "v: 2\n");
    let second = up.commit("second");
    let fetched = repo.fetch("main").expect("fetch again");
    assert_eq!(fetched.to_string(), second);
    let snap = repo.snapshot(fetched, &all_yaml()).expect("snapshot");
    assert_eq!(
        bytes_of(&snap, "apps/a.yaml").as_deref(),
        Some(&b"v: 2\n"[..])
    );
    assert_eq!(snap.commit.as_deref(), Some(second.as_str()));
    assert_eq!(snap.origin, format!("{}@{}", up.file_url(), &second[..7]));

    let rewritten = up.rewrite_last("apps/a.yaml", "v: 3\n");
    assert_ne!(rewritten, second);
    let fetched = repo.fetch("main").expect("fetch after force push");
    assert_eq!(fetched.to_string(), rewritten, "the remote is the truth");
    assert_eq!(repo.resolve("main").expect("main").to_string(), rewritten);
    assert_eq!(repo.resolve("HEAD~1").expect("HEAD~1").to_string(), first);

    // A reopened mirror keeps what was fetched.
    drop(repo);
    let reopened =
        GitRepo::open_or_init(&up.file_url(), cache.path(), GitAuth::None).expect("reopen");
    assert_eq!(
        reopened.resolve("main").expect("main").to_string(),
        rewritten
    );
}

#[test]
fn revisions_resolve_like_git_rev_parse() {
    let up = Upstream::new();
    up.write("a.yaml", "v: 1\n");
    let first = up.commit("first");
    git(&up.work(), &["tag", "light"]);
    up.write("a.yaml", "v: 2\n");
    let second = up.commit("second");
    git(&up.work(), &["tag", "-a", "-m", "release", "v1.0.0"]);
    git(&up.work(), &["push", "-q", "origin", "--tags"]);

    let (_cache, fetched) = fetch_new(&up.file_url(), GitAuth::None);
    let (mut repo, head) = fetched.expect("fetch");
    assert_eq!(head.to_string(), second);
    let cases = [
        ("main", &second),
        ("origin/main", &second),
        ("main~1", &first),
        ("HEAD", &second),
        ("HEAD~1", &first),
        (&first[..8], &first),
        (second.as_str(), &second),
        ("v1.0.0", &second),
        ("light", &first),
    ];
    for (rev, want) in cases {
        let got = repo.resolve(rev).unwrap_or_else(|e| panic!("{rev}: {e}"));
        assert_eq!(&got.to_string(), want, "{rev}");
    }
    let err = repo.resolve("no-such-rev").expect_err("unknown rev");
    assert!(err.to_string().contains("\"no-such-rev\""), "{err}");

    // A release tagged after its commit was fetched arrives with the next fetch, although
    // the branch did not move; a tag deleted on the server disappears from the mirror.
    git(&up.work(), &["tag", "-a", "-m", "late", "late", &first]);
    git(
        &up.work(),
        &["push", "-q", "origin", "late", ":refs/tags/light"],
    );
    assert_eq!(repo.fetch("main").expect("refetch").to_string(), second);
    assert_eq!(repo.resolve("late").expect("late").to_string(), first);
    let err = repo.resolve("light").expect_err("deleted tag");
    assert!(matches!(err, GitError::Resolve { .. }), "{err:?}");
}

#[test]
fn a_missing_branch_is_an_error_naming_it() {
    let up = Upstream::new();
    up.write("a.yaml", "v: 1\n");
    up.commit("first");
    let cache = Temp::new("cache");
    let mut repo =
        GitRepo::open_or_init(&up.file_url(), cache.path(), GitAuth::None).expect("open");
    let err = repo.fetch("release-9").expect_err("no such branch");
    assert!(matches!(err, GitError::BranchNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("\"release-9\""), "{err}");

    // A branch that existed and was deleted is gone, not kept from an earlier fetch.
    git(&up.work(), &["push", "-q", "origin", "main:gone"]);
    repo.fetch("gone").expect("fetch gone");
    git(&up.work(), &["push", "-q", "origin", ":gone"]);
    let err = repo.fetch("gone").expect_err("deleted branch");
    assert!(matches!(err, GitError::BranchNotFound { .. }), "{err:?}");

    let err = repo.fetch("bad..name").expect_err("invalid name");
    assert!(matches!(err, GitError::InvalidBranch { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Snapshot rules: the same as a directory's
// ---------------------------------------------------------------------------------------

fn rules_fixture() -> Upstream {
    let up = Upstream::new();
    up.write("apps/podinfo.yaml", "kind: A\n");
    up.write("apps/nested/more.yml", "kind: B\n");
    up.write("apps/README.md", "# no\n");
    up.write("apps/.serin/status/x.yaml", "kind: Ledger\n");
    up.write(".serin/approvals/y.yaml", "kind: Approval\n");
    up.write("other/x.yaml", "kind: Other\n");
    up.write("apps/big.yaml", &"x".repeat(2048));
    up.link("apps/inside.yaml", "../other/x.yaml");
    up.link("apps/chain.yaml", "inside.yaml");
    up.link("apps/escape.yaml", "../../etc/passwd");
    up.link("apps/absolute.yaml", "/etc/passwd");
    up.link("apps/dangling.yaml", "missing.yaml");
    up.link("apps/to-dir.yaml", "../other");
    up.link("apps/big-link.yaml", "big.yaml");
    up.link("apps/dirlink", "../other");
    up.link("apps/via-dirlink.yaml", "dirlink/x.yaml");
    up.link("apps/loop-a.yaml", "loop-b.yaml");
    up.link("apps/loop-b.yaml", "loop-a.yaml");
    up.commit("fixture");
    up
}

fn described(snap: &Snapshot) -> Vec<(String, String)> {
    snap.files
        .iter()
        .map(|f| (f.path.clone(), format!("{:?}", f.content)))
        .collect()
}

#[test]
fn snapshots_follow_the_documented_rules() {
    let up = rules_fixture();
    let (_cache, fetched) = fetch_new(&up.file_url(), GitAuth::None);
    let (repo, head) = fetched.expect("fetch");
    let options = SnapshotOptions {
        path: "./apps/".into(),
        max_file_bytes: 1024,
    };
    let snap = repo.snapshot(head, &options).expect("snapshot");
    let want: Vec<(String, String)> = [
        ("apps/absolute.yaml", "SymlinkOutside(\"/etc/passwd\")"),
        ("apps/big-link.yaml", "TooLarge { size: 2048, limit: 1024 }"),
        ("apps/big.yaml", "TooLarge { size: 2048, limit: 1024 }"),
        ("apps/chain.yaml", "Bytes(12 bytes)"),
        (
            "apps/dangling.yaml",
            "SymlinkUnresolved(\"missing.yaml\": apps/missing.yaml: no such file in the commit)",
        ),
        ("apps/escape.yaml", "SymlinkOutside(\"../../etc/passwd\")"),
        ("apps/inside.yaml", "Bytes(12 bytes)"),
        (
            "apps/loop-a.yaml",
            "SymlinkUnresolved(\"loop-b.yaml\": more than 8 symlinks)",
        ),
        (
            "apps/loop-b.yaml",
            "SymlinkUnresolved(\"loop-a.yaml\": more than 8 symlinks)",
        ),
        ("apps/nested/more.yml", "Bytes(8 bytes)"),
        ("apps/podinfo.yaml", "Bytes(8 bytes)"),
        (
            "apps/to-dir.yaml",
            "SymlinkUnresolved(\"../other\": not a regular file)",
        ),
        ("apps/via-dirlink.yaml", "Bytes(12 bytes)"),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_string(), c.to_string()))
    .collect();
    assert_eq!(described(&snap), want);
    assert_eq!(
        bytes_of(&snap, "apps/inside.yaml").as_deref(),
        Some(&b"kind: Other\n"[..])
    );

    // The whole repository: .serin/ stays out at any depth, other/ comes in.
    let all = repo.snapshot(head, &all_yaml()).expect("snapshot all");
    let paths: Vec<&str> = all.files.iter().map(|f| f.path.as_str()).collect();
    assert!(paths.contains(&"other/x.yaml"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains(".serin")), "{paths:?}");
}

#[test]
fn snapshots_agree_with_the_directory_source() {
    let up = rules_fixture();
    let (_cache, fetched) = fetch_new(&up.file_url(), GitAuth::None);
    let (repo, head) = fetched.expect("fetch");
    for path in ["", "apps", "other"] {
        let options = SnapshotOptions {
            path: path.into(),
            max_file_bytes: 1024,
        };
        let from_git = repo.snapshot(head, &options).expect("git snapshot");
        let from_dir = dir::read_dir(&up.work(), &options).expect("dir snapshot");
        let paths = |s: &Snapshot| s.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
        assert_eq!(paths(&from_git), paths(&from_dir), "paths under {path:?}");
        // Readable files and size-limited files are identical; for broken links the two
        // sources word their reasons differently (the OS vs the tree).
        for (g, d) in from_git.files.iter().zip(&from_dir.files) {
            if matches!(
                d.content,
                FileContent::Bytes(_) | FileContent::TooLarge { .. }
            ) {
                assert_eq!(g, d, "{} under {path:?}", g.path);
            }
        }
    }
}

#[test]
fn a_missing_path_is_an_error() {
    let up = rules_fixture();
    let (_cache, fetched) = fetch_new(&up.file_url(), GitAuth::None);
    let (repo, head) = fetched.expect("fetch");
    for missing in ["nope", "apps/podinfo.yaml", "apps/nope/deeper"] {
        let options = SnapshotOptions {
            path: missing.into(),
            ..Default::default()
        };
        let err = repo.snapshot(head, &options).expect_err("missing path");
        assert!(
            matches!(err, GitError::Source(SourceError::PathNotFound { .. })),
            "{err:?}"
        );
        let want = format!(
            "path {missing:?} does not exist in {}@{}",
            up.file_url(),
            head.short()
        );
        assert_eq!(err.to_string(), want);
    }
    // A symlinked directory is a fine path, and files are reported under it.
    let options = SnapshotOptions {
        path: "apps/dirlink".into(),
        ..Default::default()
    };
    let snap = repo
        .snapshot(head, &options)
        .expect("path through a symlink");
    assert_eq!(
        described(&snap),
        vec![(
            "apps/dirlink/x.yaml".to_string(),
            "Bytes(12 bytes)".to_string()
        )]
    );
}

#[test]
fn a_local_checkout_resolves_and_reads_like_a_mirror() {
    let up = rules_fixture();
    up.write("apps/podinfo.yaml", "kind: A2\n");
    let head = up.commit("change");
    let mut local = GitRepo::open_local(&up.work().join("apps")).expect("open local");
    assert_eq!(local.resolve("HEAD").expect("HEAD").to_string(), head);
    let base = local.resolve("HEAD~1").expect("HEAD~1");
    let old = local.snapshot(base, &all_yaml()).expect("base");
    assert_eq!(
        bytes_of(&old, "apps/podinfo.yaml").as_deref(),
        Some(&b"kind: A\n"[..])
    );
    let work = fs::canonicalize(up.work()).expect("canonical");
    assert!(
        old.origin.starts_with(&work.display().to_string()),
        "{}",
        old.origin
    );
    let err = local
        .fetch("main")
        .expect_err("no fetching into a checkout");
    assert!(matches!(err, GitError::NoRemote { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// The worker: async callers, one thread, operations in order
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_serves_async_callers_one_operation_at_a_time() {
    let up = Upstream::new();
    up.write("a.yaml", "v: 1\n");
    let first = up.commit("first");
    let cache = Temp::new("cache");
    let repo = GitRepo::open_or_init(&up.file_url(), cache.path(), GitAuth::None).expect("open");
    let worker = GitWorker::spawn(repo).expect("spawn");
    assert_eq!(worker.origin(), up.file_url());

    let fetched = worker
        .with(|repo| repo.fetch("main"))
        .await
        .expect("worker")
        .expect("fetch");
    assert_eq!(fetched.to_string(), first);

    // Many concurrent callers; each sees a consistent repository and gets its own answer.
    let calls = (0..8).map(|i| {
        let worker = worker.clone();
        tokio::spawn(async move {
            worker
                .with(move |repo| {
                    let head = repo.resolve("main")?;
                    let snap = repo.snapshot(head, &SnapshotOptions::default())?;
                    Ok::<_, GitError>((i, snap.files.len()))
                })
                .await
        })
    });
    for (i, call) in calls.enumerate() {
        let (n, files) = call.await.expect("join").expect("worker").expect("op");
        assert_eq!((n, files), (i, 1));
    }

    // A panicking operation is reported to its caller, and the worker goes on.
    let err = worker
        .with(|_repo| -> u8 { panic!("boom (expected by the test)") })
        .await
        .expect_err("panic");
    assert!(matches!(err, GitError::WorkerStopped { .. }), "{err:?}");
    let again = worker.with(|repo| repo.resolve("main")).await;
    assert_eq!(
        again.expect("worker alive").expect("resolve").to_string(),
        first
    );
}

// ---------------------------------------------------------------------------------------
// Smart HTTP with Basic auth: git http-backend behind a tiny CGI server
// ---------------------------------------------------------------------------------------

const USER: &str = "serin-bot";
const TOKEN: &str = "tok-3f9c2a1b-right";
const WRONG: &str = "tok-wrong-77e1d0";

#[path = "support/http_git.rs"]
mod http_git;
use http_git::HttpGit;

fn http_fixture() -> (Upstream, HttpGit, String) {
    let up = Upstream::new();
    up.write("apps/podinfo.yaml", "kind: Canary\n");
    let head = up.commit("first");
    let server = HttpGit::start(up.tmp.path(), USER, TOKEN);
    (up, server, head)
}

fn secret_file(dir: &Path, name: &str, value: &str) -> SecretSource {
    let path = dir.join(name);
    fs::write(&path, format!("{value}\n")).expect("write secret");
    SecretSource::File(path)
}

#[test]
fn http_fetch_with_the_right_token() {
    let (_up, server, head) = http_fixture();
    let secrets = Temp::new("secrets");
    let auth = GitAuth::Token {
        username: USER.into(),
        token: secret_file(secrets.path(), "token", TOKEN),
    };
    let (_cache, fetched) = fetch_new(&server.url("bare.git"), auth);
    let (repo, commit) = fetched.unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(commit.to_string(), head);
    let snap = repo.snapshot(commit, &all_yaml()).expect("snapshot");
    assert_eq!(
        bytes_of(&snap, "apps/podinfo.yaml").as_deref(),
        Some(&b"kind: Canary\n"[..])
    );
}

#[test]
fn http_basic_auth_reads_the_password_from_an_environment_variable() {
    // Tests cannot set variables (set_var is unsafe in edition 2024 and unsafe code is
    // forbidden), so the value of an existing one serves as the password.
    let password = std::env::var("PATH").expect("PATH is set");
    let up = Upstream::new();
    up.write("a.yaml", "v: 1\n");
    let head = up.commit("first");
    let server = HttpGit::start(up.tmp.path(), USER, &password);
    let auth = GitAuth::Basic {
        username: USER.into(),
        password: SecretSource::Env("PATH".into()),
    };
    let (_cache, fetched) = fetch_new(&server.url("bare.git"), auth);
    let (_repo, commit) = fetched.unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(commit.to_string(), head);
}

#[test]
fn http_wrong_token_fails_once_without_showing_it() {
    let (_up, server, _head) = http_fixture();
    let secrets = Temp::new("secrets");
    let auth = GitAuth::Token {
        username: USER.into(),
        token: secret_file(secrets.path(), "token", WRONG),
    };
    let started = Instant::now();
    let (_cache, fetched) = fetch_new(&server.url("bare.git"), auth);
    let err = fetched.expect_err("wrong token");
    assert!(matches!(err, GitError::AuthRejected { .. }), "{err:?}");
    let text = format!("{} / {err:?}", chain(&err));
    assert!(!text.contains(WRONG), "{text}");
    assert!(text.contains("rejected the credentials"), "{text}");
    assert!(text.contains(&server.url("bare.git")), "{text}");
    // One request without credentials, one with the wrong ones, and no retries after that.
    assert!(server.refused.load(Ordering::SeqCst) <= 2, "retried");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn http_without_credentials_says_what_the_server_wants() {
    let (_up, server, _head) = http_fixture();
    let (_cache, fetched) = fetch_new(&server.url("bare.git"), GitAuth::None);
    let err = fetched.expect_err("no credentials");
    assert!(matches!(err, GitError::AuthUnavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("user/password"), "{err}");
}

#[test]
fn http_credentials_in_the_url_are_scrubbed_everywhere() {
    let (_up, server, head) = http_fixture();

    // Right credentials embedded in the URL: libgit2 uses them, Serin never shows them.
    let url = server.url_with(&format!("{USER}:{TOKEN}"), "bare.git");
    assert_eq!(scrub_url(&url), server.url("bare.git"));
    let (_cache, fetched) = fetch_new(&url, GitAuth::None);
    let (repo, commit) = fetched.unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(commit.to_string(), head);
    let snap = repo.snapshot(commit, &all_yaml()).expect("snapshot");
    for shown in [
        repo.origin().to_string(),
        format!("{repo:?}"),
        snap.origin.clone(),
        format!("{snap:?}"),
    ] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }
    let err = repo.resolve("nope").expect_err("unknown rev");
    assert!(!chain(&err).contains(TOKEN), "{err}");

    // Wrong credentials embedded in the URL: the error shows neither token nor user:token.
    let url = server.url_with(&format!("{USER}:{WRONG}"), "bare.git");
    let (_cache, fetched) = fetch_new(&url, GitAuth::None);
    let err = fetched.expect_err("wrong embedded token");
    assert!(matches!(err, GitError::AuthRejected { .. }), "{err:?}");
    let text = format!("{} / {err:?}", chain(&err));
    assert!(!text.contains(WRONG), "{text}");
    assert!(text.contains(&server.url("bare.git")), "{text}");

    // A repository that does not exist: libgit2's own message echoes the URL; scrubbed too.
    let url = server.url_with(&format!("{USER}:{TOKEN}"), "missing.git");
    let (_cache, fetched) = fetch_new(&url, GitAuth::None);
    let err = fetched.expect_err("missing repository");
    let text = format!("{} / {err:?}", chain(&err));
    assert!(!text.contains(TOKEN), "{text}");
}

// ---------------------------------------------------------------------------------------
// SSH: a real sshd on 127.0.0.1, a key, and known_hosts
// ---------------------------------------------------------------------------------------

fn find_sshd() -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join("sshd");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "sshd (the OpenSSH server) is not installed, so the SSH transport cannot be tested. \
         Install it, e.g. `apt-get install -y openssh-server` on Debian/Ubuntu; the tests \
         start their own sshd on 127.0.0.1 and do not need the system service."
    );
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "serin-test", "-f"])
        .arg(path)
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `SHA256:...` fingerprint as OpenSSH itself prints it.
fn openssh_fingerprint(public_key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public_key)
        .output()
        .expect("run ssh-keygen -l");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

struct Sshd {
    child: Child,
    port: u16,
    dir: Temp,
}

impl Sshd {
    fn start() -> Sshd {
        let sshd = find_sshd();
        let dir = Temp::new("sshd");
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).expect("authorized");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\n\
             UsePAM no\nStrictModes no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
            d = d.display()
        );
        fs::write(d.join("sshd_config"), config).expect("config");
        // Run as root, sshd insists on its privilege separation directory, which only the
        // system service would otherwise create.
        if current_user() == "root" {
            fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        }
        let log = fs::File::create(d.join("sshd.log")).expect("log");
        let child = Command::new(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let mut server = Sshd { child, port, dir };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited with {status}: {}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sshd did not listen on port {}: {}", self.port, self.log());
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    fn url(&self, repo: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            current_user(),
            self.port,
            repo.display()
        )
    }

    fn host_public_key(&self) -> String {
        let line = fs::read_to_string(self.dir.path().join("host_key.pub")).expect("host key");
        let mut fields = line.split_whitespace();
        format!(
            "{} {}",
            fields.next().expect("type"),
            fields.next().expect("key")
        )
    }

    fn host_fingerprint(&self) -> String {
        openssh_fingerprint(&self.dir.path().join("host_key.pub"))
    }

    fn known_hosts(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, content).expect("known_hosts");
        path
    }

    fn auth(&self, known_hosts: PathBuf) -> GitAuth {
        GitAuth::Ssh {
            private_key: SecretSource::File(self.dir.path().join("client_key")),
            passphrase: None,
            known_hosts,
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_fetch_with_a_key_and_a_known_host() {
    let up = Upstream::new();
    up.write("apps/podinfo.yaml", "kind: Canary\n");
    let head = up.commit("first");
    let sshd = Sshd::start();
    let line = format!("[127.0.0.1]:{} {}\n", sshd.port, sshd.host_public_key());
    let auth = sshd.auth(sshd.known_hosts("known_hosts", &line));
    let (_cache, fetched) = fetch_new(&sshd.url(&up.bare()), auth.clone());
    let (mut repo, commit) = fetched.unwrap_or_else(|e| panic!("{} / {}", chain(&e), sshd.log()));
    assert_eq!(commit.to_string(), head);
    let snap = repo.snapshot(commit, &all_yaml()).expect("snapshot");
    assert_eq!(
        bytes_of(&snap, "apps/podinfo.yaml").as_deref(),
        Some(&b"kind: Canary\n"[..])
    );

    // The host listed among aliases is found too.
    let line = format!(
        "git.example,[127.0.0.1]:{} {}\n",
        sshd.port,
        sshd.host_public_key()
    );
    let auth = sshd.auth(sshd.known_hosts("known_hosts_alias", &line));
    let (_cache, fetched) = fetch_new(&sshd.url(&up.bare()), auth);
    fetched.unwrap_or_else(|e| panic!("{}", chain(&e)));

    up.write("apps/podinfo.yaml", "kind: Canary2\n");
    let second = up.commit("second");
    assert_eq!(repo.fetch("main").expect("fetch again").to_string(), second);
}

#[test]
fn ssh_unknown_or_changed_host_keys_are_refused() {
    let up = Upstream::new();
    up.write("a.yaml", "v: 1\n");
    up.commit("first");
    let sshd = Sshd::start();
    let fingerprint = sshd.host_fingerprint();
    let host = format!("[127.0.0.1]:{}", sshd.port);
    let other = Temp::new("other-key");
    keygen(&other.path().join("k"));
    let other_key = fs::read_to_string(other.path().join("k.pub")).expect("other key");

    let cases = [
        ("empty", String::new(), "unknown"),
        (
            "other-host",
            format!("[127.0.0.1]:1 {}\n", sshd.host_public_key()),
            "unknown",
        ),
        (
            "port-22-form",
            format!("127.0.0.1 {}\n", sshd.host_public_key()),
            "unknown",
        ),
        ("changed", format!("{host} {other_key}"), "changed"),
    ];
    for (name, content, want) in cases {
        let auth = sshd.auth(sshd.known_hosts(name, &content));
        let (_cache, fetched) = fetch_new(&sshd.url(&up.bare()), auth);
        let err = fetched.expect_err(name);
        let GitError::HostKey { source, .. } = &err else {
            panic!("{name}: {err:?}");
        };
        match (want, source.as_ref()) {
            ("unknown", HostKeyError::Unknown { .. })
            | ("changed", HostKeyError::Changed { .. }) => {}
            _ => panic!("{name}: want {want}, got {source:?}"),
        }
        let text = chain(&err);
        assert!(
            text.contains(&host) && text.contains(&fingerprint),
            "{name}: {text}"
        );
    }

    // Hashed entries cannot be read; the error says so instead of a bare "unknown".
    let hashed = sshd.known_hosts("hashed", &format!("{host} {}\n", sshd.host_public_key()));
    let out = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&hashed)
        .output()
        .expect("hash known_hosts");
    assert!(out.status.success());
    let (_cache, fetched) = fetch_new(&sshd.url(&up.bare()), sshd.auth(hashed));
    let err = fetched.expect_err("hashed");
    let text = chain(&err);
    assert!(
        text.contains("hashed") && text.contains(&fingerprint),
        "{text}"
    );
}

#[test]
fn ssh_a_refused_key_is_tried_once() {
    let up = Upstream::new();
    up.write("a.yaml", "v: 1\n");
    up.commit("first");
    let sshd = Sshd::start();
    let line = format!("[127.0.0.1]:{} {}\n", sshd.port, sshd.host_public_key());
    let known = sshd.known_hosts("known_hosts", &line);
    let stranger = Temp::new("stranger");
    keygen(&stranger.path().join("k"));
    let auth = GitAuth::Ssh {
        private_key: SecretSource::File(stranger.path().join("k")),
        passphrase: None,
        known_hosts: known,
    };
    let started = Instant::now();
    let (_cache, fetched) = fetch_new(&sshd.url(&up.bare()), auth);
    let err = fetched.expect_err("unauthorized key");
    assert!(
        matches!(err, GitError::AuthRejected { .. }),
        "{} / {}",
        chain(&err),
        sshd.log()
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
