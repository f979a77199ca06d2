//! The ledger writer against a real repository (file:// remote, `git` CLI to read it back):
//! observations become commits on the status branch, and a failure with `revert-branch`
//! proposes the revert on its own branch while the followed branch keeps its manifests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serin::api::{CanaryPhase, CanaryStatus};
use serin::catalog::CatalogOptions;
use serin::ledger::{
    Granularity, LedgerConfig, LedgerWriter, Observation, OnFailure, RevisionOrigin,
};
use serin::source::SnapshotOptions;
use serin::source::git::{Author, GitAuth, GitRepo, GitWorker};

struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Pat")
        .env("GIT_AUTHOR_EMAIL", "pat@example.com")
        .env("GIT_COMMITTER_NAME", "Pat")
        .env("GIT_COMMITTER_EMAIL", "pat@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const CANARY: &str = "apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
";

fn deployment(image: &str) -> String {
    format!(
        "# keep me
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: test
spec:
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
    spec:
      containers:
        - name: podinfod
          image: {image}
"
    )
}

fn observation(
    phase: CanaryPhase,
    weight: i32,
    hash: &str,
    commit: &str,
    promoted: &str,
) -> Observation {
    Observation {
        namespace: "test".into(),
        name: "podinfo".into(),
        status: CanaryStatus {
            phase,
            canary_weight: weight,
            last_applied_spec: Some(hash.into()),
            last_promoted_spec: Some(promoted.into()),
            ..Default::default()
        },
        target_hash: hash.into(),
        origin: RevisionOrigin {
            source_commit: commit.into(),
            manifest_revision: format!("m-{hash}"),
            cause: vec![format!("podinfod: podinfo:6.0.0 → {hash}")],
        },
        events: if phase == CanaryPhase::Failed {
            vec![(
                true,
                "Halt podinfo.test advancement error-rate 30.00 > 1".into(),
            )]
        } else {
            Vec::new()
        },
        gates: Vec::new(),
        now: "2026-11-22T10:00:00Z".into(),
        on_failure: Some("revert-branch".into()),
        previous: None,
    }
}

#[tokio::test]
async fn a_failure_proposes_its_revert_on_a_branch_and_the_ledger_goes_to_the_status_branch() {
    let root =
        Temp(std::env::temp_dir().join(format!("serin-ledger-writer-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&root.0);
    let bare = root.0.join("config.git");
    let work = root.0.join("work");
    std::fs::create_dir_all(&bare).expect("mkdir");
    git(&bare, &["init", "--bare", "-q", "-b", "main"]);
    git(
        &root.0,
        &["clone", "-q", bare.to_str().expect("utf8"), "work"],
    );
    std::fs::create_dir_all(work.join("apps")).expect("mkdir");
    std::fs::write(work.join("apps/canary.yaml"), CANARY).expect("write");
    std::fs::write(
        work.join("apps/deployment.yaml"),
        deployment("podinfo:6.0.0"),
    )
    .expect("write");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "6.0.0"]);
    let promoted = git(&work, &["rev-parse", "HEAD"]).trim().to_string();
    std::fs::write(
        work.join("apps/deployment.yaml"),
        deployment("podinfo:6.0.1"),
    )
    .expect("write");
    git(&work, &["commit", "-q", "-am", "6.0.1"]);
    let failed = git(&work, &["rev-parse", "HEAD"]).trim().to_string();
    git(&work, &["push", "-q", "origin", "HEAD:main"]);

    let url = format!("file://{}", bare.display());
    let mut repo =
        GitRepo::open_or_init(&url, &root.0.join("cache"), GitAuth::None).expect("mirror");
    repo.fetch("main").expect("fetch");
    let worker = GitWorker::spawn(repo).expect("worker");
    let config = LedgerConfig {
        branch: "main".into(),
        status_branch: "serin-status".into(),
        author: Author {
            name: "Serin".into(),
            email: "serin@test".into(),
        },
        granularity: Granularity::All,
        on_failure: OnFailure::Record,
        snapshot: SnapshotOptions {
            path: "apps".into(),
            ..Default::default()
        },
        catalog: CatalogOptions::default(),
        git_timeout: Duration::from_secs(30),
    };
    let mut writer = LedgerWriter::new(worker, config, Vec::new());
    writer
        .record(vec![observation(
            CanaryPhase::Initialized,
            0,
            "h1",
            &promoted,
            "h1",
        )])
        .await;
    writer
        .record(vec![observation(
            CanaryPhase::Progressing,
            0,
            "h2",
            &failed,
            "h1",
        )])
        .await;
    writer
        .record(vec![observation(
            CanaryPhase::Progressing,
            10,
            "h2",
            &failed,
            "h1",
        )])
        .await;
    writer
        .record(vec![observation(
            CanaryPhase::Failed,
            0,
            "h2",
            &failed,
            "h1",
        )])
        .await;
    assert!(writer.push().await, "every queued commit is pushed");

    // The ledger is on its own branch, in order; main keeps the people's commits only.
    let subjects = git(&bare, &["log", "--reverse", "--format=%s", "serin-status"]);
    let ledger: Vec<&str> = subjects
        .lines()
        .filter(|s| s.starts_with("podinfo.test: "))
        .collect();
    assert_eq!(
        ledger,
        [
            "podinfo.test: initialization done at revision m-h1",
            "podinfo.test: new revision detected, starting canary analysis (podinfod: podinfo:6.0.0 → h2)",
            "podinfo.test: advance canary weight 10",
            "podinfo.test: canary failed, rolled back after 0 failed checks (podinfod: podinfo:6.0.0 → h2)",
        ]
    );
    assert_eq!(
        git(&bare, &["rev-parse", "main"]).trim(),
        failed,
        "main is untouched"
    );

    // The revert is proposed on a branch started from main's head.
    let branch = "serin/revert/test-podinfo-h2";
    let reverted = git(&bare, &["show", &format!("{branch}:apps/deployment.yaml")]);
    assert_eq!(reverted, deployment("podinfo:6.0.0"));
    let parent = git(&bare, &["rev-parse", &format!("{branch}~1")]);
    assert_eq!(parent.trim(), failed);
    let body = git(&bare, &["log", "-1", "--format=%B", branch]);
    assert!(
        body.contains("Evidence:\n- Halt podinfo.test advancement error-rate 30.00 > 1"),
        "{body}"
    );
    assert!(body.contains(&format!("Serin-Reverts: {failed}")), "{body}");
    let record = git(
        &bare,
        &["show", "serin-status:.serin/status/test/podinfo.yaml"],
    );
    assert!(
        record.contains("revert to the promoted revision of") && record.contains(branch),
        "{record}"
    );
}

#[tokio::test]
async fn observations_wait_for_the_ledger_when_the_remote_was_never_reached() {
    let root = Temp(std::env::temp_dir().join(format!("serin-ledger-wait-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&root.0);
    std::fs::create_dir_all(&root.0).expect("mkdir");
    let bare = root.0.join("config.git");
    let url = format!("file://{}", bare.display());
    // The remote does not exist yet: Serin starts while it is unreachable.
    let repo = GitRepo::open_or_init(&url, &root.0.join("cache"), GitAuth::None).expect("mirror");
    let worker = GitWorker::spawn(repo).expect("worker");
    let config = LedgerConfig {
        branch: "main".into(),
        status_branch: "main".into(),
        author: Author {
            name: "Serin".into(),
            email: "serin@test".into(),
        },
        granularity: Granularity::All,
        on_failure: OnFailure::Record,
        snapshot: SnapshotOptions::default(),
        catalog: CatalogOptions::default(),
        git_timeout: Duration::from_secs(30),
    };
    let mut writer = LedgerWriter::resume(worker.clone(), config);
    let mut first = observation(CanaryPhase::Progressing, 10, "h2", "c2", "h1");
    first.on_failure = None;
    writer.record(vec![first]).await;
    assert!(!writer.push().await, "nothing can be pushed yet");

    // The remote appears, with a ledger that has history.
    std::fs::create_dir_all(&bare).expect("mkdir");
    git(&bare, &["init", "--bare", "-q", "-b", "main"]);
    let work = root.0.join("work");
    git(
        &root.0,
        &["clone", "-q", bare.to_str().expect("utf8"), "work"],
    );
    std::fs::create_dir_all(work.join(".serin/status/test")).expect("mkdir");
    std::fs::write(
        work.join(".serin/status/test/podinfo.yaml"),
        "canary: test/podinfo\nphase: Succeeded\nrevision:\n  hash: h1\nhistory:\n- result: Succeeded\n  revision:\n    hash: h1\n  finished: '2026-11-01T00:00:00Z'\n",
    )
    .expect("write");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "the ledger so far"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    worker
        .with(|repo| repo.fetch("main").map(|_| ()))
        .await
        .expect("worker")
        .expect("fetch");
    let mut second = observation(CanaryPhase::Progressing, 20, "h2", "c2", "h1");
    second.on_failure = None;
    writer.record(vec![second]).await;
    assert!(writer.push().await);
    let subjects = git(&bare, &["log", "--reverse", "--format=%s", "main"]);
    assert!(
        subjects.contains("podinfo.test: new revision detected")
            && subjects.contains("podinfo.test: advance canary weight 20"),
        "{subjects}"
    );
    let record = git(&bare, &["show", "main:.serin/status/test/podinfo.yaml"]);
    assert!(
        record.contains("finished: '2026-11-01T00:00:00Z'")
            || record.contains("finished: 2026-11-01T00:00:00Z"),
        "the history was kept:\n{record}"
    );
}
