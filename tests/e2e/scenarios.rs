//! Rollout scenarios of the engine issue, each on a full rig (Serin, the mesh simulator, real
//! Prometheus, a webhook server the test controls): gates, a ConfigMap-only change, a new
//! revision mid-analysis, and A/B testing with the guide's matches.

use std::time::Duration;

use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use serin::api::CanaryPhase;

use crate::TestResult;
use crate::support::Context;
use crate::support::rig::Rig;

const MINUTES: Duration = Duration::from_secs(120);

/// The guide's Canary (seed 000) with a 1 s interval, its hooks at the rig's webhook server.
fn guide_canary(ns: &str, hooks: &str, webhooks: &str) -> String {
    let text = include_str!("../../examples/podinfo/canary.yaml")
        .replace("interval: 1m\n    # max number", "interval: 1s\n    # max number")
        .replace("namespace: flagger-system", &format!("namespace: {ns}"))
        .replace("namespace: test", &format!("namespace: {ns}"))
        .replace("  autoscalerRef:\n    apiVersion: autoscaling/v2\n    kind: HorizontalPodAutoscaler\n    name: podinfo\n", "");
    let start = text.find("    # testing (optional)").unwrap_or(text.len());
    format!("{}{}", &text[..start], webhooks.replace("HOOKS", hooks))
}

const GATES: &str = "    webhooks:
      - name: smoke
        type: pre-rollout
        url: HOOKSsmoke
      - name: promote
        type: confirm-promotion
        url: HOOKSpromote
      - name: abort
        type: rollback
        url: HOOKSabort
";

pub async fn gates_hold_halt_and_abort() -> TestResult {
    let rig = Rig::start("gates", &[], |ns, hooks| guide_canary(ns, hooks, GATES)).await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    rig.answer("smoke", 500);
    rig.answer("promote", 403);
    rig.answer("abort", 500);

    // A failing pre-rollout hook halts the analysis and counts a failed check.
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;
    let halt = format!("Halt podinfo.{ns} advancement pre-rollout check smoke failed");
    rig.wait_event("the pre-rollout halt", MINUTES, |e| e.starts_with(&halt))
        .await?;
    let (phase, weight, failed) = rig.phase().await?;
    if phase != CanaryPhase::Progressing || weight != 0 || failed < 1 {
        return Err(format!(
            "after the pre-rollout failure: {phase:?} weight {weight} failed {failed}"
        )
        .into());
    }
    rig.answer("smoke", 200);

    // The closed confirm-promotion gate holds the canary in WaitingPromotion.
    rig.wait_phase(CanaryPhase::WaitingPromotion, MINUTES)
        .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    if rig.phase().await?.0 != CanaryPhase::WaitingPromotion {
        return Err("the canary left WaitingPromotion while the gate was closed".into());
    }
    let events = rig.events().await?;
    if !events.contains(&format!(
        "Halt podinfo.{ns} advancement waiting for promotion approval promote"
    )) {
        return Err(format!("no promotion-approval halt in {events:#?}").into());
    }
    rig.answer("promote", 200);
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    if rig.image_of("podinfo-primary").await?.as_deref()
        != Some("ghcr.io/stefanprodan/podinfo:6.0.1")
    {
        return Err("the primary was not promoted to 6.0.1".into());
    }

    // A rollback hook that answers with success aborts the next run.
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.2", "0")
        .await?;
    rig.wait_phase(CanaryPhase::Progressing, MINUTES).await?;
    rig.answer("abort", 200);
    rig.wait_phase(CanaryPhase::Failed, MINUTES).await?;
    let events = rig.events().await?;
    for want in [
        format!("Rolling back podinfo.{ns} manual webhook invoked"),
        format!("Canary failed! Scaling down podinfo.{ns}"),
        "Rollback hook abort not signaling a rollback".to_string(),
    ] {
        if !events.contains(&want) {
            return Err(format!("missing {want:?} in {events:#?}").into());
        }
    }
    if rig.image_of("podinfo-primary").await?.as_deref()
        != Some("ghcr.io/stefanprodan/podinfo:6.0.1")
    {
        return Err("the aborted revision reached the primary".into());
    }
    rig.finish().await;
    Ok(())
}

const CONFIG: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: podinfo-config\ndata:\n  PODINFO_UI_COLOR: blue\n";

fn color(cm: &ConfigMap) -> Option<String> {
    cm.data.as_ref()?.get("PODINFO_UI_COLOR").cloned()
}

