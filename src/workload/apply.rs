//! The workload layer's I/O: reads the target, its configs and autoscaler from the cluster,
//! asks the pure builders what the primary objects must look like, and writes them.
//!
//! Objects Serin owns outright (the primary workload, config copies, primary HPA) are written
//! whole with server-side apply (field manager `serin`, forced), owned by the Canary so the
//! garbage collector removes them with it. The target belongs to the applier, so it is only
//! ever patched where Serin owns a field: replicas through the `scale` subresource (as
//! `kubectl scale` and the HPA do), the DaemonSet scale-to-zero node selector by merge patch.
//! A partial server-side apply under the applier's field manager would instead remove every
//! field that apply left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::autoscaler::{primary_hpa, scale_from_zero_replicas};
use super::configs::{primary_config_map, primary_secret};
use super::labels::{SelectorLabel, new_flagger_id, selector_label};
use super::ports::discovered_ports;
use super::primary::{
    PrimaryContext, canary_owner_reference, check_daemonset_strategy, primary_daemonset,
    primary_deployment, primary_name, promoted_daemonset, promoted_deployment,
};
use super::readiness::{
    Readiness, Role, daemonset_readiness, deployment_readiness, not_ready_prefix,
};
use super::{
    FIELD_MANAGER, SCALE_TO_ZERO_NODE_SELECTOR, WorkloadError, WorkloadKind, WorkloadOptions,
    config_word,
};
use crate::api::canary::DEFAULT_READY_THRESHOLD;
use crate::api::{Canary, TargetKind};
use crate::revision::{ConfigContent, ConfigKind, ConfigRef, config_refs};

const HPA_KIND: &str = "HorizontalPodAutoscaler";
const SCALED_OBJECT_KIND: &str = "ScaledObject";

/// What the routers need from the target (Flagger's `GetMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetMetadata {
    pub selector: SelectorLabel,
    /// Extra ports for the generated Services (empty unless `service.portDiscovery`).
    pub ports: BTreeMap<String, i32>,
}

/// The target and primary workloads of canaries, in one cluster.
#[derive(Clone)]
pub struct Workloads {
    client: Client,
    options: WorkloadOptions,
}

impl Workloads {
    pub fn new(client: Client, options: WorkloadOptions) -> Self {
        Workloads { client, options }
    }

