//! The apply stage's I/O: resolves each object's kind through discovery, applies it with
//! server-side apply, waits for CRDs, prunes, and keeps the inventory ConfigMap.
//!
//! Decisions (order, labels, replicas, what to prune) are made by the pure functions of
//! [`super::plan`] and [`super::inventory`]; this file only asks the API server and reports.
//! One object's failure is recorded and the others go on: a typo in one manifest must not keep
//! every other change of a commit out of the cluster.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::client::Body;
use kube::core::{GroupVersion, Status};
use kube::discovery::{ApiCapabilities, ApiGroup, Scope};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::inventory::{
    Inventory, InventoryEntry, PruneDecision, prune_candidates, prune_decision,
    with_their_namespaces,
};
use super::plan::{
    Phase, Plan, PlannedObject, ReplicasHandover, ReplicasOwner, plan, replicas_handover,
    target_body,
};
use super::{
    Applied, ApplyError, ApplyOptions, ApplyReport, FIELD_MANAGER, Failure, Outcome,
    REPLICAS_FIELD_MANAGER,
};
use crate::catalog::{Catalog, ObjectId};

/// Applies catalogs to one cluster under one inventory.
#[derive(Clone)]
pub struct Applier {
    client: Client,
    options: ApplyOptions,
}

impl Applier {
    pub fn new(client: Client, options: ApplyOptions) -> Result<Self, ApplyError> {
        options.validate()?;
        Ok(Applier { client, options })
    }

    pub fn options(&self) -> &ApplyOptions {
        &self.options
    }

    /// Applies every object of `catalog`, then prunes what the last apply wrote and the catalog
    /// no longer has. `Err` only when nothing could be done (the inventory is unreadable);
    /// everything else, object by object, is in the report.
    pub async fn apply(&self, catalog: &Catalog) -> Result<ApplyReport, ApplyError> {
        self.apply_plan(&plan(catalog, &self.options)).await
    }

    /// [`Applier::apply`] of a plan made by [`plan`].
    pub async fn apply_plan(&self, plan: &Plan) -> Result<ApplyReport, ApplyError> {
        let previous = self.read_inventory().await?;
        let mut run = Run {
            applier: self,
            discovery: HashMap::new(),
            report: ApplyReport::default(),
            next: Inventory::default(),
        };
        // Written before anything is applied, so that objects created by a run that dies half
        // way are still known (and pruned) when they later leave the source.
        let mut intent = previous.clone();
        for object in &plan.objects {
            if !intent.entries.contains_key(&object.id) {
                intent.insert(entry_of(object, &object.id, None, false));
            }
        }
        // What the ConfigMap holds now, to skip a final write that would change nothing.
        let mut stored = &previous;
        if intent != previous && run.write_inventory(&intent).await {
            stored = &intent;
        }

        let mut desired: BTreeSet<ObjectId> = BTreeSet::new();
        // Each applied CRD: its place in the plan and its identity.
        let mut crds: Vec<(usize, ObjectId)> = Vec::new();
        for (i, object) in plan.objects.iter().enumerate() {
            match run.apply_object(object, &previous).await {
                Some(id) => {
                    if object.phase == Phase::Definitions {
                        crds.push((i, id.clone()));
                    }
                    desired.insert(id);
                }
                None => {
                    // Scope unknown: both spellings stay desired, so nothing it might be is
                    // pruned because this apply failed.
                    desired.insert(object.id.clone());
                    desired.insert(ObjectId {
                        namespace: None,
                        ..object.id.clone()
                    });
                }
            }
            let next_phase = plan.objects.get(i + 1).map(|o| o.phase);
            if object.phase == Phase::Definitions && next_phase != Some(Phase::Definitions) {
                run.wait_for_crds(&crds, plan).await;
            }
        }
        let desired = with_their_namespaces(&desired);
        // Still desired objects that failed keep their entry (and its `created`): one whose
        // apply reached the API server but whose answer was lost may exist, and must be pruned
        // when it leaves the source.
        for id in &desired {
            if let Some(entry) = intent.get(id)
                && !run.next.entries.contains_key(id)
            {
                run.next.insert(entry.clone());
            }
        }

        if !self.options.prune {
            run.report.prune_skipped = Some("pruning is disabled".into());
        } else if let Some(why) = &plan.prune_blocked {
            run.report.prune_skipped = Some(why.clone());
        }
        let candidates = prune_candidates(&previous, &desired);
        if run.report.prune_skipped.is_some() {
            // Not pruned now, so still owned: remembered for a later apply.
            for entry in candidates {
                run.next.insert(entry);
            }
        } else {
            for entry in candidates {
                run.prune(entry).await;
            }
        }
        if &run.next != stored {
            run.write_inventory(&run.next.clone()).await;
        }
        tracing::info!(inventory = %self.options.inventory, "apply: {}", run.report);
        Ok(run.report)
    }

