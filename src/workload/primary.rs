//! The primary workload: `<target>-primary`, built from the target (Flagger reference §3.5,
//! §2.6, §3.2, §3.4).
//!
//! Creation and promotion build the whole object, because Serin writes it with server-side
//! apply: what is left out of an applied object is removed, so every field Serin manages is
//! always present. The two differ only where Flagger's do: object annotations (all but Flux's
//! on create, include-prefixed ones on promotion) and replicas (see [`promoted_deployment`]).

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Resource;

use super::labels::{
    SelectorLabel, include_by_prefix, non_empty, primary_labels, template_annotations,
    without_toolkit,
};
use super::{SCALE_TO_ZERO_NODE_SELECTOR, WorkloadError, WorkloadKind, WorkloadOptions};
use crate::api::Canary;
use crate::revision::{ConfigKind, ConfigRef};

/// Everything the primary builders need besides the target itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PrimaryContext {
    /// The Canary's namespace: generated objects live next to the target.
    pub namespace: String,
    /// Controller reference to the Canary, so deleting it garbage-collects the primary.
    pub owner: OwnerReference,
    /// The target's selector label; the primary's is `<value>-primary`.
    pub selector: SelectorLabel,
    pub options: WorkloadOptions,
    /// Tracked configs that have a `-primary` copy; only references to these are renamed.
    pub configs: BTreeSet<ConfigRef>,
    /// With an autoscaler the primary's replicas belong to its HPA, not to promotion.
    pub has_autoscaler: bool,
}

impl PrimaryContext {
    pub fn new(
        canary: &Canary,
        options: &WorkloadOptions,
        selector: SelectorLabel,
        configs: BTreeSet<ConfigRef>,
    ) -> Result<Self, WorkloadError> {
        Ok(PrimaryContext {
            namespace: canary.metadata.namespace.clone().unwrap_or_default(),
            owner: canary_owner_reference(canary)?,
            selector,
            options: options.clone(),
            configs,
            has_autoscaler: canary.spec.autoscaler_ref.is_some(),
        })
    }
}

/// `controller: true, blockOwnerDeletion: true` reference to the Canary (Flagger's
/// `NewControllerRef`); needs the uid the API server assigned.
pub fn canary_owner_reference(canary: &Canary) -> Result<OwnerReference, WorkloadError> {
    canary
        .controller_owner_ref(&())
        // Flagger's reference also blocks the Canary's foreground deletion until the owned
        // objects are gone, so `kubectl delete --cascade=foreground` waits for the cleanup.
        .map(|r| OwnerReference {
            block_owner_deletion: Some(true),
            ..r
        })
        .ok_or_else(|| WorkloadError::NoCanaryUid {
            name: canary.metadata.name.clone().unwrap_or_default(),
            namespace: canary.metadata.namespace.clone().unwrap_or_default(),
        })
}

/// `<name>-primary`.
pub fn primary_name(target_name: &str) -> String {
    format!("{target_name}-primary")
}

/// The primary Deployment as first created: replicas = the target's when positive, else 1;
/// `progressDeadlineSeconds`, `minReadySeconds`, `revisionHistoryLimit` and `strategy` copied;
/// object labels = include-prefixed target labels with the selector label; annotations = the
/// target's without Flux's.
pub fn primary_deployment(
    target: &Deployment,
    ctx: &PrimaryContext,
    flagger_id: &str,
) -> Result<Deployment, WorkloadError> {
    let spec = deployment_spec(target, ctx)?;
    let replicas = spec.replicas.filter(|r| *r > 0).unwrap_or(1);
    let annotations = without_toolkit(target.metadata.annotations.as_ref());
    Ok(build_deployment(
        target,
        spec,
        ctx,
        flagger_id,
        annotations,
        Some(replicas),
    ))
}

