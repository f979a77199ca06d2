//! The primary's HorizontalPodAutoscaler and how many replicas a resting target gets back
//! (Flagger reference §3.7, §3.5).
//!
//! The target's HPA stays on the target (it cannot scale a workload at zero replicas, so it is
//! inert while the target rests); a copy scales the primary. KEDA ScaledObjects get no copy yet.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::labels::{include_by_prefix, non_empty, without_toolkit};
use super::primary::primary_name;
use crate::api::Canary;

/// The primary HPA `<hpa>-primary`: scales `<target>-primary` with the target HPA's kind and
/// API version of the scale target, `minReplicas`, `maxReplicas`, `metrics` and `behavior`,
/// bounds overridden by `autoscalerRef.primaryScalerReplicas`.
///
/// Metadata as Flagger writes it: on creation the target HPA's labels without Flux's; on
/// later updates (`on_create == false`) labels and annotations filtered by the include prefixes.
pub fn primary_hpa(
    target_hpa: &HorizontalPodAutoscaler,
    canary: &Canary,
    owner: &OwnerReference,
    include_label_prefixes: &[String],
    on_create: bool,
) -> HorizontalPodAutoscaler {
    let spec = &target_hpa.spec;
    let bounds = canary
        .spec
        .autoscaler_ref
        .as_ref()
        .and_then(|a| a.primary_scaler_replicas.as_ref());
    let min_replicas = bounds.and_then(|b| b.min_replicas).or(spec.min_replicas);
    let max_replicas = bounds
        .and_then(|b| b.max_replicas)
        .unwrap_or(spec.max_replicas);
    let meta = &target_hpa.metadata;
    let (labels, annotations) = if on_create {
        (without_toolkit(meta.labels.as_ref()), Default::default())
    } else {
        (
            include_by_prefix(meta.labels.as_ref(), include_label_prefixes),
            include_by_prefix(meta.annotations.as_ref(), include_label_prefixes),
        )
    };
    HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some(primary_name(meta.name.as_deref().unwrap_or_default())),
            namespace: canary.metadata.namespace.clone(),
            labels: non_empty(labels),
            annotations: non_empty(annotations),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: spec.scale_target_ref.api_version.clone(),
                kind: spec.scale_target_ref.kind.clone(),
                name: canary.spec.primary_target_name(),
            },
            min_replicas,
            max_replicas,
            metrics: spec.metrics.clone(),
            behavior: spec.behavior.clone(),
        },
        status: None,
    }
}

