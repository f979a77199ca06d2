//! Table tests of the primary builders: what is copied, renamed and rewritten.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::{Value, json};

use super::*;
use crate::api::{AutoscalerReference, Canary, CanarySpec, LocalObjectReference};
use crate::revision::{ConfigKind, ConfigRef};
use crate::workload::WorkloadOptions;
use crate::workload::labels::FLAGGER_ID_ANNOTATION;

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

fn target() -> Deployment {
    from(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "uid": "target-uid",
            "resourceVersion": "7",
            "generation": 3,
            "labels": {
                "app": "podinfo",
                "team": "web",
                "kustomize.toolkit.fluxcd.io/name": "apps",
            },
            "annotations": {
                "team.example.com/owner": "alice",
                "kustomize.toolkit.fluxcd.io/checksum": "abc",
            },
        },
        "spec": {
            "replicas": 3,
            "paused": true,
            "progressDeadlineSeconds": 120,
            "minReadySeconds": 5,
            "revisionHistoryLimit": 4,
            "strategy": { "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } },
            "selector": { "matchLabels": { "app": "podinfo" } },
            "template": {
                "metadata": {
                    "labels": { "app": "podinfo", "version": "v1" },
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "flagger-id": "stale",
                        "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
                    },
                },
                "spec": {
                    "containers": [{
                        "name": "podinfod",
                        "image": "ghcr.io/stefanprodan/podinfo:6.0.0",
                        "envFrom": [{ "configMapRef": { "name": "podinfo-env" } }],
                    }],
                    "volumes": [{ "name": "config", "configMap": { "name": "podinfo-config" } }],
                },
            },
        },
        "status": { "replicas": 3 },
    }))
}

fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "flagger.app/v1beta1".into(),
        kind: "Canary".into(),
        name: "podinfo".into(),
        uid: "canary-uid".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn config(kind: ConfigKind, name: &str) -> ConfigRef {
    ConfigRef {
        kind,
        name: name.into(),
    }
}

fn ctx(prefixes: &[&str], has_autoscaler: bool) -> PrimaryContext {
    PrimaryContext {
        namespace: "test".into(),
        owner: owner(),
        selector: SelectorLabel {
            key: "app".into(),
            value: "podinfo".into(),
        },
        options: WorkloadOptions {
            include_label_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            ..WorkloadOptions::default()
        },
        configs: [
            config(ConfigKind::ConfigMap, "podinfo-config"),
            config(ConfigKind::ConfigMap, "podinfo-env"),
        ]
        .into(),
        has_autoscaler,
    }
}