    async fn read_inventory(&self) -> Result<Inventory, ApplyError> {
        let name = self.options.config_map_name();
        let namespace = &self.options.inventory_namespace;
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let found = api
            .get_opt(&name)
            .await
            .map_err(|e| ApplyError::ReadInventory {
                namespace: namespace.clone(),
                name: name.clone(),
                source: Box::new(e),
            })?;
        match found {
            None => Ok(Inventory::default()),
            Some(cm) => {
                Inventory::from_config_map(&cm).map_err(|problem| ApplyError::CorruptInventory {
                    namespace: namespace.clone(),
                    name,
                    problem,
                })
            }
        }
    }
}

/// The inventory entry of an object as applied now.
fn entry_of(
    object: &PlannedObject,
    id: &ObjectId,
    resource_version: Option<String>,
    created: bool,
) -> InventoryEntry {
    InventoryEntry {
        api_version: object.api_version.clone(),
        kind: id.kind.clone(),
        namespace: id.namespace.clone(),
        name: id.name.clone(),
        created,
        resource_version,
    }
}

/// Where an object of a resolved kind lives.
struct Resolved {
    resource: ApiResource,
    namespaced: bool,
}

enum ResolveError {
    /// The API server answered: it has no such kind.
    NotServed(String),
    /// No answer (network, permissions, a malformed apiVersion).
    Failed(String),
}

/// One apply: its discovery cache (kinds do not change during an apply, except those of the
/// CRDs it applies, which are looked up only once they are served), report and next inventory.
struct Run<'a> {
    applier: &'a Applier,
    /// apiVersion → its group's resources, or `None` when the API server does not serve it.
    discovery: HashMap<String, Option<ApiGroup>>,
    report: ApplyReport,
    next: Inventory,
}

