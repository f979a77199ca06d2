//! The CPU time Serin spends per analysis tick per canary, with 100 canaries on the local
//! control plane. Run: `cargo bench --bench analysis_tick` (part of `make bench`).
//!
//! Starts the control plane of tests/env (etcd, kube-apiserver, controller-manager, scheduler,
//! kwok, Prometheus) in a private temp dir — or reuses the one SERIN_TESTENV_DIR names, which
//! is then left running — and the mesh simulator (`serin-mesh-sim`) as a separate process that
//! Prometheus scrapes through a file_sd target. Then 100 Deployments (1 replica, run by kwok)
//! and 100 Canaries with provider `gatewayapi:v1`, `gatewayRefs` and one builtin
//! `request-success-rate` check, and one [`Runner`] ticks every canary in turn, sequentially
//! on one thread, in rounds that start every 10 s (the canaries' analysis interval): rounds
//! until every canary is Initialized, an image bump of every Deployment, rounds until every
//! canary has rolled out (10 % steps to 50 % with a metric check each, promotion,
//! finalisation) and Succeeded, then a fixed number of steady-state rounds. How many rounds the
//! first two stages take depends on how fast the local controller-manager rolls out the
//! Deployments; the ticks that change something are the same in every run (each canary:
//! 6 phase changes, 5 weight steps).
//!
//! Measured around each `Runner::tick` call only (waits between rounds are excluded):
//! * the process's CPU time, user + sys from /proc/self/stat (clock ticks: 10 ms resolution,
//!   so only the total over all ticks is meaningful);
//! * the ticking thread's CPU time from /proc/thread-self/schedstat (nanoseconds), which gives
//!   the per-tick distribution: the runtime is single-threaded, so every task of a tick
//!   (kube's and reqwest's connection tasks included) runs on that thread;
//! * wall time.
//!
//! Not included: the CPU of kube-apiserver, etcd, Prometheus and the simulator, which run in
//! their own processes.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serin::analysis::runner::{Runner, RunnerOptions};
use serin::api::{Canary, CanaryPhase};

const CANARIES: usize = 100;
/// At most this many rounds until every canary is Initialized (the primaries must be rolled
/// out by the controller-manager first).
const MAX_INIT_ROUNDS: usize = 20;
/// At most this many rounds after the image bump until every canary Succeeded: about 9 ticks
/// each change something (new revision, start, weights 10–50, promote, shift traffic back,
/// finalise); the others wait for the controller-manager to roll out the workloads.
const MAX_ROLLOUT_ROUNDS: usize = 40;
/// Rounds after the rollout in which nothing changes: a canary's most common tick.
const STEADY_ROUNDS: usize = 2;
/// A round starts at most this often: the canaries' analysis interval, Flagger's minimum. The
/// local controller-manager (its client is limited to 20 requests/s) takes tens of seconds to
/// roll out 100 Deployments, so shorter rounds would mostly add ticks that wait; the simulator
/// (1 s) and Prometheus (1 s scrapes) also need a moment to follow a weight change.
const ROUND_PERIOD: Duration = Duration::from_secs(10);
/// kwok's node takes 250 pods; a promotion briefly runs three pods per canary.
const EXTRA_NODE: &str = "kwok-node-bench-1";

fn deployment(i: usize) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i:03}
  labels:
    app: app-{i:03}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: app-{i:03}
  template:
    metadata:
      labels:
        app: app-{i:03}
      annotations:
        sim.serin.dev/error-rate: "0"
        sim.serin.dev/latency-ms: "40"
    spec:
      containers:
        - name: app
          image: ghcr.io/stefanprodan/podinfo:6.0.0
          ports:
            - name: http
              containerPort: 9898
"#
    )
}

/// Headless Services: 300 ClusterIPs would not fit the control plane's /24 service range.
fn canary(i: usize) -> String {
    format!(
        r#"apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: app-{i:03}
spec:
  provider: gatewayapi:v1
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: app-{i:03}
  service:
    port: 9898
    targetPort: 9898
    headless: true
    gatewayRefs:
      - name: gateway
        namespace: istio-ingress
  analysis:
    interval: {period}s
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        interval: 30s
        thresholdRange:
          min: 99
"#,
        period = ROUND_PERIOD.as_secs()
    )
}

const NODE: &str = r#"apiVersion: v1
kind: Node
metadata:
  name: kwok-node-bench-1
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: kwok-node-bench-1
    kubernetes.io/os: linux
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "250"}
  capacity: {cpu: "32", memory: 256Gi, pods: "250"}