/// The primary Deployment after promotion: the target's template and rollout settings, object
/// annotations and labels filtered by the include prefixes, a fresh `flagger-id`.
///
/// Replicas: without an autoscaler the target's are copied (Flagger); with one, the primary
/// keeps its current count, which its HPA owns. Deviation: a target at zero or without
/// replicas (Serin keeps the target at zero at rest) leaves the primary's count as it is
/// instead of scaling the primary down with it.
pub fn promoted_deployment(
    target: &Deployment,
    primary: &Deployment,
    ctx: &PrimaryContext,
    flagger_id: &str,
) -> Result<Deployment, WorkloadError> {
    let spec = deployment_spec(target, ctx)?;
    let current = primary.spec.as_ref().and_then(|s| s.replicas);
    let replicas = match spec.replicas {
        Some(r) if r > 0 && !ctx.has_autoscaler => Some(r),
        _ => current,
    };
    let annotations = include_by_prefix(
        target.metadata.annotations.as_ref(),
        &ctx.options.include_label_prefixes,
    );
    Ok(build_deployment(
        target,
        spec,
        ctx,
        flagger_id,
        annotations,
        replicas,
    ))
}

fn deployment_spec<'a>(
    target: &'a Deployment,
    ctx: &PrimaryContext,
) -> Result<&'a DeploymentSpec, WorkloadError> {
    target.spec.as_ref().ok_or_else(|| WorkloadError::NoSpec {
        kind: WorkloadKind::Deployment,
        name: target.metadata.name.clone().unwrap_or_default(),
        namespace: ctx.namespace.clone(),
    })
}

fn build_deployment(
    target: &Deployment,
    spec: &DeploymentSpec,
    ctx: &PrimaryContext,
    flagger_id: &str,
    annotations: std::collections::BTreeMap<String, String>,
    replicas: Option<i32>,
) -> Deployment {
    let name = target.metadata.name.as_deref().unwrap_or_default();
    Deployment {
        metadata: primary_meta(name, target.metadata.labels.as_ref(), annotations, ctx),
        spec: Some(DeploymentSpec {
            progress_deadline_seconds: spec.progress_deadline_seconds,
            min_ready_seconds: spec.min_ready_seconds,
            revision_history_limit: spec.revision_history_limit,
            strategy: spec.strategy.clone(),
            replicas,
            selector: primary_selector(ctx),
            template: primary_template(&spec.template, name, ctx, flagger_id),
            ..Default::default()
        }),
        status: None,
    }
}

/// The primary DaemonSet as first created. Refuses a target whose update strategy is not
/// RollingUpdate, as Flagger does: with `OnDelete` a promotion would never reach the pods.
pub fn primary_daemonset(
    target: &DaemonSet,
    ctx: &PrimaryContext,
    flagger_id: &str,
) -> Result<DaemonSet, WorkloadError> {
    let spec = daemonset_spec(target, ctx)?;
    check_daemonset_strategy(target, &ctx.namespace)?;
    let annotations = without_toolkit(target.metadata.annotations.as_ref());
    Ok(build_daemonset(target, spec, ctx, flagger_id, annotations))
}

/// Flagger's precondition for a DaemonSet target: an update strategy of RollingUpdate
/// (or unset, which defaults to it).
pub fn check_daemonset_strategy(target: &DaemonSet, namespace: &str) -> Result<(), WorkloadError> {
    let strategy = target
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or_default();
    if strategy.is_empty() || strategy == "RollingUpdate" {
        return Ok(());
    }
    Err(WorkloadError::DaemonSetStrategy {
        name: target.metadata.name.clone().unwrap_or_default(),
        namespace: namespace.to_string(),
        strategy: strategy.to_string(),
    })
}

/// The primary DaemonSet after promotion (see [`promoted_deployment`]; DaemonSets have no
/// replicas).
pub fn promoted_daemonset(
    target: &DaemonSet,
    ctx: &PrimaryContext,
    flagger_id: &str,
) -> Result<DaemonSet, WorkloadError> {
    let spec = daemonset_spec(target, ctx)?;
    let annotations = include_by_prefix(
        target.metadata.annotations.as_ref(),
        &ctx.options.include_label_prefixes,
    );
    Ok(build_daemonset(target, spec, ctx, flagger_id, annotations))
}

