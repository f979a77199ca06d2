//! The Gateway API canary of the guide (seed 000), run by Serin against the real control plane:
//! Serin's scheduler and runner, the mesh simulator playing the Gateway and the traffic, the real
//! Prometheus, and a real HTTP server standing in for the load tester. The manifests are the
//! guide's; only the intervals are shortened (allowed by `--min-analysis-interval`) and the hook
//! URL points at the local stand-in.

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serin::analysis::runner::{Runner, RunnerOptions};
use serin::analysis::scheduler::Scheduler;
use serin::api::{Canary, CanaryPhase, MetricTemplate};

use crate::TestResult;
use crate::support::{Context, TestCtx, eventually, install_flagger_crds};

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  labels:
    app: podinfo
spec:
  replicas: 2
  minReadySeconds: 0
  progressDeadlineSeconds: 60
  strategy:
    rollingUpdate:
      maxUnavailable: 0
    type: RollingUpdate
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
      annotations:
        sim.serin.dev/error-rate: "0"
        sim.serin.dev/latency-ms: "40"
    spec:
      containers:
        - name: podinfod
          image: ghcr.io/stefanprodan/podinfo:6.0.0
          ports:
            - name: http
              containerPort: 9898
"#;

/// The guide's Canary in namespace `ns`, its templates looked up there too.
fn seed_canary(hook_url: &str, ns: &str) -> Result<Canary, libtest_mimic::Failed> {
    let text = include_str!("../../examples/podinfo/canary.yaml")
        .replace("http://flagger-loadtester.test/", hook_url)
        .replace(
            "interval: 1m\n    # max number",
            "interval: 2s\n    # max number",
        )
        .replace("namespace: flagger-system", &format!("namespace: {ns}"))
        .replace("namespace: test", &format!("namespace: {ns}"));
    serde_saphyr::from_str(&text).context("parse the guide's canary")
}

async fn events(ctx: &TestCtx) -> Result<Vec<String>, libtest_mimic::Failed> {
    let mut list = ctx
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .context("list events")?
        .items;
    // Serin's own events, in the order they happened.
    list.retain(|e| e.reporting_controller.as_deref() == Some("serin"));
    list.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
    Ok(list.into_iter().filter_map(|e| e.note).collect())
}

async fn phase(ctx: &TestCtx) -> Result<(CanaryPhase, i32), libtest_mimic::Failed> {
    let c = ctx
        .api::<Canary>()
        .get("podinfo")
        .await
        .context("get canary")?;
    let s = c.status.unwrap_or_default();
    Ok((s.phase, s.canary_weight))
}

async fn wait_phase(ctx: &TestCtx, want: CanaryPhase, timeout: Duration) -> TestResult {
    eventually(&format!("phase {want:?}"), timeout, || async {
        let (phase, weight) = phase(ctx).await?;
        Ok(if phase == want {
            Ok(())
        } else {
            Err((phase, weight))
        })
    })
    .await
}