fn labels(value: &Value) -> Vec<(String, String)> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(entries: &[(&str, &str)]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn created_primary_deployment() {
    let primary = primary_deployment(&target(), &ctx(&["team"], false), "id-1").unwrap();
    let got = to_json(&primary);
    assert_eq!(got["metadata"]["name"], "podinfo-primary");
    assert_eq!(got["metadata"]["namespace"], "test");
    // Object labels: include-prefixed ones, plus the selector label pointing at the primary.
    assert_eq!(
        labels(&got["metadata"]["labels"]),
        pairs(&[("app", "podinfo-primary"), ("team", "web")])
    );
    // Object annotations on create: all of the target's but Flux's.
    assert_eq!(
        labels(&got["metadata"]["annotations"]),
        pairs(&[("team.example.com/owner", "alice")])
    );
    assert_eq!(got["metadata"]["ownerReferences"], to_json(&vec![owner()]));
    // Identity of the target is never copied.
    for field in ["uid", "resourceVersion", "generation"] {
        assert_eq!(got["metadata"][field], Value::Null, "{field}");
    }
    assert_eq!(got["status"], Value::Null);

    let spec = &got["spec"];
    assert_eq!(spec["replicas"], 3);
    assert_eq!(spec["progressDeadlineSeconds"], 120);
    assert_eq!(spec["minReadySeconds"], 5);
    assert_eq!(spec["revisionHistoryLimit"], 4);
    assert_eq!(
        spec["strategy"],
        json!({ "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } })
    );
    assert_eq!(spec["paused"], Value::Null);
    assert_eq!(
        spec["selector"],
        json!({ "matchLabels": { "app": "podinfo-primary" } })
    );
    let template = &spec["template"];
    assert_eq!(
        labels(&template["metadata"]["labels"]),
        pairs(&[("app", "podinfo-primary"), ("version", "v1")])
    );
    assert_eq!(
        labels(&template["metadata"]["annotations"]),
        pairs(&[("flagger-id", "id-1"), ("prometheus.io/scrape", "true")])
    );
    let pod = &template["spec"];
    assert_eq!(
        pod["containers"][0]["envFrom"][0]["configMapRef"]["name"],
        "podinfo-env-primary"
    );
    assert_eq!(
        pod["volumes"][0]["configMap"]["name"],
        "podinfo-config-primary"
    );
    assert_eq!(
        pod["containers"][0]["image"],
        "ghcr.io/stefanprodan/podinfo:6.0.0"
    );
}

#[test]
fn created_primary_replicas() {
    for (replicas, want) in [(Some(3), 3), (Some(0), 1), (None, 1), (Some(-1), 1)] {
        let mut t = target();
        if let Some(spec) = t.spec.as_mut() {
            spec.replicas = replicas;
        }
        let primary = primary_deployment(&t, &ctx(&[], false), "id").unwrap();
        assert_eq!(primary.spec.unwrap().replicas, Some(want), "{replicas:?}");
    }
}

#[test]
fn default_include_prefixes_copy_no_labels() {
    let primary = primary_deployment(&target(), &ctx(&[], false), "id").unwrap();
    assert_eq!(
        primary.metadata.labels,
        Some(BTreeMap::from([(
            "app".to_string(),
            "podinfo-primary".to_string()
        )]))
    );
}

#[test]
fn promoted_deployment_metadata_and_template() {
    let mut t = target();
    if let Some(tpl) = t.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        tpl.containers[0].image = Some("ghcr.io/stefanprodan/podinfo:6.0.1".into());
    }
    let existing = primary_deployment(&target(), &ctx(&[], false), "id-1").unwrap();
    let promoted = promoted_deployment(&t, &existing, &ctx(&["team"], false), "id-2").unwrap();
    let got = to_json(&promoted);
    // Promotion filters object annotations by the include prefixes.
    assert_eq!(
        got["metadata"]["annotations"],
        json!({ "team.example.com/owner": "alice" })
    );
    let promoted = promoted_deployment(&t, &existing, &ctx(&[], false), "id-2").unwrap();
    assert_eq!(promoted.metadata.annotations, None);
    let got = to_json(&promoted);
    assert_eq!(
        got["spec"]["template"]["metadata"]["annotations"]["flagger-id"],
        "id-2"
    );
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/stefanprodan/podinfo:6.0.1"
    );
    assert_eq!(
        got["spec"]["selector"],
        to_json(&existing.spec.unwrap().selector)
    );
    assert_eq!(got["metadata"]["ownerReferences"], to_json(&vec![owner()]));
}

#[test]
fn promoted_deployment_replicas() {
    // (target replicas, has autoscaler, primary replicas) -> applied replicas
    let table = [
        (Some(5), false, Some(2), Some(5)),
        (Some(5), true, Some(2), Some(2)),
        (Some(0), false, Some(2), Some(2)),
        (None, false, Some(2), Some(2)),
        (Some(0), true, Some(7), Some(7)),
    ];
    for (target_replicas, has_autoscaler, primary_replicas, want) in table {
        let mut t = target();
        if let Some(spec) = t.spec.as_mut() {
            spec.replicas = target_replicas;
        }
        let mut existing = primary_deployment(&target(), &ctx(&[], false), "id").unwrap();
        if let Some(spec) = existing.spec.as_mut() {
            spec.replicas = primary_replicas;
        }
        let promoted = promoted_deployment(&t, &existing, &ctx(&[], has_autoscaler), "id").unwrap();
        assert_eq!(
            promoted.spec.unwrap().replicas,
            want,
            "{target_replicas:?} {has_autoscaler} {primary_replicas:?}"
        );
    }
}

fn template_with(spec: Value) -> PodTemplateSpec {
    from(json!({ "metadata": { "labels": { "app": "podinfo" } }, "spec": spec }))
}

#[test]
fn config_references_are_renamed_in_all_five_forms() {
    let spec: PodSpec = from(json!({
        "initContainers": [{
            "name": "init",
            "env": [
                { "name": "A", "valueFrom": { "configMapKeyRef": { "name": "cm", "key": "a" } } },
                { "name": "B", "valueFrom": { "secretKeyRef": { "name": "sec", "key": "b" } } },
                { "name": "C", "value": "plain" },
                { "name": "D", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
            ],
            "envFrom": [{ "configMapRef": { "name": "cm" } }, { "secretRef": { "name": "sec" } }],
        }],
        "containers": [{
            "name": "app",
            "env": [
                { "name": "A", "valueFrom": { "configMapKeyRef": { "name": "cm", "key": "a" } } },
                { "name": "B", "valueFrom": { "secretKeyRef": { "name": "sec", "key": "b" } } },
                { "name": "U", "valueFrom": { "configMapKeyRef": { "name": "untracked", "key": "u" } } },
            ],
            "envFrom": [
                { "configMapRef": { "name": "cm" } },
                { "secretRef": { "name": "sec" } },
                { "secretRef": { "name": "untracked" } },
            ],
        }],
        "volumes": [
            { "name": "v1", "configMap": { "name": "cm" } },
            { "name": "v2", "secret": { "secretName": "sec" } },
            { "name": "v3", "projected": { "sources": [
                { "configMap": { "name": "cm" } },
                { "secret": { "name": "sec" } },
                { "configMap": { "name": "untracked" } },
                { "downwardAPI": { "items": [] } },
            ] } },
            // A Secret named like a tracked ConfigMap is another object: not renamed.
            { "name": "v4", "secret": { "secretName": "cm" } },
            { "name": "v5", "emptyDir": {} },
        ],
    }));
    let tracked: BTreeSet<ConfigRef> = [
        config(ConfigKind::ConfigMap, "cm"),
        config(ConfigKind::Secret, "sec"),
    ]
    .into();
    let mut renamed = spec.clone();
    rename_config_refs(&mut renamed, &tracked);
    let got = to_json(&renamed);
    let init = &got["initContainers"][0];
    let app = &got["containers"][0];
    for container in [init, app] {
        assert_eq!(
            container["env"][0]["valueFrom"]["configMapKeyRef"]["name"],
            "cm-primary"
        );
        assert_eq!(
            container["env"][1]["valueFrom"]["secretKeyRef"]["name"],
            "sec-primary"
        );
        assert_eq!(
            container["envFrom"][0]["configMapRef"]["name"],
            "cm-primary"
        );
        assert_eq!(container["envFrom"][1]["secretRef"]["name"], "sec-primary");
    }
    assert_eq!(init["env"][2]["value"], "plain");
    assert_eq!(
        init["env"][3],
        json!({ "name": "D", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } })
    );
    assert_eq!(
        app["env"][2]["valueFrom"]["configMapKeyRef"]["name"],
        "untracked"
    );
    assert_eq!(app["envFrom"][2]["secretRef"]["name"], "untracked");
    let volumes = &got["volumes"];
    assert_eq!(volumes[0]["configMap"]["name"], "cm-primary");
    assert_eq!(volumes[1]["secret"]["secretName"], "sec-primary");
    assert_eq!(
        volumes[2]["projected"]["sources"][0]["configMap"]["name"],
        "cm-primary"
    );
    assert_eq!(
        volumes[2]["projected"]["sources"][1]["secret"]["name"],
        "sec-primary"
    );
    assert_eq!(
        volumes[2]["projected"]["sources"][2]["configMap"]["name"],
        "untracked"
    );
    assert_eq!(volumes[3]["secret"]["secretName"], "cm");
    assert_eq!(volumes[4], json!({ "name": "v5", "emptyDir": {} }));

    // Nothing tracked: nothing renamed.
    let mut untouched = spec.clone();
    rename_config_refs(&mut untouched, &BTreeSet::new());
    assert_eq!(untouched, spec);
}

#[test]
fn anti_affinity_and_topology_point_at_the_primary() {
    let spec: PodSpec = from(json!({
        "containers": [{ "name": "app" }],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": { "matchLabels": { "app": "podinfo", "tier": "podinfo" } },
            },
            {
                "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": { "matchExpressions": [
                    { "key": "app", "operator": "In", "values": ["other", "podinfo", "podinfo"] },
                    { "key": "tier", "operator": "In", "values": ["podinfo"] },
                ] },
            },
            { "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule" },
        ],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [{
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": { "matchExpressions": [
                            { "key": "name", "operator": "In", "values": ["podinfo"] },
                        ] },
                    },
                }],
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": { "matchLabels": { "app.kubernetes.io/name": "podinfo" } },
                }],
            },
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": { "matchLabels": { "app": "podinfo" } },
                }],
            },
        },
    }));
    let selector_labels = WorkloadOptions::default().selector_labels;
    let mut rewritten = spec.clone();
    rewrite_affinity(&mut rewritten, "podinfo", &selector_labels);
    let got = to_json(&rewritten);
    let tsc = &got["topologySpreadConstraints"];
    // matchLabels: selector-label keys whose value is the workload name; other keys stay.
    assert_eq!(
        tsc[0]["labelSelector"]["matchLabels"],
        json!({ "app": "podinfo-primary", "tier": "podinfo" })
    );
    // matchExpressions: only the first value equal to the workload name, only selector labels.
    assert_eq!(
        tsc[1]["labelSelector"]["matchExpressions"][0]["values"],
        json!(["other", "podinfo-primary", "podinfo"])
    );
    assert_eq!(
        tsc[1]["labelSelector"]["matchExpressions"][1]["values"],
        json!(["podinfo"])
    );
    assert_eq!(tsc[2]["labelSelector"], Value::Null);
    let anti = &got["affinity"]["podAntiAffinity"];
    assert_eq!(
        anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["labelSelector"]
            ["matchExpressions"][0]["values"],
        json!(["podinfo-primary"])
    );
    assert_eq!(
        anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"]["matchLabels"],
        json!({ "app.kubernetes.io/name": "podinfo-primary" })
    );
    // Pod affinity (not anti) is not rewritten.
    assert_eq!(
        got["affinity"]["podAffinity"],
        to_json(&spec.affinity.as_ref().unwrap().pod_affinity)
    );

    // The comparison is with the workload name, not the label value.
    let mut other = spec.clone();
    rewrite_affinity(&mut other, "frontend", &selector_labels);
    assert_eq!(other, spec);
    // Only configured selector labels are rewritten.
    let mut only_tier = spec.clone();
    rewrite_affinity(&mut only_tier, "podinfo", &["tier".to_string()]);
    let got = to_json(&only_tier);
    assert_eq!(
        got["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"],
        json!({ "app": "podinfo", "tier": "podinfo-primary" })
    );
}

