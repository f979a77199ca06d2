//! The apply stage: the catalog's objects into the cluster with server-side apply, an inventory
//! of what was applied, and pruning of what left the source.
//!
//! * [`plan`]: what to apply, in which order and shape (inventory label, explicit namespace,
//!   a canary target's replicas) — pure, table-tested.
//! * [`inventory`]: what a previous apply left in the cluster, and what of it to prune — pure.
//! * [`applier`]: the one place that talks to the API server: discovery, apply, waiting for
//!   CRDs, prune, and the inventory ConfigMap.
//!
//! Every object is applied with field manager `serin` (forced: Git is the truth, a conflicting
//! `kubectl edit` is overwritten as with Flux). Objects carry the label
//! `serin.dev/inventory: <inventory>`; the inventory ConfigMap `serin-inventory-<inventory>`
//! remembers which objects the last apply wrote, so that those missing from the next catalog are
//! deleted — only if they still carry the label (someone else may have taken them over), and a
//! Namespace only if this inventory created it.

pub mod applier;
pub mod inventory;
pub mod plan;

use std::fmt;
use std::time::Duration;

pub use applier::Applier;
pub use inventory::{
    Inventory, InventoryEntry, PruneDecision, prune_candidates, prune_decision,
    with_their_namespaces,
};
pub use plan::{
    Phase, Plan, PlannedObject, ReplicasHandover, ReplicasOwner, labelled, phase_of, plan,
    replicas_handover, target_body,
};

use crate::catalog::{Location, ObjectId};

/// Field manager of every apply: the same as the workload layer's, so that Serin is one owner.
pub use crate::cluster::FIELD_MANAGER;

/// The label that marks an object as applied by an inventory.
pub const INVENTORY_LABEL: &str = "serin.dev/inventory";

/// Field manager that holds a canary target's `spec.replicas` after Serin's applier lets go of
/// it (see [`ReplicasHandover`]); Serin's scaling takes the field from it on the first scale.
pub const REPLICAS_FIELD_MANAGER: &str = "serin-replicas";

/// Prefix of the inventory ConfigMap's name.
pub const INVENTORY_CONFIG_MAP_PREFIX: &str = "serin-inventory-";

/// Where the inventory is kept when nothing else is said.
pub const DEFAULT_INVENTORY_NAMESPACE: &str = "serin-system";

/// How to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Names this set of objects (e.g. the source's name): the value of [`INVENTORY_LABEL`] and
    /// the suffix of the inventory ConfigMap. Two sources must use two inventories, or each
    /// would prune the other's objects.
    pub inventory: String,
    /// Namespace of the inventory ConfigMap (Serin's own, e.g. `serin-system`); created if
    /// missing.
    pub inventory_namespace: String,
    /// Delete objects that left the source.
    pub prune: bool,
    /// How long an applied CRD may take to be Established and served.
    pub crd_timeout: Duration,
}

impl ApplyOptions {
    pub fn new(inventory: impl Into<String>) -> Self {
        ApplyOptions {
            inventory: inventory.into(),
            inventory_namespace: DEFAULT_INVENTORY_NAMESPACE.into(),
            prune: true,
            crd_timeout: Duration::from_secs(60),
        }
    }

    /// The inventory name must be a label value and part of a ConfigMap name; the namespace a
    /// namespace name.
    pub fn validate(&self) -> Result<(), ApplyError> {
        let invalid = |what: &str, value: &str, rule: &str| {
            Err(ApplyError::InvalidOptions(format!(
                "{what} {value:?} is invalid: {rule}"
            )))
        };
        if !is_dns_label(&self.inventory, true) {
            return invalid(
                "inventory name",
                &self.inventory,
                "use at most 63 lower-case letters, digits, '-' and '.', starting and ending \
                 with a letter or digit",
            );
        }
        if !is_dns_label(&self.inventory_namespace, false) {
            return invalid(
                "inventory namespace",
                &self.inventory_namespace,
                "use at most 63 lower-case letters, digits and '-', starting and ending with a \
                 letter or digit",
            );
        }
        Ok(())
    }

    /// `serin-inventory-<inventory>`.
    pub fn config_map_name(&self) -> String {
        format!("{INVENTORY_CONFIG_MAP_PREFIX}{}", self.inventory)
    }
}

fn is_dns_label(s: &str, dots: bool) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Why nothing was applied. Problems with single objects are in the [`ApplyReport`] instead.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    InvalidOptions(String),
    /// Without the last inventory, pruning cannot be decided; applying anyway would also lose
    /// which Namespaces this inventory created.
    #[error("cannot read the inventory ConfigMap {namespace}/{name}")]
    ReadInventory {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// The inventory ConfigMap exists but is not one Serin can read (edited by hand?).
    #[error(
        "the inventory ConfigMap {namespace}/{name} is not readable: {problem}; delete it to \
         start a new inventory (objects that left the source meanwhile are then not pruned)"
    )]
    CorruptInventory {
        namespace: String,
        name: String,
        problem: String,
    },
}

/// What the API server did with an applied object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    /// Applied to an existing object (which may or may not have changed).
    Configured,
    /// Applied, and the object's resourceVersion is the one recorded by the last apply: nothing
    /// changed.
    Unchanged,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub id: ObjectId,
    pub location: Location,
    pub outcome: Outcome,
}

/// An object that could not be applied or pruned, with the API server's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub id: ObjectId,
    /// Where the object is defined; `None` for objects that are not in the source (pruned
    /// objects, the inventory ConfigMap).
    pub location: Option<Location>,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.location {
            write!(f, "{at} ")?;
        }
        write!(f, "{}: {}", self.id, self.message)
    }
}

/// An object that left the source but was deliberately not deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub id: ObjectId,
    pub reason: String,
}

/// Everything one apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// In apply order.
    pub applied: Vec<Applied>,
    pub failed: Vec<Failure>,
    pub pruned: Vec<ObjectId>,
    pub kept: Vec<Kept>,
    /// Why pruning did not run, if it did not.
    pub prune_skipped: Option<String>,
}

impl ApplyReport {
    pub fn is_success(&self) -> bool {
        self.failed.is_empty()
    }

    pub fn outcome_of(&self, id: &ObjectId) -> Option<Outcome> {
        self.applied.iter().find(|a| &a.id == id).map(|a| a.outcome)
    }

    pub fn failure_of(&self, id: &ObjectId) -> Option<&Failure> {
        self.failed.iter().find(|f| &f.id == id)
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |o: Outcome| self.applied.iter().filter(|a| a.outcome == o).count();
        write!(
            f,
            "{} created, {} configured, {} unchanged, {} failed, {} pruned",
            count(Outcome::Created),
            count(Outcome::Configured),
            count(Outcome::Unchanged),
            self.failed.len(),
            self.pruned.len()
        )?;
        for failure in &self.failed {
            write!(f, "\n  error: {failure}")?;
        }
        for kept in &self.kept {
            write!(f, "\n  kept {}: {}", kept.id, kept.reason)?;
        }
        if let Some(why) = &self.prune_skipped {
            write!(f, "\n  {why}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
