//! What to apply, in which order, and in which shape: a pure function of the catalog.
//!
//! Order matters because the API server refuses an object whose prerequisites are missing
//! (a namespaced object before its Namespace, a custom resource before its CRD is Established)
//! and because controllers act on what exists: pods start faster when their ConfigMaps,
//! Secrets and ServiceAccount are already there, and a Canary must find its target workload.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use serde_json::{Map, Value};

use super::{ApplyOptions, FIELD_MANAGER, INVENTORY_LABEL};
use crate::catalog::{Catalog, Location, ObjectId, Target};

/// The apply phases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Everything namespaced needs its Namespace first.
    Namespaces,
    /// CRDs, then a wait until they are Established and discoverable.
    Definitions,
    /// Other cluster-scoped objects (ClusterRoles, StorageClasses, ...).
    ClusterScoped,
    /// What pods need when they are created: ConfigMaps, Secrets, ServiceAccounts, RBAC, PVCs.
    Configuration,
    /// Deployments, DaemonSets, StatefulSets, Jobs, ...
    Workloads,
    Services,
    /// Everything else (HPAs, Ingresses, HTTPRoutes, PDBs, custom resources, ...).
    Other,
    /// `flagger.app` objects: a Canary's target and templates exist by the time it is applied.
    Flagger,
}

/// Who decides `spec.replicas` of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicasOwner {
    /// Whatever the manifest says (every object that is not a canary target).
    Manifest,
    /// Serin scales the target (0 at rest, up for analysis): the manifest's value only seeds
    /// the object when it is created (DESIGN.md, Replicas).
    Serin,
}

/// One object, ready to be sent to the API server.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedObject {
    pub id: ObjectId,
    pub api_version: String,
    pub location: Location,
    pub phase: Phase,
    pub replicas: ReplicasOwner,
    /// The manifest with the inventory label, its namespace made explicit and server-owned
    /// metadata removed.
    pub body: Value,
}

/// The whole apply of one catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// In apply order: by phase, and within a phase in file and document order.
    pub objects: Vec<PlannedObject>,
    /// Why pruning must not run, if it must not: problems that may have hidden objects (a file
    /// that does not parse has no objects in the catalog, which must not read as "deleted").
    pub prune_blocked: Option<String>,
}

/// The objects of `catalog` in apply order, labelled for `options.inventory`.
pub fn plan(catalog: &Catalog, options: &ApplyOptions) -> Plan {
    let targets = canary_targets(catalog);
    let mut objects: Vec<PlannedObject> = catalog
        .objects
        .iter()
        .map(|o| PlannedObject {
            id: o.id.clone(),
            api_version: o.api_version.clone(),
            location: o.location.clone(),
            phase: phase_of(&o.id),
            replicas: if targets.contains(&o.id) {
                ReplicasOwner::Serin
            } else {
                ReplicasOwner::Manifest
            },
            body: labelled(&o.value, &o.id, &options.inventory),
        })
        .collect();
    // Stable: file and document order within a rank, so the user can still reason about it.
    objects.sort_by_key(|o| (o.phase, flagger_rank(&o.id)));
    Plan {
        objects,
        prune_blocked: prune_blocked(catalog),
    }
}

/// The Deployments and DaemonSets some Canary of the catalog rolls out.
fn canary_targets(catalog: &Catalog) -> BTreeSet<ObjectId> {
    catalog
        .canaries
        .iter()
        .filter_map(|entry| {
            let kind = match entry.target.as_ref()? {
                Target::Deployment(_) => "Deployment",
                Target::DaemonSet(_) => "DaemonSet",
                Target::Service => return None,
            };
            let name = entry.canary.spec.target_ref.as_ref()?.name();
            Some(ObjectId::namespaced("apps", kind, entry.namespace(), name))
        })
        .collect()
}

pub fn phase_of(id: &ObjectId) -> Phase {
    match (id.group.as_str(), id.kind.as_str()) {
        ("", "Namespace") => Phase::Namespaces,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => Phase::Definitions,
        ("flagger.app", _) => Phase::Flagger,
        _ if id.namespace.is_none() => Phase::ClusterScoped,
        (
            "",
            "ConfigMap"
            | "Secret"
            | "ServiceAccount"
            | "PersistentVolumeClaim"
            | "LimitRange"
            | "ResourceQuota",
        )
        | ("rbac.authorization.k8s.io", "Role" | "RoleBinding") => Phase::Configuration,
        ("apps", "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet")
        | ("batch", "Job" | "CronJob")
        | ("", "Pod" | "ReplicationController") => Phase::Workloads,
        ("", "Service") => Phase::Services,
        _ => Phase::Other,
    }
}