"#;

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
            "analysis_tick: starting the control plane in {}",
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
            targets_dir: var("SERIN_PROMETHEUS_TARGETS_DIR")?.into(),
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
                "analysis_tick: tests/env/down failed for {}: {status:?}",
                self.dir.display()
            );
        }
    }
}

struct Settings {
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    prometheus_url: String,
    targets_dir: PathBuf,
}

/// In an environment the bench did not start, removes what it added when dropped.
struct Leftovers<'a> {
    settings: &'a Settings,
    namespace: String,
    node: bool,
}

impl Drop for Leftovers<'_> {
    fn drop(&mut self) {
        let delete = |args: &[&str]| {
            let _ = Command::new(&self.settings.kubectl)
                .arg("--kubeconfig")
                .arg(&self.settings.kubeconfig)
                .args(["delete", "--wait=false", "--ignore-not-found"])
                .args(args)
                .stdout(Stdio::null())
                .status();
        };
        delete(&["namespace", &self.namespace]);
        if self.node {
            delete(&["node", EXTRA_NODE]);
        }
    }
}

/// The mesh simulator as a child process, so its CPU is not Serin's; killed when dropped.
struct Simulator {
    child: Child,
    log: PathBuf,
    target: PathBuf,
    /// The bench succeeded: the log is removed, not kept for a look.
    done: bool,
}

impl Simulator {
    fn start(settings: &Settings, namespace: &str) -> Result<Simulator> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("cannot pick a port for the mesh simulator")?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log =
            std::env::temp_dir().join(format!("serin-bench-mesh-sim-{}.log", std::process::id()));
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("cannot open {} twice", log.display()))?;
        let child = Command::new(env!("CARGO_BIN_EXE_serin-mesh-sim"))
            .arg("--kubeconfig")
            .arg(&settings.kubeconfig)
            .args(["--namespace", namespace, "--listen", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .context("cannot start serin-mesh-sim")?;
        let target = settings
            .targets_dir
            .join(format!("serin-bench-{}.json", std::process::id()));
        let mut sim = Simulator {
            child,
            log,
            target,
            done: false,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = sim.child.try_wait().context("serin-mesh-sim")? {
                bail!(
                    "serin-mesh-sim exited ({status}); see {}",
                    sim.log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "serin-mesh-sim does not listen on {addr} after 30 s; see {}",
                    sim.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Prometheus watches the directory: write aside and rename, as the e2e harness does.
        let body = serde_json::json!([{ "targets": [addr.to_string()], "labels": { "bench": "analysis_tick" } }]);
        let tmp = settings
            .targets_dir
            .join(format!(".serin-bench-{}.json.tmp", std::process::id()));
        std::fs::write(&tmp, body.to_string())
            .and_then(|()| std::fs::rename(&tmp, &sim.target))
            .with_context(|| format!("cannot write the scrape target {}", sim.target.display()))?;
        Ok(sim)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.target);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.done {
            let _ = std::fs::remove_file(&self.log);
        } else {
            eprintln!(
                "analysis_tick: the mesh simulator's log is kept in {}",
                self.log.display()
            );
        }
    }
}

// ---- measuring ---------------------------------------------------------------------------------

/// Clock ticks per second of /proc's CPU times.
fn clock_ticks() -> (u64, &'static str) {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .map_or((100, "assumed"), |t| (t, "getconf CLK_TCK"))
}

/// utime and stime (fields 14 and 15 of a /proc stat file), in clock ticks.
fn stat_times(path: &str) -> Result<(u64, u64)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path}: no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("{path}: no field {n}"))
    };
    Ok((field(14)?, field(15)?))
}

/// How the ticking thread's CPU time is read.
#[derive(Clone, Copy)]
enum ThreadClock {
    /// /proc/thread-self/schedstat: nanoseconds on the CPU.
    Schedstat,
    /// /proc/thread-self/stat fields 14 + 15, where the kernel keeps no schedstat.
    Stat { ns_per_tick: u64 },
}

