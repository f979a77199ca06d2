//! `revertOnDeletion` (Flagger reference §2.9): a finalizer keeps a deleted Canary until Serin
//! has handed the traffic back to the target — target scaled up, apex Service on the target's
//! pods, the provider's routing object restored — and then lets it go.
//!
//! The finalizer list is written with the resourceVersion of the Canary it was computed from,
//! so a finalizer another controller adds meanwhile makes the patch fail (409) instead of being
//! lost; the next tick retries.

use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::api::Canary;

/// Flagger's finalizer name, so a Canary finalized by either controller is recognised.
pub const FINALIZER: &str = "finalizer.flagger.app";

/// What a tick does about the finalizer before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalizerStep {
    /// Nothing to do: run the analysis.
    Proceed,
    /// `revertOnDeletion` is on and the finalizer is missing: add it, then run the analysis.
    Add,
    /// `revertOnDeletion` was turned off: drop the finalizer, then run the analysis.
    Remove,
    /// The Canary is being deleted with the finalizer: revert, then drop it.
    Finalize,
    /// The Canary is being deleted without revert: drop the finalizer (if any) and stop.
    Release,
    /// The Canary is being deleted and no finalizer of Serin's holds it: stop.
    Gone,
}

/// Decides the step from the Canary as read (pure).
pub fn step(canary: &Canary) -> FinalizerStep {
    let held = has_finalizer(canary);
    let revert = canary.spec.revert_on_deletion();
    match (canary.metadata.deletion_timestamp.is_some(), held, revert) {
        (true, true, true) => FinalizerStep::Finalize,
        (true, true, false) => FinalizerStep::Release,
        (true, false, _) => FinalizerStep::Gone,
        (false, false, true) => FinalizerStep::Add,
        (false, true, false) => FinalizerStep::Remove,
        (false, true, true) | (false, false, false) => FinalizerStep::Proceed,
    }
}

pub fn has_finalizer(canary: &Canary) -> bool {
    canary.finalizers().iter().any(|f| f == FINALIZER)
}

/// The Canary's finalizers with Serin's added or removed, others kept in order.
pub fn finalizers_with(canary: &Canary, held: bool) -> Vec<String> {
    let mut list: Vec<String> = canary
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if held {
        list.push(FINALIZER.to_string());
    }
    list
}

/// Adds (`held`) or removes Serin's finalizer.
pub async fn set_finalizer(client: &Client, canary: &Canary, held: bool) -> kube::Result<()> {
    let namespace = canary.namespace().unwrap_or_default();
    let patch = json!({
        "metadata": {
            "resourceVersion": canary.resource_version(),
            "finalizers": finalizers_with(canary, held),
        }
    });
    Api::<Canary>::namespaced(client.clone(), &namespace)
        .patch(
            &canary.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CanarySpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn canary(deleting: bool, finalizers: &[&str], revert: Option<bool>) -> Canary {
        let mut c = Canary::new(
            "podinfo",
            CanarySpec {
                revert_on_deletion: revert,
                ..Default::default()
            },
        );
        c.metadata.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect());
        if deleting {
            c.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        }
        c
    }

    #[test]
    fn every_combination_has_its_step() {
        use FinalizerStep::*;
        let table = [
            (false, &[][..], None, Proceed),
            (false, &[][..], Some(false), Proceed),
            (false, &[][..], Some(true), Add),
            (false, &[FINALIZER][..], Some(true), Proceed),
            (false, &[FINALIZER][..], Some(false), Remove),
            (false, &[FINALIZER][..], None, Remove),
            (true, &[FINALIZER][..], Some(true), Finalize),
            (true, &[FINALIZER][..], Some(false), Release),
            (true, &["other"][..], Some(true), Gone),
            (true, &[][..], Some(true), Gone),
        ];
        for (deleting, finalizers, revert, want) in table {
            assert_eq!(
                step(&canary(deleting, finalizers, revert)),
                want,
                "{deleting} {finalizers:?} {revert:?}"
            );
        }
    }

    #[test]
    fn other_finalizers_are_kept() {
        let c = canary(false, &["a", FINALIZER, "b"], Some(true));
        assert_eq!(finalizers_with(&c, false), ["a", "b"]);
        assert_eq!(finalizers_with(&c, true), ["a", "b", FINALIZER]);
        let c = canary(false, &["a"], Some(true));
        assert_eq!(finalizers_with(&c, true), ["a", FINALIZER]);
    }
}
