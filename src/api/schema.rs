//! Schemas for fields that stay strings in Rust but are closed sets in Flagger's CRD.
//!
//! The Rust field is a `String` so that a wrong value reaches validation with a helpful
//! message; the CRD still lists the allowed values, as Flagger's does, so that `kubectl`
//! users get the same answer from the apiserver.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::alert_provider::AlertProviderType;
use super::canary::{
    AlertSeverity, CrossNamespaceObjectReference, HookType, LocalObjectReference, Provider,
    SameSite, TargetKind, TrafficDistribution,
};
use super::metric_template::MetricProviderType;

fn string_enum(values: Vec<&'static str>) -> Schema {
    json_schema!({
        "type": "string",
        "enum": values,
    })
}

pub(crate) fn provider(_: &mut SchemaGenerator) -> Schema {
    string_enum(Provider::ALL.iter().map(|v| v.as_str()).collect())
}

/// The schema of a reference type with `kind` limited to `kinds`: Flagger's CRD allows a
/// different set of kinds for each reference field of the same Go type.
fn reference_with_kinds<T: JsonSchema>(
    generator: &mut SchemaGenerator,
    kinds: Vec<&str>,
) -> Schema {
    let mut schema = T::json_schema(generator);
    if let Some(kind) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("kind"))
        .and_then(|k| k.as_object_mut())
    {
        kind.insert("enum".into(), kinds.into());
    }
    schema
}

pub(crate) fn target_ref(generator: &mut SchemaGenerator) -> Schema {
    let kinds = TargetKind::ALL.iter().map(|v| v.as_str()).collect();
    reference_with_kinds::<LocalObjectReference>(generator, kinds)
}

pub(crate) fn autoscaler_kind(_: &mut SchemaGenerator) -> Schema {
    string_enum(vec!["HorizontalPodAutoscaler", "ScaledObject"])
}

pub(crate) fn ingress_ref(generator: &mut SchemaGenerator) -> Schema {
    reference_with_kinds::<LocalObjectReference>(generator, vec!["Ingress"])
}

pub(crate) fn route_ref(generator: &mut SchemaGenerator) -> Schema {
    reference_with_kinds::<LocalObjectReference>(generator, vec!["ApisixRoute"])
}

pub(crate) fn upstream_ref(generator: &mut SchemaGenerator) -> Schema {
    reference_with_kinds::<CrossNamespaceObjectReference>(generator, vec!["Upstream"])
}

pub(crate) fn traffic_distribution(_: &mut SchemaGenerator) -> Schema {
    string_enum(
        TrafficDistribution::ALL
            .iter()
            .map(|v| v.as_str())
            .collect(),
    )
}

/// `""` is accepted and means `rollout`.
pub(crate) fn hook_type(_: &mut SchemaGenerator) -> Schema {
    let mut values = vec![""];
    values.extend(HookType::ALL.iter().map(|v| v.as_str()));
    string_enum(values)
}

/// `""` is accepted (Flagger documents it as `info`).
pub(crate) fn alert_severity(_: &mut SchemaGenerator) -> Schema {
    let mut values = vec![""];
    values.extend(AlertSeverity::ALL.iter().map(|v| v.as_str()));
    string_enum(values)
}

pub(crate) fn same_site(_: &mut SchemaGenerator) -> Schema {
    string_enum(SameSite::ALL.iter().map(|v| v.as_str()).collect())
}

pub(crate) fn metric_provider_type(_: &mut SchemaGenerator) -> Schema {
    string_enum(MetricProviderType::ALL.iter().map(|v| v.as_str()).collect())
}

pub(crate) fn alert_provider_type(_: &mut SchemaGenerator) -> Schema {
    string_enum(AlertProviderType::ALL.iter().map(|v| v.as_str()).collect())
}

pub(crate) fn istio_simple_lb(_: &mut SchemaGenerator) -> Schema {
    string_enum(vec![
        "ROUND_ROBIN",
        "LEAST_CONN",
        "RANDOM",
        "PASSTHROUGH",
        "LEAST_REQUEST",
    ])
}

pub(crate) fn istio_h2_upgrade_policy(_: &mut SchemaGenerator) -> Schema {
    string_enum(vec!["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"])
}

pub(crate) fn istio_tls_mode(_: &mut SchemaGenerator) -> Schema {
    string_enum(vec!["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"])
}

/// A number (`1`, `0.5`, `99`) whose JSON form is kept as written.
pub(crate) fn number(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "number" })
}