fn daemonset_spec<'a>(
    target: &'a DaemonSet,
    ctx: &PrimaryContext,
) -> Result<&'a DaemonSetSpec, WorkloadError> {
    target.spec.as_ref().ok_or_else(|| WorkloadError::NoSpec {
        kind: WorkloadKind::DaemonSet,
        name: target.metadata.name.clone().unwrap_or_default(),
        namespace: ctx.namespace.clone(),
    })
}

fn build_daemonset(
    target: &DaemonSet,
    spec: &DaemonSetSpec,
    ctx: &PrimaryContext,
    flagger_id: &str,
    annotations: std::collections::BTreeMap<String, String>,
) -> DaemonSet {
    let name = target.metadata.name.as_deref().unwrap_or_default();
    let mut template = primary_template(&spec.template, name, ctx, flagger_id);
    // The target is "scaled to zero" by a node selector no node matches; the primary must
    // never inherit it (Flagger strips it on promotion; Serin also on create, in case the
    // primary is re-created while the target rests).
    if let Some(pod) = template.spec.as_mut() {
        remove_scale_to_zero_selector(pod);
    }
    DaemonSet {
        metadata: primary_meta(name, target.metadata.labels.as_ref(), annotations, ctx),
        spec: Some(DaemonSetSpec {
            min_ready_seconds: spec.min_ready_seconds,
            revision_history_limit: spec.revision_history_limit,
            update_strategy: spec.update_strategy.clone(),
            selector: primary_selector(ctx),
            template,
        }),
        status: None,
    }
}

/// Removes `flagger.app/scale-to-zero` from the pod's node selector (dropping an emptied map).
pub fn remove_scale_to_zero_selector(pod: &mut PodSpec) {
    if let Some(selector) = pod.node_selector.as_mut() {
        selector.remove(SCALE_TO_ZERO_NODE_SELECTOR.0);
        if selector.is_empty() {
            pod.node_selector = None;
        }
    }
}

fn primary_meta(
    target_name: &str,
    target_labels: Option<&std::collections::BTreeMap<String, String>>,
    annotations: std::collections::BTreeMap<String, String>,
    ctx: &PrimaryContext,
) -> ObjectMeta {
    let labels = include_by_prefix(target_labels, &ctx.options.include_label_prefixes);
    ObjectMeta {
        name: Some(primary_name(target_name)),
        namespace: Some(ctx.namespace.clone()),
        labels: non_empty(primary_labels(Some(&labels), &ctx.selector)),
        annotations: non_empty(annotations),
        owner_references: Some(vec![ctx.owner.clone()]),
        ..Default::default()
    }
}

fn primary_selector(ctx: &PrimaryContext) -> LabelSelector {
    LabelSelector {
        match_labels: Some([(ctx.selector.key.clone(), ctx.selector.primary_value())].into()),
        match_expressions: None,
    }
}

/// The primary's pod template: labels with the selector label `<value>-primary`, annotations
/// with a fresh `flagger-id`, pod spec with config references renamed and anti-affinity /
/// topology selectors pointed at the primary's pods.
pub fn primary_template(
    template: &PodTemplateSpec,
    workload_name: &str,
    ctx: &PrimaryContext,
    flagger_id: &str,
) -> PodTemplateSpec {
    let meta = template.metadata.clone().unwrap_or_default();
    let mut spec = template.spec.clone().unwrap_or_default();
    rename_config_refs(&mut spec, &ctx.configs);
    rewrite_affinity(&mut spec, workload_name, &ctx.options.selector_labels);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(primary_labels(meta.labels.as_ref(), &ctx.selector)),
            annotations: Some(template_annotations(meta.annotations.as_ref(), flagger_id)),
            ..Default::default()
        }),
        spec: Some(spec),
    }
}

