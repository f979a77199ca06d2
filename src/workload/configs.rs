//! The `-primary` copies of the ConfigMaps and Secrets the target uses (Flagger reference §3.2).
//!
//! The primary reads copies, not the originals, so that a changed ConfigMap reaches the
//! primary only at promotion — after the canary ran with it — and never while it is analysed.
//! Which configs are copied is decided by [`crate::revision`]'s scan and tracking rules, the
//! same that decide whether a revision is new.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::labels::{include_by_prefix, non_empty};
use super::primary::primary_name;

/// The primary copy of `source`: `<name>-primary` with the source's `data` and `binaryData`
/// and its labels filtered by the include prefixes (annotations are not copied).
///
/// Deviation: Flagger copies only `data`, so keys under `binaryData` go missing in the primary;
/// Serin copies both, so the primary gets exactly the content the canary was analysed with.
pub fn primary_config_map(
    source: &ConfigMap,
    owner: &OwnerReference,
    existing_owners: &[OwnerReference],
    include_label_prefixes: &[String],
) -> ConfigMap {
    ConfigMap {
        metadata: copy_meta(
            &source.metadata,
            owner,
            existing_owners,
            include_label_prefixes,
        ),
        data: source.data.clone(),
        binary_data: source.binary_data.clone(),
        immutable: None,
    }
}

/// The primary copy of `source`: `<name>-primary` with the source's `type` and `data`
/// (and `stringData`, which only a Secret not yet stored by the API server has).
pub fn primary_secret(
    source: &Secret,
    owner: &OwnerReference,
    existing_owners: &[OwnerReference],
    include_label_prefixes: &[String],
) -> Secret {
    Secret {
        metadata: copy_meta(
            &source.metadata,
            owner,
            existing_owners,
            include_label_prefixes,
        ),
        type_: source.type_.clone(),
        data: source.data.clone(),
        string_data: source.string_data.clone(),
        immutable: None,
    }
}

fn copy_meta(
    source: &ObjectMeta,
    owner: &OwnerReference,
    existing_owners: &[OwnerReference],
    include_label_prefixes: &[String],
) -> ObjectMeta {
    ObjectMeta {
        name: Some(primary_name(source.name.as_deref().unwrap_or_default())),
        namespace: source.namespace.clone(),
        labels: non_empty(include_by_prefix(
            source.labels.as_ref(),
            include_label_prefixes,
        )),
        owner_references: Some(shared_owner_references(owner, existing_owners)),
        ..Default::default()
    }
}

/// `owner` as controller, followed by every other owner the copy already has, demoted to
/// non-controller: several canaries may use one ConfigMap, and the copy must survive until the
/// last of them is deleted (the garbage collector deletes an object once all owners are gone;
/// only one of them may be its controller).
pub fn shared_owner_references(
    owner: &OwnerReference,
    existing_owners: &[OwnerReference],
) -> Vec<OwnerReference> {
    let others = existing_owners
        .iter()
        .filter(|r| r.uid != owner.uid)
        .map(|r| OwnerReference {
            controller: Some(false),
            ..r.clone()
        });
    std::iter::once(owner.clone()).chain(others).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    fn owner(name: &str, uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "flagger.app/v1beta1".into(),
            kind: "Canary".into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn source_meta() -> ObjectMeta {
        ObjectMeta {
            name: Some("podinfo-config".into()),
            namespace: Some("test".into()),
            labels: Some(
                [
                    ("app".to_string(), "podinfo".to_string()),
                    ("team".to_string(), "web".to_string()),
                    (
                        "kustomize.toolkit.fluxcd.io/name".to_string(),
                        "apps".to_string(),
                    ),
                ]
                .into(),
            ),
            annotations: Some([("note".to_string(), "x".to_string())].into()),
            resource_version: Some("42".into()),
            uid: Some("source-uid".into()),
            owner_references: Some(vec![owner("someone-else", "other")]),
            ..Default::default()
        }
    }

    #[test]
    fn config_map_copy() {
        let source = ConfigMap {
            metadata: source_meta(),
            data: Some([("color".to_string(), "blue".to_string())].into()),
            binary_data: Some([("logo".to_string(), ByteString(vec![0, 1, 2]))].into()),
            immutable: Some(true),
        };
        let me = owner("podinfo", "uid-1");
        let copy = primary_config_map(&source, &me, &[], &["app".to_string()]);
        assert_eq!(
            copy.metadata.name.as_deref(),
            Some("podinfo-config-primary")
        );
        assert_eq!(copy.metadata.namespace.as_deref(), Some("test"));
        assert_eq!(
            copy.metadata.labels,
            Some([("app".to_string(), "podinfo".to_string())].into())
        );
        // Identity, versions, annotations and the source's own owners are not copied.
        assert_eq!(copy.metadata.annotations, None);
        assert_eq!(copy.metadata.resource_version, None);
        assert_eq!(copy.metadata.uid, None);
        assert_eq!(copy.metadata.owner_references, Some(vec![me.clone()]));
        assert_eq!(copy.data, source.data);
        assert_eq!(copy.binary_data, source.binary_data);
        // An immutable copy could never be updated by the next promotion.
        assert_eq!(copy.immutable, None);

        // Flagger's default include list is empty: no labels at all.
        let copy = primary_config_map(&source, &me, &[], &[]);
        assert_eq!(copy.metadata.labels, None);
        let copy = primary_config_map(&source, &me, &[], &["*".to_string()]);
        let keys: Vec<String> = copy.metadata.labels.unwrap().into_keys().collect();
        assert_eq!(keys, ["app", "team"]);
    }

    #[test]
    fn secret_copy_keeps_type_and_data() {
        let source = Secret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                namespace: Some("test".into()),
                ..Default::default()
            },
            type_: Some("kubernetes.io/basic-auth".into()),
            data: Some(BTreeMap::from([(
                "password".to_string(),
                ByteString(b"hunter2".to_vec()),
            )])),
            string_data: None,
            immutable: None,
        };
        let copy = primary_secret(&source, &owner("podinfo", "uid-1"), &[], &[]);
        assert_eq!(copy.metadata.name.as_deref(), Some("db-primary"));
        assert_eq!(copy.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        assert_eq!(copy.data, source.data);
    }

    #[test]
    fn owners_are_shared_with_other_canaries() {
        let me = owner("podinfo", "uid-1");
        // (owners the copy has, expected (uid, controller) list)
        type Case = (Vec<OwnerReference>, Vec<(&'static str, bool)>);
        let table: [Case; 4] = [
            (vec![], vec![("uid-1", true)]),
            // Our own earlier reference is replaced, not duplicated.
            (vec![owner("podinfo", "uid-1")], vec![("uid-1", true)]),
            // Another canary's controller reference is kept, demoted.
            (
                vec![owner("podinfo", "uid-1"), owner("frontend", "uid-2")],
                vec![("uid-1", true), ("uid-2", false)],
            ),
            (
                vec![owner("frontend", "uid-2"), owner("backend", "uid-3")],
                vec![("uid-1", true), ("uid-2", false), ("uid-3", false)],
            ),
        ];
        for (existing, want) in table {
            let got: Vec<(String, bool)> = shared_owner_references(&me, &existing)
                .into_iter()
                .map(|r| (r.uid, r.controller == Some(true)))
                .collect();
            let want: Vec<(String, bool)> =
                want.into_iter().map(|(u, c)| (u.to_string(), c)).collect();
            assert_eq!(got, want, "{existing:?}");
        }
    }
}
