//! What each Canary points at: its target workload, autoscaler, metric templates, alert
//! providers and the ConfigMaps/Secrets of its pod template — and the revision they make up.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, Secret};

use super::problem::{Location, Problem};
use super::{Catalog, CatalogOptions, Located, ObjectId, typed};
use crate::api::{Canary, CanaryAnalysis, NamespacedReference, Severity};
use crate::revision::{ConfigContent, ConfigKind, ConfigUse, Revision, RevisionInput, config_refs};

/// The workload a canary rolls out.
#[derive(Debug, Clone)]
pub enum Target {
    Deployment(Box<Deployment>),
    DaemonSet(Box<DaemonSet>),
    /// A plain Service target: no pod template, traffic moves between Services.
    Service,
}

impl Target {
    pub fn template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Target::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Target::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
            Target::Service => None,
        }
    }
}

/// Where the content of a tracked ConfigMap/Secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    Repository(Location),
    /// Not in the repository: read from the cluster at run time (usual for Secrets).
    Cluster,
    /// Optional and not in the repository.
    AbsentOptional,
    /// In the repository but opted out of tracking (annotation, or an untracked Secret type).
    Untracked(Location),
}

/// A Canary with everything it references resolved.
#[derive(Debug, Clone)]
pub struct CanaryEntry {
    pub location: Location,
    pub canary: Canary,
    pub target: Option<Target>,
    pub configs: Vec<(ConfigUse, ConfigOrigin)>,
    /// The template and the configs found in the repository; `None` without a pod template.
    pub revision_input: Option<RevisionInput>,
    pub revision: Option<Revision>,
}

impl CanaryEntry {
    pub fn new(located: Located<Canary>) -> Self {
        CanaryEntry {
            location: located.location,
            canary: located.object,
            target: None,
            configs: Vec::new(),
            revision_input: None,
            revision: None,
        }
    }

    pub fn namespace(&self) -> &str {
        self.canary
            .metadata
            .namespace
            .as_deref()
            .unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.canary.metadata.name.as_deref().unwrap_or_default()
    }

    /// `namespace/name`, as Serin names canaries in commits and messages.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }

    /// The objects in the repository that make up the canary's revision: its target workload
    /// and the ConfigMaps/Secrets of the repository it references. A revert puts these back,
    /// and a rebuilt cluster gets these from the promoted commit.
    pub fn revision_objects(&self) -> Vec<ObjectId> {
        let kind = self
            .canary
            .spec
            .target_ref
            .as_ref()
            .map_or("Deployment", |t| t.kind());
        let mut ids = vec![ObjectId::namespaced(
            "apps",
            kind,
            self.namespace(),
            self.canary.spec.target_name(),
        )];
        for (used, origin) in &self.configs {
            if matches!(origin, ConfigOrigin::Repository(_)) {
                ids.push(ObjectId::namespaced(
                    "",
                    &used.config.kind.to_string(),
                    self.namespace(),
                    &used.config.name,
                ));
            }
        }
        ids
    }

    /// `analysis`, or the deprecated `canaryAnalysis`, with the field path it lives at.
    pub fn analysis(&self) -> Option<(&CanaryAnalysis, &'static str)> {
        match (
            &self.canary.spec.analysis,
            &self.canary.spec.canary_analysis,
        ) {
            (Some(a), _) => Some((a, "spec.analysis")),
            (None, Some(a)) => Some((a, "spec.canaryAnalysis")),
            (None, None) => None,
        }
    }
}

pub(super) fn resolve(catalog: &mut Catalog, options: &CatalogOptions) {
    let mut entries = std::mem::take(&mut catalog.canaries);
    let mut problems = Vec::new();
    let mut claimed: BTreeMap<ObjectId, String> = BTreeMap::new();
    for entry in &mut entries {
        let r = Resolver {
            catalog,
            options,
            entry_location: entry.location.clone(),
            canary_name: format!("Canary {}", entry.key()),
        };
        r.target(entry, &mut claimed, &mut problems);
        r.autoscaler(entry, &mut problems);
        r.templates_and_providers(entry, &mut problems);
    }
    catalog.canaries = entries;
    catalog.problems.extend(problems);
}