/// Replicas a Deployment target scales up to when a new revision is analysed (Flagger's
/// `ScaleFromZero`): its own when positive; else, without an autoscaler, the primary's when
/// positive; with one, the autoscaler's minimum when above 1; else 1.
pub fn scale_from_zero_replicas(
    target_replicas: Option<i32>,
    has_autoscaler: bool,
    primary_replicas: Option<i32>,
    autoscaler_min_replicas: Option<i32>,
) -> i32 {
    if let Some(r) = target_replicas.filter(|r| *r > 0) {
        return r;
    }
    if !has_autoscaler {
        return primary_replicas.filter(|r| *r > 0).unwrap_or(1);
    }
    autoscaler_min_replicas.filter(|m| *m > 1).unwrap_or(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use k8s_openapi::api::autoscaling::v2::{
        HPAScalingRules, HorizontalPodAutoscalerBehavior, MetricSpec, MetricTarget,
        ResourceMetricSource,
    };

    use super::*;
    use crate::api::{AutoscalerReference, CanarySpec, LocalObjectReference, ScalerReplicas};

    #[test]
    fn scale_from_zero_table() {
        // (target, has autoscaler, primary, autoscaler min) -> replicas
        let table = [
            (Some(3), false, Some(5), None, 3),
            (Some(3), true, None, Some(4), 3),
            (Some(0), false, Some(5), None, 5),
            (None, false, Some(5), None, 5),
            (Some(0), false, Some(0), None, 1),
            (Some(0), false, None, None, 1),
            (Some(0), true, Some(5), Some(4), 4),
            (Some(0), true, Some(5), Some(1), 1),
            (Some(0), true, Some(5), None, 1),
            (None, true, None, Some(0), 1),
        ];
        for (target, has, primary, min, want) in table {
            assert_eq!(
                scale_from_zero_replicas(target, has, primary, min),
                want,
                "{target:?} {has} {primary:?} {min:?}"
            );
        }
    }

    fn canary(bounds: Option<ScalerReplicas>) -> Canary {
        let mut c = Canary::new(
            "podinfo",
            CanarySpec {
                target_ref: Some(LocalObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: Some("Deployment".into()),
                    name: Some("podinfo".into()),
                }),
                autoscaler_ref: Some(AutoscalerReference {
                    api_version: Some("autoscaling/v2".into()),
                    kind: Some("HorizontalPodAutoscaler".into()),
                    name: Some("podinfo-hpa".into()),
                    primary_scaler_replicas: bounds,
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        c.metadata.namespace = Some("test".into());
        c
    }

    fn target_hpa() -> HorizontalPodAutoscaler {
        HorizontalPodAutoscaler {
            metadata: ObjectMeta {
                name: Some("podinfo-hpa".into()),
                namespace: Some("test".into()),
                labels: Some(
                    [
                        ("app".to_string(), "podinfo".to_string()),
                        (
                            "kustomize.toolkit.fluxcd.io/name".to_string(),
                            "x".to_string(),
                        ),
                    ]
                    .into(),
                ),
                annotations: Some([("app.note".to_string(), "n".to_string())].into()),
                ..Default::default()
            },
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: "podinfo".into(),
                },
                min_replicas: Some(2),
                max_replicas: 4,
                metrics: Some(vec![MetricSpec {
                    type_: "Resource".into(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".into(),
                        target: MetricTarget {
                            type_: "Utilization".into(),
                            average_utilization: Some(99),
                            ..Default::default()
                        },
                    }),
                    ..Default::default()
                }]),
                behavior: Some(HorizontalPodAutoscalerBehavior {
                    scale_down: Some(HPAScalingRules {
                        stabilization_window_seconds: Some(30),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            status: None,
        }
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "flagger.app/v1beta1".into(),
            kind: "Canary".into(),
            name: "podinfo".into(),
            uid: "uid-1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    #[test]
    fn primary_hpa_targets_the_primary() {
        let hpa = primary_hpa(&target_hpa(), &canary(None), &owner(), &[], true);
        assert_eq!(hpa.metadata.name.as_deref(), Some("podinfo-hpa-primary"));
        assert_eq!(hpa.metadata.namespace.as_deref(), Some("test"));
        assert_eq!(hpa.metadata.owner_references, Some(vec![owner()]));
        // On creation: the target's labels minus Flux's, no annotations.
        assert_eq!(
            hpa.metadata.labels,
            Some([("app".to_string(), "podinfo".to_string())].into())
        );
        assert_eq!(hpa.metadata.annotations, None);
        let spec = hpa.spec;
        let target = target_hpa().spec;
        assert_eq!(
            spec.scale_target_ref,
            CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: "podinfo-primary".into(),
            }
        );
        assert_eq!(spec.min_replicas, Some(2));
        assert_eq!(spec.max_replicas, 4);
        assert_eq!(spec.metrics, target.metrics);
        assert_eq!(spec.behavior, target.behavior);
    }

    #[test]
    fn primary_scaler_replicas_override_bounds() {
        let table = [
            (None, None, Some(2), 4),
            (Some(3), None, Some(3), 4),
            (None, Some(10), Some(2), 10),
            (Some(5), Some(6), Some(5), 6),
        ];
        for (min, max, want_min, want_max) in table {
            let bounds = ScalerReplicas {
                min_replicas: min,
                max_replicas: max,
            };
            let hpa = primary_hpa(&target_hpa(), &canary(Some(bounds)), &owner(), &[], true);
            let spec = hpa.spec;
            assert_eq!((spec.min_replicas, spec.max_replicas), (want_min, want_max));
        }
    }

    #[test]
    fn updates_filter_metadata_by_prefix() {
        let hpa = primary_hpa(&target_hpa(), &canary(None), &owner(), &[], false);
        assert_eq!(hpa.metadata.labels, None);
        assert_eq!(hpa.metadata.annotations, None);
        let hpa = primary_hpa(
            &target_hpa(),
            &canary(None),
            &owner(),
            &["app".to_string()],
            false,
        );
        assert_eq!(
            hpa.metadata.labels,
            Some([("app".to_string(), "podinfo".to_string())].into())
        );
        assert_eq!(
            hpa.metadata.annotations,
            Some([("app.note".to_string(), "n".to_string())].into())
        );
    }
}
