use super::*;
use crate::api::CanaryAnalysis;
use crate::catalog::tests::{CANARY, CONFIG, DEPLOYMENT, file, valid_repo};
use crate::catalog::{CatalogOptions, load};
use crate::source::{Snapshot, SnapshotFile};
use serde_json::json;

fn catalog(files: Vec<SnapshotFile>) -> Catalog {
    load(
        &Snapshot {
            origin: "test".into(),
            commit: None,
            files,
        },
        &CatalogOptions::default(),
    )
}

fn replaced(path: &str, body: String) -> Vec<SnapshotFile> {
    let mut files: Vec<SnapshotFile> = valid_repo()
        .into_iter()
        .filter(|f| f.path != path)
        .collect();
    files.push(file(path, &body));
    files
}

fn analysis(v: serde_json::Value) -> CanaryAnalysis {
    serde_json::from_value(v).expect("analysis")
}

#[test]
fn weight_ladders_follow_flagger() {
    let cases = [
        (
            json!({"stepWeight": 10, "maxWeight": 50}),
            vec![10, 20, 30, 40, 50],
        ),
        (json!({"stepWeight": 20, "maxWeight": 50}), vec![20, 40, 60]),
        (json!({"stepWeights": [1, 2, 10, 80]}), vec![1, 2, 10, 80]),
        (json!({"stepWeights": [1, 2, 10, 200]}), vec![1, 2, 10, 100]),
        (json!({"stepWeight": 25}), vec![25, 50, 75, 100]),
        (json!({"maxWeight": 50}), vec![]),
    ];
    for (spec, want) in cases {
        assert_eq!(analysis(spec.clone()).weight_ladder(), want, "{spec}");
    }
}

#[test]
fn an_image_bump_starts_a_rollout_with_its_cause_schedule_gates_and_checks() {
    let base = catalog(valid_repo());
    let head = catalog(replaced(
        "apps/podinfo/deployment.yaml",
        DEPLOYMENT.replace("podinfo:6.0.0", "podinfo:6.0.1"),
    ));
    let p = plan("main", &base, "pr", &head);
    assert_eq!(p.errors(), 0, "{:?}", p.problems);
    let c = &p.canaries[0];
    assert_eq!(c.action, Action::Rollout);
    assert_eq!(
        c.cause,
        ["podinfod: ghcr.io/stefanprodan/podinfo:6.0.0 → 6.0.1"]
    );
    assert_eq!(c.strategy.as_deref(), Some("canary"));
    let s = c.schedule.as_ref().expect("schedule");
    assert_eq!(s.weights, [10, 20, 30, 40, 50]);
    assert_eq!((s.ticks, s.minimum_duration.as_str()), (6, "6m"));
    assert_eq!(s.threshold, 5);
    assert_eq!(
        c.gates
            .iter()
            .map(|g| (g.kind.as_str(), g.name.as_str()))
            .collect::<Vec<_>>(),
        [("pre-rollout", "smoke-test")]
    );
    let check = &c.checks[0];
    assert_eq!(check.source, "template istio-system/error-rate");
    assert_eq!(check.threshold, "≤ 1");
    let query = check.query.as_ref().expect("rendered");
    assert!(
        query.contains(r#"destination_workload_namespace="test""#),
        "{query}"
    );
    assert!(
        query.contains(r#"destination_workload="podinfo""#),
        "{query}"
    );
    assert!(query.contains("[1m]"), "{query}");

    let md = markdown(&p);
    assert!(md.contains("### `test/podinfo` — starts a rollout"), "{md}");
    assert!(
        md.contains("- podinfod: ghcr.io/stefanprodan/podinfo:6.0.0 → 6.0.1"),
        "{md}"
    );
    assert!(
        md.contains("| Steps | 10% → 20% → 30% → 40% → 50% then promotion |"),
        "{md}"
    );
    assert!(
        md.contains("| Minimum duration | 6m (6 intervals) |"),
        "{md}"
    );
}

#[test]
fn a_configmap_change_alone_is_a_new_revision() {
    let base = catalog(valid_repo());
    let head = catalog(replaced(
        "apps/podinfo/config.yaml",
        CONFIG.replace("#34577c", "#ffffff"),
    ));
    let c = &plan("a", &base, "b", &head).canaries[0];
    assert_eq!(c.action, Action::Rollout);
    assert_eq!(
        c.cause,
        ["ConfigMap podinfo-config: key PODINFO_UI_COLOR changed"]
    );
}

#[test]
fn editing_only_the_canary_starts_nothing() {
    let base = catalog(valid_repo());
    let head = catalog(replaced(
        "apps/podinfo/canary.yaml",
        CANARY.replace("threshold: 5", "threshold: 6"),
    ));
    let c = &plan("a", &base, "b", &head).canaries[0];
    assert_eq!(c.action, Action::Unchanged);
    assert!(c.cause.is_empty());
}

#[test]
fn new_and_removed_canaries() {
    let without: Vec<SnapshotFile> = valid_repo()
        .into_iter()
        .filter(|f| f.path != "apps/podinfo/canary.yaml")
        .collect();
    let p = plan("a", &catalog(without.clone()), "b", &catalog(valid_repo()));
    assert_eq!(p.canaries[0].action, Action::Initialize);
    let p = plan("a", &catalog(valid_repo()), "b", &catalog(without));
    assert_eq!(p.removed, ["test/podinfo"]);
}

#[test]
fn human_durations() {
    for (secs, want) in [
        (0, "0s"),
        (30, "30s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (3725, "1h2m5s"),
    ] {
        assert_eq!(human_duration(Duration::from_secs(secs)), want);
    }
}