#[test]
fn primary_template_applies_every_rewrite() {
    let template = template_with(json!({
        "containers": [{ "name": "app", "envFrom": [{ "configMapRef": { "name": "podinfo-config" } }] }],
        "affinity": { "podAntiAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": [{
            "topologyKey": "kubernetes.io/hostname",
            "labelSelector": { "matchLabels": { "app": "podinfo" } },
        }] } },
    }));
    let got = to_json(&primary_template(
        &template,
        "podinfo",
        &ctx(&[], false),
        "id",
    ));
    assert_eq!(
        got["metadata"]["labels"],
        json!({ "app": "podinfo-primary" })
    );
    assert_eq!(
        got["metadata"]["annotations"],
        json!({ FLAGGER_ID_ANNOTATION: "id" })
    );
    assert_eq!(
        got["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"],
        "podinfo-config-primary"
    );
    assert_eq!(
        got["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            [0]["labelSelector"]["matchLabels"]["app"],
        "podinfo-primary"
    );
}

fn daemonset(strategy: Option<&str>) -> DaemonSet {
    let mut value = json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": { "name": "agent", "namespace": "test", "labels": { "name": "agent" } },
        "spec": {
            "minReadySeconds": 2,
            "revisionHistoryLimit": 3,
            "selector": { "matchLabels": { "name": "agent" } },
            "template": {
                "metadata": { "labels": { "name": "agent" } },
                "spec": {
                    "containers": [{ "name": "agent", "image": "agent:1" }],
                    "nodeSelector": {
                        "kubernetes.io/os": "linux",
                        "flagger.app/scale-to-zero": "true",
                    },
                },
            },
        },
    });
    if let Some(s) = strategy {
        value["spec"]["updateStrategy"] = json!({ "type": s });
    }
    from(value)
}

