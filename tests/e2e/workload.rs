//! The workload layer against the real control plane: a real Canary (so ownerReferences carry a
//! uid the garbage collector follows), the real controller-manager rolling out the primary and
//! reporting the status Serin's readiness reads, kwok running the pods.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use libtest_mimic::Failed;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use serin::api::Canary;
use serin::workload::{Readiness, WorkloadError, WorkloadOptions, Workloads};

use crate::TestResult;
use crate::support::{Context, TestCtx, eventually, install_flagger_crds};

const IMAGE_1: &str = "ghcr.io/stefanprodan/podinfo:6.0.0";
const IMAGE_2: &str = "ghcr.io/stefanprodan/podinfo:6.0.1";
const WAIT: Duration = Duration::from_secs(90);

fn test_apply() -> PatchParams {
    PatchParams::apply("serin-e2e").force()
}

async fn apply<K>(api: &Api<K>, name: &str, value: Value) -> Result<K, Failed>
where
    K: Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    api.patch(name, &test_apply(), &Patch::Apply(value))
        .await
        .context(format!("apply {name}"))
}

fn podinfo(image: &str, replicas: Option<i32>) -> Value {
    let mut value = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "podinfo",
            "labels": { "app": "podinfo" },
            "annotations": {
                "kustomize.toolkit.fluxcd.io/checksum": "abc",
                "example.com/owner": "web",
            },
        },
        "spec": {
            "minReadySeconds": 3,
            "strategy": { "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } },
            "selector": { "matchLabels": { "app": "podinfo" } },
            "template": {
                "metadata": { "labels": { "app": "podinfo" } },
                "spec": {
                    "affinity": { "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [{
                            "weight": 100,
                            "podAffinityTerm": {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": { "matchLabels": { "app": "podinfo" } },
                            },
                        }],
                    } },
                    "containers": [{
                        "name": "podinfod",
                        "image": image,
                        "ports": [{ "name": "http", "containerPort": 9898 }],
                        "env": [{ "name": "COLOR", "valueFrom": {
                            "configMapKeyRef": { "name": "podinfo-config", "key": "color" },
                        } }],
                        "envFrom": [{ "configMapRef": { "name": "podinfo-config" } }],
                    }],
                    "volumes": [
                        { "name": "config", "configMap": { "name": "podinfo-config" } },
                        { "name": "static", "configMap": { "name": "podinfo-static" } },
                    ],
                },
            },
        },
    });
    // Serin owns the target's replicas: after the first apply the applier leaves them out.
    if let Some(replicas) = replicas {
        value["spec"]["replicas"] = json!(replicas);
    }
    value
}

fn config_map(name: &str, color: &str, untracked: bool) -> Value {
    let mut value = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "labels": { "app": "podinfo" } },
        "data": { "color": color },
    });
    if untracked {
        value["metadata"]["annotations"] = json!({ "flagger.app/config-tracking": "disabled" });
    }
    value
}

fn canary_manifest(namespace: &str, kind: &str, target: &str, autoscaler: bool) -> Value {
    let mut value = json!({
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": { "name": target, "namespace": namespace },
        "spec": {
            "targetRef": { "apiVersion": "apps/v1", "kind": kind, "name": target },
            "progressDeadlineSeconds": 60,
            "service": { "port": 9898 },
            "analysis": { "interval": "10s", "threshold": 5, "maxWeight": 50, "stepWeight": 10 },
        },
    });
    if autoscaler {
        value["spec"]["autoscalerRef"] = json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": target,
        });
    }
    value
}

/// Creates the Canary in the cluster: the returned object has the uid its owned objects need.
async fn create_canary(ctx: &TestCtx, manifest: Value) -> Result<Canary, Failed> {
    let canary: Canary = serde_json::from_value(manifest).context("decode Canary")?;
    ctx.api::<Canary>()
        .create(&PostParams::default(), &canary)
        .await
        .context("create Canary")
}

