//! The Gateway API canary of the guide (seed 000), run by Serin against the real control plane:
//! Serin's scheduler and runner, the mesh simulator playing the Gateway and the traffic, the real
//! Prometheus, and a real HTTP server standing in for the load tester. The manifests are the
//! guide's; only the interval is shortened (allowed by `--min-analysis-interval`), the HPA is
//! left out and the hook URLs point at the local stand-in.

use std::time::Duration;

use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use serin::api::CanaryPhase;

use crate::TestResult;
use crate::support::rig::Rig;
use crate::support::{Context, eventually};

const MINUTES: Duration = Duration::from_secs(180);

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

async fn route_back_on_primary(rig: &Rig) -> TestResult {
    let route = rig
        .ctx
        .api::<HttpRoute>()
        .get("podinfo")
        .await
        .context("route")?;
    let want = [
        ("podinfo-primary".to_string(), 100),
        ("podinfo-canary".to_string(), 0),
    ];
    if weights(&route) != want {
        return Err(format!("route weights {:?}", weights(&route)).into());
    }
    Ok(())
}

pub async fn gateway_api_canary_promotes_then_rolls_back() -> TestResult {
    let rig = Rig::start("rollout", &[], |ns, hooks| {
        include_str!("../../examples/podinfo/canary.yaml")
            .replace("http://flagger-loadtester.test/", &format!("{hooks}loadtester"))
            .replace("interval: 1m\n    # max number", "interval: 2s\n    # max number")
            .replace("namespace: flagger-system", &format!("namespace: {ns}"))
            .replace("namespace: test", &format!("namespace: {ns}"))
            .replace("  autoscalerRef:\n    apiVersion: autoscaling/v2\n    kind: HorizontalPodAutoscaler\n    name: podinfo\n", "")
    })
    .await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    let deployments = rig.ctx.api::<Deployment>();
    let replicas = |d: Deployment| d.spec.and_then(|s| s.replicas);
    let target = deployments.get("podinfo").await.context("get target")?;
    if replicas(target) != Some(0) {
        return Err("the target was not scaled to zero at initialization".into());
    }

    // 6.0.1: advances 10..50, promotes, succeeds — the guide's events, in order.
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    let seen = rig.events().await?;
    let expected = [
        format!("New revision detected! Scaling up podinfo.{ns}"),
        format!("Starting canary analysis for podinfo.{ns}"),
        format!("Advance podinfo.{ns} canary weight 10"),
        format!("Advance podinfo.{ns} canary weight 20"),
        format!("Advance podinfo.{ns} canary weight 30"),
        format!("Advance podinfo.{ns} canary weight 40"),
        format!("Advance podinfo.{ns} canary weight 50"),
        format!("Copying podinfo.{ns} template spec to podinfo-primary.{ns}"),
        format!("Promotion completed! Scaling down podinfo.{ns}"),
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
    if rig.image_of("podinfo-primary").await?.as_deref()
        != Some("ghcr.io/stefanprodan/podinfo:6.0.1")
    {
        return Err("the primary does not run 6.0.1".into());
    }
    route_back_on_primary(&rig).await?;
    eventually(
        "the target to be at zero",
        Duration::from_secs(30),
        || async {
            let r = replicas(deployments.get("podinfo").await.context("target")?);
            Ok(if r == Some(0) { Ok(()) } else { Err(r) })
        },
    )
    .await?;

    // 6.0.2 answers 30% of its requests with errors: halts, rolls back, fails.
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.2", "0.3")
        .await?;
    rig.wait_phase(CanaryPhase::Failed, MINUTES).await?;
    let seen = rig.events().await?;
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
    if rig.image_of("podinfo-primary").await?.as_deref()
        != Some("ghcr.io/stefanprodan/podinfo:6.0.1")
    {
        return Err("the failed revision reached the primary".into());
    }
    // The status keeps the value that halted the analysis.
    let canary = rig
        .ctx
        .api::<serin::api::Canary>()
        .get("podinfo")
        .await
        .context("canary")?;
    let metrics = canary.status.and_then(|s| s.metrics).unwrap_or_default();
    let halted = metrics.iter().find(|m| m.name == "error-rate");
    if !halted.is_some_and(|m| m.value.is_some_and(|v| v > 1.0) && m.message.is_some()) {
        return Err(format!("status.metrics does not show why it halted: {metrics:?}").into());
    }
    route_back_on_primary(&rig).await?;
    rig.finish().await;
    Ok(())
}