struct Resolver<'a> {
    catalog: &'a Catalog,
    options: &'a CatalogOptions,
    entry_location: Location,
    canary_name: String,
}

impl Resolver<'_> {
    fn problem(&self, field: &str, problem: String, fix: String) -> Problem {
        Problem::object(
            Severity::Error,
            &self.entry_location,
            &self.canary_name,
            field,
            problem,
            fix,
        )
    }

    fn target(
        &self,
        entry: &mut CanaryEntry,
        claimed: &mut BTreeMap<ObjectId, String>,
        problems: &mut Vec<Problem>,
    ) {
        let Some(target_ref) = &entry.canary.spec.target_ref else {
            return;
        };
        let kind = target_ref.kind();
        let name = target_ref.name();
        if name.is_empty() {
            return;
        }
        if kind == "Service" {
            entry.target = Some(Target::Service);
            return;
        }
        if kind != "Deployment" && kind != "DaemonSet" {
            return;
        }
        let id = ObjectId::namespaced("apps", kind, entry.namespace(), name);
        let Some(object) = self.catalog.find(&id) else {
            problems.push(self.problem(
                "spec.targetRef.name",
                format!("{id} is not in the repository"),
                format!(
                    "add the {kind} manifest under the configured path, or correct spec.targetRef \
                     (Serin rolls out workloads it reads from Git)"
                ),
            ));
            return;
        };
        if let Some(other) = claimed.get(&id) {
            problems.push(
                self.problem(
                    "spec.targetRef",
                    format!("{id} is already the target of {other}"),
                    "a workload can have one Canary only: remove one of them or point it elsewhere"
                        .into(),
                ),
            );
            return;
        }
        claimed.insert(id.clone(), self.canary_name.clone());
        let (target, selector) = match kind {
            "Deployment" => {
                let Some(d) = typed::<Deployment>(object, problems) else {
                    return;
                };
                let selector = d
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.match_labels.clone());
                (Target::Deployment(Box::new(d)), selector)
            }
            _ => {
                let Some(d) = typed::<DaemonSet>(object, problems) else {
                    return;
                };
                let selector = d
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.match_labels.clone());
                (Target::DaemonSet(Box::new(d)), selector)
            }
        };
        let selector = selector.unwrap_or_default();
        if !self
            .options
            .selector_labels
            .iter()
            .any(|l| selector.contains_key(l))
        {
            problems.push(Problem::object(
                Severity::Error,
                &object.location,
                &id.to_string(),
                "spec.selector.matchLabels",
                format!(
                    "the selector has none of the selector labels {} (found: {})",
                    self.options.selector_labels.join(", "),
                    if selector.is_empty() {
                        "none".to_string()
                    } else {
                        selector.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ),
                format!(
                    "add `{}: {}` to spec.selector.matchLabels and the pod template labels, or \
                     change --selector-labels",
                    self.options
                        .selector_labels
                        .first()
                        .map_or("app", |s| s.as_str()),
                    name
                ),
            ));
        }
        if let Some(template) = target.template() {
            let (configs, revision_input) = self.configs(entry.namespace(), template, problems);
            entry.revision = Some(Revision::of(&revision_input));
            entry.revision_input = Some(revision_input);
            entry.configs = configs;
        }
        entry.target = Some(target);
    }

    fn configs(
        &self,
        namespace: &str,
        template: &PodTemplateSpec,
        problems: &mut Vec<Problem>,
    ) -> (Vec<(ConfigUse, ConfigOrigin)>, RevisionInput) {
        let mut found = BTreeMap::new();
        let mut origins = Vec::new();
        for config_use in config_refs(template) {
            let kind = match config_use.config.kind {
                ConfigKind::ConfigMap => "ConfigMap",
                ConfigKind::Secret => "Secret",
            };
            let id = ObjectId::namespaced("", kind, namespace, &config_use.config.name);
            let origin = match self.catalog.find(&id) {
                None if config_use.optional => ConfigOrigin::AbsentOptional,
                None => ConfigOrigin::Cluster,
                Some(object) => {
                    let content = match config_use.config.kind {
                        ConfigKind::ConfigMap => typed::<ConfigMap>(object, problems)
                            .and_then(|c| ConfigContent::of_config_map(&c)),
                        ConfigKind::Secret => typed::<Secret>(object, problems)
                            .and_then(|s| ConfigContent::of_secret(&s)),
                    };
                    match content {
                        Some(content) => {
                            found.insert(config_use.config.clone(), content);
                            ConfigOrigin::Repository(object.location.clone())
                        }
                        None => ConfigOrigin::Untracked(object.location.clone()),
                    }
                }
            };
            origins.push((config_use, origin));
        }
        let input = RevisionInput {
            template: template.clone(),
            configs: found,
        };
        (origins, input)
    }

    fn autoscaler(&self, entry: &CanaryEntry, problems: &mut Vec<Problem>) {
        let Some(a) = &entry.canary.spec.autoscaler_ref else {
            return;
        };
        let (Some(kind), Some(name)) = (a.kind.as_deref(), a.name.as_deref()) else {
            return;
        };
        let group = match kind {
            "HorizontalPodAutoscaler" => "autoscaling",
            "ScaledObject" => "keda.sh",
            _ => return,
        };
        let id = ObjectId::namespaced(group, kind, entry.namespace(), name);
        if self.catalog.find(&id).is_none() {
            problems.push(self.problem(
                "spec.autoscalerRef.name",
                format!("{id} is not in the repository"),
                format!("add the {kind} manifest, or correct or remove spec.autoscalerRef"),
            ));
        }
    }

    fn templates_and_providers(&self, entry: &CanaryEntry, problems: &mut Vec<Problem>) {
        let ns = entry.namespace();
        if let Some(upstream) = &entry.canary.spec.upstream_ref {
            let other = upstream.namespace.as_deref().unwrap_or(ns);
            if self.options.no_cross_namespace_refs && other != ns {
                problems.push(self.problem(
                    "spec.upstreamRef.namespace",
                    format!(
                        "can't access gloo upstream {other}/{}, cross-namespace references are blocked",
                        upstream.name.as_deref().unwrap_or_default()
                    ),
                    format!("move the Upstream to namespace {ns}, or allow cross-namespace references"),
                ));
            }
        }
        let Some((analysis, at)) = entry.analysis() else {
            return;
        };
        for (i, metric) in analysis.metrics.iter().flatten().enumerate() {
            let Some(r) = &metric.template_ref else {
                continue;
            };
            let field = format!("{at}.metrics[{i}].templateRef");
            self.lookup(
                ns,
                "MetricTemplate",
                &field,
                r,
                &self.catalog.metric_templates,
                problems,
            );
        }
        for (i, alert) in analysis.alerts.iter().flatten().enumerate() {
            let Some(r) = &alert.provider_ref else {
                continue;
            };
            let field = format!("{at}.alerts[{i}].providerRef");
            self.lookup(
                ns,
                "AlertProvider",
                &field,
                r,
                &self.catalog.alert_providers,
                problems,
            );
        }
    }

    /// Checks one reference to a namespaced object of `table` (namespace defaults to the Canary's).
    fn lookup<T>(
        &self,
        canary_ns: &str,
        kind: &str,
        field: &str,
        r: &NamespacedReference,
        table: &BTreeMap<(String, String), T>,
        problems: &mut Vec<Problem>,
    ) {
        let (name, ns) = (r.name(), r.namespace_or(canary_ns));
        let exists = table.contains_key(&(ns.to_string(), name.to_string()));
        if name.is_empty() {
            return;
        }
        if self.options.no_cross_namespace_refs && ns != canary_ns {
            let what = if kind == "MetricTemplate" {
                "metric template"
            } else {
                "alert provider"
            };
            problems.push(self.problem(
                &format!("{field}.namespace"),
                format!("can't access {what} {ns}/{name}, cross-namespace references are blocked"),
                format!(
                    "move the {kind} to namespace {canary_ns}, or allow cross-namespace references"
                ),
            ));
        } else if !exists {
            problems.push(self.problem(
                &format!("{field}.name"),
                format!("{kind} {ns}/{name} is not in the repository"),
                format!("add the {kind}, or correct the reference (its namespace defaults to the Canary's)"),
            ));
        }
    }
}
