//! The GitOps loop as a user drives it: a config repository served by `git daemon` on
//! 127.0.0.1, people committing and pushing with the `git` CLI, `serin run --repo` pulling from
//! it (poll and push webhook), and the ledger read back with `git log`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serin::api::{Canary, CanaryPhase};
use serin::ledger::LedgerRecord;

use crate::TestResult;
use crate::support::{Context, TestCtx, eventually, install_flagger_crds};

const MINUTES: Duration = Duration::from_secs(180);
const SECRET: &str = "e2e-webhook-secret";

fn free_port() -> Result<u16, libtest_mimic::Failed> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .context("bind")?
        .local_addr()
        .context("addr")?
        .port())
}

fn git(dir: &Path, args: &[&str]) -> Result<String, libtest_mimic::Failed> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Pat Person")
        .env("GIT_AUTHOR_EMAIL", "pat@example.com")
        .env("GIT_COMMITTER_NAME", "Pat Person")
        .env("GIT_COMMITTER_EMAIL", "pat@example.com")
        .output()
        .context("run git")?;
    if !out.status.success() {
        return Err(format!(
            "git {args:?} in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The config repository: a bare repository served by `git daemon`, which the test stops and
/// starts like a real remote going away.
struct Remote {
    root: PathBuf,
    port: u16,
    daemon: Option<Child>,
}

impl Remote {
    fn new(root: &Path) -> Result<Remote, libtest_mimic::Failed> {
        let _ = std::fs::remove_dir_all(root);
        std::fs::create_dir_all(root.join("config.git")).context("mkdir")?;
        git(
            &root.join("config.git"),
            &["init", "--bare", "-q", "-b", "main"],
        )?;
        let mut remote = Remote {
            root: root.to_path_buf(),
            port: free_port()?,
            daemon: None,
        };
        remote.start()?;
        Ok(remote)
    }

    fn bare(&self) -> PathBuf {
        self.root.join("config.git")
    }

    fn url(&self) -> String {
        format!("git://127.0.0.1:{}/config.git", self.port)
    }

    fn start(&mut self) -> TestResult {
        // git-daemon itself, not the `git daemon` wrapper: killing the wrapper would leave
        // the daemon serving, and the outage would not be one.
        let exec_path = git(&self.root, &["--exec-path"])?;
        let child = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
            .arg("--reuseaddr")
            .arg(format!("--base-path={}", self.root.display()))
            .arg("--export-all")
            .arg("--enable=receive-pack")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start git daemon")?;
        self.daemon = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err("git daemon did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }

    /// `git log` of main, oldest first, in `format`.
    fn log(&self, format: &str) -> Result<Vec<String>, libtest_mimic::Failed> {
        let out = git(
            &self.bare(),
            &[
                "log",
                "--reverse",
                "-z",
                &format!("--format={format}"),
                "main",
            ],
        )?;
        Ok(out
            .split('\0')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect())
    }

    fn show(&self, what: &str) -> Result<String, libtest_mimic::Failed> {
        git(&self.bare(), &["show", what])
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A person's checkout of the config repository.
struct Person {
    work: PathBuf,
}

impl Person {
    fn clone_of(remote: &Remote, dir: &Path) -> Result<Person, libtest_mimic::Failed> {
        let _ = std::fs::remove_dir_all(dir);
        let out = Command::new("git")
            .arg("clone")
            .arg("-q")
            .arg(remote.bare())
            .arg(dir)
            .output()
            .context("git clone")?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        Ok(Person {
            work: dir.to_path_buf(),
        })
    }

    /// Pulls, edits, commits and pushes, pulling again when someone (Serin) pushed first.
    fn commit(
        &self,
        message: &str,
        edit: impl Fn(&Path) -> TestResult,
    ) -> Result<String, libtest_mimic::Failed> {
        let branch_exists = git(&self.work, &["ls-remote", "--heads", "origin", "main"])?;
        if !branch_exists.trim().is_empty() {
            git(&self.work, &["pull", "-q", "--rebase", "origin", "main"])?;
        }
        edit(&self.work)?;
        git(&self.work, &["add", "-A"])?;
        git(&self.work, &["commit", "-q", "-m", message])?;
        for attempt in 0..10 {
            match git(&self.work, &["push", "-q", "origin", "HEAD:main"]) {
                Ok(_) => return Ok(git(&self.work, &["rev-parse", "HEAD"])?.trim().to_string()),
                Err(e) if attempt == 9 => return Err(e),
                Err(_) => {
                    git(&self.work, &["pull", "-q", "--rebase", "origin", "main"])?;
                }
            }
        }
        Err("push never succeeded".into())
    }
}

fn replace_in(path: &Path, from: &str, to: &str) -> TestResult {
    let text = std::fs::read_to_string(path).context("read")?;
    if !text.contains(from) {
        return Err(format!("{} does not contain {from:?}", path.display()).into());
    }
    std::fs::write(path, text.replace(from, to)).context("write")
}

/// `serin run --repo`, killed however the test ends; its log is kept for failures.
struct Serin {
    child: Option<Child>,
    log: PathBuf,
}

impl Serin {
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Serin {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything a GitOps scenario needs around Serin.
struct Stage {
    ctx: TestCtx,
    remote: Remote,
    person: Person,
    dir: PathBuf,
    listen: u16,
    hooks_url: String,
}

impl Stage {
    async fn new(name: &str) -> Result<Stage, libtest_mimic::Failed> {
        let ctx = TestCtx::new(name).await?;
        install_flagger_crds(&ctx.client).await?;
        let ns = ctx.namespace.clone();
        let hooks = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind")?;
        let hooks_url = format!("http://{}/", hooks.local_addr().context("addr")?);
        tokio::spawn(async move {
            let _ = axum::serve(hooks, Router::new().route("/", post(|| async { "ok" }))).await;
        });
        let sim = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind")?;
        let sim_addr = sim.local_addr().context("addr")?;
        let config = serin::simulator::SimulatorConfig {
            namespaces: vec![ns.clone()],
            ..Default::default()
        };
        let client = ctx.client.clone();
        tokio::spawn(async move {
            let _ = serin::simulator::run(client, config, sim).await;
        });
        // Kept for the whole run: the environment drops the target when the guard goes.
        std::mem::forget(ctx.env.add_scrape_target(&format!("{ns}-mesh"), sim_addr)?);
        let dir = std::env::temp_dir().join(format!("serin-gitops-{ns}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).context("mkdir")?;
        std::fs::write(dir.join("secret"), SECRET).context("secret")?;
        let remote = Remote::new(&dir.join("remote"))?;
        let person = Person::clone_of(&remote, &dir.join("work"))?;
        Ok(Stage {
            ctx,
            remote,
            person,
            dir,
            listen: free_port()?,
            hooks_url,
        })
    }

    fn ns(&self) -> &str {
        &self.ctx.namespace
    }

    /// The first commit: the example config repo under `apps/`, with a README.
    fn initial_commit(
        &self,
        edit: impl Fn(&Path) -> TestResult,
    ) -> Result<String, libtest_mimic::Failed> {
        let ns = self.ns().to_string();
        let hooks = self.hooks_url.clone();
        let prometheus = self.ctx.env.prometheus_url.clone();
        self.person
            .commit("podinfo: the app and its canary", move |work| {
                crate::serin_run::write_repo(&work.join("apps"), &ns, &hooks, &prometheus)?;
                std::fs::write(work.join("README.md"), "# config\n").context("readme")?;
                edit(work)
            })
    }

    fn start_serin(&self, extra: &[&str]) -> Result<Serin, libtest_mimic::Failed> {
        let ns = self.ns();
        let log = self
            .dir
            .join(format!("serin-{}.log", Instant::now().elapsed().as_nanos()));
        let log_file = std::fs::File::create(&log).context("log")?;
        let child = Command::new(env!("CARGO_BIN_EXE_serin"))
            .args(["run", "--kubeconfig"])
            .arg(&self.ctx.env.kubeconfig)
            .args([
                "--repo",
                &self.remote.url(),
                "--branch",
                "main",
                "--path",
                "apps",
            ])
            .args(["--namespace", ns, "--default-namespace", ns])
            .args(["--inventory", ns, "--inventory-namespace", ns])
            .args(["--provider", "gatewayapi:v1"])
            .args(["--metrics-server", &self.ctx.env.prometheus_url])
            .args([
                "--min-analysis-interval",
                "1s",
                "--control-loop-interval",
                "1s",
            ])
            .args([
                "--git-timeout",
                "10s",
                "--git-author",
                "Serin <serin@e2e.test>",
            ])
            .args(if extra.contains(&"--cache-dir") {
                Vec::new()
            } else {
                vec![
                    "--cache-dir".to_string(),
                    self.dir.join("cache").display().to_string(),
                ]
            })
            .args(if extra.contains(&"--listen") {
                Vec::new()
            } else {
                vec!["--listen".to_string(), format!("127.0.0.1:{}", self.listen)]
            })
            .arg("--webhook-secret-file")
            .arg(self.dir.join("secret"))
            .args(extra)
            .env("RUST_LOG", "serin=info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .context("start serin run")?;
        Ok(Serin {
            child: Some(child),
            log,
        })
    }

    /// Delivers a GitHub push webhook for `after`, signed with the shared secret.
    async fn push_webhook(&self, after: &str) -> TestResult {
        use hmac::{Hmac, Mac};
        let body = serde_json::json!({
            "ref": "refs/heads/main",
            "after": after,
            "repository": { "full_name": "e2e/config" },
        })
        .to_string();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).context("hmac")?;
        mac.update(body.as_bytes());
        let signature: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let response = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/hooks/git", self.listen))
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", "e2e-1")
            .header("X-Hub-Signature-256", format!("sha256={signature}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .context("deliver webhook")?;
        if response.status() != reqwest::StatusCode::ACCEPTED {
            return Err(format!("the webhook got {}", response.status()).into());
        }
        Ok(())
    }

    async fn status(&self) -> Result<Option<serin::api::CanaryStatus>, libtest_mimic::Failed> {
        Ok(self
            .ctx
            .api::<Canary>()
            .get_opt("podinfo")
            .await
            .context("get canary")?
            .and_then(|c| c.status))
    }

    async fn wait_phase(&self, phase: CanaryPhase, serin: &Serin) -> TestResult {
        let result = eventually(&format!("phase {phase:?}"), MINUTES, || async {
            let s = self.status().await?;
            let seen = s.as_ref().map(|s| (s.phase, s.canary_weight));
            Ok(if seen.map(|s| s.0) == Some(phase) {
                Ok(())
            } else {
                Err(seen)
            })
        })
        .await;
        result.map_err(|e| {
            format!(
                "{}\nserin log:\n{}",
                e.message().unwrap_or_default(),
                serin.log_tail()
            )
            .into()
        })
    }

    async fn events(&self) -> Result<Vec<String>, libtest_mimic::Failed> {
        let mut list = self
            .ctx
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .context("list events")?
            .items;
        list.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
        Ok(list.into_iter().filter_map(|e| e.note).collect())
    }

    async fn image_of(&self, name: &str) -> Result<Option<String>, libtest_mimic::Failed> {
        Ok(self
            .ctx
            .api::<Deployment>()
            .get_opt(name)
            .await
            .context("get deployment")?
            .and_then(|d| d.spec)
            .and_then(|s| s.template.spec)
            .and_then(|s| s.containers.first().and_then(|c| c.image.clone())))
    }

    /// Subjects of the ledger commits of the canary, oldest first.
    fn ledger_subjects(&self) -> Result<Vec<String>, libtest_mimic::Failed> {
        let prefix = format!("podinfo.{}: ", self.ns());
        Ok(self
            .remote
            .log("%s")?
            .into_iter()
            .filter_map(|s| s.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    fn ledger_record(&self) -> Result<LedgerRecord, libtest_mimic::Failed> {
        let path = format!(".serin/status/{}/podinfo.yaml", self.ns());
        let text = self.remote.show(&format!("main:{path}"))?;
        LedgerRecord::parse(&path, text.as_bytes()).context("ledger record")
    }

    async fn finish(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        self.ctx.finish().await;
    }
}

fn position(subjects: &[String], wanted: &str) -> Option<usize> {
    subjects.iter().position(|s| s.starts_with(wanted))
}

/// The subjects must contain `wanted` as prefixes, in this order.
fn in_order(subjects: &[String], wanted: &[&str]) -> TestResult {
    let mut from = 0;
    for w in wanted {
        match subjects[from..].iter().position(|s| s.starts_with(w)) {
            Some(i) => from += i + 1,
            None => {
                return Err(format!(
                    "the ledger lacks {w:?} after position {from}; subjects: {subjects:#?}"
                )
                .into());
            }
        }
    }
    Ok(())
}

/// A pull request's merge rolls out: detected by the push webhook, recorded commit by commit,
/// while people keep pushing; then a SIGKILL mid-analysis resumes at the same step, and a
/// wiped namespace comes back at the promoted revision before the head is analysed.
pub async fn pull_request_flow_kill_and_rebuild() -> TestResult {
    let stage = Stage::new("gitops-flow").await?;
    let ns = stage.ns().to_string();
    stage.initial_commit(|_| Ok(()))?;
    // Polling is slow here: the new revision must be found through the webhook.
    let mut serin = stage.start_serin(&["--poll", "1h"])?;
    stage.wait_phase(CanaryPhase::Initialized, &serin).await?;

    let bump = stage.person.commit("podinfo: 6.0.1", |w| {
        replace_in(
            &w.join("apps/deployment.yaml"),
            "podinfo:6.0.0",
            "podinfo:6.0.1",
        )
    })?;
    let delivered = Instant::now();
    stage.push_webhook(&bump).await?;
    let detected = format!("New revision detected! Scaling up podinfo.{ns}");
    eventually(
        "the webhook to start the rollout",
        Duration::from_secs(30),
        || async {
            let events = stage.events().await?;
            Ok(if events.contains(&detected) {
                Ok(())
            } else {
                Err(events.len())
            })
        },
    )
    .await?;
    println!(
        "webhook → \"New revision detected\": {:?}",
        delivered.elapsed()
    );

    // People push unrelated commits while the analysis runs.
    eventually("weight 10", MINUTES, || async {
        let w = stage.status().await?.map_or(0, |s| s.canary_weight);
        Ok(if w >= 10 { Ok(()) } else { Err(w) })
    })
    .await?;
    let people = [
        stage.person.commit("docs: how to roll out", |w| {
            std::fs::write(w.join("README.md"), "# config\n\nOpen a pull request.\n")
                .context("write")
        })?,
        stage.person.commit("docs: owners", |w| {
            std::fs::write(w.join("OWNERS"), "pat\n").context("write")
        })?,
    ];
    stage.wait_phase(CanaryPhase::Succeeded, &serin).await?;
    if stage.image_of("podinfo-primary").await?.as_deref()
        != Some("ghcr.io/stefanprodan/podinfo:6.0.1")
    {
        return Err("the primary does not run 6.0.1".into());
    }
    // The ledger push follows the status write; give it a moment.
    eventually("the promotion commit", Duration::from_secs(30), || async {
        let s = stage.ledger_subjects()?;
        Ok(if position(&s, "promotion completed").is_some() {
            Ok(())
        } else {
            Err(s)
        })
    })
    .await?;
    let subjects = stage.ledger_subjects()?;
    in_order(
        &subjects,
        &[
            "initialization done",
            "new revision detected, starting canary analysis (podinfod: ghcr.io/stefanprodan/podinfo:6.0.0 → 6.0.1)",
            "advance canary weight 10",
            "advance canary weight 20",
            "advance canary weight 30",
            "advance canary weight 40",
            "advance canary weight 50",
            "copying the canary spec to the primary",
            "routing all traffic to the primary",
            "promotion completed",
        ],
    )?;
    if subjects.iter().any(|s| s.contains("restarting analysis")) {
        return Err(format!("people's commits restarted the analysis: {subjects:#?}").into());
    }
    let hashes = stage.remote.log("%H")?;
    for p in &people {
        if !hashes.contains(p) {
            return Err(format!("a person's commit {p} was lost").into());
        }
    }
    let last = stage.remote.log("%B")?;
    let body = last
        .iter()
        .rev()
        .find(|b| b.contains("promotion completed"))
        .ok_or("no promotion commit")?;
    for trailer in [
        format!("Serin-Canary: {ns}/podinfo"),
        "Serin-Phase: Succeeded".to_string(),
        format!("Serin-Source-Commit: {bump}"),
        "Serin-Revision: ".to_string(),
    ] {
        if !body.contains(&trailer) {
            return Err(format!("the promotion commit lacks {trailer:?}:\n{body}").into());
        }
    }
    let record = stage.ledger_record()?;
    if record.phase != CanaryPhase::Succeeded
        || record.history.first().map(|h| h.result.as_str()) != Some("Succeeded")
        || record.revision.origin.source_commit != bump
        || !record
            .revision
            .origin
            .cause
            .iter()
            .any(|c| c.contains("6.0.0 → ") && c.contains("6.0.1"))
    {
        return Err(format!("the ledger file does not explain the rollout: {record:#?}").into());
    }

    // SIGKILL mid-analysis: the restarted Serin goes on from the same weight. This time the
    // poll finds the commit.
    serin.kill();
    serin = stage.start_serin(&["--poll", "1s"])?;
    stage.person.commit("podinfo: 6.0.2", |w| {
        replace_in(
            &w.join("apps/deployment.yaml"),
            "podinfo:6.0.1",
            "podinfo:6.0.2",
        )
    })?;
    let at_kill = eventually("weight 20 of 6.0.2", MINUTES, || async {
        let s = stage.status().await?;
        let w = s.as_ref().map_or(0, |s| s.canary_weight);
        Ok(
            if w >= 20 && s.map(|s| s.phase) == Some(CanaryPhase::Progressing) {
                Ok(w)
            } else {
                Err(w)
            },
        )
    })
    .await?;
    serin.kill();
    let weight_after_kill = stage.status().await?.map_or(-1, |s| s.canary_weight);
    serin = stage.start_serin(&["--poll", "1s"])?;
    // From the restart on, the canary never goes back below the weight it was killed at.
    let mut seen = Vec::new();
    let since = Instant::now();
    loop {
        let now = stage.status().await?.map(|s| (s.phase, s.canary_weight));
        seen.push(now);
        if now.map(|n| n.0) == Some(CanaryPhase::Succeeded) {
            break;
        }
        if since.elapsed() > MINUTES {
            return Err(format!(
                "6.0.2 never succeeded after the restart: {seen:?}\n{}",
                serin.log_tail()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let fell_back = seen
        .iter()
        .flatten()
        .any(|(phase, w)| *phase == CanaryPhase::Progressing && *w < at_kill);
    let subjects = stage.ledger_subjects()?;
    let last_start = subjects
        .iter()
        .rposition(|s| s.starts_with("new revision detected"))
        .ok_or("no start of 6.0.2 in the ledger")?;
    let ladder: Vec<&String> = subjects[last_start..]
        .iter()
        .filter(|s| s.starts_with("advance canary weight"))
        .collect();
    let expected: Vec<String> = (1..=5)
        .map(|i| format!("advance canary weight {}", i * 10))
        .collect();
    if fell_back
        || weight_after_kill < at_kill
        || ladder.iter().map(|s| s.as_str()).collect::<Vec<_>>()
            != expected.iter().map(String::as_str).collect::<Vec<_>>()
    {
        return Err(format!(
            "after SIGKILL at weight {at_kill} the analysis did not resume: statuses {seen:?}, ledger {subjects:#?}"
        )
        .into());
    }

    // The cluster loses the namespace while Serin is down and 6.0.3 is merged: the primary
    // comes back at 6.0.2 (the last promoted revision), then 6.0.3 is analysed.
    serin.kill();
    stage.person.commit("podinfo: 6.0.3", |w| {
        replace_in(
            &w.join("apps/deployment.yaml"),
            "podinfo:6.0.2",
            "podinfo:6.0.3",
        )
    })?;
    let namespaces: Api<Namespace> = Api::all(stage.ctx.client.clone());
    namespaces
        .delete(&ns, &DeleteParams::foreground())
        .await
        .context("delete namespace")?;
    eventually("the namespace to go", MINUTES, || async {
        let gone = namespaces.get_opt(&ns).await.context("get ns")?.is_none();
        Ok(if gone { Ok(()) } else { Err("terminating") })
    })
    .await?;
    // The platform recreates the namespace (the config repo does not own it here).
    namespaces
        .create(
            &Default::default(),
            &Namespace {
                metadata: kube::api::ObjectMeta {
                    name: Some(ns.clone()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .context("recreate namespace")?;
    serin = stage.start_serin(&["--poll", "1s"])?;
    let primary_at_init = eventually("the rebuilt canary to initialize", MINUTES, || async {
        let s = stage.status().await?;
        let phase = s.map(|s| s.phase);
        if matches!(
            phase,
            Some(CanaryPhase::Initialized | CanaryPhase::Progressing)
        ) {
            return Ok(Ok(stage.image_of("podinfo-primary").await?));
        }
        Ok(Err(phase))
    })
    .await?;
    if primary_at_init.as_deref() != Some("ghcr.io/stefanprodan/podinfo:6.0.2") {
        return Err(format!(
            "the rebuilt primary runs {primary_at_init:?}, not the last promoted 6.0.2\n{}",
            serin.log_tail()
        )
        .into());
    }
    eventually("6.0.3 to be promoted", MINUTES, || async {
        let image = stage.image_of("podinfo-primary").await?;
        let phase = stage.status().await?.map(|s| s.phase);
        Ok(
            if phase == Some(CanaryPhase::Succeeded)
                && image.as_deref() == Some("ghcr.io/stefanprodan/podinfo:6.0.3")
            {
                Ok(())
            } else {
                Err((phase, image))
            },
        )
    })
    .await?;
    drop(serin);
    stage.finish().await;
    Ok(())
}

/// confirm-promotion through `serin approve`, a stale approval ignored; then a faulty
/// revision fails and `--on-failure revert` puts Git back at the promoted revision.
pub async fn approvals_and_revert() -> TestResult {
    let stage = Stage::new("gitops-approve").await?;
    let ns = stage.ns().to_string();
    stage.initial_commit(|w| {
        replace_in(
            &w.join("apps/canary.yaml"),
            "metadata:\n  name: podinfo\n",
            "metadata:\n  name: podinfo\n  annotations:\n    serin.dev/approval: confirm-promotion\n",
        )
    })?;
    let serin = stage.start_serin(&["--poll", "1s", "--on-failure", "revert"])?;
    stage.wait_phase(CanaryPhase::Initialized, &serin).await?;
    let initialized_hash = stage
        .status()
        .await?
        .and_then(|s| s.last_applied_spec)
        .ok_or("no applied revision")?;
    stage.person.commit("podinfo: 6.0.1", |w| {
        replace_in(
            &w.join("apps/deployment.yaml"),
            "podinfo:6.0.0",
            "podinfo:6.0.1",
        )
    })?;
    stage
        .wait_phase(CanaryPhase::WaitingPromotion, &serin)
        .await?;

    let approve = |extra: &[&str]| -> TestResult {
        let out = Command::new(env!("CARGO_BIN_EXE_serin"))
            .args([
                "approve",
                &format!("{ns}/podinfo"),
                "--gate",
                "confirm-promotion",
            ])
            .args([
                "--repo",
                &stage.remote.url(),
                "--author",
                "Pat Person <pat@example.com>",
            ])
            .arg("--cache-dir")
            .arg(stage.dir.join("cli-cache"))
            .args(extra)
            .output()
            .context("serin approve")?;
        if !out.status.success() {
            return Err(format!(
                "serin approve failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(())
    };
    // An approval of an older revision does not open the gate.
    approve(&["--revision", &initialized_hash])?;
    let stale = format!(
        "Git approval of confirm-promotion by Pat Person <pat@example.com> is for revision {}",
        &initialized_hash[..12]
    );
    eventually("the stale approval to be reported", MINUTES, || async {
        let events = stage.events().await?;
        Ok(if events.iter().any(|e| e.starts_with(&stale)) {
            Ok(())
        } else {
            Err(events.len())
        })
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let phase = stage.status().await?.map(|s| s.phase);
    if phase != Some(CanaryPhase::WaitingPromotion) {
        return Err(format!("a stale approval opened the gate: {phase:?}").into());
    }
    approve(&[])?;
    stage.wait_phase(CanaryPhase::Succeeded, &serin).await?;
    let subjects = stage.remote.log("%s")?;
    if !subjects.iter().any(|s| {
        s.starts_with(&format!(
            "podinfo.{ns}: approve confirm-promotion for revision"
        ))
    }) {
        return Err(format!("no approval commit: {subjects:#?}").into());
    }

    // A faulty revision: 30% errors. It fails, and Git is reverted to 6.0.1.
    let faulty = stage.person.commit("podinfo: 6.0.2", |w| {
        let d = w.join("apps/deployment.yaml");
        replace_in(&d, "podinfo:6.0.1", "podinfo:6.0.2")?;
        replace_in(
            &d,
            "prometheus.io/port: \"9797\"\n",
            "prometheus.io/port: \"9797\"\n        sim.serin.dev/error-rate: \"0.3\"\n",
        )
    })?;
    stage.wait_phase(CanaryPhase::Failed, &serin).await?;
    let revert = eventually("the revert commit", MINUTES, || async {
        let bodies = stage.remote.log("%B")?;
        Ok(
            match bodies
                .into_iter()
                .find(|b| b.starts_with(&format!("podinfo.{ns}: revert to the promoted revision")))
            {
                Some(b) => Ok(b),
                None => Err("no revert yet"),
            },
        )
    })
    .await?;
    for needed in [
        "Evidence:",
        "error-rate",
        "Serin-Phase: Failed",
        &format!("Serin-Reverts: {faulty}"),
    ] {
        if !revert.contains(needed) {
            return Err(format!("the revert commit lacks {needed:?}:\n{revert}").into());
        }
    }
    let manifest = stage.remote.show("main:apps/deployment.yaml")?;
    if !manifest.contains("podinfo:6.0.1") || manifest.contains("error-rate") {
        return Err(format!("Git's deployment is not back at 6.0.1:\n{manifest}").into());
    }
    // Git and the cluster agree, and nothing is analysed again.
    let back = format!("podinfo.{ns} is back at the promoted revision; no analysis");
    eventually("the reverted target to be adopted", MINUTES, || async {
        let events = stage.events().await?;
        Ok(if events.contains(&back) {
            Ok(())
        } else {
            Err(events.len())
        })
    })
    .await?;
    let detected_before = stage
        .events()
        .await?
        .iter()
        .filter(|e| e.starts_with("New revision detected"))
        .count();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let status = stage.status().await?.ok_or("no status")?;
    let detected_after = stage
        .events()
        .await?
        .iter()
        .filter(|e| e.starts_with("New revision detected"))
        .count();
    if status.phase != CanaryPhase::Failed
        || detected_after != detected_before
        || status.last_applied_spec != status.last_promoted_spec
        || stage.image_of("podinfo").await?.as_deref() != Some("ghcr.io/stefanprodan/podinfo:6.0.1")
    {
        return Err(format!(
            "after the revert: {status:?}, detections {detected_before} → {detected_after}"
        )
        .into());
    }
    // `serin status` reads the same from the cluster and from the ledger alone.
    for from_git in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_serin"));
        cmd.args(["status", "-n", &ns, "--repo", &stage.remote.url()])
            .arg("--kubeconfig")
            .arg(&stage.ctx.env.kubeconfig)
            .arg("--cache-dir")
            .arg(stage.dir.join("cli-cache"));
        if from_git {
            cmd.arg("--from-git");
        }
        let out = cmd.output().context("serin status")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let row = text
            .lines()
            .find(|l| l.starts_with(&ns))
            .unwrap_or_default();
        let fields: Vec<&str> = row.split_whitespace().collect();
        if !out.status.success()
            || !text.starts_with("NAMESPACE")
            || fields.get(1) != Some(&"podinfo")
            || fields.get(2) != Some(&"Failed")
            || !row.contains("6.0.2")
        {
            return Err(format!(
                "serin status (from git: {from_git}):\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
    }
    let record = stage.ledger_record()?;
    let failed = record.history.first().ok_or("no history")?;
    if failed.result != "Failed"
        || !failed
            .revert
            .starts_with("reverted to the promoted revision")
    {
        return Err(format!("the ledger does not record the revert: {record:#?}").into());
    }
    drop(serin);
    stage.finish().await;
    Ok(())
}

/// The remote goes away for a minute in the middle of a rollout: the rollout goes on, and
/// every ledger commit arrives afterwards, in order.
pub async fn remote_outage_loses_nothing() -> TestResult {
    let stage = Stage::new("gitops-outage").await?;
    let mut stage = stage;
    // A slower ladder, so the outage falls inside the analysis.
    stage.initial_commit(|w| {
        replace_in(
            &w.join("apps/canary.yaml"),
            "stepWeight: 10",
            "stepWeight: 5",
        )?;
        replace_in(
            &w.join("apps/canary.yaml"),
            "maxWeight: 50",
            "maxWeight: 60",
        )
    })?;
    let serin = stage.start_serin(&["--poll", "1s"])?;
    stage.wait_phase(CanaryPhase::Initialized, &serin).await?;
    stage.person.commit("podinfo: 6.0.1", |w| {
        replace_in(
            &w.join("apps/deployment.yaml"),
            "podinfo:6.0.0",
            "podinfo:6.0.1",
        )
    })?;
    eventually("weight 5", MINUTES, || async {
        let w = stage.status().await?.map_or(0, |s| s.canary_weight);
        Ok(if w >= 5 { Ok(()) } else { Err(w) })
    })
    .await?;
    stage.remote.stop();
    if std::net::TcpStream::connect(("127.0.0.1", stage.remote.port)).is_ok() {
        return Err("the remote still answers after it was stopped".into());
    }
    let down = Instant::now();
    let mut seen = Vec::new();
    while down.elapsed() < Duration::from_secs(60) {
        if let Some(s) = stage.status().await? {
            seen.push((s.phase, s.canary_weight));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let advanced = seen.windows(2).any(|w| w[1].1 > w[0].1)
        || seen.iter().any(|s| s.0 != CanaryPhase::Progressing);
    if !advanced {
        return Err(format!("the rollout stalled while the remote was away: {seen:?}").into());
    }
    stage.remote.start()?;
    stage.wait_phase(CanaryPhase::Succeeded, &serin).await?;
    eventually("every ledger commit to arrive", MINUTES, || async {
        let s = stage.ledger_subjects()?;
        Ok(if position(&s, "promotion completed").is_some() {
            Ok(())
        } else {
            Err(s)
        })
    })
    .await?;
    let subjects = stage.ledger_subjects()?;
    let mut ladder: Vec<String> = (1..=12)
        .map(|i| format!("advance canary weight {}", i * 5))
        .collect();
    ladder.insert(0, "new revision detected".into());
    ladder.push("copying the canary spec to the primary".into());
    ladder.push("routing all traffic to the primary".into());
    ladder.push("promotion completed".into());
    let wanted: Vec<&str> = ladder.iter().map(String::as_str).collect();
    in_order(&subjects, &wanted)?;
    drop(serin);
    stage.finish().await;
    Ok(())
}

/// Two replicas: the leader is killed mid-rollout, the other takes the Lease within its
/// duration and finishes the rollout, with no step done twice and no ledger commit lost.
pub async fn leader_failover_mid_rollout() -> TestResult {
    use k8s_openapi::api::coordination::v1::Lease;
    let stage = Stage::new("gitops-ha").await?;
    let ns = stage.ns().to_string();
    stage.initial_commit(|_| Ok(()))?;
    let lease_duration = Duration::from_secs(6);
    let replica = |name: &str| {
        let listen = format!("127.0.0.1:{}", free_port()?);
        let cache = stage.dir.join(format!("cache-{name}"));
        let cache = cache.to_string_lossy().into_owned();
        stage.start_serin(&[
            "--poll",
            "1s",
            "--leader-elect",
            "--leader-elect-identity",
            name,
            "--leader-elect-lease-duration",
            "6s",
            "--leader-elect-retry-period",
            "1s",
            "--listen",
            &listen,
            "--cache-dir",
            &cache,
        ])
    };
    let mut a = replica("serin-a")?;
    stage.wait_phase(CanaryPhase::Initialized, &a).await?;
    let mut b = replica("serin-b")?;
    let leases: Api<Lease> = Api::namespaced(stage.ctx.client.clone(), &ns);
    let holder = || async {
        Ok::<_, libtest_mimic::Failed>(
            leases
                .get_opt("serin-leader")
                .await
                .context("get lease")?
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity),
        )
    };
    if holder().await?.as_deref() != Some("serin-a") {
        return Err(format!("serin-a does not lead: {:?}", holder().await?).into());
    }
    stage.person.commit("podinfo: 6.0.1", |w| {
        replace_in(
            &w.join("apps/deployment.yaml"),
            "podinfo:6.0.0",
            "podinfo:6.0.1",
        )
    })?;
    eventually("weight 20", MINUTES, || async {
        let w = stage.status().await?.map_or(0, |s| s.canary_weight);
        Ok(if w >= 20 { Ok(()) } else { Err(w) })
    })
    .await?;
    a.kill();
    let killed = Instant::now();
    eventually("serin-b to take the lease", MINUTES, || async {
        let h = holder().await?;
        Ok(if h.as_deref() == Some("serin-b") {
            Ok(())
        } else {
            Err(h)
        })
    })
    .await?;
    let takeover = killed.elapsed();
    println!("leader killed → serin-b leads: {takeover:?} (lease duration {lease_duration:?})");
    if takeover > lease_duration + Duration::from_secs(4) {
        return Err(format!("the takeover took {takeover:?}").into());
    }
    stage.wait_phase(CanaryPhase::Succeeded, &b).await?;
    eventually("the promotion commit", MINUTES, || async {
        let s = stage.ledger_subjects()?;
        Ok(if position(&s, "promotion completed").is_some() {
            Ok(())
        } else {
            Err(s)
        })
    })
    .await?;
    let subjects = stage.ledger_subjects()?;
    let start = position(&subjects, "new revision detected").ok_or("no start in the ledger")?;
    let steps: Vec<&str> = subjects[start..].iter().map(String::as_str).collect();
    let expected = [
        "advance canary weight 10",
        "advance canary weight 20",
        "advance canary weight 30",
        "advance canary weight 40",
        "advance canary weight 50",
    ];
    let weights: Vec<&str> = steps
        .iter()
        .copied()
        .filter(|s| s.starts_with("advance canary weight"))
        .collect();
    if weights != expected || !steps.iter().any(|s| s.starts_with("promotion completed")) {
        return Err(format!(
            "steps done twice or lost across the failover: {subjects:#?}\n{}",
            b.log_tail()
        )
        .into());
    }
    b.kill();
    stage.finish().await;
    Ok(())
}