/// Polls `probe` until Ready (or Failed, which ends the wait too) and returns every distinct
/// state seen, in order.
async fn readiness_history<F, Fut>(what: &str, mut probe: F) -> Result<Vec<Readiness>, Failed>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Readiness, WorkloadError>>,
{
    let start = Instant::now();
    let mut seen: Vec<Readiness> = Vec::new();
    loop {
        let state = probe().await.context(what)?;
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if !matches!(state, Readiness::Waiting(_)) {
            return Ok(seen);
        }
        if start.elapsed() > WAIT {
            return Err(format!("{what}: still waiting after {WAIT:?}; seen {seen:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_ready<F, Fut>(what: &str, probe: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Readiness, WorkloadError>>,
{
    let seen = readiness_history(what, probe).await?;
    match seen.last() {
        Some(Readiness::Ready) => Ok(()),
        _ => Err(format!("{what}: never ready; seen {seen:?}").into()),
    }
}

async fn wait_gone<K>(api: &Api<K>, name: &str) -> TestResult
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    eventually(&format!("{name} to be garbage-collected"), WAIT, || async {
        let found = api.get_opt(name).await.context(format!("get {name}"))?;
        Ok(match found {
            None => Ok(()),
            Some(_) => Err("still there"),
        })
    })
    .await
}

fn json_of<T: Serialize>(value: &T) -> Result<Value, Failed> {
    serde_json::to_value(value).context("encode")
}

fn check(condition: bool, what: impl std::fmt::Display) -> TestResult {
    if condition {
        Ok(())
    } else {
        Err(what.to_string().into())
    }
}

fn owned_by(owners: Option<&Vec<OwnerReference>>, canary: &Canary) -> bool {
    owners.is_some_and(|refs| {
        refs.iter().any(|r| {
            Some(&r.uid) == canary.metadata.uid.as_ref()
                && r.kind == "Canary"
                && r.api_version == "flagger.app/v1beta1"
                && r.controller == Some(true)
        })
    })
}

/// Running, ready pods with `selector`, and their images.
async fn ready_pod_images(ctx: &TestCtx, selector: &str) -> Result<Vec<String>, Failed> {
    let pods = ctx
        .api::<Pod>()
        .list(&ListParams::default().labels(selector))
        .await
        .context("list pods")?;
    Ok(pods
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
        .filter_map(|p| p.spec.as_ref()?.containers.first()?.image.clone())
        .collect())
}

/// Bootstrap, scale down, new revision, scale up, promote, finalize, garbage collection.
pub async fn deployment_lifecycle() -> TestResult {
    let ctx = TestCtx::new("workload").await?;
    let ns = ctx.namespace.clone();
    install_flagger_crds(&ctx.client).await?;
    let deployments = ctx.api::<Deployment>();
    let config_maps = ctx.api::<ConfigMap>();
    let hpas = ctx.api::<HorizontalPodAutoscaler>();

    apply(
        &config_maps,
        "podinfo-config",
        config_map("podinfo-config", "blue", false),
    )
    .await?;
    apply(
        &config_maps,
        "podinfo-static",
        config_map("podinfo-static", "-", true),
    )
    .await?;
    apply(&deployments, "podinfo", podinfo(IMAGE_1, Some(2))).await?;
    let hpa = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": "podinfo" },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo" },
            "minReplicas": 2,
            "maxReplicas": 4,
            "metrics": [{ "type": "Resource", "resource": {
                "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 99 },
            } }],
        },
    });
    apply(&hpas, "podinfo", hpa.clone()).await?;
    let canary = create_canary(&ctx, canary_manifest(&ns, "Deployment", "podinfo", true)).await?;
    let workloads = Workloads::new(ctx.client.clone(), WorkloadOptions::default());

    // Bootstrap: the primary and the copy of the tracked ConfigMap.
    check(
        workloads
            .ensure_primary(&canary)
            .await
            .context("ensure_primary")?,
        "the first ensure_primary creates the primary",
    )?;
    let primary = deployments
        .get("podinfo-primary")
        .await
        .context("get primary")?;
    let got = json_of(&primary)?;
    check(
        owned_by(primary.metadata.owner_references.as_ref(), &canary),
        format!(
            "primary owned by the Canary: {:?}",
            primary.metadata.owner_references
        ),
    )?;
    check(
        got["spec"]["selector"] == json!({ "matchLabels": { "app": "podinfo-primary" } }),
        format!("primary selector {}", got["spec"]["selector"]),
    )?;
    check(
        got["spec"]["replicas"] == 2,
        "primary replicas copied from the target",
    )?;
    check(
        got["spec"]["minReadySeconds"] == 3,
        "minReadySeconds copied",
    )?;
    check(
        got["metadata"]["annotations"]["example.com/owner"] == "web"
            && got["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/checksum"].is_null(),
        format!("primary annotations {}", got["metadata"]["annotations"]),
    )?;
    let template = &got["spec"]["template"];
    check(
        template["metadata"]["labels"]["app"] == "podinfo-primary",
        "template selector label",
    )?;
    let first_id = template["metadata"]["annotations"]["flagger-id"].clone();
    check(first_id.is_string(), "flagger-id set")?;
    let pod = &template["spec"];
    let container = &pod["containers"][0];
    check(
        container["envFrom"][0]["configMapRef"]["name"] == "podinfo-config-primary"
            && container["env"][0]["valueFrom"]["configMapKeyRef"]["name"]
                == "podinfo-config-primary"
            && pod["volumes"][0]["configMap"]["name"] == "podinfo-config-primary",
        format!("tracked config references renamed: {pod}"),
    )?;
    check(
        pod["volumes"][1]["configMap"]["name"] == "podinfo-static",
        "a config with tracking disabled is neither copied nor renamed",
    )?;
    check(
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
            ["labelSelector"]["matchLabels"]["app"]
            == "podinfo-primary",
        "anti-affinity points at the primary's pods",
    )?;
    let copy = config_maps
        .get("podinfo-config-primary")
        .await
        .context("get the config copy")?;
    check(
        copy.data
            .as_ref()
            .and_then(|d| d.get("color"))
            .map(String::as_str)
            == Some("blue"),
        format!("config copy data {:?}", copy.data),
    )?;
    check(
        owned_by(copy.metadata.owner_references.as_ref(), &canary),
        "config copy owned by the Canary",
    )?;
    check(
        config_maps
            .get_opt("podinfo-static-primary")
            .await
            .context("get podinfo-static-primary")?
            .is_none(),
        "untracked config not copied",
    )?;

    // Never re-created or overwritten once present.
    check(
        !workloads
            .ensure_primary(&canary)
            .await
            .context("ensure_primary again")?,
        "the second ensure_primary leaves the primary alone",
    )?;
    let again = json_of(
        &deployments
            .get("podinfo-primary")
            .await
            .context("get primary")?,
    )?;
    check(
        again["metadata"]["uid"] == got["metadata"]["uid"]
            && again["spec"]["template"]["metadata"]["annotations"]["flagger-id"] == first_id,
        "the primary is the same object with the same template",
    )?;

    // The primary HPA.
    check(
        workloads
            .ensure_primary_autoscaler(&canary)
            .await
            .context("ensure_primary_autoscaler")?,
        "primary HPA created",
    )?;
    check(
        !workloads
            .ensure_primary_autoscaler(&canary)
            .await
            .context("ensure_primary_autoscaler again")?,
        "primary HPA created once",
    )?;
    let primary_hpa = hpas
        .get("podinfo-primary")
        .await
        .context("get primary HPA")?;
    let spec = primary_hpa.spec.clone();
    check(
        spec.scale_target_ref.name == "podinfo-primary"
            && spec.min_replicas == Some(2)
            && spec.max_replicas == 4
            && spec.metrics.is_some(),
        format!("primary HPA spec {spec:?}"),
    )?;

    // The real controller-manager rolls the primary out; Serin's readiness reads its status.
    wait_ready("primary ready after bootstrap", || {
        workloads.primary_readiness(&canary)
    })
    .await?;
    let images = ready_pod_images(&ctx, "app=podinfo-primary").await?;
    check(
        images == [IMAGE_1, IMAGE_1],
        format!("primary pods {images:?}"),
    )?;

    // Scale the target down; at rest it has no pods.
    workloads
        .scale_to_zero(&canary)
        .await
        .context("scale_to_zero")?;
    eventually("the target to have no pods", WAIT, || async {
        let d = deployments.get("podinfo").await.context("get target")?;
        let status = d.status.clone().unwrap_or_default();
        let spec = d.spec.as_ref().and_then(|s| s.replicas);
        Ok(if spec == Some(0) && status.replicas.unwrap_or(0) == 0 {
            Ok(())
        } else {
            Err((spec, status))
        })
    })
    .await?;

    // A new revision: image and ConfigMap change, applied without replicas.
    apply(
        &config_maps,
        "podinfo-config",
        config_map("podinfo-config", "green", false),
    )
    .await?;
    apply(&deployments, "podinfo", podinfo(IMAGE_2, None)).await?;
    let target = deployments.get("podinfo").await.context("get target")?;
    check(
        target.spec.as_ref().and_then(|s| s.replicas) == Some(0),
        "the applier leaving replicas out keeps the target at zero",
    )?;
    workloads
        .scale_from_zero(&canary)
        .await
        .context("scale_from_zero")?;
    let target = deployments.get("podinfo").await.context("get target")?;
    check(
        target.spec.as_ref().and_then(|s| s.replicas) == Some(2),
        "scaled from zero to the HPA's minReplicas",
    )?;
    wait_ready("target ready after scale-up", || {
        workloads.target_readiness(&canary)
    })
    .await?;
    let images = ready_pod_images(&ctx, "app=podinfo").await?;
    check(
        images == [IMAGE_2, IMAGE_2],
        format!("target pods {images:?}"),
    )?;
    // The primary has not moved: still the old image and the old config.
    let copy = config_maps
        .get("podinfo-config-primary")
        .await
        .context("get copy")?;
    check(
        copy.data
            .as_ref()
            .and_then(|d| d.get("color"))
            .map(String::as_str)
            == Some("blue"),
        "the config copy changes only at promotion",
    )?;

    // Promotion: configs first, then the primary rolls out; readiness waits, then is ready.
    workloads.promote(&canary).await.context("promote")?;
    let copy = config_maps
        .get("podinfo-config-primary")
        .await
        .context("get copy")?;
    check(
        copy.data
            .as_ref()
            .and_then(|d| d.get("color"))
            .map(String::as_str)
            == Some("green"),
        format!("config copy after promotion {:?}", copy.data),
    )?;
    let seen = readiness_history("primary rollout after promotion", || {
        workloads.primary_readiness(&canary)
    })
    .await?;
    let prefix = format!("podinfo-primary.{ns} not ready: waiting for rollout to finish: ");
    check(
        matches!(seen.first(), Some(Readiness::Waiting(m)) if m.starts_with(&prefix))
            && seen.last() == Some(&Readiness::Ready)
            && seen[..seen.len() - 1]
                .iter()
                .all(|s| matches!(s, Readiness::Waiting(m) if m.starts_with(&prefix))),
        format!("readiness after promotion: {seen:?}"),
    )?;
    let promoted = json_of(
        &deployments
            .get("podinfo-primary")
            .await
            .context("get primary")?,
    )?;
    let template = &promoted["spec"]["template"];
    check(
        template["spec"]["containers"][0]["image"] == IMAGE_2
            && template["metadata"]["annotations"]["flagger-id"] != first_id
            && template["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"]
                == "podinfo-config-primary",
        format!("promoted template {template}"),
    )?;
    // Promotion filters object annotations by the include prefixes (none by default).
    check(
        promoted["metadata"]["annotations"]["example.com/owner"].is_null(),
        format!(
            "promoted annotations {}",
            promoted["metadata"]["annotations"]
        ),
    )?;
    let images = ready_pod_images(&ctx, "app=podinfo-primary").await?;
    check(
        images == [IMAGE_2, IMAGE_2],
        format!("primary pods after promotion {images:?}"),
    )?;

    // The primary HPA follows the target's at promotion.
    let mut bigger = hpa;
    bigger["spec"]["maxReplicas"] = json!(5);
    apply(&hpas, "podinfo", bigger).await?;
    workloads
        .update_primary_autoscaler(&canary)
        .await
        .context("update_primary_autoscaler")?;
    let primary_hpa = hpas
        .get("podinfo-primary")
        .await
        .context("get primary HPA")?;
    check(
        primary_hpa.spec.max_replicas == 5,
        "primary HPA maxReplicas updated",
    )?;

    // Finalize (revertOnDeletion): the resting target takes the primary's replicas and is ready.
    workloads
        .scale_to_zero(&canary)
        .await
        .context("scale_to_zero")?;
    workloads.finalize(&canary).await.context("finalize")?;
    let target = deployments.get("podinfo").await.context("get target")?;
    let primary = deployments
        .get("podinfo-primary")
        .await
        .context("get primary")?;
    check(
        target.spec.as_ref().and_then(|s| s.replicas)
            == primary.spec.as_ref().and_then(|s| s.replicas),
        "finalize gives the target the primary's replicas",
    )?;
    let images = ready_pod_images(&ctx, "app=podinfo").await?;
    check(
        images.len() == 2,
        format!("target ready after finalize: {images:?}"),
    )?;

    // Deleting the Canary garbage-collects everything it owns, and nothing else.
    ctx.api::<Canary>()
        .delete("podinfo", &DeleteParams::background())
        .await
        .context("delete Canary")?;
    wait_gone(&deployments, "podinfo-primary").await?;
    wait_gone(&config_maps, "podinfo-config-primary").await?;
    wait_gone(&hpas, "podinfo-primary").await?;
    check(
        deployments
            .get_opt("podinfo")
            .await
            .context("get target")?
            .is_some()
            && config_maps
                .get_opt("podinfo-config")
                .await
                .context("get config")?
                .is_some(),
        "the target and its config survive the Canary",
    )?;
    ctx.finish().await;
    Ok(())
}

