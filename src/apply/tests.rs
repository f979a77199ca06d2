//! The apply stage's decisions, without a cluster: order, shape, replicas, inventory and prune.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
use serde_json::json;

use super::*;
use crate::catalog::tests::{CANARY, CONFIG, DEPLOYMENT, SHARED, file};
use crate::catalog::{Catalog, CatalogOptions, load};
use crate::source::{FileContent, Snapshot, SnapshotFile};

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

fn options() -> ApplyOptions {
    ApplyOptions::new("apps")
}

const MIXED: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: test
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: test
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: reader
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
---
apiVersion: v1
kind: Secret
metadata:
  name: token
  namespace: test
---
apiVersion: v1
kind: Namespace
metadata:
  name: test
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: test
"#;

#[test]
fn objects_are_applied_in_dependency_order_then_file_order() {
    let mut files = vec![file("a/mixed.yaml", MIXED)];
    files.extend([
        file("apps/podinfo/canary.yaml", CANARY),
        file("apps/podinfo/config.yaml", CONFIG),
        file("apps/podinfo/deployment.yaml", DEPLOYMENT),
        file("shared/flagger.yaml", SHARED),
    ]);
    let plan = plan(&catalog(files), &options());
    let order: Vec<String> = plan
        .objects
        .iter()
        .map(|o| format!("{} {}", o.id.kind, o.id.name))
        .collect();
    assert_eq!(
        order,
        [
            "Namespace test",
            "CustomResourceDefinition widgets.example.com",
            "ClusterRole reader",
            // Configuration in file order: a/mixed.yaml before apps/podinfo/config.yaml.
            "Secret token",
            "ConfigMap podinfo-config",
            "Job migrate",
            "Deployment podinfo",
            "Service web",
            "Ingress web",
            "HorizontalPodAutoscaler podinfo",
            // Templates and providers before the Canary that references them.
            "MetricTemplate error-rate",
            "AlertProvider on-call",
            "Canary podinfo",
        ]
    );
    let phases: Vec<Phase> = plan.objects.iter().map(|o| o.phase).collect();
    assert!(phases.is_sorted(), "{phases:?}");
}

#[test]
fn phases_by_kind() {
    let ns = |group: &str, kind: &str| ObjectId::namespaced(group, kind, "test", "x");
    let cluster = |group: &str, kind: &str| ObjectId {
        namespace: None,
        ..ns(group, kind)
    };
    let table = [
        (cluster("", "Namespace"), Phase::Namespaces),
        (
            cluster("apiextensions.k8s.io", "CustomResourceDefinition"),
            Phase::Definitions,
        ),
        (
            cluster("storage.k8s.io", "StorageClass"),
            Phase::ClusterScoped,
        ),
        (ns("", "ConfigMap"), Phase::Configuration),
        (ns("", "ServiceAccount"), Phase::Configuration),
        (
            ns("rbac.authorization.k8s.io", "RoleBinding"),
            Phase::Configuration,
        ),
        (ns("apps", "DaemonSet"), Phase::Workloads),
        (ns("batch", "CronJob"), Phase::Workloads),
        (ns("", "Service"), Phase::Services),
        (ns("autoscaling", "HorizontalPodAutoscaler"), Phase::Other),
        (ns("gateway.networking.k8s.io", "HTTPRoute"), Phase::Other),
        // A custom resource named like a core kind is not one.
        (ns("example.com", "Service"), Phase::Other),
        (ns("flagger.app", "Canary"), Phase::Flagger),
    ];
    for (id, want) in table {
        assert_eq!(phase_of(&id), want, "{id:?}");
    }
}

#[test]
fn every_object_gets_the_inventory_label_and_keeps_its_own() {
    let plan = plan(
        &catalog(vec![file("apps/podinfo/deployment.yaml", DEPLOYMENT)]),
        &options(),
    );
    let deployment = &plan.objects[0];
    assert_eq!(deployment.id.kind, "Deployment");
    assert_eq!(
        deployment.body["metadata"]["labels"],
        json!({ "app": "podinfo", "serin.dev/inventory": "apps" })
    );
    // Pod template labels are the selector's business, not the inventory's.
    assert_eq!(
        deployment.body["spec"]["template"]["metadata"]["labels"],
        json!({ "app": "podinfo" })
    );
    for object in &plan.objects {
        assert_eq!(
            object.body["metadata"]["labels"][INVENTORY_LABEL], "apps",
            "{}",
            object.id
        );
    }
}