/// Within the Flagger phase: templates and providers before the Canaries that reference them.
fn flagger_rank(id: &ObjectId) -> u8 {
    match (id.group.as_str(), id.kind.as_str()) {
        ("flagger.app", "MetricTemplate" | "AlertProvider") => 0,
        ("flagger.app", "Canary") => 2,
        ("flagger.app", _) => 1,
        _ => 0,
    }
}

/// Metadata the API server owns. Manifests exported with `kubectl get -o yaml` carry them; sent
/// back, a stale `resourceVersion` would make every apply a conflict, and the others are
/// refused or ignored.
const SERVER_METADATA: [&str; 6] = [
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
];

/// The manifest as applied: the inventory label added to its own labels, the namespace the
/// catalog resolved written out (a manifest without one goes to the default namespace, as with
/// `kubectl apply`), server-owned metadata removed.
pub fn labelled(value: &Value, id: &ObjectId, inventory: &str) -> Value {
    let mut body = value.clone();
    let Some(root) = body.as_object_mut() else {
        return body;
    };
    // Taken out and put back: a missing or non-mapping `metadata`/`labels` (`labels: null` in
    // YAML) becomes an empty mapping without any path that could panic.
    let mut metadata = take_object(root, "metadata");
    for key in SERVER_METADATA {
        metadata.remove(key);
    }
    match &id.namespace {
        Some(ns) => {
            metadata.insert("namespace".into(), Value::String(ns.clone()));
        }
        None => {
            metadata.remove("namespace");
        }
    }
    let mut labels = take_object(&mut metadata, "labels");
    labels.insert(INVENTORY_LABEL.into(), Value::String(inventory.to_string()));
    metadata.insert("labels".into(), Value::Object(labels));
    root.insert("metadata".into(), Value::Object(metadata));
    body
}

fn take_object(map: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match map.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Why pruning must wait, if it must: an error that lost a whole file or document means objects
/// may be missing from the catalog only because they could not be read.
fn prune_blocked(catalog: &Catalog) -> Option<String> {
    let unreadable: Vec<String> = catalog
        .problems
        .iter()
        .filter(|p| p.is_error() && p.object.is_none())
        .map(|p| match p.document {
            Some(d) => format!("{} (document {d})", p.file),
            None => p.file.clone(),
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    (!unreadable.is_empty()).then(|| {
        format!(
            "pruning skipped: {} could not be read, and the objects they define would be deleted",
            unreadable.join(", ")
        )
    })
}

/// The target's body for this apply. While the object does not exist the manifest's replicas
/// are kept, so the first rollout starts with what the user wrote; once it exists Serin scales
/// it through the scale subresource and the applied body must not say anything about replicas,
/// or every apply would undo the scaling.
pub fn target_body(body: &Value, exists_in_cluster: bool) -> Value {
    let mut body = body.clone();
    if exists_in_cluster && let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("replicas");
    }
    body
}

/// What to do about `spec.replicas` of an existing canary target before applying it without
/// replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicasHandover {
    /// Someone other than Serin's applier owns the field (Serin's scaling, an HPA, the manifest
    /// never set it): leaving it out of the apply leaves it alone.
    NotNeeded,
    /// Serin's applier is an owner (it created the object with the manifest's replicas). Left
    /// out of the apply, the field would be removed and defaulted to 1; so first another field
    /// manager takes it over at its current value, guarded by the resource version read.
    Needed {
        replicas: i64,
        resource_version: String,
    },
}

/// Decides [`ReplicasHandover`] from the live object's `managedFields`, `spec.replicas` and
/// `resourceVersion`.
pub fn replicas_handover(
    managed_fields: &[ManagedFieldsEntry],
    replicas: Option<i64>,
    resource_version: Option<&str>,
) -> ReplicasHandover {
    let applier_owns = managed_fields.iter().any(|entry| {
        entry.manager.as_deref() == Some(FIELD_MANAGER)
            && entry.operation.as_deref() == Some("Apply")
            && entry.subresource.as_deref().unwrap_or_default().is_empty()
            && entry
                .fields_v1
                .as_ref()
                .and_then(|f| f.0.pointer("/f:spec/f:replicas"))
                .is_some()
    });
    match (applier_owns, replicas, resource_version) {
        (true, Some(replicas), Some(rv)) => ReplicasHandover::Needed {
            replicas,
            resource_version: rv.to_string(),
        },
        _ => ReplicasHandover::NotNeeded,
    }
}