/// A Deployment that can never become available (its pods fit no node) is Waiting, then
/// Failed once the controller-manager reports ProgressDeadlineExceeded.
pub async fn readiness_fails_past_progress_deadline() -> TestResult {
    let ctx = TestCtx::new("workload-deadline").await?;
    let ns = ctx.namespace.clone();
    let deployments = ctx.api::<Deployment>();
    apply(
        &deployments,
        "stuck",
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": "stuck" },
            "spec": {
                "replicas": 1,
                "progressDeadlineSeconds": 5,
                "selector": { "matchLabels": { "app": "stuck" } },
                "template": {
                    "metadata": { "labels": { "app": "stuck" } },
                    "spec": {
                        "nodeSelector": { "serin.dev/no-such-node": "true" },
                        "containers": [{ "name": "app", "image": IMAGE_1 }],
                    },
                },
            },
        }),
    )
    .await?;
    // Readiness needs no uid: the Canary is not created in the cluster.
    let canary: Canary = serde_json::from_value(canary_manifest(&ns, "Deployment", "stuck", false))
        .context("decode Canary")?;
    let workloads = Workloads::new(ctx.client.clone(), WorkloadOptions::default());
    let seen = readiness_history("stuck target", || workloads.target_readiness(&canary)).await?;
    let prefix = format!("canary deployment stuck.{ns} not ready: ");
    let failed = format!("{prefix}deployment \"stuck\" exceeded its progress deadline");
    check(
        matches!(seen.first(), Some(Readiness::Waiting(m)) if m.starts_with(&prefix))
            && seen.last() == Some(&Readiness::Failed(failed)),
        format!("readiness of a stuck deployment: {seen:?}"),
    )?;
    ctx.finish().await;
    Ok(())
}