    /// The target's selector label and discovered ports.
    pub async fn metadata(&self, canary: &Canary) -> Result<TargetMetadata, WorkloadError> {
        let kind = workload_kind(canary)?;
        let target = self.target(canary, kind).await?;
        let selector = self.selector_of(&target, canary)?;
        let containers = target
            .template()
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers.as_slice())
            .unwrap_or_default();
        Ok(TargetMetadata {
            selector,
            ports: discovered_ports(canary.spec.service.as_ref(), containers),
        })
    }

    /// Creates the primary workload, and first the `-primary` copies of the configs it uses,
    /// unless the primary exists (it is never re-created or overwritten here: after the first
    /// promotion it runs the last promoted revision, not the target's). `true` if created.
    pub async fn ensure_primary(&self, canary: &Canary) -> Result<bool, WorkloadError> {
        let kind = workload_kind(canary)?;
        let owner = canary_owner_reference(canary)?;
        let ns = namespace(canary);
        let target = self.target(canary, kind).await?;
        // Refuse before writing anything, as Flagger does.
        if let Target::DaemonSet(d) = &target {
            check_daemonset_strategy(d, ns)?;
        }
        let selector = self.selector_of(&target, canary)?;
        let name = primary_name(canary.spec.target_name());
        let exists = match kind {
            WorkloadKind::Deployment => {
                get_opt(&self.api::<Deployment>(ns), kind.lowercase(), &name, ns)
                    .await?
                    .is_some()
            }
            WorkloadKind::DaemonSet => {
                get_opt(&self.api::<DaemonSet>(ns), kind.lowercase(), &name, ns)
                    .await?
                    .is_some()
            }
        };
        if exists {
            return Ok(false);
        }
        let configs = self
            .sync_primary_configs(canary, &owner, target.template())
            .await?;
        let ctx = PrimaryContext::new(canary, &self.options, selector, configs)?;
        match &target {
            Target::Deployment(d) => {
                let primary = primary_deployment(d, &ctx, &new_flagger_id())?;
                apply(&self.api(ns), &primary, "creating", kind.lowercase(), ns).await?;
            }
            Target::DaemonSet(d) => {
                let primary = primary_daemonset(d, &ctx, &new_flagger_id())?;
                apply(&self.api(ns), &primary, "creating", kind.lowercase(), ns).await?;
            }
        }
        tracing::info!(canary = %canary.dotted_name(), "{kind} {name}.{ns} created");
        Ok(true)
    }

    /// Promotion: syncs the config copies, then copies the target's pod template and rollout
    /// settings to the primary with a fresh `flagger-id`, which makes the primary roll out.
    pub async fn promote(&self, canary: &Canary) -> Result<(), WorkloadError> {
        let kind = workload_kind(canary)?;
        let owner = canary_owner_reference(canary)?;
        let ns = namespace(canary);
        let target = self.target(canary, kind).await?;
        let selector = self.selector_of(&target, canary)?;
        let name = primary_name(canary.spec.target_name());
        match &target {
            Target::Deployment(d) => {
                let api = self.api::<Deployment>(ns);
                let primary = get(&api, kind.lowercase(), &name, ns).await?;
                let configs = self
                    .sync_primary_configs(canary, &owner, target.template())
                    .await?;
                let ctx = PrimaryContext::new(canary, &self.options, selector, configs)?;
                let promoted = promoted_deployment(d, &primary, &ctx, &new_flagger_id())?;
                apply(&api, &promoted, "updating", kind.lowercase(), ns).await?;
            }
            Target::DaemonSet(d) => {
                let api = self.api::<DaemonSet>(ns);
                get(&api, kind.lowercase(), &name, ns).await?;
                let configs = self
                    .sync_primary_configs(canary, &owner, target.template())
                    .await?;
                let ctx = PrimaryContext::new(canary, &self.options, selector, configs)?;
                let promoted = promoted_daemonset(d, &ctx, &new_flagger_id())?;
                apply(&api, &promoted, "updating", kind.lowercase(), ns).await?;
            }
        }
        tracing::info!(canary = %canary.dotted_name(), "{kind} {name}.{ns} promoted");
        Ok(())
    }

    /// Creates the primary HPA if the canary has an autoscaler and the copy is absent
    /// (Flagger's reconcile with `init=true`). `true` if created.
    pub async fn ensure_primary_autoscaler(&self, canary: &Canary) -> Result<bool, WorkloadError> {
        let Some(hpa_name) = hpa_name(canary)? else {
            return Ok(false);
        };
        let ns = namespace(canary);
        let api = self.api::<HorizontalPodAutoscaler>(ns);
        let name = primary_name(hpa_name);
        if get_opt(&api, HPA_KIND, &name, ns).await?.is_some() {
            return Ok(false);
        }
        let owner = canary_owner_reference(canary)?;
        let target = get(&api, HPA_KIND, hpa_name, ns).await?;
        let primary = primary_hpa(
            &target,
            canary,
            &owner,
            &self.options.include_label_prefixes,
            true,
        );
        apply(&api, &primary, "creating", HPA_KIND, ns).await?;
        tracing::info!(canary = %canary.dotted_name(), "{HPA_KIND} {name}.{ns} created");
        Ok(true)
    }

    /// Brings the primary HPA in line with the target's (promotion; Flagger's reconcile with
    /// `init=false`). Creates it if missing.
    pub async fn update_primary_autoscaler(&self, canary: &Canary) -> Result<(), WorkloadError> {
        let Some(hpa_name) = hpa_name(canary)? else {
            return Ok(());
        };
        let ns = namespace(canary);
        let api = self.api::<HorizontalPodAutoscaler>(ns);
        let owner = canary_owner_reference(canary)?;
        let target = get(&api, HPA_KIND, hpa_name, ns).await?;
        let primary = primary_hpa(
            &target,
            canary,
            &owner,
            &self.options.include_label_prefixes,
            false,
        );
        apply(&api, &primary, "updating", HPA_KIND, ns).await?;
        Ok(())
    }

    /// Takes the target out of service: Deployment replicas 0; a DaemonSet gets a node
    /// selector no node matches.
    pub async fn scale_to_zero(&self, canary: &Canary) -> Result<(), WorkloadError> {
        match workload_kind(canary)? {
            WorkloadKind::Deployment => self.scale_deployment(canary, 0).await,
            WorkloadKind::DaemonSet => self.set_scale_to_zero_selector(canary, true).await,
        }
    }

    /// Brings the target back for analysis, to [`scale_from_zero_replicas`] replicas; a
    /// DaemonSet loses the scale-to-zero node selector.
    pub async fn scale_from_zero(&self, canary: &Canary) -> Result<(), WorkloadError> {
        let kind = workload_kind(canary)?;
        if kind == WorkloadKind::DaemonSet {
            return self.set_scale_to_zero_selector(canary, false).await;
        }
        let ns = namespace(canary);
        let api = self.api::<Deployment>(ns);
        let target = get(&api, kind.lowercase(), canary.spec.target_name(), ns).await?;
        let target_replicas = target.spec.as_ref().and_then(|s| s.replicas);
        let has_autoscaler = canary.spec.autoscaler_ref.is_some();
        let unscaled = target_replicas.is_none_or(|r| r <= 0);
        let primary_replicas = if unscaled && !has_autoscaler {
            let name = primary_name(canary.spec.target_name());
            let primary = get(&api, kind.lowercase(), &name, ns).await?;
            primary.spec.and_then(|s| s.replicas)
        } else {
            None
        };
        let autoscaler_min = if unscaled && has_autoscaler {
            self.autoscaler_min_replicas(canary).await
        } else {
            None
        };
        let replicas = scale_from_zero_replicas(
            target_replicas,
            has_autoscaler,
            primary_replicas,
            autoscaler_min,
        );
        self.scale_deployment(canary, replicas).await
    }

    /// Readiness of `<target>-primary` against `analysis.primaryReadyThreshold`.
    pub async fn primary_readiness(&self, canary: &Canary) -> Result<Readiness, WorkloadError> {
        let threshold = canary
            .analysis()
            .map_or(DEFAULT_READY_THRESHOLD, |a| a.primary_ready_threshold());
        let name = primary_name(canary.spec.target_name());
        self.readiness(canary, Role::Primary, &name, threshold)
            .await
    }

    /// Readiness of the target against `analysis.canaryReadyThreshold`.
    pub async fn target_readiness(&self, canary: &Canary) -> Result<Readiness, WorkloadError> {
        let threshold = canary
            .analysis()
            .map_or(DEFAULT_READY_THRESHOLD, |a| a.canary_ready_threshold());
        let name = canary.spec.target_name().to_string();
        self.readiness(canary, Role::Canary, &name, threshold).await
    }

    /// The workload part of deleting a Canary with `revertOnDeletion` (Flagger reference §2.9):
    /// the target takes over again — a Deployment gets the primary's replicas (or scales from
    /// zero when there is no primary), a DaemonSet loses the scale-to-zero node selector — and
    /// must become ready within a short backoff (3 s, doubling, capped at the analysis
    /// interval, 4 checks). The garbage collector then removes the primary objects.
    pub async fn finalize(&self, canary: &Canary) -> Result<(), WorkloadError> {
        let kind = workload_kind(canary)?;
        match kind {
            WorkloadKind::Deployment => {
                let ns = namespace(canary);
                let api = self.api::<Deployment>(ns);
                get(&api, kind.lowercase(), canary.spec.target_name(), ns).await?;
                let name = primary_name(canary.spec.target_name());
                match get_opt(&api, kind.lowercase(), &name, ns).await? {
                    None => self.scale_from_zero(canary).await?,
                    Some(primary) => {
                        let replicas = primary.spec.and_then(|s| s.replicas).unwrap_or(1);
                        self.scale_deployment(canary, replicas).await?;
                    }
                }
            }
            WorkloadKind::DaemonSet => self.set_scale_to_zero_selector(canary, false).await?,
        }
        let cap = canary.analysis_interval();
        let mut delay = Duration::from_secs(3);
        let mut last = String::new();
        for check in 0..4 {
            match self.target_readiness(canary).await? {
                Readiness::Ready => return Ok(()),
                Readiness::Failed(message) => {
                    return Err(WorkloadError::NotReadyDuringFinalize(message));
                }
                Readiness::Waiting(message) => last = message,
            }
            if check < 3 {
                tokio::time::sleep(delay.min(cap)).await;
                delay *= 2;
            }
        }
        Err(WorkloadError::NotReadyDuringFinalize(last))
    }

    // -----------------------------------------------------------------------------------

    fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    async fn target(&self, canary: &Canary, kind: WorkloadKind) -> Result<Target, WorkloadError> {
        let ns = namespace(canary);
        let name = canary.spec.target_name();
        Ok(match kind {
            WorkloadKind::Deployment => Target::Deployment(Box::new(
                get(&self.api(ns), kind.lowercase(), name, ns).await?,
            )),
            WorkloadKind::DaemonSet => Target::DaemonSet(Box::new(
                get(&self.api(ns), kind.lowercase(), name, ns).await?,
            )),
        })
    }

    fn selector_of(
        &self,
        target: &Target,
        canary: &Canary,
    ) -> Result<SelectorLabel, WorkloadError> {
        let (kind, match_labels) = match target {
            Target::Deployment(d) => (
                WorkloadKind::Deployment,
                d.spec
                    .as_ref()
                    .and_then(|s| s.selector.match_labels.as_ref()),
            ),
            Target::DaemonSet(d) => (
                WorkloadKind::DaemonSet,
                d.spec
                    .as_ref()
                    .and_then(|s| s.selector.match_labels.as_ref()),
            ),
        };
        selector_label(
            kind,
            canary.spec.target_name(),
            namespace(canary),
            match_labels,
            &self.options.selector_labels,
        )
    }

    /// Creates or updates `<name>-primary` for every tracked config the template references
    /// (ConfigMaps and Secrets read from the cluster; a missing optional one is skipped, a
    /// missing mandatory one is an error) and returns which were copied.
    async fn sync_primary_configs(
        &self,
        canary: &Canary,
        owner: &OwnerReference,
        template: Option<&PodTemplateSpec>,
    ) -> Result<BTreeSet<ConfigRef>, WorkloadError> {
        let ns = namespace(canary);
        let prefixes = &self.options.include_label_prefixes;
        let mut copied = BTreeSet::new();
        for config_use in template.map(config_refs).unwrap_or_default() {
            let source_name = config_use.config.name.as_str();
            let word = config_word(config_use.config.kind);
            let copy_name = primary_name(source_name);
            match config_use.config.kind {
                ConfigKind::ConfigMap => {
                    let api = self.api::<ConfigMap>(ns);
                    let Some(source) =
                        get_config(&api, word, source_name, ns, config_use.optional).await?
                    else {
                        continue;
                    };
                    if ConfigContent::of_config_map(&source).is_none() {
                        continue;
                    }
                    let owners = existing_owners(&api, word, &copy_name, ns).await?;
                    let copy = primary_config_map(&source, owner, &owners, prefixes);
                    apply(&api, &copy, "syncing", word, ns).await?;
                }
                ConfigKind::Secret => {
                    let api = self.api::<Secret>(ns);
                    let Some(source) =
                        get_config(&api, word, source_name, ns, config_use.optional).await?
                    else {
                        continue;
                    };
                    if ConfigContent::of_secret(&source).is_none() {
                        continue;
                    }
                    let owners = existing_owners(&api, word, &copy_name, ns).await?;
                    let copy = primary_secret(&source, owner, &owners, prefixes);
                    apply(&api, &copy, "syncing", word, ns).await?;
                }
            }
            tracing::info!(
                canary = %canary.dotted_name(),
                "{} {copy_name} synced",
                config_use.config.kind
            );
            copied.insert(config_use.config);
        }
        Ok(copied)
    }

    async fn scale_deployment(&self, canary: &Canary, replicas: i32) -> Result<(), WorkloadError> {
        let ns = namespace(canary);
        let name = canary.spec.target_name();
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        self.api::<Deployment>(ns)
            .patch_scale(
                name,
                &params,
                &Patch::Merge(json!({ "spec": { "replicas": replicas } })),
            )
            .await
            .map_err(|e| WorkloadError::write("scaling", "deployment", name, ns, e))?;
        tracing::info!(canary = %canary.dotted_name(), "scaled deployment {name}.{ns} to {replicas}");
        Ok(())
    }

    async fn set_scale_to_zero_selector(
        &self,
        canary: &Canary,
        on: bool,
    ) -> Result<(), WorkloadError> {
        let ns = namespace(canary);
        let name = canary.spec.target_name();
        let api = self.api::<DaemonSet>(ns);
        let (key, value) = SCALE_TO_ZERO_NODE_SELECTOR;
        let target = get(&api, "daemonset", name, ns).await?;
        let current = target
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.node_selector.as_ref())
            .and_then(|n| n.get(key));
        // Already as wanted: writing anyway would only add noise to the target's history.
        if current.map(String::as_str) == on.then_some(value) {
            return Ok(());
        }
        // A JSON merge patch removes a map key given `null`.
        let value = if on { json!(value) } else { json!(null) };
        let patch =
            json!({ "spec": { "template": { "spec": { "nodeSelector": { key: value } } } } });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        api.patch(name, &params, &Patch::Merge(patch))
            .await
            .map_err(|e| WorkloadError::write("updating", "daemonset", name, ns, e))?;
        Ok(())
    }

    /// The autoscaler's minimum for scaling from zero. Unreadable autoscalers count as having
    /// none, as in Flagger: the fallback (1 replica) still lets the analysis start.
    async fn autoscaler_min_replicas(&self, canary: &Canary) -> Option<i32> {
        let reference = canary.spec.autoscaler_ref.as_ref()?;
        let name = reference.name.as_deref()?;
        let ns = namespace(canary);
        match reference.kind.as_deref()? {
            HPA_KIND => {
                self.api::<HorizontalPodAutoscaler>(ns)
                    .get(name)
                    .await
                    .ok()?
                    .spec
                    .min_replicas
            }
            SCALED_OBJECT_KIND => {
                let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
                    "keda.sh",
                    "v1alpha1",
                    SCALED_OBJECT_KIND,
                ));
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), ns, &resource);
                let object = api.get(name).await.ok()?;
                let min = object.data.get("spec")?.get("minReplicaCount")?.as_i64()?;
                i32::try_from(min).ok()
            }
            _ => None,
        }
    }

    async fn readiness(
        &self,
        canary: &Canary,
        role: Role,
        name: &str,
        threshold: u32,
    ) -> Result<Readiness, WorkloadError> {
        let kind = workload_kind(canary)?;
        let ns = namespace(canary);
        let deadline = canary.spec.progress_deadline_seconds();
        let now = Timestamp::now();
        let readiness = match kind {
            WorkloadKind::Deployment => {
                let d = get(&self.api::<Deployment>(ns), kind.lowercase(), name, ns).await?;
                deployment_readiness(&d, threshold, deadline, now)
            }
            WorkloadKind::DaemonSet => {
                let d = get(&self.api::<DaemonSet>(ns), kind.lowercase(), name, ns).await?;
                let since = canary
                    .status
                    .as_ref()
                    .and_then(|s| s.last_transition_time.as_ref());
                daemonset_readiness(&d, threshold, deadline, since, now)
            }
        };
        Ok(readiness.prefixed(&not_ready_prefix(kind, role, name, ns)))
    }
}