#[test]
fn labelled_fills_in_namespace_and_drops_server_metadata() {
    let id = ObjectId::namespaced("", "ConfigMap", "default", "c");
    let table = [
        (
            "no metadata labels, namespace from the catalog",
            json!({ "kind": "ConfigMap", "metadata": { "name": "c" } }),
            json!({ "kind": "ConfigMap", "metadata": {
                "name": "c", "namespace": "default", "labels": { INVENTORY_LABEL: "apps" } } }),
        ),
        (
            "labels: null",
            json!({ "metadata": { "name": "c", "labels": null } }),
            json!({ "metadata": {
                "name": "c", "namespace": "default", "labels": { INVENTORY_LABEL: "apps" } } }),
        ),
        (
            "another inventory's label is replaced",
            json!({ "metadata": { "name": "c", "labels": { INVENTORY_LABEL: "other", "a": "b" } } }),
            json!({ "metadata": {
                "name": "c", "namespace": "default", "labels": { INVENTORY_LABEL: "apps", "a": "b" } } }),
        ),
        (
            "exported from a cluster",
            json!({ "metadata": {
                "name": "c", "resourceVersion": "17", "uid": "u", "creationTimestamp": "t",
                "generation": 3, "managedFields": [], "selfLink": "/x", "annotations": { "k": "v" } },
                "data": { "x": "y" } }),
            json!({ "metadata": {
                "name": "c", "namespace": "default", "annotations": { "k": "v" },
                "labels": { INVENTORY_LABEL: "apps" } }, "data": { "x": "y" } }),
        ),
    ];
    for (case, input, want) in table {
        assert_eq!(labelled(&input, &id, "apps"), want, "{case}");
    }
    let cluster = ObjectId {
        namespace: None,
        ..ObjectId::namespaced("", "Namespace", "", "test")
    };
    assert_eq!(
        labelled(
            &json!({ "metadata": { "name": "test", "namespace": "oops" } }),
            &cluster,
            "apps"
        ),
        json!({ "metadata": { "name": "test", "labels": { INVENTORY_LABEL: "apps" } } }),
        "a namespace on a cluster-scoped object is dropped"
    );
}

#[test]
fn canary_targets_have_their_replicas_owned_by_serin() {
    let daemonset = DEPLOYMENT
        .replacen("kind: Deployment", "kind: DaemonSet", 1)
        .replacen("name: podinfo", "name: agent", 1);
    let agent_canary = CANARY.replacen("name: podinfo", "name: agent", 1).replacen(
        "kind: Deployment\n    name: podinfo",
        "kind: DaemonSet\n    name: agent",
        1,
    );
    let other = DEPLOYMENT.replacen("name: podinfo", "name: other", 1);
    let plan = plan(
        &catalog(vec![
            file("apps/podinfo/canary.yaml", CANARY),
            file("apps/podinfo/deployment.yaml", DEPLOYMENT),
            file("apps/agent/daemonset.yaml", &daemonset),
            file("apps/agent/canary.yaml", &agent_canary),
            file("apps/other/deployment.yaml", &other),
        ]),
        &options(),
    );
    let owner = |kind: &str, name: &str| {
        plan.objects
            .iter()
            .find(|o| o.id.kind == kind && o.id.name == name)
            .map(|o| o.replicas)
    };
    assert_eq!(owner("Deployment", "podinfo"), Some(ReplicasOwner::Serin));
    assert_eq!(owner("DaemonSet", "agent"), Some(ReplicasOwner::Serin));
    assert_eq!(owner("Deployment", "other"), Some(ReplicasOwner::Manifest));
    assert_eq!(owner("Canary", "podinfo"), Some(ReplicasOwner::Manifest));
    // The plan keeps the manifest's replicas: whether to send them depends on the cluster.
    let podinfo = plan
        .objects
        .iter()
        .find(|o| o.id.kind == "Deployment" && o.id.name == "podinfo");
    assert!(podinfo.is_some_and(|o| o.body.pointer("/spec/minReadySeconds").is_some()));
}