impl ThreadClock {
    fn read(self) -> Result<u64> {
        match self {
            ThreadClock::Schedstat => {
                let path = "/proc/thread-self/schedstat";
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
                text.split_whitespace()
                    .next()
                    .and_then(|f| f.parse().ok())
                    .with_context(|| format!("{path}: no run time"))
            }
            ThreadClock::Stat { ns_per_tick } => {
                let (user, sys) = stat_times("/proc/thread-self/stat")?;
                Ok((user + sys) * ns_per_tick)
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ThreadClock::Schedstat => "/proc/thread-self/schedstat, ns",
            ThreadClock::Stat { .. } => "/proc/thread-self/stat, clock ticks: coarse",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// The tick moved the canary to another phase.
    Phase,
    /// Same phase, another canary weight: a step of the analysis.
    Weight,
    /// Neither: waiting for a workload, or nothing to do.
    Idle,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Phase => "changed phase",
            Kind::Weight => "changed weight only",
            Kind::Idle => "changed neither",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Initialization,
    Rollout,
    Steady,
}

impl Stage {
    const ALL: [Stage; 3] = [Stage::Initialization, Stage::Rollout, Stage::Steady];

    fn label(self) -> &'static str {
        match self {
            Stage::Initialization => "initialization",
            Stage::Rollout => "rollout",
            Stage::Steady => "steady state",
        }
    }
}

struct Sample {
    stage: Stage,
    kind: Kind,
    thread_ns: u64,
    wall: Duration,
}

#[derive(Default)]
struct Measurements {
    samples: Vec<Sample>,
    /// Process user and sys time during ticks, in clock ticks.
    user: u64,
    sys: u64,
    errors: Vec<String>,
    rounds: Vec<Stage>,
}

/// The nearest-rank percentile of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(values: impl Iterator<Item = f64>) -> String {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    format!(
        "mean {mean:.2} / p50 {:.2} / p95 {:.2} / max {:.2} ms",
        percentile(&v, 50.0),
        percentile(&v, 95.0),
        v.last().copied().unwrap_or_default()
    )
}

// ---- the bench ---------------------------------------------------------------------------------

struct Bench {
    runner: Runner,
    namespace: String,
    names: Vec<String>,
    /// Each canary's phase and weight as its last tick left them.
    state: Vec<(CanaryPhase, i32)>,
    /// Each canary's last event message, to say why it is stuck.
    last_event: Vec<Option<String>>,
    clock: ThreadClock,
    measured: Measurements,
    last_round: Option<Instant>,
}

impl Bench {
    /// One round, a round period after the last one began: a tick of every canary, in turn.
    async fn round(&mut self, stage: Stage) -> Result<()> {
        if let Some(last) = self.last_round {
            tokio::time::sleep_until((last + ROUND_PERIOD).into()).await;
        }
        let start = Instant::now();
        self.last_round = Some(start);
        for (i, name) in self.names.iter().enumerate() {
            let (user0, sys0) = stat_times("/proc/self/stat")?;
            let thread0 = self.clock.read()?;
            let wall0 = Instant::now();
            let result = self.runner.tick(&self.namespace, name).await;
            let wall = wall0.elapsed();
            let thread1 = self.clock.read()?;
            let (user1, sys1) = stat_times("/proc/self/stat")?;
            self.measured.user += user1 - user0;
            self.measured.sys += sys1 - sys0;
            let before = self.state[i];
            let kind = match result {
                Ok(Some(report)) => {
                    self.state[i] = (report.phase, report.canary_weight);
                    if let Some(last) = report.events.last() {
                        self.last_event[i] = Some(last.clone());
                    }
                    if report.phase != before.0 {
                        Kind::Phase
                    } else if report.canary_weight != before.1 {
                        Kind::Weight
                    } else {
                        Kind::Idle
                    }
                }
                Ok(None) => {
                    self.measured
                        .errors
                        .push(format!("{name}: the Canary is gone"));
                    Kind::Idle
                }
                Err(e) => {
                    self.measured
                        .errors
                        .push(format!("{name}: {:#}", anyhow::Error::new(e)));
                    Kind::Idle
                }
            };
            self.measured.samples.push(Sample {
                stage,
                kind,
                thread_ns: thread1.saturating_sub(thread0),
                wall,
            });
        }
        self.measured.rounds.push(stage);
        let took = start.elapsed();
        eprintln!(
            "analysis_tick: {} round {} took {:.1} s: {}",
            stage.label(),
            self.measured.rounds.len(),
            took.as_secs_f64(),
            self.phases()
        );
        Ok(())
    }

    fn count(&self, phase: CanaryPhase) -> usize {
        self.state.iter().filter(|s| s.0 == phase).count()
    }

