//! The latency from a push-webhook delivery to the "New revision detected" event (target: under
//! 2 s). Run: `cargo bench --bench webhook_latency` (part of `make bench`).
//!
//! Starts the control plane of tests/env in a private temp dir — or reuses the one
//! SERIN_TESTENV_DIR names, which is then left running — and the GitOps loop of
//! tests/e2e/gitops.rs around it: a bare config repository served by `git daemon` on 127.0.0.1,
//! a person's clone that commits and pushes with the `git` CLI, and `serin run --repo` (the
//! binary cargo builds for this bench, in the same profile) polling only once an hour, so that
//! only the webhook can make it see a commit. The config repository is examples/podinfo, with
//! `skipAnalysis: true` and a 1 s analysis interval: each new revision is promoted within a few
//! control-loop ticks and every round starts from a Succeeded canary.
//!
//! After the canary is Initialized, each of [`ROUNDS`] rounds: the person bumps the image
//! (podinfo:6.0.N) and pushes; then the bench posts a GitHub push webhook signed with
//! HMAC-SHA256 and measures from just before the POST until the Kubernetes Event
//! (events.k8s.io/v1) "New revision detected! Scaling up podinfo.<ns>" has been recorded once
//! more, polling the API every [`POLL`]; then it waits for the promotion (phase Succeeded, the
//! primary at 6.0.N). Serin records a repeated message within a few minutes as a series of the
//! same Event, so an occurrence is one Event or one count of its series.
//!
//! The figure includes Serin's fetch from `git daemon`, the apply of the repository, the
//! control loop noticing the changed target and the Event's write, plus up to one poll
//! period; not the person's push, which happens before the clock starts.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::routing::post;
use hmac::{Hmac, Mac};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serin::api::{Canary, CanaryPhase};

/// Webhook deliveries measured.
const ROUNDS: usize = 10;
/// The target for the median.
const TARGET: Duration = Duration::from_secs(2);
/// How often the Events are listed while a round is timed.
const POLL: Duration = Duration::from_millis(20);
/// A round whose event has not appeared by then fails the bench.
const DETECT_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this long for the first initialization and for each promotion.
const PHASE_TIMEOUT: Duration = Duration::from_secs(180);
const SECRET: &str = "serin-bench-webhook-secret";
const IMAGE: &str = "ghcr.io/stefanprodan/podinfo";

// ---- the environment -------------------------------------------------------------------------

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/env")
}

/// Stops the control plane if this process started it, when dropped: also after a failure.
struct ControlPlane {
    dir: PathBuf,
    owned: bool,
}

impl ControlPlane {
    fn start() -> Result<ControlPlane> {
        let (dir, owned) = match std::env::var_os("SERIN_TESTENV_DIR") {
            Some(dir) => (PathBuf::from(dir), false),
            None => (
                std::env::temp_dir().join(format!("serin-bench-{}", std::process::id())),
                true,
            ),
        };
        // The guard exists before `up` runs, so a half-started environment is stopped too.
        let plane = ControlPlane { dir, owned };
        eprintln!(
            "webhook_latency: starting the control plane in {}",
            plane.dir.display()
        );
        let status = Command::new(scripts().join("up"))
            .env("SERIN_TESTENV_DIR", &plane.dir)
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .context("cannot run tests/env/up")?;
        if !status.success() {
            bail!("tests/env/up failed ({status}); see its output above");
        }
        Ok(plane)
    }

    fn settings(&self) -> Result<Settings> {
        let path = self.dir.join("env");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let vars: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let var = |k: &str| {
            vars.get(k)
                .map(|v| v.to_string())
                .with_context(|| format!("{} has no {k}", path.display()))
        };
        Ok(Settings {
            kubeconfig: var("KUBECONFIG")?.into(),
            kubectl: var("SERIN_KUBECTL")?.into(),
            prometheus_url: var("SERIN_PROMETHEUS_URL")?,
        })
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let status = Command::new(scripts().join("down"))
            .env("SERIN_TESTENV_DIR", &self.dir)
            .stdout(Stdio::from(std::io::stderr()))
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "webhook_latency: tests/env/down failed for {}: {status:?}",
                self.dir.display()
            );
        }
    }
}

struct Settings {
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    prometheus_url: String,
}

/// In an environment the bench did not start, removes its namespace when dropped.
struct Leftovers<'a> {
    settings: &'a Settings,
    namespace: String,
}

impl Drop for Leftovers<'_> {
    fn drop(&mut self) {
        let _ = Command::new(&self.settings.kubectl)
            .arg("--kubeconfig")
            .arg(&self.settings.kubeconfig)
            .args(["delete", "--wait=false", "--ignore-not-found"])
            .args(["namespace", &self.namespace])
            .stdout(Stdio::null())
            .status();
    }
}

