//! A canary rig: Serin's scheduler and runner, the mesh simulator scraped by Prometheus, a
//! webhook server whose answers the test sets, the podinfo Deployment and the guide's
//! MetricTemplates — everything a rollout scenario needs, in the test's namespace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use libtest_mimic::Failed;
use serin::analysis::runner::{Runner, RunnerOptions};
use serin::analysis::scheduler::Scheduler;
use serin::api::{Canary, CanaryPhase, MetricTemplate};

use super::{Context, TestCtx, eventually, install_flagger_crds};

pub const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  labels:
    app: podinfo
spec:
  replicas: 2
  progressDeadlineSeconds: 60
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
          envFrom:
            - configMapRef:
                name: podinfo-config
                optional: true
"#;

type Answers = Arc<Mutex<HashMap<String, u16>>>;

async fn answer(State(answers): State<Answers>, Path(name): Path<String>) -> StatusCode {
    let code = answers
        .lock()
        .map(|a| a.get(&name).copied().unwrap_or(200))
        .unwrap_or(500);
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// One of Serin's Kubernetes Events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub warning: bool,
    /// The Canary the event is about.
    pub canary: String,
    pub note: String,
}

pub struct Rig {
    pub ctx: TestCtx,
    answers: Answers,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Rig {
    /// Starts everything; `canary` gets the namespace and the hook base URL
    /// (`http://127.0.0.1:PORT/`, a hook named N answers at `<base>N`).
    pub async fn start(
        test: &str,
        extra: &[&str],
        canary: impl FnOnce(&str, &str) -> String,
    ) -> Result<Rig, Failed> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Rig::start_with(test, "istio", move |_| extra, canary).await
    }