/// The target as read from the cluster.
enum Target {
    Deployment(Box<Deployment>),
    DaemonSet(Box<DaemonSet>),
}

impl Target {
    fn template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Target::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Target::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
        }
    }
}

fn workload_kind(canary: &Canary) -> Result<WorkloadKind, WorkloadError> {
    match canary.spec.target_kind() {
        TargetKind::Deployment => Ok(WorkloadKind::Deployment),
        TargetKind::DaemonSet => Ok(WorkloadKind::DaemonSet),
        TargetKind::Service => Err(WorkloadError::NotAWorkload {
            canary: canary.dotted_name(),
            kind: TargetKind::Service.as_str().to_string(),
        }),
    }
}

/// The target HPA's name, `None` without an autoscaler; an error for autoscaler kinds that
/// get no primary copy.
fn hpa_name(canary: &Canary) -> Result<Option<&str>, WorkloadError> {
    let Some(reference) = canary.spec.autoscaler_ref.as_ref() else {
        return Ok(None);
    };
    let kind = reference.kind.as_deref().unwrap_or_default();
    if kind != HPA_KIND {
        return Err(WorkloadError::UnsupportedAutoscaler {
            canary: canary.dotted_name(),
            kind: kind.to_string(),
        });
    }
    Ok(reference.name.as_deref())
}