pub async fn configmap_change_and_restart() -> TestResult {
    let rig = Rig::start("config", &[CONFIG], |ns, hooks| guide_canary(ns, hooks, "")).await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    let configs = rig.ctx.api::<ConfigMap>();
    let copy = configs
        .get("podinfo-config-primary")
        .await
        .context("primary config copy")?;
    if color(&copy).as_deref() != Some("blue") {
        return Err(format!("the primary copy holds {:?}", color(&copy)).into());
    }

    // Only the ConfigMap changes: a new revision, analysed and promoted with a new copy.
    let patch = serde_json::json!({ "data": { "PODINFO_UI_COLOR": "red" } });
    configs
        .patch(
            "podinfo-config",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .context("change the ConfigMap")?;
    rig.wait_event("the new revision", MINUTES, |e| {
        e == format!("New revision detected! Scaling up podinfo.{ns}")
    })
    .await?;
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    let copy = configs
        .get("podinfo-config-primary")
        .await
        .context("primary config copy")?;
    if color(&copy).as_deref() != Some("red") {
        return Err(format!("after promotion the primary copy holds {:?}", color(&copy)).into());
    }

    // A new image mid-analysis restarts it; the newest revision is the one promoted.
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;
    crate::support::eventually("weight 20", MINUTES, || async {
        let (phase, weight, _) = rig.phase().await?;
        Ok(if phase == CanaryPhase::Progressing && weight >= 20 {
            Ok(())
        } else {
            Err((phase, weight))
        })
    })
    .await?;
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.2", "0")
        .await?;
    let restart = format!("New revision detected! Restarting analysis for podinfo.{ns}");
    rig.wait_event("the restart", MINUTES, |e| e == restart)
        .await?;
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    if rig.image_of("podinfo-primary").await?.as_deref()
        != Some("ghcr.io/stefanprodan/podinfo:6.0.2")
    {
        return Err("the restarted analysis did not promote 6.0.2".into());
    }
    rig.finish().await;
    Ok(())
}

pub async fn ab_testing_with_the_guides_matches() -> TestResult {
    let rig = Rig::start("ab", &[], |ns, _| {
        include_str!("../../src/api/testdata/gatewayapi-istio-ab-canary.yaml")
            .replacen("spec:\n", "spec:\n  provider: gatewayapi:v1\n", 1)
            // Three seconds: the canary's series start with the first iteration and rate() needs
            // two scrapes before the guide's threshold of 2 failed checks is spent.
            .replace("    interval: 1m\n    # total number", "    interval: 3s\n    # total number")
            .replace("namespace: flagger-system", &format!("namespace: {ns}"))
            .replace("namespace: test", &format!("namespace: {ns}"))
            .replace("  autoscalerRef:\n    apiVersion: autoscaling/v2\n    kind: HorizontalPodAutoscaler\n    name: podinfo\n", "")
            .split("    webhooks:")
            .next()
            .unwrap_or_default()
            .to_string()
    })
    .await?;
    let ns = rig.ctx.namespace.clone();
    rig.wait_phase(CanaryPhase::Initialized, MINUTES).await?;
    rig.set_image("ghcr.io/stefanprodan/podinfo:6.0.1", "0")
        .await?;
    let third = format!("Advance podinfo.{ns} canary iteration 3/10");
    rig.wait_event("iteration 3", MINUTES, |e| e == third)
        .await?;

    // While the analysis runs, matching requests go to the canary, the rest to the primary.
    let route = rig
        .ctx
        .api::<HttpRoute>()
        .get("podinfo")
        .await
        .context("route")?;
    let rules = route.spec.rules.clone().unwrap_or_default();
    let backends = |i: usize| -> Vec<(String, i32)> {
        rules
            .get(i)
            .and_then(|r| r.backend_refs.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|b| (b.name, b.weight.unwrap_or(1)))
            .collect()
    };
    let headers: Vec<String> = rules
        .first()
        .and_then(|r| r.matches.clone())
        .unwrap_or_default()
        .iter()
        .flat_map(|m| m.headers.clone().unwrap_or_default())
        .map(|h| h.name)
        .collect();
    if rules.len() != 2
        || backends(0)
            != [
                ("podinfo-primary".to_string(), 0),
                ("podinfo-canary".to_string(), 100),
            ]
        || backends(1) != [("podinfo-primary".to_string(), 100)]
        || headers != ["user-agent", "cookie"]
    {
        return Err(format!("unexpected A/B route: {rules:#?}").into());
    }
    rig.wait_phase(CanaryPhase::Succeeded, MINUTES).await?;
    let events = rig.events().await?;
    if !events.contains(&format!("Advance podinfo.{ns} canary iteration 10/10")) {
        return Err(format!("the ten iterations did not all run: {events:#?}").into());
    }
    rig.finish().await;
    Ok(())
}