#[test]
fn target_replicas_are_sent_only_when_the_target_does_not_exist() {
    let body = json!({ "kind": "Deployment", "spec": { "replicas": 3, "paused": false } });
    let table = [
        (
            false,
            json!({ "kind": "Deployment", "spec": { "replicas": 3, "paused": false } }),
        ),
        (
            true,
            json!({ "kind": "Deployment", "spec": { "paused": false } }),
        ),
    ];
    for (exists, want) in table {
        assert_eq!(target_body(&body, exists), want, "exists={exists}");
    }
    let no_spec = json!({ "kind": "Deployment" });
    assert_eq!(target_body(&no_spec, true), no_spec);
    let no_replicas = json!({ "spec": { "template": {} } });
    assert_eq!(target_body(&no_replicas, true), no_replicas);
}

fn managed(
    manager: &str,
    operation: &str,
    subresource: &str,
    fields: serde_json::Value,
) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        manager: Some(manager.into()),
        operation: Some(operation.into()),
        subresource: (!subresource.is_empty()).then(|| subresource.into()),
        fields_v1: Some(FieldsV1(fields)),
        fields_type: Some("FieldsV1".into()),
        ..Default::default()
    }
}

#[test]
fn replicas_are_handed_over_only_while_the_applier_owns_them() {
    let replicas = json!({ "f:spec": { "f:replicas": {}, "f:template": {} } });
    let template = json!({ "f:spec": { "f:template": {} } });
    let needed = ReplicasHandover::Needed {
        replicas: 3,
        resource_version: "42".into(),
    };
    let table = [
        (
            "created by Serin's apply with the manifest's replicas",
            vec![managed(FIELD_MANAGER, "Apply", "", replicas.clone())],
            needed.clone(),
        ),
        (
            "shared with the handover manager: still the applier's",
            vec![
                managed(FIELD_MANAGER, "Apply", "", replicas.clone()),
                managed(REPLICAS_FIELD_MANAGER, "Apply", "", replicas.clone()),
            ],
            needed.clone(),
        ),
        (
            "scaled by Serin through the scale subresource",
            vec![
                managed(FIELD_MANAGER, "Apply", "", template.clone()),
                managed(FIELD_MANAGER, "Update", "scale", replicas.clone()),
            ],
            ReplicasHandover::NotNeeded,
        ),
        (
            "handed over already",
            vec![
                managed(FIELD_MANAGER, "Apply", "", template.clone()),
                managed(REPLICAS_FIELD_MANAGER, "Apply", "", replicas.clone()),
            ],
            ReplicasHandover::NotNeeded,
        ),
        (
            "created by kubectl",
            vec![
                managed("kubectl-client-side-apply", "Update", "", replicas.clone()),
                managed(FIELD_MANAGER, "Apply", "", template.clone()),
            ],
            ReplicasHandover::NotNeeded,
        ),
        ("no managed fields", vec![], ReplicasHandover::NotNeeded),
    ];
    for (case, fields, want) in table {
        assert_eq!(
            replicas_handover(&fields, Some(3), Some("42")),
            want,
            "{case}"
        );
    }
    let owns = [managed(FIELD_MANAGER, "Apply", "", replicas)];
    assert_eq!(
        replicas_handover(&owns, None, Some("42")),
        ReplicasHandover::NotNeeded,
        "nothing to hand over"
    );
    assert_eq!(
        replicas_handover(&owns, Some(3), None),
        ReplicasHandover::NotNeeded,
        "no resource version to guard the handover"
    );
}

#[test]
fn unreadable_files_block_pruning_object_errors_do_not() {
    let bad_yaml = file("apps/broken.yaml", "kind: [unclosed\n");
    let blocked = plan(
        &catalog(vec![file("apps/podinfo/config.yaml", CONFIG), bad_yaml]),
        &options(),
    );
    let why = blocked.prune_blocked.unwrap_or_default();
    assert!(why.contains("apps/broken.yaml"), "{why}");
    assert!(why.starts_with("pruning skipped"), "{why}");

    let binary = SnapshotFile {
        path: "apps/blob.yaml".into(),
        content: FileContent::Bytes(vec![0, 1, 2]),
    };
    assert!(
        plan(&catalog(vec![binary]), &options())
            .prune_blocked
            .is_some()
    );

    // A Canary with a missing target is an object-level error: every object is still known.
    let object_error = plan(
        &catalog(vec![file("apps/podinfo/canary.yaml", CANARY)]),
        &options(),
    );
    assert_eq!(object_error.prune_blocked, None);
}