fn namespace(canary: &Canary) -> &str {
    canary.metadata.namespace.as_deref().unwrap_or_default()
}

async fn get<K>(api: &Api<K>, kind: &'static str, name: &str, ns: &str) -> Result<K, WorkloadError>
where
    K: Clone + DeserializeOwned + Debug,
{
    api.get(name)
        .await
        .map_err(|e| WorkloadError::get(kind, name, ns, e))
}

async fn get_opt<K>(
    api: &Api<K>,
    kind: &'static str,
    name: &str,
    ns: &str,
) -> Result<Option<K>, WorkloadError>
where
    K: Clone + DeserializeOwned + Debug,
{
    api.get_opt(name)
        .await
        .map_err(|e| WorkloadError::get(kind, name, ns, e))
}

/// A config the template references: `None` when it is optional and absent.
async fn get_config<K>(
    api: &Api<K>,
    word: &'static str,
    name: &str,
    ns: &str,
    optional: bool,
) -> Result<Option<K>, WorkloadError>
where
    K: Clone + DeserializeOwned + Debug,
{
    match api.get(name).await {
        Ok(object) => Ok(Some(object)),
        Err(kube::Error::Api(status)) if status.is_not_found() && optional => Ok(None),
        Err(e) => Err(WorkloadError::get(word, name, ns, e)),
    }
}

/// The owners an existing config copy has (other canaries may share it).
async fn existing_owners<K>(
    api: &Api<K>,
    word: &'static str,
    name: &str,
    ns: &str,
) -> Result<Vec<OwnerReference>, WorkloadError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    Ok(get_opt(api, word, name, ns)
        .await?
        .and_then(|o| o.meta().owner_references.clone())
        .unwrap_or_default())
}

/// Server-side apply of a whole object Serin owns.
async fn apply<K>(
    api: &Api<K>,
    object: &K,
    action: &'static str,
    kind: &'static str,
    ns: &str,
) -> Result<K, WorkloadError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|e| WorkloadError::write(action, kind, &name, ns, e))
}
