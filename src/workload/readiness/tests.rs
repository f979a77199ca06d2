//! Table tests of readiness: every branch of Flagger's checks, with its exact message.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::*;

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn ago(seconds: i64) -> String {
    (now() - SignedDuration::from_secs(seconds)).to_string()
}

struct D {
    generation: i64,
    observed: i64,
    spec_replicas: Option<i32>,
    replicas: i32,
    updated: i32,
    available: i32,
    conditions: Value,
}

impl Default for D {
    fn default() -> Self {
        D {
            generation: 2,
            observed: 2,
            spec_replicas: Some(3),
            replicas: 3,
            updated: 3,
            available: 3,
            conditions: json!([]),
        }
    }
}

fn deployment(d: D) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": "podinfo", "namespace": "test", "generation": d.generation },
        "spec": {
            "replicas": d.spec_replicas,
            "selector": { "matchLabels": { "app": "podinfo" } },
            "template": {},
        },
        "status": {
            "observedGeneration": d.observed,
            "replicas": d.replicas,
            "updatedReplicas": d.updated,
            "availableReplicas": d.available,
            "conditions": d.conditions,
        },
    }))
    .unwrap()
}

fn progressing(reason: &str) -> Value {
    json!({ "type": "Progressing", "status": "True", "reason": reason })
}

fn unavailable(since: i64) -> Value {
    json!({
        "type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
        "lastUpdateTime": ago(since),
    })
}

fn waiting(m: &str) -> Readiness {
    Readiness::Waiting(format!("waiting for rollout to finish: {m}"))
}

fn failed_waiting(m: &str) -> Readiness {
    Readiness::Failed(format!("waiting for rollout to finish: {m}"))
}

#[test]
fn deployment_table() {
    let table: Vec<(&str, D, u32, Readiness)> = vec![
        ("rolled out", D::default(), 100, Readiness::Ready),
        (
            "generation not observed",
            D {
                generation: 3,
                ..D::default()
            },
            100,
            waiting("observed deployment generation less than desired generation"),
        ),
        (
            "generation not observed wins over a deadline",
            D {
                generation: 3,
                conditions: json!([progressing("ProgressDeadlineExceeded")]),
                ..D::default()
            },
            100,
            waiting("observed deployment generation less than desired generation"),
        ),
        (
            "deadline exceeded",
            D {
                conditions: json!([progressing("ProgressDeadlineExceeded")]),
                ..D::default()
            },
            100,
            Readiness::Failed("deployment \"podinfo\" exceeded its progress deadline".into()),
        ),
        (
            "not all updated",
            D {
                updated: 1,
                replicas: 4,
                ..D::default()
            },
            100,
            waiting("1 out of 3 new replicas have been updated"),
        ),
        (
            "old replicas remain",
            D {
                replicas: 5,
                ..D::default()
            },
            100,
            waiting("2 old replicas are pending termination"),
        ),
        (
            "not all available",
            D {
                available: 2,
                ..D::default()
            },
            100,
            waiting("2 of 3 (readyThreshold 100%) updated replicas are available"),
        ),
        (
            "threshold met",
            D {
                available: 1,
                ..D::default()
            },
            50,
            Readiness::Ready,
        ),
        (
            "threshold rounds down",
            D {
                spec_replicas: Some(10),
                replicas: 10,
                updated: 10,
                available: 2,
                ..D::default()
            },
            33,
            waiting("2 of 3 (readyThreshold 33%) updated replicas are available"),
        ),
        (
            "threshold zero",
            D {
                available: 0,
                ..D::default()
            },
            0,
            Readiness::Ready,
        ),
        (
            "scaled to zero",
            D {
                spec_replicas: Some(0),
                replicas: 0,
                updated: 0,
                available: 0,
                ..D::default()
            },
            100,
            Readiness::Ready,
        ),
        (
            "unavailable past the deadline turns waiting into failed",
            D {
                available: 0,
                conditions: json!([progressing("ReplicaSetUpdated"), unavailable(601)]),
                ..D::default()
            },
            100,
            failed_waiting("0 of 3 (readyThreshold 100%) updated replicas are available"),
        ),
        (
            "unavailable within the deadline still waits",
            D {
                available: 0,
                conditions: json!([progressing("ReplicaSetUpdated"), unavailable(599)]),
                ..D::default()
            },
            100,
            waiting("0 of 3 (readyThreshold 100%) updated replicas are available"),
        ),
        (
            "the stale Available condition only counts with a Progressing one",
            D {
                available: 0,
                conditions: json!([unavailable(601)]),
                ..D::default()
            },
            100,
            waiting("0 of 3 (readyThreshold 100%) updated replicas are available"),
        ),
        (
            "another Available reason never fails",
            D {
                updated: 2,
                conditions: json!([
                    progressing("ReplicaSetUpdated"),
                    { "type": "Available", "status": "False", "reason": "Other",
                      "lastUpdateTime": ago(10_000) },
                ]),
                ..D::default()
            },
            100,
            waiting("2 out of 3 new replicas have been updated"),
        ),
        (
            "a stale condition does not matter once rolled out",
            D {
                conditions: json!([progressing("NewReplicaSetAvailable"), unavailable(10_000)]),
                ..D::default()
            },
            100,
            Readiness::Ready,
        ),
    ];
    for (what, d, threshold, want) in table {
        assert_eq!(
            deployment_readiness(&deployment(d), threshold, 600, now()),
            want,
            "{what}"
        );
    }
}