/// Appends `-primary` to every reference to a config in `configs`, in all five forms
/// (volumes, projected volume sources, env `valueFrom`, `envFrom`; containers and init
/// containers), so the primary reads the copies promotion controls. References to configs
/// that are not copied (tracking disabled, untracked Secret types, absent optional ones) stay.
pub fn rename_config_refs(spec: &mut PodSpec, configs: &BTreeSet<ConfigRef>) {
    let tracked = |kind: ConfigKind, name: &str| {
        configs.contains(&ConfigRef {
            kind,
            name: name.to_string(),
        })
    };
    let rename = |kind: ConfigKind, name: &mut String| {
        if tracked(kind, name) {
            name.push_str("-primary");
        }
    };
    for volume in spec.volumes.iter_mut().flatten() {
        if let Some(cm) = volume.config_map.as_mut() {
            rename(ConfigKind::ConfigMap, &mut cm.name);
        }
        if let Some(name) = volume.secret.as_mut().and_then(|s| s.secret_name.as_mut()) {
            rename(ConfigKind::Secret, name);
        }
        let sources = volume
            .projected
            .as_mut()
            .and_then(|p| p.sources.as_mut())
            .into_iter()
            .flatten();
        for source in sources {
            if let Some(cm) = source.config_map.as_mut() {
                rename(ConfigKind::ConfigMap, &mut cm.name);
            }
            if let Some(s) = source.secret.as_mut() {
                rename(ConfigKind::Secret, &mut s.name);
            }
        }
    }
    let containers = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten());
    for container in containers {
        for env in container.env.iter_mut().flatten() {
            let Some(from) = env.value_from.as_mut() else {
                continue;
            };
            if let Some(r) = from.config_map_key_ref.as_mut() {
                rename(ConfigKind::ConfigMap, &mut r.name);
            }
            if let Some(r) = from.secret_key_ref.as_mut() {
                rename(ConfigKind::Secret, &mut r.name);
            }
        }
        for from in container.env_from.iter_mut().flatten() {
            if let Some(r) = from.config_map_ref.as_mut() {
                rename(ConfigKind::ConfigMap, &mut r.name);
            }
            if let Some(r) = from.secret_ref.as_mut() {
                rename(ConfigKind::Secret, &mut r.name);
            }
        }
    }
}

/// Points pod anti-affinity and topology spread selectors that name the target's pods at the
/// primary's instead (Flagger reference §3.4): under a selector label, the first
/// `matchExpressions` value equal to the workload name and a `matchLabels` value equal to it get
/// `-primary`. Pod affinity (not anti) is left alone, as in Flagger.
pub fn rewrite_affinity(spec: &mut PodSpec, workload_name: &str, selector_labels: &[String]) {
    let mut selectors: Vec<&mut LabelSelector> = Vec::new();
    for constraint in spec.topology_spread_constraints.iter_mut().flatten() {
        selectors.extend(constraint.label_selector.as_mut());
    }
    if let Some(anti) = spec
        .affinity
        .as_mut()
        .and_then(|a| a.pod_anti_affinity.as_mut())
    {
        for term in anti
            .preferred_during_scheduling_ignored_during_execution
            .iter_mut()
            .flatten()
        {
            selectors.extend(term.pod_affinity_term.label_selector.as_mut());
        }
        for term in anti
            .required_during_scheduling_ignored_during_execution
            .iter_mut()
            .flatten()
        {
            selectors.extend(term.label_selector.as_mut());
        }
    }
    let is_selector_label = |key: &str| selector_labels.iter().any(|l| l == key);
    for selector in selectors {
        for expression in selector.match_expressions.iter_mut().flatten() {
            if !is_selector_label(&expression.key) {
                continue;
            }
            if let Some(value) = expression
                .values
                .iter_mut()
                .flatten()
                .find(|v| v.as_str() == workload_name)
            {
                value.push_str("-primary");
            }
        }
        for (key, value) in selector.match_labels.iter_mut().flatten() {
            if is_selector_label(key) && value == workload_name {
                value.push_str("-primary");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
