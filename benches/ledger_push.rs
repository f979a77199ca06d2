//! What a ledger cycle costs in Git: a bare upstream served by `git daemon` on 127.0.0.1
//! holds 1,000 status files (`.serin/status/ns-<i>/app-<i>.yaml`, ~600 bytes each); Serin's
//! mirror queues one commit that rewrites all of them and pushes it, then one that changes a
//! single file and pushes it. Five rounds; the median is printed.
//! Run: `cargo bench --bench ledger_push`.
//!
//! Figures on the 2-core development machine (release build, median of 5 rounds, other
//! builds running alongside):
//!
//! | cycle        | queue_commit | push (fetch + push over git://) |
//! |--------------|--------------|---------------------------------|
//! | 1,000 files  | 199 ms       | 229 ms                          |
//! | 1 file       | 2.4 ms       | 102 ms                          |
//!
//! Writing the 1,000 blobs alone takes 67 ms (printed for comparison); a cycle also writes
//! the 1,000 `ns-<i>` directory trees that hold them, so loose-object writes are most of it.
//! Before `TreeIndex` (commit.rs) parsed each directory once, queueing took 840 ms: libgit2
//! does not cache trees over 4 KiB, so it re-read the 33 KB `.serin/status` for every file.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serin::source::git::{Author, FileChange, GitAuth, GitRepo};

const FILES: usize = 1000;
const ROUNDS: usize = 5;

fn status_file(i: usize, round: usize) -> String {
    let mut body = format!(
        "# Written by Serin: the durable record of test/app-{i}.\n\
         canary: ns-{i}/app-{i}\n\
         phase: Progressing\n\
         round: {round}\n\
         canaryWeight: {weight}\n\
         failedChecks: 0\n\
         iterations: {round}\n\
         lastAppliedSpec: 5f7d9c6b8d{i:06}\n\
         lastPromotedSpec: 7c9b5d8f6a{i:06}\n\
         lastTransitionTime: \"2024-05-01T12:{m:02}:00Z\"\n\
         conditions:\n\
         - type: Promoted\n\
         \x20 status: Unknown\n\
         \x20 reason: Progressing\n\
         \x20 message: New revision detected, progressing canary analysis.\n\
         trackedConfigs:\n\
         \x20 configmap/app-{i}-config: 2b5f6e7d8c9a0b1c\n\
         \x20 secret/app-{i}-secret: 9e8d7c6b5a4f3e2d\n",
        weight = (round * 10) % 100,
        m = round % 60,
    );
    // Padded to ~600 bytes, the size of a status file with a few metric results.
    while body.len() < 600 {
        body.push_str("# metric request-success-rate 99.9 threshold 99\n");
    }
    body
}

fn path(i: usize) -> String {
    format!(".serin/status/ns-{i}/app-{i}.yaml")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes the bench's directory and stops the daemon, also when the bench panics.
struct Rig {
    root: PathBuf,
    daemon: Child,
    port: u16,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn rig() -> Rig {
    let root = std::env::temp_dir().join(format!("serin-bench-ledger-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).expect("temp dir");
    git(&root, &["init", "-q", "--bare", "-b", "main", "up.git"]);
    git(&root, &["init", "-q", "-b", "main", "work"]);
    let work = root.join("work");
    fs::write(work.join("README.md"), "config repo\n").expect("write");
    for i in 0..FILES {
        let p = work.join(path(i));
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, status_file(i, 0)).expect("write");
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "1,000 status files"]);
    let bare = root.join("up.git").display().to_string();
    git(&work, &["push", "-q", &bare, "main"]);

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let exec_path = git(&root, &["--exec-path"]);
    let daemon = Command::new(Path::new(&exec_path).join("git-daemon"))
        .arg("--reuseaddr")
        .arg(format!("--base-path={}", root.display()))
        .arg("--export-all")
        .arg("--enable=receive-pack")
        .arg("--listen=127.0.0.1")
        .arg(format!("--port={port}"))
        .arg(&root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start git daemon");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "git daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Rig { root, daemon, port }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let rig = rig();
    let url = format!("git://127.0.0.1:{}/up.git", rig.port);
    let cache = rig.root.join("cache");
    let mut repo = GitRepo::open_or_init(&url, &cache, GitAuth::None).expect("open mirror");
    repo.fetch("main").expect("fetch");
    let author = Author {
        name: "Serin".into(),
        email: "serin@example.com".into(),
    };

    let (mut queue_all, mut push_all, mut queue_one, mut push_one, mut blobs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let all: Vec<FileChange> = (0..FILES)
            .map(|i| FileChange {
                path: path(i),
                content: Some(status_file(i, round).into_bytes()),
            })
            .collect();
        let started = Instant::now();
        let commit = repo
            .queue_commit(
                "main",
                &all,
                &format!("cycle {round}: 1,000 canaries"),
                &author,
            )
            .expect("queue all");
        queue_all.push(started.elapsed());
        assert!(commit.is_some(), "the cycle changes every file");
        // For comparison: writing the same amount of new blobs alone.
        let odb_repo = repo.repository();
        let started = Instant::now();
        for i in 0..FILES {
            let body = format!("{}# blob-only {round}\n", status_file(i, round));
            odb_repo.blob(body.as_bytes()).expect("blob");
        }
        blobs.push(started.elapsed());
        let started = Instant::now();
        let report = repo.push("main").expect("push all");
        push_all.push(started.elapsed());
        assert_eq!(report.pushed.len(), 1);

        let one = [FileChange {
            path: path(round),
            content: Some(status_file(round, round * 100).into_bytes()),
        }];
        let started = Instant::now();
        repo.queue_commit("main", &one, &format!("cycle {round}: one canary"), &author)
            .expect("queue one")
            .expect("a change");
        queue_one.push(started.elapsed());
        let started = Instant::now();
        let report = repo.push("main").expect("push one");
        push_one.push(started.elapsed());
        assert_eq!(report.pushed.len(), 1);

        println!(
            "round {round}: 1,000 files: queue {} (1,000 blobs alone {}) push {}; 1 file: queue {} push {}",
            ms(queue_all[round - 1]),
            ms(blobs[round - 1]),
            ms(push_all[round - 1]),
            ms(queue_one[round - 1]),
            ms(push_one[round - 1]),
        );
    }
    let upstream_head = git(&rig.root.join("up.git"), &["rev-parse", "main"]);
    assert_eq!(
        upstream_head,
        repo.resolve("main").expect("tracking").to_string()
    );
    println!(
        "median of {ROUNDS}: 1,000 files: queue_commit {} (1,000 blobs alone {}) push {}; \
         1 file: queue_commit {} push {}",
        ms(median(queue_all)),
        ms(median(blobs)),
        ms(median(push_all)),
        ms(median(queue_one)),
        ms(median(push_one)),
    );
}