fn entry(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> InventoryEntry {
    InventoryEntry {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.map(String::from),
        name: name.into(),
        created: false,
        resource_version: None,
    }
}

#[test]
fn prune_candidates_are_what_left_in_reverse_apply_order() {
    let mut previous = Inventory::default();
    for e in [
        entry("v1", "Namespace", None, "gone"),
        entry("apps/v1", "Deployment", Some("gone"), "web"),
        entry("flagger.app/v1beta1", "Canary", Some("gone"), "web"),
        entry("v1", "Service", Some("test"), "kept"),
        entry(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "w.example.com",
        ),
        entry("v1", "ConfigMap", Some("gone"), "cfg"),
    ] {
        previous.insert(e);
    }
    let desired: BTreeSet<ObjectId> = [ObjectId::namespaced("", "Service", "test", "kept")].into();
    let order: Vec<String> = prune_candidates(&previous, &desired)
        .iter()
        .map(|e| e.id().to_string())
        .collect();
    assert_eq!(
        order,
        [
            "Canary gone/web",
            "Deployment gone/web",
            "ConfigMap gone/cfg",
            "CustomResourceDefinition w.example.com",
            "Namespace gone",
        ]
    );
    // The version is not part of the identity: a manifest moved to a new apiVersion stays.
    let mut moved = Inventory::default();
    moved.insert(entry(
        "autoscaling/v2beta2",
        "HorizontalPodAutoscaler",
        Some("t"),
        "h",
    ));
    let desired = [ObjectId::namespaced(
        "autoscaling",
        "HorizontalPodAutoscaler",
        "t",
        "h",
    )]
    .into();
    assert!(prune_candidates(&moved, &desired).is_empty());
}

#[test]
fn a_namespace_is_desired_while_desired_objects_live_in_it() {
    let mut previous = Inventory::default();
    for e in [
        entry("v1", "Namespace", None, "team"),
        entry("v1", "Namespace", None, "empty"),
        entry("v1", "ConfigMap", Some("team"), "gone"),
    ] {
        previous.insert(InventoryEntry { created: true, ..e });
    }
    // The Namespace manifest was removed, one object in it stays.
    let desired = [ObjectId::namespaced("", "Service", "team", "web")].into();
    let order: Vec<String> = prune_candidates(&previous, &with_their_namespaces(&desired))
        .iter()
        .map(|e| e.id().to_string())
        .collect();
    assert_eq!(order, ["ConfigMap team/gone", "Namespace empty"]);
}

#[test]
fn prune_decisions() {
    let labels = |value: Option<&str>| {
        let mut map = BTreeMap::from([("app".to_string(), "web".to_string())]);
        if let Some(v) = value {
            map.insert(INVENTORY_LABEL.to_string(), v.to_string());
        }
        map
    };
    let service = entry("v1", "Service", Some("test"), "web");
    let adopted_ns = entry("v1", "Namespace", None, "team");
    let created_ns = InventoryEntry {
        created: true,
        ..entry("v1", "Namespace", None, "preview")
    };
    let ours = labels(Some("apps"));
    let theirs = labels(Some("other"));
    let unlabelled = labels(None);
    // What the decision is, without the reason's wording (checked below).
    let kind_of = |d: PruneDecision| match d {
        PruneDecision::Delete => "delete",
        PruneDecision::Gone => "gone",
        PruneDecision::Keep(_) => "keep",
    };
    let table = [
        ("ours", &service, Some(&ours), "delete"),
        ("already gone", &service, None, "gone"),
        (
            "label removed by someone",
            &service,
            Some(&unlabelled),
            "keep",
        ),
        ("another inventory's now", &service, Some(&theirs), "keep"),
        (
            "a Namespace that existed before",
            &adopted_ns,
            Some(&ours),
            "keep",
        ),
        (
            "a Namespace this inventory created",
            &created_ns,
            Some(&ours),
            "delete",
        ),
    ];
    for (case, entry, live, want) in table {
        assert_eq!(kind_of(prune_decision(entry, live, "apps")), want, "{case}");
    }
    let PruneDecision::Keep(kept) = prune_decision(&adopted_ns, Some(&ours), "apps") else {
        panic!("an adopted Namespace is kept");
    };
    assert!(kept.reason.contains("existed before"), "{}", kept.reason);
    let PruneDecision::Keep(kept) = prune_decision(&service, Some(&unlabelled), "apps") else {
        panic!("an unlabelled object is kept");
    };
    assert!(
        kept.reason.contains("someone else owns it"),
        "{}",
        kept.reason
    );
}

#[test]
fn inventory_round_trips_through_its_config_map() {
    let mut inventory = Inventory::default();
    inventory.insert(InventoryEntry {
        created: true,
        resource_version: Some("12".into()),
        ..entry("v1", "Namespace", None, "preview")
    });
    inventory.insert(entry("apps/v1", "Deployment", Some("test"), "web"));
    let cm = inventory.to_config_map("serin-inventory-apps", "serin-system", "apps");
    assert_eq!(cm.metadata.name.as_deref(), Some("serin-inventory-apps"));
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(inventory::OBJECTS_KEY))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        text,
        "[\n\
         {\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"name\":\"preview\",\"created\":true,\"resourceVersion\":\"12\"},\n\
         {\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"namespace\":\"test\",\"name\":\"web\"}\n\
         ]\n"
    );
    assert_eq!(Inventory::from_config_map(&cm), Ok(inventory));

    let empty = Inventory::default().to_config_map("n", "ns", "apps");
    assert_eq!(Inventory::from_config_map(&empty), Ok(Inventory::default()));

    let mut corrupt = cm.clone();
    corrupt.data = Some([(inventory::OBJECTS_KEY.to_string(), "{".to_string())].into());
    assert!(Inventory::from_config_map(&corrupt).is_err());
    corrupt.data = None;
    let err = Inventory::from_config_map(&corrupt);
    assert!(
        matches!(&err, Err(m) if m.contains("objects.json")),
        "{err:?}"
    );
}