async fn set_image(ctx: &TestCtx, image: &str, error_rate: &str) -> TestResult {
    let patch = serde_json::json!({
        "spec": { "template": {
            "metadata": { "annotations": { "sim.serin.dev/error-rate": error_rate } },
            "spec": { "containers": [{ "name": "podinfod", "image": image }] }
        } }
    });
    ctx.api::<Deployment>()
        .patch("podinfo", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .context("update the target")?;
    Ok(())
}

fn image_of(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

fn weights(route: &HttpRoute) -> Vec<(String, i32)> {
    route
        .spec
        .rules
        .iter()
        .flatten()
        .flat_map(|r| r.backend_refs.iter().flatten())
        .map(|b| (b.name.clone(), b.weight.unwrap_or(1)))
        .collect()
}

pub async fn gateway_api_canary_promotes_then_rolls_back() -> TestResult {
    let ctx = TestCtx::new("rollout").await?;
    install_flagger_crds(&ctx.client).await?;
    let ns = ctx.namespace.clone();

    // The load tester stand-in: answers every hook with 200.
    let hooks = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind")?;
    let hook_url = format!("http://{}/", hooks.local_addr().context("addr")?);
    tokio::spawn(async move {
        let app = Router::new().route("/", post(|| async { "ok" }));
        let _ = axum::serve(hooks, app).await;
    });

    let pp = PostParams::default();
    let deployment: Deployment = serde_saphyr::from_str(DEPLOYMENT).context("deployment")?;
    ctx.api::<Deployment>()
        .create(&pp, &deployment)
        .await
        .context("create deployment")?;
    let templates = include_str!("../../examples/podinfo/metric-templates.yaml")
        .replace(
            "http://prometheus.istio-system:9090",
            &ctx.env.prometheus_url,
        )
        .replace("namespace: flagger-system", &format!("namespace: {ns}"));
    let templates: Vec<MetricTemplate> =
        serde_saphyr::from_multiple(&templates).context("templates")?;
    for t in &templates {
        ctx.api::<MetricTemplate>()
            .create(&pp, t)
            .await
            .context("create template")?;
    }
    let mut canary = seed_canary(&hook_url, &ns)?;
    // The guide's HPA needs a metrics server to matter; the rollout does not depend on it.
    canary.spec.autoscaler_ref = None;
    ctx.api::<Canary>()
        .create(&pp, &canary)
        .await
        .context("create canary")?;

    // The mesh simulator, scraped by Prometheus.
    let sim = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind")?;
    let sim_addr = sim.local_addr().context("addr")?;
    let sim_config = serin::simulator::SimulatorConfig {
        namespaces: vec![ns.clone()],
        ..Default::default()
    };
    let sim_client = ctx.client.clone();
    tokio::spawn(async move {
        let _ = serin::simulator::run(sim_client, sim_config, sim).await;
    });
    let _target = ctx.env.add_scrape_target(&format!("{ns}-mesh"), sim_addr)?;

    // Serin itself.
    let options = RunnerOptions {
        default_provider: "istio".into(),
        metrics_server: Some(ctx.env.prometheus_url.clone()),
        event_webhook: None,
        workloads: Default::default(),
        instance: None,
        min_interval: Duration::from_secs(1),
    };
    let runner = Runner::new(ctx.client.clone(), options).context("runner")?;
    let scheduler = Scheduler::new(ctx.client.clone(), runner, Some(ns.clone()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serin = tokio::spawn(scheduler.run(Duration::from_secs(1), async move {
        let _ = stop_rx.await;
    }));

    wait_phase(&ctx, CanaryPhase::Initialized, Duration::from_secs(90)).await?;
    let deployments = ctx.api::<Deployment>();
    let target = deployments.get("podinfo").await.context("get target")?;
    if target.spec.as_ref().and_then(|s| s.replicas) != Some(0) {
        return Err(format!(
            "the target was not scaled to zero: {:?}",
            target.spec.map(|s| s.replicas)
        )
        .into());
    }

    // 6.0.1: advances 10..50, promotes, succeeds.
    set_image(&ctx, "ghcr.io/stefanprodan/podinfo:6.0.1", "0").await?;
    wait_phase(&ctx, CanaryPhase::Succeeded, Duration::from_secs(180)).await?;
    let seen = events(&ctx).await?;
    let n = |text: &str| format!("{text}podinfo.{ns}");
    let expected = [
        n("New revision detected! Scaling up "),
        n("Starting canary analysis for "),
        format!("Advance podinfo.{ns} canary weight 10"),
        format!("Advance podinfo.{ns} canary weight 20"),
        format!("Advance podinfo.{ns} canary weight 30"),
        format!("Advance podinfo.{ns} canary weight 40"),
        format!("Advance podinfo.{ns} canary weight 50"),
        format!("Copying podinfo.{ns} template spec to podinfo-primary.{ns}"),
        n("Promotion completed! Scaling down "),
    ];
    let mut at = 0;
    for want in &expected {
        match seen[at..].iter().position(|e| e == want) {
            Some(i) => at += i + 1,
            None => {
                return Err(format!("missing or out of order: {want:?}\nevents: {seen:#?}").into());
            }
        }
    }
    let primary = deployments
        .get("podinfo-primary")
        .await
        .context("primary")?;
    if image_of(&primary).as_deref() != Some("ghcr.io/stefanprodan/podinfo:6.0.1") {
        return Err(format!("primary runs {:?}", image_of(&primary)).into());
    }
    let route = ctx
        .api::<HttpRoute>()
        .get("podinfo")
        .await
        .context("route")?;
    if weights(&route)
        != [
            ("podinfo-primary".to_string(), 100),
            ("podinfo-canary".to_string(), 0),
        ]
    {
        return Err(format!("route weights {:?}", weights(&route)).into());
    }
    eventually(
        "the target to be at zero",
        Duration::from_secs(30),
        || async {
            let d = deployments.get("podinfo").await.context("target")?;
            let replicas = d.spec.as_ref().and_then(|s| s.replicas);
            Ok(if replicas == Some(0) {
                Ok(())
            } else {
                Err(replicas)
            })
        },
    )
    .await?;

    // 6.0.2 answers 30% of its requests with errors: halts, rolls back, fails.
    set_image(&ctx, "ghcr.io/stefanprodan/podinfo:6.0.2", "0.3").await?;
    wait_phase(&ctx, CanaryPhase::Failed, Duration::from_secs(180)).await?;
    let seen = events(&ctx).await?;
    let halted = seen.iter().any(|e| {
        e.starts_with(&format!("Halt podinfo.{ns} advancement error-rate ")) && e.ends_with(" > 1")
    });
    let rolled_back = seen.contains(&format!(
        "Rolling back podinfo.{ns} failed checks threshold reached 5"
    ));
    let failed = seen.contains(&format!("Canary failed! Scaling down podinfo.{ns}"));
    if !(halted && rolled_back && failed) {
        return Err(format!(
            "halt {halted}, rollback {rolled_back}, failed {failed}; events: {seen:#?}"
        )
        .into());
    }
    let primary = deployments
        .get("podinfo-primary")
        .await
        .context("primary")?;
    if image_of(&primary).as_deref() != Some("ghcr.io/stefanprodan/podinfo:6.0.1") {
        return Err(format!("the primary left 6.0.1: {:?}", image_of(&primary)).into());
    }
    let route = ctx
        .api::<HttpRoute>()
        .get("podinfo")
        .await
        .context("route")?;
    if weights(&route)
        != [
            ("podinfo-primary".to_string(), 100),
            ("podinfo-canary".to_string(), 0),
        ]
    {
        return Err(format!("route weights after rollback {:?}", weights(&route)).into());
    }

    let _ = stop_tx.send(());
    let _ = serin.await;
    ctx.finish().await;
    Ok(())
}
