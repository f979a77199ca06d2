//! The real controller-manager rolls a Deployment out and reports its status; kwok plays the
//! kubelet so pods become Running and Ready.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;

use crate::TestResult;
use crate::support::{Context, TestCtx, eventually};

const REPLICAS: i32 = 3;

fn podinfo(image: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "podinfo", "labels": { "app": "podinfo" } },
        "spec": {
            "replicas": REPLICAS,
            "selector": { "matchLabels": { "app": "podinfo" } },
            "strategy": { "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } },
            "template": {
                "metadata": { "labels": { "app": "podinfo" } },
                "spec": { "containers": [{
                    "name": "podinfod",
                    "image": image,
                    "ports": [{ "name": "http", "containerPort": 9898 }],
                }] }
            }
        }
    })
}

/// Whether the controller-manager reports the current generation fully rolled out.
fn rolled_out(d: &Deployment) -> bool {
    let (Some(spec), Some(status)) = (&d.spec, &d.status) else {
        return false;
    };
    let want = spec.replicas.unwrap_or(1);
    status.observed_generation == d.metadata.generation
        && status.replicas == Some(want)
        && status.updated_replicas == Some(want)
        && status.ready_replicas == Some(want)
        && status.available_replicas == Some(want)
        && status.conditions.as_ref().is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        })
}

fn image_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.containers.first()?.image.as_deref()
}

fn running_and_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    pod.metadata.deletion_timestamp.is_none()
        && status.phase.as_deref() == Some("Running")
        && status.pod_ip.is_some()
        && status
            .conditions
            .as_ref()
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn wait_rolled_out(ctx: &TestCtx, image: &str) -> TestResult {
    let deployments = ctx.api::<Deployment>();
    let pods = ctx.api::<Pod>();
    eventually(
        &format!("podinfo to roll out {image}"),
        Duration::from_secs(90),
        || async {
            let d = deployments.get("podinfo").await.context("get deployment")?;
            if !rolled_out(&d) {
                return Ok(Err(format!("deployment status {:?}", d.status)));
            }
            let list = pods
                .list(&ListParams::default().labels("app=podinfo"))
                .await
                .context("list pods")?;
            let live: Vec<&Pod> = list
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let good = live
                .iter()
                .filter(|p| running_and_ready(p) && image_of(p) == Some(image))
                .filter(|p| {
                    p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("kwok-node-0")
                })
                .count();
            if live.len() == REPLICAS as usize && good == live.len() {
                Ok(Ok(()))
            } else {
                let seen: Vec<_> = live
                    .iter()
                    .map(|p| (image_of(p), p.status.as_ref().and_then(|s| s.phase.clone())))
                    .collect();
                Ok(Err(format!("pods {seen:?}")))
            }
        },
    )
    .await
}

pub async fn rolls_out_and_updates() -> TestResult {
    let ctx = TestCtx::new("deployment").await?;
    let deployments = ctx.api::<Deployment>();
    let apply = PatchParams::apply("serin-e2e").force();

    deployments
        .patch(
            "podinfo",
            &apply,
            &Patch::Apply(podinfo("ghcr.io/stefanprodan/podinfo:6.0.0")),
        )
        .await
        .context("apply podinfo 6.0.0")?;
    wait_rolled_out(&ctx, "ghcr.io/stefanprodan/podinfo:6.0.0").await?;

    deployments
        .patch(
            "podinfo",
            &apply,
            &Patch::Apply(podinfo("ghcr.io/stefanprodan/podinfo:6.0.1")),
        )
        .await
        .context("apply podinfo 6.0.1")?;
    wait_rolled_out(&ctx, "ghcr.io/stefanprodan/podinfo:6.0.1").await?;

    // The rolling update leaves two ReplicaSets: the new one owning every pod, the old at 0.
    let replica_sets = ctx.api::<ReplicaSet>();
    eventually(
        "the old ReplicaSet to reach 0",
        Duration::from_secs(30),
        || async {
            let list = replica_sets
                .list(&ListParams::default().labels("app=podinfo"))
                .await
                .context("list replicasets")?;
            let summary: Vec<(Option<String>, Option<i32>, i32)> = list
                .items
                .iter()
                .map(|rs| {
                    let image = rs
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.as_ref())
                        .and_then(|t| t.spec.as_ref())
                        .and_then(|s| s.containers.first())
                        .and_then(|c| c.image.clone());
                    let spec = rs.spec.as_ref().and_then(|s| s.replicas);
                    let status = rs.status.as_ref().map_or(-1, |s| s.replicas);
                    (image, spec, status)
                })
                .collect();
            let old = summary
                .iter()
                .find(|(i, ..)| i.as_deref() == Some("ghcr.io/stefanprodan/podinfo:6.0.0"));
            let new = summary
                .iter()
                .find(|(i, ..)| i.as_deref() == Some("ghcr.io/stefanprodan/podinfo:6.0.1"));
            match (old, new) {
                (Some((_, Some(0), 0)), Some((_, Some(REPLICAS), REPLICAS)))
                    if summary.len() == 2 =>
                {
                    Ok(Ok(()))
                }
                _ => Ok(Err(summary)),
            }
        },
    )
    .await?;
    ctx.finish().await;
    Ok(())
}