    /// The phases the canaries are in, and the last event of those not in `want`.
    fn stuck(&self, want: CanaryPhase) -> String {
        let mut messages: BTreeMap<String, usize> = BTreeMap::new();
        let canaries = self.state.iter().zip(&self.last_event).zip(&self.names);
        for ((state, event), name) in canaries {
            if state.0 != want {
                let message = event.as_deref().unwrap_or("(no event)");
                *messages
                    .entry(message.replace(name.as_str(), "<canary>"))
                    .or_default() += 1;
            }
        }
        let mut out = self.phases();
        for (message, n) in messages {
            out.push_str(&format!("\n  {n} canaries last said: {message}"));
        }
        out
    }

    fn phases(&self) -> String {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (phase, _) in &self.state {
            *counts.entry(format!("{phase:?}")).or_default() += 1;
        }
        counts
            .iter()
            .map(|(p, n)| format!("{n} {p}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn report(&self, ticks_per_sec: u64, ticks_source: &str) {
        let m = &self.measured;
        let ticks = m.samples.len();
        let ms_per_clock_tick = 1000.0 / ticks_per_sec as f64;
        let process_ms = (m.user + m.sys) as f64 * ms_per_clock_tick;
        let thread_ms = m.samples.iter().map(|s| s.thread_ns).sum::<u64>() as f64 / 1e6;
        let wall_ms: f64 = m
            .samples
            .iter()
            .map(|s| s.wall.as_secs_f64() * 1000.0)
            .sum();
        let phase_changes = m.samples.iter().filter(|s| s.kind == Kind::Phase).count();
        let rounds_of = |stage| m.rounds.iter().filter(|&&r| r == stage).count();
        println!(
            "analysis_tick: {CANARIES} canaries (gatewayapi:v1, builtin request-success-rate from Prometheus), \
             {ticks} ticks in {} rounds ({} initialization, {} rollout, {} steady state), \
             one tick at a time on one thread, a round every {} s",
            m.rounds.len(),
            rounds_of(Stage::Initialization),
            rounds_of(Stage::Rollout),
            rounds_of(Stage::Steady),
            ROUND_PERIOD.as_secs()
        );
        println!(
            "analysis_tick: process CPU during ticks: {process_ms:.0} ms (user {:.0} + sys {:.0}; /proc/self/stat, {ticks_per_sec} ticks/s, {ticks_source})",
            m.user as f64 * ms_per_clock_tick,
            m.sys as f64 * ms_per_clock_tick,
        );
        println!(
            "analysis_tick: CPU per tick per canary: process mean {:.2} ms; ticking thread {} ({}; thread total {thread_ms:.0} ms)",
            process_ms / ticks.max(1) as f64,
            summary(m.samples.iter().map(|s| s.thread_ns as f64 / 1e6)),
            self.clock.describe(),
        );
        println!(
            "analysis_tick: wall per tick: {} (total {:.1} s; waits between rounds excluded)",
            summary(m.samples.iter().map(|s| s.wall.as_secs_f64() * 1000.0)),
            wall_ms / 1000.0
        );
        println!("analysis_tick: ticks that changed phase: {phase_changes} of {ticks}");
        let breakdown = |label: &str, of: &dyn Fn(&Sample) -> bool| {
            let of: Vec<&Sample> = m.samples.iter().filter(|s| of(s)).collect();
            if !of.is_empty() {
                println!(
                    "analysis_tick:   {label:<20} {:>5} ticks, thread CPU {}",
                    of.len(),
                    summary(of.iter().map(|s| s.thread_ns as f64 / 1e6))
                );
            }
        };
        for stage in Stage::ALL {
            breakdown(stage.label(), &|s| s.stage == stage);
        }
        for kind in [Kind::Phase, Kind::Weight, Kind::Idle] {
            breakdown(kind.label(), &|s| s.kind == kind);
        }
        println!("analysis_tick: end state: {}", self.phases());
        println!(
            "analysis_tick: not included: kube-apiserver, etcd, Prometheus and the mesh simulator (own processes)"
        );
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

async fn bench(plane: &ControlPlane) -> Result<()> {
    let settings = plane.settings()?;
    let client = serin::cluster::connect(Some(&settings.kubeconfig))
        .await
        .context("cannot connect to the control plane")?;
    install_crds(&client).await?;

    let namespace = format!("serin-bench-{}", std::process::id());
    let nodes: Api<Node> = Api::all(client.clone());
    let add_node = nodes
        .get_opt(EXTRA_NODE)
        .await
        .context("cannot read nodes")?
        .is_none();
    let _leftovers = (!plane.owned).then(|| Leftovers {
        settings: &settings,
        namespace: namespace.clone(),
        node: add_node,
    });
    let pp = PostParams::default();
    if add_node {
        let node: Node = serde_saphyr::from_str(NODE).context("cannot parse the node")?;
        nodes
            .create(&pp, &node)
            .await
            .context("cannot create the second kwok node")?;
    }
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&pp, &ns)
        .await
        .with_context(|| format!("cannot create namespace {namespace}"))?;
    let mut simulator = Simulator::start(&settings, &namespace)?;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let canaries: Api<Canary> = Api::namespaced(client.clone(), &namespace);
    let mut names = Vec::new();
    for i in 0..CANARIES {
        let d: Deployment =
            serde_saphyr::from_str(&deployment(i)).context("cannot parse the Deployment")?;
        deployments
            .create(&pp, &d)
            .await
            .with_context(|| format!("cannot create Deployment app-{i:03}"))?;
        let c: Canary = serde_saphyr::from_str(&canary(i)).context("cannot parse the Canary")?;
        canaries
            .create(&pp, &c)
            .await
            .with_context(|| format!("cannot create Canary app-{i:03}"))?;
        names.push(format!("app-{i:03}"));
    }

    let options = RunnerOptions {
        default_provider: "gatewayapi:v1".into(),
        metrics_server: Some(settings.prometheus_url.clone()),
        event_webhook: None,
        workloads: Default::default(),
        instance: None,
        routing: Default::default(),
        min_interval: ROUND_PERIOD,
    };
    let (ticks_per_sec, ticks_source) = clock_ticks();
    let clock = match ThreadClock::Schedstat.read() {
        Ok(_) => ThreadClock::Schedstat,
        Err(_) => ThreadClock::Stat {
            ns_per_tick: 1_000_000_000 / ticks_per_sec,
        },
    };
    let mut bench = Bench {
        runner: Runner::new(client.clone(), options).context("cannot create the runner")?,
        namespace: namespace.clone(),
        state: vec![(CanaryPhase::Unknown, 0); names.len()],
        last_event: vec![None; names.len()],
        names,
        clock,
        measured: Measurements::default(),
        last_round: None,
    };

    while bench.count(CanaryPhase::Initialized) < CANARIES
        && bench.measured.rounds.len() < MAX_INIT_ROUNDS
    {
        bench.round(Stage::Initialization).await?;
    }
    if bench.count(CanaryPhase::Initialized) != CANARIES {
        bench.report(ticks_per_sec, ticks_source);
        bail!(
            "not every canary is Initialized after {MAX_INIT_ROUNDS} rounds: {}",
            bench.stuck(CanaryPhase::Initialized)
        );
    }
    let bump = serde_json::json!({ "spec": { "template": { "spec": {
        "containers": [{ "name": "app", "image": "ghcr.io/stefanprodan/podinfo:6.0.1" }]
    } } } });
    for name in &bench.names {
        deployments
            .patch(name, &PatchParams::default(), &Patch::Strategic(&bump))
            .await
            .with_context(|| format!("cannot bump the image of {name}"))?;
    }
    let mut rounds = 0;
    // Until every canary is done: Succeeded, or Failed (which fails the bench below).
    let done = |b: &Bench| b.count(CanaryPhase::Succeeded) + b.count(CanaryPhase::Failed);
    while done(&bench) < CANARIES && rounds < MAX_ROLLOUT_ROUNDS {
        bench.round(Stage::Rollout).await?;
        rounds += 1;
    }
    if bench.count(CanaryPhase::Succeeded) == CANARIES {
        for _ in 0..STEADY_ROUNDS {
            bench.round(Stage::Steady).await?;
        }
    }
    bench.report(ticks_per_sec, ticks_source);
    if let Some(first) = bench.measured.errors.first() {
        bail!(
            "{} ticks failed; the first: {first}",
            bench.measured.errors.len()
        );
    }
    if bench.count(CanaryPhase::Succeeded) != CANARIES {
        bail!(
            "not every canary Succeeded after {rounds} rollout rounds: {}",
            bench.stuck(CanaryPhase::Succeeded)
        );
    }
    simulator.done = true;
    Ok(())
}

fn run() -> Result<()> {
    let plane = ControlPlane::start()?;
    // One thread: every task of a tick runs where its thread CPU time is read.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    runtime.block_on(async {
        tokio::select! {
            result = bench(&plane) => result,
            signal = tokio::signal::ctrl_c() => {
                signal.context("cannot wait for Ctrl-C")?;
                bail!("interrupted")
            }
        }
    })
}

fn main() -> ExitCode {
    // `cargo bench` passes --bench; nothing else is configurable.
    serin::crypto::install_default_provider();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("analysis_tick: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