#[test]
fn deployment_without_status_waits() {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "podinfo", "generation": 1 },
        "spec": { "replicas": 2, "selector": {}, "template": {} },
    }))
    .unwrap();
    assert_eq!(
        deployment_readiness(&d, 100, 600, now()),
        waiting("observed deployment generation less than desired generation")
    );
}

fn daemonset(
    generation: i64,
    observed: i64,
    desired: i32,
    updated: i32,
    available: i32,
) -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": { "name": "agent", "generation": generation },
        "spec": { "selector": {}, "template": {} },
        "status": {
            "observedGeneration": observed,
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": desired,
            "numberMisscheduled": 0,
            "numberReady": available,
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
        },
    }))
    .unwrap()
}

#[test]
fn daemonset_table() {
    let recent = Time(now() - SignedDuration::from_secs(10));
    let old = Time(now() - SignedDuration::from_secs(601));
    let table: Vec<(&str, DaemonSet, u32, Option<&Time>, Readiness)> = vec![
        (
            "rolled out",
            daemonset(1, 1, 3, 3, 3),
            100,
            Some(&old),
            Readiness::Ready,
        ),
        (
            "no nodes",
            daemonset(1, 1, 0, 0, 0),
            100,
            Some(&old),
            Readiness::Ready,
        ),
        (
            "generation not observed",
            daemonset(2, 1, 3, 3, 3),
            100,
            Some(&old),
            Readiness::Waiting(
                "waiting for rollout to finish: observed daemonset generation less than \
                 desired generation"
                    .into(),
            ),
        ),
        (
            "not all updated",
            daemonset(1, 1, 3, 1, 3),
            100,
            Some(&recent),
            waiting("1 out of 3 new pods have been updated"),
        ),
        (
            "not all available",
            daemonset(1, 1, 3, 3, 2),
            100,
            Some(&recent),
            waiting("2 of 3 (readyThreshold 100%) updated pods are available"),
        ),
        (
            "threshold met",
            daemonset(1, 1, 4, 4, 2),
            50,
            Some(&old),
            Readiness::Ready,
        ),
        (
            "past the deadline",
            daemonset(1, 1, 3, 3, 2),
            100,
            Some(&old),
            Readiness::Failed("exceeded its progressDeadlineSeconds: 600".into()),
        ),
        (
            "no transition time yet",
            daemonset(1, 1, 3, 1, 3),
            100,
            None,
            waiting("1 out of 3 new pods have been updated"),
        ),
    ];
    for (what, ds, threshold, since, want) in table {
        assert_eq!(
            daemonset_readiness(&ds, threshold, 600, since, now()),
            want,
            "{what}"
        );
    }
}

#[test]
fn messages_name_the_workload_as_flagger_does() {
    let table = [
        (
            WorkloadKind::Deployment,
            Role::Primary,
            "podinfo-primary",
            "podinfo-primary.test not ready",
        ),
        (
            WorkloadKind::Deployment,
            Role::Canary,
            "podinfo",
            "canary deployment podinfo.test not ready",
        ),
        (
            WorkloadKind::DaemonSet,
            Role::Primary,
            "agent-primary",
            "primary daemonset agent-primary.test not ready",
        ),
        (
            WorkloadKind::DaemonSet,
            Role::Canary,
            "agent",
            "canary daemonset agent.test not ready",
        ),
    ];
    for (kind, role, name, want) in table {
        assert_eq!(not_ready_prefix(kind, role, name, "test"), want);
    }
    let prefix = not_ready_prefix(
        WorkloadKind::Deployment,
        Role::Primary,
        "podinfo-primary",
        "test",
    );
    assert_eq!(
        waiting("1 out of 3 new replicas have been updated").prefixed(&prefix),
        Readiness::Waiting(
            "podinfo-primary.test not ready: waiting for rollout to finish: 1 out of 3 new \
             replicas have been updated"
                .into()
        )
    );
    let failed = Readiness::Failed("deployment \"podinfo\" exceeded its progress deadline".into());
    assert_eq!(
        failed
            .prefixed("canary deployment podinfo.test not ready")
            .message(),
        Some(
            "canary deployment podinfo.test not ready: deployment \"podinfo\" exceeded its progress deadline"
        )
    );
    assert_eq!(Readiness::Ready.prefixed("x"), Readiness::Ready);
    assert!(Readiness::Ready.is_ready());
    assert_eq!(Readiness::Ready.message(), None);
}
