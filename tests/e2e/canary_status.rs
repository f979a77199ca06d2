//! A decided tick reaches the cluster: the Canary's status through the real CRD schema (with
//! Flagger's printer columns in `kubectl get canaries`) and Events `kubectl describe` shows.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, PostParams};
use serin::analysis::report::{EventRecorder, write_status};
use serin::analysis::{Answers, Step, TargetRevision, TickInput, tick};
use serin::api::{Canary, CanaryPhase};

use crate::TestResult;
use crate::support::{Context, TestCtx, eventually, install_flagger_crds};

const CANARY: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  provider: gatewayapi:v1
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
    gatewayRefs:
      - name: gateway
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
"#;

pub async fn status_and_events_reach_the_cluster() -> TestResult {
    let ctx = TestCtx::new("canary-status").await?;
    install_flagger_crds(&ctx.client).await?;
    let canaries = ctx.api::<Canary>();
    let mut canary: Canary = serde_saphyr::from_str(CANARY).context("parse canary")?;
    canary.metadata.namespace = Some(ctx.namespace.clone());
    let canary = canaries
        .create(&PostParams::default(), &canary)
        .await
        .context("create canary")?;

    // One real tick: initialization of a canary whose primary is ready.
    let target = TargetRevision {
        hash: "abc123".into(),
        tracked_configs: [("configmap/podinfo-config".to_string(), "0f0f".to_string())].into(),
    };
    let input = TickInput {
        canary: &canary,
        target: &target,
        kubernetes_provider: false,
        now: Time(k8s_openapi::jiff::Timestamp::now()),
        git: Default::default(),
    };
    let answers = Answers {
        primary_ready: Some(serin::analysis::Readiness::Ready),
        ..Default::default()
    };
    let Step::Done(decision) = tick(&input, &answers) else {
        return Err("initialization needs nothing but the primary's readiness".into());
    };
    write_status(&ctx.client, &canary, &decision.status)
        .await
        .context("write status")?;
    let recorder = EventRecorder::new(ctx.client.clone(), None);
    for effect in &decision.effects {
        if let serin::analysis::Effect::Event { warning, message } = effect {
            recorder
                .record(&canary, *warning, message)
                .await
                .context("record event")?;
        }
    }

    let stored = canaries.get("podinfo").await.context("get canary")?;
    let status = stored.status.ok_or("the status was not stored")?;
    if status.phase != CanaryPhase::Initialized
        || status.last_applied_spec.as_deref() != Some("abc123")
        || status
            .tracked_configs
            .as_ref()
            .and_then(|t| t.get("configmap/podinfo-config"))
            .map(String::as_str)
            != Some("0f0f")
    {
        return Err(format!("unexpected stored status: {status:?}").into());
    }
    let condition = status
        .conditions
        .as_ref()
        .and_then(|c| c.first())
        .ok_or("no Promoted condition")?;
    if condition.r#type != "Promoted"
        || condition.message.as_deref() != Some("Deployment initialization completed.")
    {
        return Err(format!("unexpected condition {condition:?}").into());
    }

    // `kubectl get canaries` shows Flagger's columns from the stored status.
    let out = std::process::Command::new(&ctx.env.kubectl)
        .arg("--kubeconfig")
        .arg(&ctx.env.kubeconfig)
        .args(["get", "canaries", "-n", &ctx.namespace])
        .output()
        .context("run kubectl")?;
    let table = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if header[..3] != ["NAME", "STATUS", "WEIGHT"] || row[..3] != ["podinfo", "Initialized", "0"] {
        return Err(format!("kubectl get canaries printed:\n{table}").into());
    }

    // Distinct messages stay distinct Events; a repeated one becomes a series of its Event.
    for message in ["first message", "second message", "second message"] {
        recorder
            .record(&canary, false, message)
            .await
            .context("record event")?;
    }
    let events = ctx.api::<Event>();
    let list = events
        .list(&ListParams::default())
        .await
        .context("list events")?;
    let of = |note: &str| -> Vec<Event> {
        list.items
            .iter()
            .filter(|e| e.note.as_deref() == Some(note))
            .cloned()
            .collect()
    };
    let (first, second) = (of("first message"), of("second message"));
    let second_count = second
        .first()
        .and_then(|e| e.series.as_ref())
        .map(|s| s.count);
    if first.len() != 1 || second.len() != 1 || second_count != Some(2) {
        return Err(format!(
            "want one Event per message and a series of 2 for the repeat; got {} / {} (count {second_count:?})",
            first.len(),
            second.len()
        )
        .into());
    }
    eventually(
        "the Initialization done! event",
        Duration::from_secs(20),
        || async {
            let list = events
                .list(&ListParams::default())
                .await
                .context("list events")?;
            let notes: Vec<String> = list.items.iter().filter_map(|e| e.note.clone()).collect();
            let want = format!("Initialization done! podinfo.{}", ctx.namespace);
            let found = list.items.iter().any(|e| {
                e.note.as_deref() == Some(want.as_str())
                    && e.reason.as_deref() == Some("Synced")
                    && e.type_.as_deref() == Some("Normal")
                    && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("Canary")
            });
            Ok(if found { Ok(()) } else { Err(notes) })
        },
    )
    .await?;
    ctx.finish().await;
    Ok(())
}