async fn install_crds(client: &Client) -> Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crds/flagger.app.yaml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let crds: Vec<CustomResourceDefinition> =
        serde_saphyr::from_multiple(&text).context("cannot parse the Flagger CRDs")?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("serin-bench").force(),
            &Patch::Apply(crd),
        )
        .await
        .with_context(|| format!("cannot apply CRD {name}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        loop {
            let live = api
                .get(&name)
                .await
                .with_context(|| format!("cannot read CRD {name}"))?;
            let established = live.status.and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            if Instant::now() > deadline {
                bail!("CRD {name} is not Established after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

// ---- Git ---------------------------------------------------------------------------------------

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("cannot pick a free port")?
        .port())
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Pat Person")
        .env("GIT_AUTHOR_EMAIL", "pat@example.com")
        .env("GIT_COMMITTER_NAME", "Pat Person")
        .env("GIT_COMMITTER_EMAIL", "pat@example.com")
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!(
            "git {args:?} in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The config repository: a bare repository served by `git daemon`, stopped when dropped.
struct Remote {
    root: PathBuf,
    port: u16,
    daemon: Child,
}

impl Remote {
    fn start(root: &Path) -> Result<Remote> {
        let bare = root.join("config.git");
        std::fs::create_dir_all(&bare)
            .with_context(|| format!("cannot create {}", bare.display()))?;
        git(&bare, &["init", "--bare", "-q", "-b", "main"])?;
        let port = free_port()?;
        // git-daemon itself, not `git daemon`: the `git` wrapper runs it as a child that
        // killing the wrapper would leave behind, still serving the port.
        let exec_path = git(root, &["--exec-path"])?;
        let daemon = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
            .arg("--reuseaddr")
            .arg(format!("--base-path={}", root.display()))
            .arg("--export-all")
            .arg("--enable=receive-pack")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start git daemon")?;
        let mut remote = Remote {
            root: root.to_path_buf(),
            port,
            daemon,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = remote.daemon.try_wait().context("git daemon")? {
                bail!("git daemon exited ({status})");
            }
            if Instant::now() > deadline {
                bail!("git daemon does not listen on 127.0.0.1:{port} after 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(remote)
    }

    fn bare(&self) -> PathBuf {
        self.root.join("config.git")
    }

    fn url(&self) -> String {
        format!("git://127.0.0.1:{}/config.git", self.port)
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A person's checkout of the config repository.
struct Person {
    work: PathBuf,
}

impl Person {
    fn clone_of(remote: &Remote, dir: &Path) -> Result<Person> {
        let out = Command::new("git")
            .arg("clone")
            .arg("-q")
            .arg(remote.bare())
            .arg(dir)
            .output()
            .context("cannot run git clone")?;
        if !out.status.success() {
            bail!("git clone: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(Person {
            work: dir.to_path_buf(),
        })
    }

    /// Pulls, edits, commits and pushes, pulling again when Serin pushed a ledger commit first;
    /// returns the person's commit.
    fn commit(&self, message: &str, edit: impl Fn(&Path) -> Result<()>) -> Result<String> {
        let branch = git(&self.work, &["ls-remote", "--heads", "origin", "main"])?;
        if !branch.trim().is_empty() {
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
        bail!("the push never succeeded")
    }
}

fn replace_in(path: &Path, from: &str, to: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !text.contains(from) {
        bail!("{} does not contain {from:?}", path.display());
    }
    std::fs::write(path, text.replace(from, to))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// examples/podinfo as tests/e2e/serin_run.rs writes it (no Namespace objects, everything in
/// `ns`), with a 1 s analysis interval and `skipAnalysis: true`.
fn write_repo(dir: &Path, ns: &str, hooks: &str, prometheus: &str) -> Result<()> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/podinfo");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let entries = std::fs::read_dir(&examples)
        .with_context(|| format!("cannot list {}", examples.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", examples.display()))?
            .path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        // The bench owns its namespace; the example's Namespace objects would name others.
        if name == "namespace.yaml" {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .replace("namespace: test", &format!("namespace: {ns}"))
            .replace("namespace: flagger-system", &format!("namespace: {ns}"))
            .replace("http://flagger-loadtester.test/", hooks)
            .replace("http://prometheus.istio-system:9090", prometheus);
        std::fs::write(dir.join(&name), text).with_context(|| format!("cannot write {name}"))?;
    }
    let canary = dir.join("canary.yaml");
    replace_in(
        &canary,
        "interval: 1m\n    # max number",
        "interval: 1s\n    # max number",
    )?;
    replace_in(
        &canary,
        "spec:\n  provider: gatewayapi:v1\n",
        "spec:\n  provider: gatewayapi:v1\n  skipAnalysis: true\n",
    )
}

// ---- Serin -------------------------------------------------------------------------------------

/// `serin run --repo`, killed when dropped.
struct Serin {
    child: Child,
    log: PathBuf,
}

impl Serin {
    fn start(
        settings: &Settings,
        remote: &Remote,
        ns: &str,
        dir: &Path,
        listen: u16,
    ) -> Result<Serin> {
        let log = dir.join("serin.log");
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        // Built by cargo for this bench, in the bench's profile (release).
        let child = Command::new(env!("CARGO_BIN_EXE_serin"))
            .args(["run", "--kubeconfig"])
            .arg(&settings.kubeconfig)
            .args([
                "--repo",
                &remote.url(),
                "--branch",
                "main",
                "--path",
                "apps",
            ])
            .args(["--poll", "1h"])
            .args(["--namespace", ns, "--default-namespace", ns])
            .args(["--inventory", ns, "--inventory-namespace", ns])
            .args(["--provider", "gatewayapi:v1"])
            .args(["--metrics-server", &settings.prometheus_url])
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
                "Serin <serin@bench.test>",
            ])
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{listen}"))
            .arg("--webhook-secret-file")
            .arg(dir.join("secret"))
            .env("RUST_LOG", "serin=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .context("cannot start serin run")?;
        let mut serin = Serin { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", listen)).is_err() {
            if let Some(status) = serin.child.try_wait().context("serin run")? {
                bail!("serin run exited ({status}):\n{}", serin.log_tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "serin run does not listen on 127.0.0.1:{listen} after 30 s:\n{}",
                    serin.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(serin)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- last lines of {} ---\n{}",
            self.log.display(),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }
}

impl Drop for Serin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Delivers a GitHub push webhook for `after`, signed with the shared secret.
async fn push_webhook(
    http: &reqwest::Client,
    listen: u16,
    round: usize,
    after: &str,
) -> Result<()> {
    let body = serde_json::json!({
        "ref": "refs/heads/main",
        "after": after,
        "repository": { "full_name": "bench/config" },
    })
    .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).context("hmac key")?;
    mac.update(body.as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let response = http
        .post(format!("http://127.0.0.1:{listen}/hooks/git"))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", format!("bench-{round}"))
        .header("X-Hub-Signature-256", format!("sha256={signature}"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .context("cannot deliver the webhook")?;
    let status = response.status();
    if status != reqwest::StatusCode::ACCEPTED {
        let text = response.text().await.unwrap_or_default();
        bail!("the webhook got {status}: {text}");
    }
    Ok(())
}

// ---- the bench ---------------------------------------------------------------------------------

/// How often the event `note` has been recorded: each Event once, or its series' count.
async fn occurrences(events: &Api<Event>, note: &str) -> Result<i64> {
    let list = events
        .list(&ListParams::default())
        .await
        .context("cannot list events")?;
    Ok(list
        .items
        .iter()
        .filter(|e| e.note.as_deref() == Some(note))
        .map(|e| e.series.as_ref().map_or(1, |s| i64::from(s.count.max(1))))
        .sum())
}

/// Waits for `phase`, and for the primary to run `image` if given.
async fn wait_phase(
    canaries: &Api<Canary>,
    deployments: &Api<Deployment>,
    phase: CanaryPhase,
    image: Option<&str>,
    serin: &Serin,
) -> Result<()> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let seen = canaries
            .get_opt("podinfo")
            .await
            .context("cannot read the Canary")?
            .and_then(|c| c.status)
            .map(|s| (s.phase, s.canary_weight));
        let primary = match image {
            Some(_) => deployments
                .get_opt("podinfo-primary")
                .await
                .context("cannot read the primary")?
                .and_then(|d| d.spec)
                .and_then(|s| s.template.spec)
                .and_then(|s| s.containers.first().and_then(|c| c.image.clone())),
            None => None,
        };
        if seen.map(|s| s.0) == Some(phase) && primary.as_deref() == image {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "no phase {phase:?} (primary {image:?}) after {} s: status {seen:?}, primary {primary:?}\n{}",
                PHASE_TIMEOUT.as_secs(),
                serin.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Runs the rounds; Ok(true) if the median is within the target.
async fn bench(plane: &ControlPlane, dir: &Path) -> Result<bool> {
    let settings = plane.settings()?;
    let client = serin::cluster::connect(Some(&settings.kubeconfig))
        .await
        .context("cannot connect to the control plane")?;
    install_crds(&client).await?;

    let ns = format!("serin-bench-webhook-{}", std::process::id());
    let _leftovers = (!plane.owned).then(|| Leftovers {
        settings: &settings,
        namespace: ns.clone(),
    });
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .with_context(|| format!("cannot create namespace {ns}"))?;

    // The canary's webhooks (skipped with skipAnalysis) get a receiver that says ok anyway.
    let hooks = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the hooks receiver")?;
    let hooks_url = format!(
        "http://{}/",
        hooks.local_addr().context("the hooks receiver")?
    );
    tokio::spawn(async move {
        let _ = axum::serve(hooks, Router::new().route("/", post(|| async { "ok" }))).await;
    });

    std::fs::write(dir.join("secret"), SECRET).context("cannot write the webhook secret")?;
    let remote = Remote::start(&dir.join("remote"))?;
    let person = Person::clone_of(&remote, &dir.join("work"))?;
    person.commit("podinfo: the app and its canary", |work| {
        write_repo(
            &work.join("apps"),
            &ns,
            &hooks_url,
            &settings.prometheus_url,
        )?;
        std::fs::write(work.join("README.md"), "# config\n").context("cannot write README.md")
    })?;
    let listen = free_port()?;
    let serin = Serin::start(&settings, &remote, &ns, dir, listen)?;

    let canaries: Api<Canary> = Api::namespaced(client.clone(), &ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let started = Instant::now();
    wait_phase(
        &canaries,
        &deployments,
        CanaryPhase::Initialized,
        None,
        &serin,
    )
    .await?;
    eprintln!(
        "webhook_latency: podinfo.{ns} Initialized {:.1} s after serin started",
        started.elapsed().as_secs_f64()
    );

    let http = reqwest::Client::new();
    let detected = format!("New revision detected! Scaling up podinfo.{ns}");
    let mut latencies = Vec::with_capacity(ROUNDS);
    for round in 1..=ROUNDS {
        let (from, to) = (
            format!("{IMAGE}:6.0.{}", round - 1),
            format!("{IMAGE}:6.0.{round}"),
        );
        let commit = person.commit(&format!("podinfo: 6.0.{round}"), |work| {
            replace_in(&work.join("apps/deployment.yaml"), &from, &to)
        })?;
        let before = occurrences(&events, &detected).await?;
        // Serin polls once an hour: nothing may have seen the push before the webhook.
        if before != round as i64 - 1 {
            bail!(
                "round {round}: {before} occurrences of {detected:?} before the webhook, not {}\n{}",
                round - 1,
                serin.log_tail()
            );
        }
        let start = Instant::now();
        push_webhook(&http, listen, round, &commit).await?;
        let answered = start.elapsed();
        let mut poll = tokio::time::interval_at(start.into(), POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let latency = loop {
            poll.tick().await;
            if occurrences(&events, &detected).await? > before {
                break start.elapsed();
            }
            if start.elapsed() > DETECT_TIMEOUT {
                bail!(
                    "round {round}: no {detected:?} {} s after the webhook for {commit}\n{}",
                    DETECT_TIMEOUT.as_secs(),
                    serin.log_tail()
                );
            }
        };
        println!(
            "webhook_latency: round {round:>2}: 6.0.{round} {:.2} s (webhook answered in {:.0} ms)",
            latency.as_secs_f64(),
            answered.as_secs_f64() * 1000.0
        );
        latencies.push(latency.as_secs_f64());
        wait_phase(
            &canaries,
            &deployments,
            CanaryPhase::Succeeded,
            Some(&to),
            &serin,
        )
        .await?;
    }

    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let median = median(&sorted);
    let max = sorted.last().copied().unwrap_or_default();
    println!(
        "webhook → \"New revision detected\": median {median:.2} s, max {max:.2} s over {ROUNDS} deliveries (target < {} s)",
        TARGET.as_secs()
    );
    drop(serin);
    drop(remote);
    Ok(median <= TARGET.as_secs_f64())
}

fn run() -> Result<bool> {
    let plane = ControlPlane::start()?;
    let dir = std::env::temp_dir().join(format!("serin-bench-webhook-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = bench(&plane, &dir) => result,
            signal = tokio::signal::ctrl_c() => {
                signal.context("cannot wait for Ctrl-C")?;
                bail!("interrupted")
            }
        }
    });
    // Serin and git daemon are gone (dropped with the bench); keep the files after a failure.
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!(
            "webhook_latency: Serin's log and the repositories are kept in {}",
            dir.display()
        );
    }
    result
}

fn main() -> ExitCode {
    // `cargo bench` passes --bench; nothing else is configurable.
    serin::crypto::install_default_provider();
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "webhook_latency: the median is over the {} s target",
                TARGET.as_secs()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("webhook_latency: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
