//! Labels and annotations of generated objects (Flagger reference §3.3, §2.6).
//!
//! The primary's pods must never match the target's Service and vice versa, so one selector
//! label gets the value `<value>-primary` on everything generated; the rest is copied as
//! Flagger copies it, so that label-based tooling (dashboards, policies) sees the same objects.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{WorkloadError, WorkloadKind};

/// Keys containing this belong to Flux; copying them would make Flux garbage-collect or
/// reconcile objects it did not create.
pub const TOOLKIT_MARKER: &str = "toolkit.fluxcd.io";

/// Pod template annotation with a fresh UUID on every create and promotion, so that the
/// primary always rolls out, even when only a config copy changed.
pub const FLAGGER_ID_ANNOTATION: &str = "flagger-id";

/// The label that tells the target's pods apart, and its value on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorLabel {
    pub key: String,
    pub value: String,
}

impl SelectorLabel {
    /// The value on the primary's selector, pods and Services: `<value>-primary`.
    pub fn primary_value(&self) -> String {
        format!("{}-primary", self.value)
    }
}

/// The first of `selector_labels` (in that order) present in the workload's
/// `spec.selector.matchLabels`, with its value; Flagger's error when none is.
pub fn selector_label(
    kind: WorkloadKind,
    name: &str,
    namespace: &str,
    match_labels: Option<&BTreeMap<String, String>>,
    selector_labels: &[String],
) -> Result<SelectorLabel, WorkloadError> {
    selector_labels
        .iter()
        .find_map(|key| {
            match_labels?.get(key).map(|value| SelectorLabel {
                key: key.clone(),
                value: value.clone(),
            })
        })
        .ok_or_else(|| WorkloadError::SelectorLabel {
            kind,
            name: name.to_string(),
            namespace: namespace.to_string(),
            labels: selector_labels.to_vec(),
        })
}