/// A DaemonSet target: its primary, scale-to-zero by node selector, promotion that never copies
/// that selector, and garbage collection.
pub async fn daemonset_lifecycle() -> TestResult {
    let ctx = TestCtx::new("workload-ds").await?;
    let ns = ctx.namespace.clone();
    install_flagger_crds(&ctx.client).await?;
    let daemonsets = ctx.api::<DaemonSet>();
    let agent = |image: &str| {
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": { "name": "agent", "labels": { "name": "agent" } },
            "spec": {
                "updateStrategy": { "type": "RollingUpdate" },
                "selector": { "matchLabels": { "name": "agent" } },
                "template": {
                    "metadata": { "labels": { "name": "agent" } },
                    "spec": { "containers": [{ "name": "agent", "image": image }] },
                },
            },
        })
    };
    apply(&daemonsets, "agent", agent(IMAGE_1)).await?;
    let canary = create_canary(&ctx, canary_manifest(&ns, "DaemonSet", "agent", false)).await?;
    let workloads = Workloads::new(ctx.client.clone(), WorkloadOptions::default());

    check(
        workloads
            .ensure_primary(&canary)
            .await
            .context("ensure_primary")?,
        "primary DaemonSet created",
    )?;
    let primary = json_of(
        &daemonsets
            .get("agent-primary")
            .await
            .context("get primary")?,
    )?;
    check(
        primary["spec"]["selector"] == json!({ "matchLabels": { "name": "agent-primary" } }),
        format!("primary selector {}", primary["spec"]["selector"]),
    )?;
    wait_ready("primary DaemonSet ready", || {
        workloads.primary_readiness(&canary)
    })
    .await?;
    check(
        ready_pod_images(&ctx, "name=agent-primary").await? == [IMAGE_1],
        "one primary pod on the kwok node",
    )?;

    workloads
        .scale_to_zero(&canary)
        .await
        .context("scale_to_zero")?;
    eventually("the target DaemonSet to have no pods", WAIT, || async {
        let ds = daemonsets.get("agent").await.context("get target")?;
        let selector = ds
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.node_selector.clone());
        let desired = ds.status.as_ref().map(|s| s.desired_number_scheduled);
        let pods = ready_pod_images(&ctx, "name=agent").await?;
        Ok(if desired == Some(0) && pods.is_empty() {
            Ok(())
        } else {
            Err((selector, desired, pods))
        })
    })
    .await?;

    // Promote while the target still carries the scale-to-zero selector: the primary must not.
    apply(&daemonsets, "agent", agent(IMAGE_2)).await?;
    workloads.promote(&canary).await.context("promote")?;
    wait_ready("primary DaemonSet after promotion", || {
        workloads.primary_readiness(&canary)
    })
    .await?;
    let primary = json_of(
        &daemonsets
            .get("agent-primary")
            .await
            .context("get primary")?,
    )?;
    check(
        primary["spec"]["template"]["spec"]["nodeSelector"].is_null()
            && primary["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_2,
        format!("promoted primary template {}", primary["spec"]["template"]),
    )?;
    eventually("the primary pod to run the new image", WAIT, || async {
        let images = ready_pod_images(&ctx, "name=agent-primary").await?;
        Ok(if images == [IMAGE_2] {
            Ok(())
        } else {
            Err(images)
        })
    })
    .await?;

    workloads
        .scale_from_zero(&canary)
        .await
        .context("scale_from_zero")?;
    wait_ready("target DaemonSet after scale-up", || {
        workloads.target_readiness(&canary)
    })
    .await?;
    check(
        ready_pod_images(&ctx, "name=agent").await? == [IMAGE_2],
        "the target runs one pod again",
    )?;

    ctx.api::<Canary>()
        .delete("agent", &DeleteParams::background())
        .await
        .context("delete Canary")?;
    wait_gone(&daemonsets, "agent-primary").await?;
    ctx.finish().await;
    Ok(())
}
