//! The inventory: which objects an apply wrote, kept in a ConfigMap between applies, and the
//! pure rules of what of it to prune.
//!
//! Ownership needs two pieces of evidence before Serin deletes anything: the object is in the
//! last inventory (Serin applied it), and it still carries the inventory label (nobody has
//! taken it over since). The label alone is not enough: generated objects may copy the
//! target's labels (Flagger's `-include-label-prefix=*`), and deleting a primary Deployment
//! because it looks like Serin's would take production down.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::plan::{Phase, phase_of};
use super::{INVENTORY_LABEL, Kept};
use crate::catalog::ObjectId;

/// The ConfigMap key holding the entries (a JSON list, one entry per line).
pub const OBJECTS_KEY: &str = "objects.json";

/// One object an apply wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryEntry {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// The API server created the object on this inventory's apply (as opposed to an object that
    /// existed and was adopted). Only such Namespaces are ever pruned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created: bool,
    /// The resourceVersion the last apply returned: an apply that returns it again changed
    /// nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

impl InventoryEntry {
    pub fn id(&self) -> ObjectId {
        ObjectId {
            group: group_of(&self.api_version).to_string(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// `apps` of `apps/v1`, `""` of `v1`.
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The objects of one inventory, by identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub entries: BTreeMap<ObjectId, InventoryEntry>,
}

impl Inventory {
    pub fn get(&self, id: &ObjectId) -> Option<&InventoryEntry> {
        self.entries.get(id)
    }

    pub fn insert(&mut self, entry: InventoryEntry) {
        self.entries.insert(entry.id(), entry);
    }

    /// Reads the ConfigMap written by [`Inventory::to_config_map`].
    pub fn from_config_map(config_map: &ConfigMap) -> Result<Self, String> {
        let Some(text) = config_map.data.as_ref().and_then(|d| d.get(OBJECTS_KEY)) else {
            return Err(format!("it has no data key {OBJECTS_KEY}"));
        };
        let entries: Vec<InventoryEntry> =
            serde_json::from_str(text).map_err(|e| format!("{OBJECTS_KEY}: {e}"))?;
        let mut inventory = Inventory::default();
        for entry in entries {
            inventory.insert(entry);
        }
        Ok(inventory)
    }

    /// The ConfigMap `name` in `namespace` holding this inventory. One entry per line, sorted by
    /// identity, so that `kubectl get -o yaml` stays readable and changes are small diffs.
    pub fn to_config_map(&self, name: &str, namespace: &str, inventory: &str) -> ConfigMap {
        let lines: Vec<String> = self
            .entries
            .values()
            .filter_map(|e| serde_json::to_string(e).ok())
            .collect();
        let text = if lines.is_empty() {
            "[]\n".to_string()
        } else {
            format!("[\n{}\n]\n", lines.join(",\n"))
        };
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    "serin".to_string(),
                )])),
                annotations: Some(BTreeMap::from([(
                    "serin.dev/inventory-of".to_string(),
                    inventory.to_string(),
                )])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(OBJECTS_KEY.to_string(), text)])),
            ..Default::default()
        }
    }
}

/// The entries of `previous` that are not `desired` any more, in delete order: the reverse of
/// apply order (a Canary before its target, namespaced objects before Namespaces and CRDs).
pub fn prune_candidates(previous: &Inventory, desired: &BTreeSet<ObjectId>) -> Vec<InventoryEntry> {
    let mut candidates: Vec<InventoryEntry> = previous
        .entries
        .iter()
        .filter(|(id, _)| !desired.contains(id))
        .map(|(_, e)| e.clone())
        .collect();
    candidates.sort_by_key(|e| std::cmp::Reverse(phase_of(&e.id())));
    candidates
}

/// `desired` plus the Namespace of each desired object: a Namespace that left the source while
/// objects of the source still live in it is not pruned (deleting it would delete them too).
pub fn with_their_namespaces(desired: &BTreeSet<ObjectId>) -> BTreeSet<ObjectId> {
    let namespaces = desired
        .iter()
        .filter_map(|id| id.namespace.as_ref())
        .map(|ns| ObjectId {
            group: String::new(),
            kind: "Namespace".into(),
            namespace: None,
            name: ns.clone(),
        });
    desired.iter().cloned().chain(namespaces).collect()
}

/// What to do with one prune candidate, given its live labels (`None`: it is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneDecision {
    Delete,
    /// Already deleted: nothing to do.
    Gone,
    Keep(Kept),
}

pub fn prune_decision(
    entry: &InventoryEntry,
    live_labels: Option<&BTreeMap<String, String>>,
    inventory: &str,
) -> PruneDecision {
    let Some(labels) = live_labels else {
        return PruneDecision::Gone;
    };
    let id = entry.id();
    let keep = |reason: String| {
        PruneDecision::Keep(Kept {
            id: id.clone(),
            reason,
        })
    };
    match labels.get(INVENTORY_LABEL) {
        Some(owner) if owner == inventory => {}
        Some(owner) => {
            return keep(format!(
                "it left the source but now carries {INVENTORY_LABEL}={owner}: that inventory \
                 owns it"
            ));
        }
        None => {
            return keep(format!(
                "it left the source but no longer carries {INVENTORY_LABEL}={inventory}: \
                 someone else owns it now"
            ));
        }
    }
    if phase_of(&id) == Phase::Namespaces && !entry.created {
        return keep(
            "the Namespace left the source, but it existed before Serin applied it, so it is \
             not deleted (with everything in it)"
                .into(),
        );
    }
    PruneDecision::Delete
}