/// Entries whose key starts with one of `prefixes` (`*` matches every key, an empty prefix
/// none), never Flux's: Flagger's `includeLabelsByPrefix`.
pub fn include_by_prefix(
    map: Option<&BTreeMap<String, String>>,
    prefixes: &[String],
) -> BTreeMap<String, String> {
    map.into_iter()
        .flatten()
        .filter(|(k, _)| !k.contains(TOOLKIT_MARKER))
        .filter(|(k, _)| {
            prefixes
                .iter()
                .any(|p| p == "*" || (!p.is_empty() && k.starts_with(p.as_str())))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every entry except Flux's: Flagger's `filterMetadata`.
pub fn without_toolkit(map: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    map.into_iter()
        .flatten()
        .filter(|(k, _)| !k.contains(TOOLKIT_MARKER))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `labels` without Flux's keys and with the selector label set to `<value>-primary`:
/// Flagger's `makePrimaryLabels`.
pub fn primary_labels(
    labels: Option<&BTreeMap<String, String>>,
    selector: &SelectorLabel,
) -> BTreeMap<String, String> {
    let mut out = without_toolkit(labels);
    out.insert(selector.key.clone(), selector.primary_value());
    out
}

/// Pod template annotations of the primary: the target's without Flux's keys, with
/// `flagger-id` set to `flagger_id`: Flagger's `makeAnnotations`.
pub fn template_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    flagger_id: &str,
) -> BTreeMap<String, String> {
    let mut out = without_toolkit(annotations);
    out.insert(FLAGGER_ID_ANNOTATION.to_string(), flagger_id.to_string());
    out
}

/// `None` for an empty map, so generated objects omit the field as Go's `omitempty` does.
pub(crate) fn non_empty(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
}

/// A random RFC 4122 version-4 UUID for the `flagger-id` annotation.
///
/// The crate has no UUID or RNG dependency, and this value only has to differ from every
/// earlier one (it forces a rollout; nothing trusts it), so the 128 bits come from std's
/// `RandomState` — randomly keyed SipHash, seeded from the OS once per thread — over the
/// current time and a process-wide counter. Not suitable for anything secret.
pub fn new_flagger_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    for (i, half) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u64(count);
        hasher.write_usize(i);
        half.copy_from_slice(&hasher.finish().to_be_bytes());
    }
    uuid_v4(bytes)
}

/// Formats 16 bytes as a version-4, variant-1 UUID (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`),
/// overwriting the version and variant bits as Flagger does.
fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = |range: std::ops::Range<usize>| -> String {
        bytes[range].iter().map(|b| format!("{b:02x}")).collect()
    };
    format!(
        "{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn selector_label_is_the_first_configured_label_present() {
        let defaults = strings(&["app", "name", "app.kubernetes.io/name"]);
        // (selector matchLabels, custom selector labels or [] for the default, expected)
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            &'a [&'a str],
            Option<(&'a str, &'a str)>,
        );
        let table: [Case; 7] = [
            (&[("app", "podinfo")], &[], Some(("app", "podinfo"))),
            (&[("name", "podinfo")], &[], Some(("name", "podinfo"))),
            (
                &[("app.kubernetes.io/name", "web")],
                &[],
                Some(("app.kubernetes.io/name", "web")),
            ),
            // Flag order wins over the order of the selector's keys.
            (&[("name", "b"), ("app", "a")], &[], Some(("app", "a"))),
            (&[("version", "v1")], &[], None),
            (&[], &[], None),
            // A custom list replaces the default one entirely.
            (
                &[("app", "a"), ("tier", "web")],
                &["tier"],
                Some(("tier", "web")),
            ),
        ];
        for (labels, custom, want) in table {
            let list = if custom.is_empty() {
                defaults.clone()
            } else {
                strings(custom)
            };
            let labels = map(labels);
            let got = selector_label(
                WorkloadKind::Deployment,
                "podinfo",
                "test",
                Some(&labels),
                &list,
            );
            match want {
                Some((k, v)) => {
                    let got = got.unwrap();
                    assert_eq!((got.key.as_str(), got.value.as_str()), (k, v), "{labels:?}");
                    assert_eq!(got.primary_value(), format!("{v}-primary"));
                }
                None => assert!(got.is_err(), "{labels:?}"),
            }
        }
    }

    #[test]
    fn selector_label_error_is_flaggers() {
        let labels = strings(&["app", "name", "app.kubernetes.io/name"]);
        let err =
            selector_label(WorkloadKind::Deployment, "podinfo", "test", None, &labels).unwrap_err();
        assert_eq!(
            err.to_string(),
            "deployment podinfo.test spec.selector.matchLabels must contain one of \
             [app name app.kubernetes.io/name]"
        );
        let err = selector_label(
            WorkloadKind::DaemonSet,
            "agent",
            "ops",
            Some(&map(&[("k8s-app", "agent")])),
            &strings(&["app"]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "daemonset agent.ops spec.selector.matchLabels must contain one of [app]"
        );
    }

    #[test]
    fn include_by_prefix_table() {
        let labels = map(&[
            ("app", "podinfo"),
            ("app.kubernetes.io/name", "podinfo"),
            ("team", "web"),
            ("kustomize.toolkit.fluxcd.io/name", "apps"),
        ]);
        let table: [(&[&str], &[&str]); 6] = [
            (&[], &[]),
            (&[""], &[]),
            (&["*"], &["app", "app.kubernetes.io/name", "team"]),
            (&["app"], &["app", "app.kubernetes.io/name"]),
            (
                &["app.kubernetes.io", "team"],
                &["app.kubernetes.io/name", "team"],
            ),
            // A prefix naming Flux's keys still never copies them.
            (&["kustomize"], &[]),
        ];
        for (prefixes, want) in table {
            let got = include_by_prefix(Some(&labels), &strings(prefixes));
            let got: Vec<&str> = got.keys().map(String::as_str).collect();
            assert_eq!(got, want, "{prefixes:?}");
        }
        assert!(include_by_prefix(None, &strings(&["*"])).is_empty());
    }

    #[test]
    fn primary_labels_and_annotations() {
        let selector = SelectorLabel {
            key: "app".into(),
            value: "podinfo".into(),
        };
        let labels = map(&[
            ("app", "podinfo"),
            ("version", "v1"),
            ("helm.toolkit.fluxcd.io/name", "x"),
        ]);
        assert_eq!(
            primary_labels(Some(&labels), &selector),
            map(&[("app", "podinfo-primary"), ("version", "v1")])
        );
        // The selector label is set even when the template lacks it.
        assert_eq!(
            primary_labels(None, &selector),
            map(&[("app", "podinfo-primary")])
        );

        let annotations = map(&[
            ("prometheus.io/scrape", "true"),
            ("flagger-id", "old"),
            ("kustomize.toolkit.fluxcd.io/checksum", "abc"),
        ]);
        assert_eq!(
            template_annotations(Some(&annotations), "new"),
            map(&[("flagger-id", "new"), ("prometheus.io/scrape", "true")])
        );
        assert_eq!(
            without_toolkit(Some(&annotations)),
            map(&[("flagger-id", "old"), ("prometheus.io/scrape", "true")])
        );
    }

    #[test]
    fn flagger_ids_are_distinct_version_4_uuids() {
        let ids: BTreeSet<String> = (0..1000).map(|_| new_flagger_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            let groups: Vec<&str> = id.split('-').collect();
            let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
            assert_eq!(lengths, [8, 4, 4, 4, 12], "{id}");
            assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
            assert!(groups[2].starts_with('4'), "{id}");
            assert!(matches!(&groups[3][..1], "8" | "9" | "a" | "b"), "{id}");
        }
        assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
    }
}