impl Run<'_> {
    fn client(&self) -> Client {
        self.applier.client.clone()
    }

    fn inventory(&self) -> &str {
        &self.applier.options.inventory
    }

    fn fail(&mut self, object: &PlannedObject, id: &ObjectId, message: String) {
        tracing::warn!(inventory = %self.inventory(), "{} {id}: {message}", object.location);
        self.report.failed.push(Failure {
            id: id.clone(),
            location: Some(object.location.clone()),
            message,
        });
    }

    /// Looks `kind` of `api_version` up, once per apiVersion and run.
    async fn resolve(&mut self, api_version: &str, kind: &str) -> Result<Resolved, ResolveError> {
        if !self.discovery.contains_key(api_version) {
            let gv: GroupVersion = api_version.parse().map_err(|e| {
                ResolveError::Failed(format!("apiVersion {api_version:?} is invalid: {e}"))
            })?;
            let group = match kube::discovery::pinned_group(&self.applier.client, &gv).await {
                Ok(group) => Some(group),
                Err(kube::Error::Api(status)) if status.code == 404 => None,
                Err(e) => {
                    return Err(ResolveError::Failed(format!(
                        "discovery of {api_version} failed: {}",
                        message(&e)
                    )));
                }
            };
            self.discovery.insert(api_version.to_string(), group);
        }
        let found = self
            .discovery
            .get(api_version)
            .and_then(|g| g.as_ref())
            .and_then(|g| g.recommended_kind(kind));
        let Some((resource, caps)) = found else {
            return Err(ResolveError::NotServed(format!(
                "the API server does not serve {api_version} {kind}; install its CRD first"
            )));
        };
        Ok(Resolved {
            resource,
            namespaced: is_namespaced(&caps),
        })
    }

    /// Applies one object; its identity as the cluster scopes it, or `None` if its kind could
    /// not be resolved. Failures are recorded in the report.
    async fn apply_object(
        &mut self,
        object: &PlannedObject,
        previous: &Inventory,
    ) -> Option<ObjectId> {
        let resolved = match self.resolve(&object.api_version, &object.id.kind).await {
            Ok(r) => r,
            Err(ResolveError::NotServed(message) | ResolveError::Failed(message)) => {
                self.fail(object, &object.id, message);
                return None;
            }
        };
        let mut body = object.body.clone();
        let mut id = object.id.clone();
        let api: Api<DynamicObject> = if resolved.namespaced {
            let Some(ns) = object.id.namespace.as_deref() else {
                let message = format!(
                    "{} is namespaced, but the object has no namespace",
                    object.id.kind
                );
                self.fail(object, &id, message);
                return None;
            };
            Api::namespaced_with(self.client(), ns, &resolved.resource)
        } else {
            // A cluster-scoped kind the catalog did not know: a namespace would be refused.
            id.namespace = None;
            if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("namespace");
            }
            Api::all_with(self.client(), &resolved.resource)
        };
        if object.replicas == ReplicasOwner::Serin {
            body = match self.prepare_target(&api, object, &id, &body).await {
                Ok(body) => body,
                Err(message) => {
                    self.fail(object, &id, message);
                    return Some(id);
                }
            };
        }
        match server_side_apply(&self.client(), &api, &id.name, &body, FIELD_MANAGER).await {
            Ok((created, live)) => {
                let resource_version = live.resource_version();
                let last = previous.get(&id);
                let outcome = if created {
                    Outcome::Created
                } else if resource_version.is_some()
                    && last.and_then(|e| e.resource_version.as_ref()) == resource_version.as_ref()
                {
                    Outcome::Unchanged
                } else {
                    Outcome::Configured
                };
                match outcome {
                    Outcome::Unchanged => tracing::debug!("{id} unchanged"),
                    _ => tracing::info!(inventory = %self.inventory(), "{id} {outcome}"),
                }
                let created = created || last.is_some_and(|e| e.created);
                self.next
                    .insert(entry_of(object, &id, resource_version, created));
                self.report.applied.push(Applied {
                    id: id.clone(),
                    location: object.location.clone(),
                    outcome,
                });
            }
            Err(e) => self.fail(object, &id, message(&e)),
        }
        Some(id)
    }

    /// A canary target's body for this apply ([`target_body`]); first hands `spec.replicas`
    /// over when Serin's applier owns it ([`ReplicasHandover`]).
    async fn prepare_target(
        &self,
        api: &Api<DynamicObject>,
        object: &PlannedObject,
        id: &ObjectId,
        body: &Value,
    ) -> Result<Value, String> {
        let live = api
            .get_opt(&id.name)
            .await
            .map_err(|e| format!("cannot read the live object: {}", message(&e)))?;
        let Some(live) = live else {
            return Ok(target_body(body, false));
        };
        let replicas = live.data.pointer("/spec/replicas").and_then(Value::as_i64);
        let handover = replicas_handover(
            live.metadata.managed_fields.as_deref().unwrap_or_default(),
            replicas,
            live.metadata.resource_version.as_deref(),
        );
        if let ReplicasHandover::Needed {
            replicas,
            resource_version,
        } = handover
        {
            let mut metadata = json!({ "name": id.name, "resourceVersion": resource_version });
            if let Some(ns) = &id.namespace {
                metadata["namespace"] = json!(ns);
            }
            // The resourceVersion makes this a compare-and-swap: had Serin scaled the target
            // since it was read, this must not write the old count back.
            let handover = json!({
                "apiVersion": object.api_version,
                "kind": id.kind,
                "metadata": metadata,
                "spec": { "replicas": replicas },
            });
            api.patch(
                &id.name,
                &PatchParams::apply(REPLICAS_FIELD_MANAGER).force(),
                &Patch::Apply(&handover),
            )
            .await
            .map_err(|e| {
                format!(
                    "cannot hand spec.replicas over to {REPLICAS_FIELD_MANAGER}: {}",
                    message(&e)
                )
            })?;
            tracing::debug!(
                "{id}: spec.replicas ({replicas}) handed over to {REPLICAS_FIELD_MANAGER}"
            );
        }
        Ok(target_body(body, true))
    }

    /// Waits until every CRD applied in this run is Established and its kind is served, so that
    /// the custom resources after it resolve.
    async fn wait_for_crds(&mut self, crds: &[(usize, ObjectId)], plan: &Plan) {
        let timeout = self.applier.options.crd_timeout;
        let api: Api<CustomResourceDefinition> = Api::all(self.client());
        for (index, id) in crds {
            let Some(object) = plan.objects.get(*index) else {
                continue;
            };
            let name = &id.name;
            if self.report.failure_of(id).is_some() {
                continue;
            }
            let established = tokio::time::timeout(
                timeout,
                await_condition(api.clone(), name, conditions::is_crd_established()),
            )
            .await;
            let crd = match established {
                Ok(Ok(Some(crd))) => crd,
                Ok(Ok(None)) => {
                    self.fail(
                        object,
                        id,
                        "the CRD disappeared before it was Established".into(),
                    );
                    continue;
                }
                Ok(Err(e)) => {
                    self.fail(object, id, format!("cannot watch the CRD: {e}"));
                    continue;
                }
                Err(_) => {
                    let message = format!(
                        "the CRD is not Established after {timeout:?}; its custom resources \
                         cannot be applied"
                    );
                    self.fail(object, id, message);
                    continue;
                }
            };
            // Established is set before discovery lists the kind; a lookup in between would
            // report it as not served.
            let kind = crd.spec.names.kind.clone();
            let versions: Vec<String> = crd
                .spec
                .versions
                .iter()
                .filter(|v| v.served)
                .map(|v| format!("{}/{}", crd.spec.group, v.name))
                .collect();
            let deadline = tokio::time::Instant::now() + timeout;
            for api_version in versions {
                loop {
                    self.discovery.remove(&api_version);
                    if self.resolve(&api_version, &kind).await.is_ok() {
                        break;
                    }
                    if tokio::time::Instant::now() >= deadline {
                        let message = format!(
                            "the CRD is Established but {api_version} {kind} is not served \
                             after {timeout:?}"
                        );
                        self.fail(object, id, message);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    /// Deletes one object that left the source, if it is still this inventory's.
    async fn prune(&mut self, entry: InventoryEntry) {
        let id = entry.id();
        let failed = |run: &mut Self, entry: InventoryEntry, message: String| {
            tracing::warn!(inventory = %run.inventory(), "prune {id}: {message}");
            run.report.failed.push(Failure {
                id: id.clone(),
                location: None,
                message: format!("cannot prune: {message}"),
            });
            // Kept in the inventory, so the next apply tries again.
            run.next.insert(entry);
        };
        let resolved = match self.resolve(&entry.api_version, &entry.kind).await {
            Ok(r) => r,
            // Its kind is gone from the cluster, and the object with it.
            Err(ResolveError::NotServed(_)) => return,
            Err(ResolveError::Failed(m)) => return failed(self, entry, m),
        };
        let api: Api<DynamicObject> = match (&entry.namespace, resolved.namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.client(), ns, &resolved.resource),
            (_, _) => Api::all_with(self.client(), &resolved.resource),
        };
        let live = match api.get_opt(&entry.name).await {
            Ok(live) => live,
            Err(e) => return failed(self, entry, message(&e)),
        };
        match prune_decision(&entry, live.as_ref().map(|l| l.labels()), self.inventory()) {
            PruneDecision::Gone => {}
            PruneDecision::Keep(kept) => {
                tracing::info!(inventory = %self.inventory(), "not pruning {}: {}", kept.id, kept.reason);
                self.report.kept.push(kept);
            }
            PruneDecision::Delete => {
                let params = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Background),
                    // The object read above, not one re-created under the same name since.
                    preconditions: Some(Preconditions {
                        uid: live.and_then(|l| l.metadata.uid),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match api.delete(&entry.name, &params).await {
                    Ok(_) => {
                        tracing::info!(inventory = %self.inventory(), "{id} pruned");
                        self.report.pruned.push(id.clone());
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => failed(self, entry, message(&e)),
                }
            }
        }
    }

    /// Writes the inventory ConfigMap, creating its namespace if missing; `true` if written. A
    /// failure is reported (the next apply then works from an older inventory, which can only
    /// prune less).
    async fn write_inventory(&mut self, inventory: &Inventory) -> bool {
        let options = &self.applier.options;
        let name = options.config_map_name();
        let namespace = options.inventory_namespace.clone();
        let cm = inventory.to_config_map(&name, &namespace, &options.inventory);
        let api: Api<ConfigMap> = Api::namespaced(self.client(), &namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let mut result = api.patch(&name, &params, &Patch::Apply(&cm)).await;
        if matches!(&result, Err(kube::Error::Api(s)) if s.code == 404) {
            let ns = Namespace {
                metadata: kube::api::ObjectMeta {
                    name: Some(namespace.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            let namespaces: Api<Namespace> = Api::all(self.client());
            result = match namespaces
                .patch(&namespace, &params, &Patch::Apply(&ns))
                .await
            {
                Ok(_) => api.patch(&name, &params, &Patch::Apply(&cm)).await,
                Err(e) => Err(e),
            };
        }
        let Err(e) = result else {
            return true;
        };
        let id = ObjectId::namespaced("", "ConfigMap", &namespace, &name);
        let message = format!("cannot write the inventory: {}", message(&e));
        tracing::warn!("{id}: {message}");
        self.report.failed.push(Failure {
            id,
            location: None,
            message,
        });
        false
    }
}

fn is_namespaced(caps: &ApiCapabilities) -> bool {
    matches!(caps.scope, Scope::Namespaced)
}

/// Server-side apply that also tells whether the object was created: the API server answers
/// 201 to an apply that creates and 200 to one that updates, which `Api::patch` does not show.
async fn server_side_apply(
    client: &Client,
    api: &Api<DynamicObject>,
    name: &str,
    body: &Value,
    manager: &str,
) -> Result<(bool, DynamicObject), kube::Error> {
    let request = kube::core::Request::new(api.resource_url())
        .patch(
            name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(body),
        )
        .map_err(kube::Error::BuildRequest)?;
    let response = client.send(request.map(Body::from)).await?;
    let code = response.status().as_u16();
    let bytes = response.into_body().collect_bytes().await?;
    if code >= 400 {
        let status = serde_json::from_slice::<Status>(&bytes).unwrap_or_else(|_| {
            Status::failure(&String::from_utf8_lossy(&bytes), "Unknown").with_code(code)
        });
        return Err(kube::Error::Api(status.boxed()));
    }
    let object = serde_json::from_slice(&bytes).map_err(kube::Error::SerdeError)?;
    Ok((code == 201, object))
}

/// What the API server said, or what kept the request from reaching it.
fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        kube::Error::Api(status) => format!("{} ({})", status.reason, status.code),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                let s_text = s.to_string();
                if !text.contains(&s_text) {
                    text = format!("{text}: {s_text}");
                }
                source = s.source();
            }
            text
        }
    }
}