    /// [`Rig::start`] with extra objects that depend on the namespace (`extra` gets it), and
    /// the provider of Canaries that name none (`serin run --provider`).
    pub async fn start_with(
        test: &str,
        default_provider: &str,
        extra: impl FnOnce(&str) -> Vec<String>,
        canary: impl FnOnce(&str, &str) -> String,
    ) -> Result<Rig, Failed> {
        let ctx = TestCtx::new(test).await?;
        let extra = extra(&ctx.namespace);
        install_flagger_crds(&ctx.client).await?;
        let ns = ctx.namespace.clone();
        let pp = PostParams::default();

        let answers: Answers = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind")?;
        let hook_base = format!("http://{}/", listener.local_addr().context("addr")?);
        let app = Router::new()
            .route("/{name}", post(answer))
            .with_state(answers.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let deployment: Deployment = serde_saphyr::from_str(DEPLOYMENT).context("deployment")?;
        ctx.api::<Deployment>()
            .create(&pp, &deployment)
            .await
            .context("create deployment")?;
        for yaml in &extra {
            let object: serde_json::Value = serde_saphyr::from_str(yaml).context("extra object")?;
            let kind = object["kind"].as_str().unwrap_or_default().to_string();
            match kind.as_str() {
                "ConfigMap" => {
                    let cm = serde_json::from_value(object).context("configmap")?;
                    ctx.api::<k8s_openapi::api::core::v1::ConfigMap>()
                        .create(&pp, &cm)
                        .await
                        .context("create configmap")?;
                }
                // Anything else (an Ingress, an ApisixRoute, an HTTPProxy): by discovery.
                _ => {
                    let object: kube::api::DynamicObject =
                        serde_json::from_value(object).context("extra object")?;
                    let types = object
                        .types
                        .clone()
                        .ok_or_else(|| Failed::from("extra object without kind"))?;
                    let gvk = kube::api::GroupVersionKind::try_from(&types)
                        .map_err(|e| format!("extra {kind}: {e}"))?;
                    let (resource, _) = kube::discovery::pinned_kind(&ctx.client, &gvk)
                        .await
                        .context(format!("discover {kind}"))?;
                    kube::Api::<kube::api::DynamicObject>::namespaced_with(
                        ctx.client.clone(),
                        &ns,
                        &resource,
                    )
                    .create(&pp, &object)
                    .await
                    .context(format!("create {kind}"))?;
                }
            }
        }
        let templates = include_str!("../../../examples/podinfo/metric-templates.yaml")
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
        let mut canary: Canary =
            serde_saphyr::from_str(&canary(&ns, &hook_base)).context("parse canary")?;
        canary.metadata.namespace = Some(ns.clone());
        ctx.api::<Canary>()
            .create(&pp, &canary)
            .await
            .context("create canary")?;

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
        // The guard would remove the target on drop; the rig lives as long as the test.
        std::mem::forget(ctx.env.add_scrape_target(&format!("{ns}-mesh"), sim_addr)?);

        let options = RunnerOptions {
            default_provider: default_provider.into(),
            metrics_server: Some(ctx.env.prometheus_url.clone()),
            event_webhook: None,
            workloads: Default::default(),
            instance: None,
            routing: Default::default(),
            min_interval: Duration::from_secs(1),
        };
        let runner = Runner::new(ctx.client.clone(), options).context("runner")?;
        let scheduler = Scheduler::new(ctx.client.clone(), runner, Some(ns));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(scheduler.run(Duration::from_secs(1), async move {
            let _ = stopped.await;
        }));
        Ok(Rig {
            ctx,
            answers,
            stop: Some(stop),
        })
    }

    /// Makes the hook `name` answer `status` from now on (200 when never set).
    pub fn answer(&self, name: &str, status: u16) {
        if let Ok(mut a) = self.answers.lock() {
            a.insert(name.to_string(), status);
        }
    }

    pub async fn phase(&self) -> Result<(CanaryPhase, i32, i32), Failed> {
        self.phase_of("podinfo").await
    }

    pub async fn wait_phase(&self, want: CanaryPhase, timeout: Duration) -> Result<(), Failed> {
        self.wait_phase_of("podinfo", want, timeout).await
    }

    /// The Canary `name` of the rig's namespace, as the API server has it.
    pub async fn canary(&self, name: &str) -> Result<Canary, Failed> {
        self.ctx
            .api::<Canary>()
            .get(name)
            .await
            .context(format!("get canary {name}"))
    }

    /// Phase, canary weight and failed checks of the Canary `name`.
    pub async fn phase_of(&self, name: &str) -> Result<(CanaryPhase, i32, i32), Failed> {
        let s = self.canary(name).await?.status.unwrap_or_default();
        Ok((s.phase, s.canary_weight, s.failed_checks))
    }

    pub async fn wait_phase_of(
        &self,
        name: &str,
        want: CanaryPhase,
        timeout: Duration,
    ) -> Result<(), Failed> {
        let waited = eventually(&format!("{name} phase {want:?}"), timeout, || async {
            let seen = self.phase_of(name).await?;
            Ok(if seen.0 == want { Ok(()) } else { Err(seen) })
        })
        .await;
        // The last events say why, which the phase alone does not.
        if let Err(e) = waited {
            let events = self.events().await.unwrap_or_default();
            let last = &events[events.len().saturating_sub(8)..];
            return Err(format!(
                "{}\nlast events: {last:#?}",
                e.message().unwrap_or_default()
            )
            .into());
        }
        Ok(())
    }

    /// Another target like the rig's podinfo, named `name`: its pods are labelled `app: <name>`
    /// and run podinfo 6.0.0 healthily.
    pub async fn add_target(&self, name: &str) -> Result<(), Failed> {
        let yaml = DEPLOYMENT
            .replace("name: podinfo\n", &format!("name: {name}\n"))
            .replace("app: podinfo\n", &format!("app: {name}\n"));
        let deployment: Deployment = serde_saphyr::from_str(&yaml).context("deployment")?;
        self.ctx
            .api::<Deployment>()
            .create(&PostParams::default(), &deployment)
            .await
            .context(format!("create deployment {name}"))?;
        Ok(())
    }

    /// Another Canary in the rig's namespace; the scheduler starts ticking it within a second.
    pub async fn add_canary(&self, yaml: &str) -> Result<(), Failed> {
        let mut canary: Canary = serde_saphyr::from_str(yaml).context("parse canary")?;
        canary.metadata.namespace = Some(self.ctx.namespace.clone());
        self.ctx
            .api::<Canary>()
            .create(&PostParams::default(), &canary)
            .await
            .context("create canary")?;
        Ok(())
    }

    /// Serin's events, in order.
    pub async fn events(&self) -> Result<Vec<String>, Failed> {
        Ok(self
            .event_records()
            .await?
            .into_iter()
            .map(|e| e.note)
            .collect())
    }

    /// Serin's events with their type and Canary, in order.
    pub async fn event_records(&self) -> Result<Vec<EventRecord>, Failed> {
        let mut list = self
            .ctx
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .context("list events")?
            .items;
        list.retain(|e| e.reporting_controller.as_deref() == Some("serin"));
        list.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
        Ok(list
            .into_iter()
            .filter_map(|e| {
                Some(EventRecord {
                    warning: e.type_.as_deref() == Some("Warning"),
                    canary: e.regarding.and_then(|r| r.name).unwrap_or_default(),
                    note: e.note?,
                })
            })
            .collect())
    }

    pub async fn wait_event(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<(), Failed> {
        eventually(what, timeout, || async {
            let events = self.events().await?;
            Ok(if events.iter().any(|e| pred(e)) {
                Ok(())
            } else {
                Err(events)
            })
        })
        .await
    }

    /// Changes the target's image and its simulated error rate: a new revision.
    pub async fn set_image(&self, image: &str, error_rate: &str) -> Result<(), Failed> {
        self.set_image_of("podinfo", image, error_rate).await
    }

    /// Changes the image and simulated error rate of the Deployment `target`.
    pub async fn set_image_of(
        &self,
        target: &str,
        image: &str,
        error_rate: &str,
    ) -> Result<(), Failed> {
        let patch = serde_json::json!({
            "spec": { "template": {
                "metadata": { "annotations": { "sim.serin.dev/error-rate": error_rate } },
                "spec": { "containers": [{ "name": "podinfod", "image": image }] }
            } }
        });
        self.ctx
            .api::<Deployment>()
            .patch(target, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .context(format!("update the target {target}"))?;
        Ok(())
    }

    pub async fn image_of(&self, name: &str) -> Result<Option<String>, Failed> {
        let d = self
            .ctx
            .api::<Deployment>()
            .get(name)
            .await
            .context("get deployment")?;
        Ok(d.spec
            .and_then(|s| s.template.spec)
            .and_then(|s| s.containers.first().and_then(|c| c.image.clone())))
    }

    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.ctx.finish().await;
    }
}