fn ds_ctx() -> PrimaryContext {
    PrimaryContext {
        selector: SelectorLabel {
            key: "name".into(),
            value: "agent".into(),
        },
        configs: BTreeSet::new(),
        ..ctx(&[], false)
    }
}

#[test]
fn primary_daemonset_copies_and_strips_the_scale_to_zero_selector() {
    for strategy in [None, Some("RollingUpdate")] {
        let target = daemonset(strategy);
        for primary in [
            primary_daemonset(&target, &ds_ctx(), "id").unwrap(),
            promoted_daemonset(&target, &ds_ctx(), "id").unwrap(),
        ] {
            let got = to_json(&primary);
            assert_eq!(got["metadata"]["name"], "agent-primary");
            assert_eq!(
                got["metadata"]["labels"],
                json!({ "name": "agent-primary" })
            );
            assert_eq!(got["spec"]["minReadySeconds"], 2);
            assert_eq!(got["spec"]["revisionHistoryLimit"], 3);
            assert_eq!(
                got["spec"]["updateStrategy"],
                to_json(&target.spec.as_ref().unwrap().update_strategy)
            );
            assert_eq!(
                got["spec"]["selector"],
                json!({ "matchLabels": { "name": "agent-primary" } })
            );
            assert_eq!(
                got["spec"]["template"]["spec"]["nodeSelector"],
                json!({ "kubernetes.io/os": "linux" })
            );
        }
    }
    // An emptied node selector is dropped, not left as `{}`.
    let mut only_zero = daemonset(None);
    if let Some(pod) = only_zero
        .spec
        .as_mut()
        .and_then(|s| s.template.spec.as_mut())
    {
        pod.node_selector =
            Some([("flagger.app/scale-to-zero".to_string(), "true".to_string())].into());
    }
    let primary = primary_daemonset(&only_zero, &ds_ctx(), "id").unwrap();
    let pod = primary.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.node_selector, None);
}