#[test]
fn options_are_validated() {
    let ok = ["apps", "podinfo.prod", "a", &"a".repeat(63)];
    for name in ok {
        assert!(ApplyOptions::new(name).validate().is_ok(), "{name}");
    }
    let bad = ["", "Apps", "-apps", "apps-", "a/b", "a_b", &"a".repeat(64)];
    for name in bad {
        let err = ApplyOptions::new(name).validate();
        assert!(
            matches!(&err, Err(ApplyError::InvalidOptions(m)) if m.contains("inventory name")),
            "{name}: {err:?}"
        );
    }
    let mut dotted_ns = ApplyOptions::new("apps");
    dotted_ns.inventory_namespace = "serin.system".into();
    assert!(dotted_ns.validate().is_err());
    assert_eq!(options().config_map_name(), "serin-inventory-apps");
}

#[test]
fn report_says_what_happened_and_where() {
    let at = Location {
        file: "apps/bad.yaml".into(),
        document: 2,
    };
    let report = ApplyReport {
        applied: vec![
            Applied {
                id: ObjectId::namespaced("", "ConfigMap", "t", "a"),
                location: at.clone(),
                outcome: Outcome::Created,
            },
            Applied {
                id: ObjectId::namespaced("", "ConfigMap", "t", "b"),
                location: at.clone(),
                outcome: Outcome::Unchanged,
            },
        ],
        failed: vec![Failure {
            id: ObjectId::namespaced("", "Service", "t", "bad"),
            location: Some(at),
            message: "spec.ports[0].port: Invalid value: 70000".into(),
        }],
        pruned: vec![ObjectId::namespaced("", "Service", "t", "old")],
        kept: vec![],
        prune_skipped: None,
    };
    assert_eq!(
        report.to_string(),
        "1 created, 0 configured, 1 unchanged, 1 failed, 1 pruned\n  \
         error: apps/bad.yaml (document 2) Service t/bad: spec.ports[0].port: Invalid value: 70000"
    );
    assert!(!report.is_success());
}