#[test]
fn daemonset_must_roll_by_itself() {
    let err = primary_daemonset(&daemonset(Some("OnDelete")), &ds_ctx(), "id").unwrap_err();
    assert_eq!(
        err.to_string(),
        "daemonset agent.test must have RollingUpdate strategy but have OnDelete"
    );
}

#[test]
fn missing_spec_is_an_error() {
    let empty = Deployment {
        metadata: target().metadata,
        ..Default::default()
    };
    let err = primary_deployment(&empty, &ctx(&[], false), "id").unwrap_err();
    assert_eq!(err.to_string(), "deployment podinfo.test has no spec");
}

fn canary(uid: Option<&str>) -> Canary {
    let mut c = Canary::new(
        "podinfo",
        CanarySpec {
            target_ref: Some(LocalObjectReference {
                api_version: Some("apps/v1".into()),
                kind: Some("Deployment".into()),
                name: Some("podinfo".into()),
            }),
            autoscaler_ref: Some(AutoscalerReference {
                kind: Some("HorizontalPodAutoscaler".into()),
                name: Some("podinfo".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    c.metadata.namespace = Some("test".into());
    c.metadata.uid = uid.map(String::from);
    c
}

#[test]
fn owner_reference_is_a_controller_reference_to_the_canary() {
    let reference = canary_owner_reference(&canary(Some("canary-uid"))).unwrap();
    assert_eq!(reference, owner());
    let ctx = PrimaryContext::new(
        &canary(Some("canary-uid")),
        &WorkloadOptions::default(),
        SelectorLabel {
            key: "app".into(),
            value: "podinfo".into(),
        },
        BTreeSet::new(),
    )
    .unwrap();
    assert!(ctx.has_autoscaler);
    assert_eq!(ctx.namespace, "test");
    let err = canary_owner_reference(&canary(None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Canary podinfo.test has no metadata.uid: read it from the cluster before generating \
         the objects it owns"
    );
}
