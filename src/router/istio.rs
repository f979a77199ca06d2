//! Istio: the VirtualService `<apex>` and the DestinationRules `<apex>-primary` /
//! `<apex>-canary` (Flagger reference §4.3, Flagger's `pkg/router/istio.go`).
//!
//! * `types`: the `networking.istio.io/v1` objects ([`VirtualService`], [`DestinationRule`],
//!   [`RawVirtualService`]), checked against Istio 1.31's CRDs (v1 is served and stored).
//! * `build`: pure builders and rules: [`reconcile_spec`] (what `Reconcile` writes, all
//!   traffic to the primary), [`desired_spec`] (what `SetRoutes` writes: weights, A/B routes,
//!   session-affinity routes, mirroring), [`spec_needs_update`] (when `Reconcile` rewrites a
//!   live VirtualService), [`original_configuration`] / [`original_spec`] (what a taken-over
//!   VirtualService had, and what `finalize` restores), [`read_routes`] (what `GetRoutes`
//!   reports).
//! * `inexpressible`: [`inexpressible()`], what Istio cannot express, refused at run time too
//!   ([`refuse_inexpressible`]).
//! * [`IstioRouter`]: the thin I/O shell, writing with server-side apply.
//!
//! Deliberate differences from Flagger are noted where they are made; the largest: objects
//! are written with server-side apply (fields other controllers own survive), so metadata is
//! compared by "desired keys present" rather than equality.

mod build;
mod inexpressible;
mod types;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch};
use kube::{Client, Resource};

pub use build::{
    COOKIE_HEADER, KUBECTL_LAST_APPLIED_ANNOTATION, MESH_GATEWAY,
    ORIGINAL_CONFIGURATION_ANNOTATION, SET_COOKIE_HEADER, STICKY_PRIMARY_ROUTE_NAME,
    STICKY_ROUTE_NAME, TCP_APP_PROTOCOL, and_match, cors_policy, desired_spec,
    destination_rule_needs_update, destination_rule_object, headers, is_tcp, match_request,
    merge_match_conditions, metadata_needs_update, original_configuration, original_spec,
    parse_spec, read_routes, reconcile_spec, retries, rewrite, spec_needs_update, string_match,
    virtual_service_object,
};
pub use inexpressible::{PROVIDER, ignored_fields, inexpressible, refuse_inexpressible};
pub use types::{
    CorsPolicy, Destination, DestinationRule, DestinationRuleSpec, HeaderOperations, Headers,
    HttpMatchRequest, HttpRetry, HttpRewrite, HttpRoute, HttpRouteDestination, ISTIO_GROUP,
    ISTIO_VERSION, L4MatchAttributes, Percent, PortSelector, RawVirtualService, RouteDestination,
    StringMatch, TcpRoute, VirtualService, VirtualServiceSpec,
};

use super::cookie::{RandomLetters, SessionCookies};
use super::{
    ApiAction, Router, RouterError, Routes, api_error, canary_namespace, controlled_by,
    owner_reference, strict_apply,
};
use crate::api::{Canary, CanaryStatus};

const VIRTUAL_SERVICE: &str = "VirtualService";
const DESTINATION_RULE: &str = "DestinationRule";

/// Writes and reads the VirtualService and DestinationRules of `provider: istio` canaries.
#[derive(Clone)]
pub struct IstioRouter {
    client: Client,
}

fn canary_name(canary: &Canary) -> &str {
    canary.metadata.name.as_deref().unwrap_or_default()
}

fn annotation(metadata: &ObjectMeta, key: &str) -> Option<String> {
    metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
}

impl IstioRouter {
    pub fn new(client: Client) -> Self {
        IstioRouter { client }
    }

    fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// The live VirtualService `<apex>`, its spec as stored.
    async fn live(&self, canary: &Canary) -> Result<Option<RawVirtualService>, RouterError> {
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        self.api::<RawVirtualService>(namespace)
            .get_opt(name)
            .await
            .map_err(api_error(VIRTUAL_SERVICE, name, namespace, ApiAction::Get))
    }

    /// The live VirtualService `<apex>`, which `SetRoutes` and `GetRoutes` need.
    async fn existing(&self, canary: &Canary) -> Result<RawVirtualService, RouterError> {
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        self.api::<RawVirtualService>(namespace)
            .get(name)
            .await
            .map_err(api_error(VIRTUAL_SERVICE, name, namespace, ApiAction::Get))
    }

    async fn apply<K>(&self, kind: &'static str, object: &K) -> Result<(), RouterError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + serde::Serialize
            + serde::de::DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let meta = object.meta();
        let name = meta.name.as_deref().unwrap_or_default();
        let namespace = meta.namespace.as_deref().unwrap_or_default();
        self.api::<K>(namespace)
            .patch(name, &strict_apply(), &Patch::Apply(object))
            .await
            .map_err(api_error(kind, name, namespace, ApiAction::Apply))?;
        Ok(())
    }

    /// The owner reference to write: on an object Serin creates or already owns; one someone
    /// else made keeps its owners (deleting the Canary must not delete it).
    fn owner(
        canary: &Canary,
        live: Option<&ObjectMeta>,
    ) -> Result<Option<OwnerReference>, RouterError> {
        match live {
            Some(live) if !controlled_by(live, canary_name(canary)) => Ok(None),
            _ => owner_reference(canary).map(Some),
        }
    }

    /// Flagger's `reconcileDestinationRule`: create the rule for `host`, or rewrite it when
    /// its spec (or Serin's annotations) differ.
    async fn reconcile_destination_rule(
        &self,
        canary: &Canary,
        host: &str,
    ) -> Result<(), RouterError> {
        let namespace = canary_namespace(canary)?;
        let live = self
            .api::<DestinationRule>(namespace)
            .get_opt(host)
            .await
            .map_err(api_error(DESTINATION_RULE, host, namespace, ApiAction::Get))?;
        let owner = Self::owner(canary, live.as_ref().map(|l| &l.metadata))?;
        let desired = destination_rule_object(canary, host, owner)?;
        let action = match &live {
            None => "created",
            Some(live) if destination_rule_needs_update(live, &desired) => "updated",
            Some(_) => return Ok(()),
        };
        self.apply(DESTINATION_RULE, &desired).await?;
        tracing::info!(
            canary = %canary.dotted_name(),
            "DestinationRule {host}.{namespace} {action}"
        );
        Ok(())
    }

    /// Flagger's `reconcileVirtualService`: create `<apex>` at 100/0, or rewrite it (weights
    /// back to 100/0) when [`spec_needs_update`] or a desired label or annotation is missing;
    /// on taking over a VirtualService Serin did not create, keep its spec in the
    /// original-configuration annotation.
    async fn reconcile_virtual_service(&self, canary: &Canary) -> Result<(), RouterError> {
        let desired = reconcile_spec(canary)?;
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        let Some(live) = self.live(canary).await? else {
            let object = virtual_service_object(canary, Self::owner(canary, None)?, None, desired)?;
            self.apply(VIRTUAL_SERVICE, &object).await?;
            tracing::info!(canary = %canary.dotted_name(), "VirtualService {name}.{namespace} created");
            return Ok(());
        };
        let live_spec = parse_spec(name, namespace, &live.spec)?;
        let spec_differs = spec_needs_update(canary, &live_spec, &desired);
        let original = original_configuration(canary, &live.metadata, &live.spec, spec_differs);
        let owner = Self::owner(canary, Some(&live.metadata))?;
        let object = virtual_service_object(canary, owner, original, desired)?;
        if spec_differs || metadata_needs_update(&live.metadata, &object.metadata) {
            self.apply(VIRTUAL_SERVICE, &object).await?;
            tracing::info!(canary = %canary.dotted_name(), "VirtualService {name}.{namespace} updated");
        }
        Ok(())
    }

    /// Flagger's `Finalize`: give a VirtualService Serin took over back the spec it had
    /// (kubectl's last-applied configuration, else the original-configuration annotation).
    /// Without either there is nothing to restore, as in Flagger (a VirtualService Serin
    /// created is deleted with the Canary, through its owner reference).
    ///
    /// Deliberate difference: the restore is applied without Serin's labels and annotations
    /// (Flux opt-out, original configuration), so the VirtualService returns to whoever
    /// manages it; Flagger leaves them, which keeps Flux from ever reconciling it again.
    pub async fn finalize(&self, canary: &Canary) -> Result<(), RouterError> {
        // Gone already (a foreground deletion removes owned objects first): nothing to give back.
        let Some(live) = self.live(canary).await? else {
            return Ok(());
        };
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        let Some(spec) = original_spec(name, namespace, &live.metadata)? else {
            tracing::warn!(
                canary = %canary.dotted_name(),
                "VirtualService {name}.{namespace} original configuration not found, unable to revert"
            );
            // A VirtualService Serin took over as it was still carries the Flux opt-out, which
            // would keep Flux from ever reconciling it again; Serin's own goes with the Canary.
            let canary_name = canary.metadata.name.as_deref().unwrap_or_default();
            if !crate::router::controlled_by(&live.metadata, canary_name) {
                let patch = serde_json::json!({"metadata": {"annotations": {
                    crate::router::FLUX_RECONCILE_ANNOTATION: null,
                    crate::router::HELM_DRIFT_DETECTION_ANNOTATION: null,
                }}});
                self.api::<RawVirtualService>(namespace)
                    .patch(
                        name,
                        &kube::api::PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .map_err(api_error(
                        VIRTUAL_SERVICE,
                        name,
                        namespace,
                        ApiAction::Update,
                    ))?;
            }
            return Ok(());
        };
        let metadata = ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        };
        self.apply(VIRTUAL_SERVICE, &RawVirtualService::new(metadata, spec))
            .await?;
        tracing::info!(canary = %canary.dotted_name(), "VirtualService {name}.{namespace} reverted");
        Ok(())
    }
}

impl Router for IstioRouter {
    /// DestinationRules `<apex>-canary` and `<apex>-primary`, then the VirtualService.
    async fn reconcile(&self, canary: &Canary) -> Result<(), RouterError> {
        // Refuse before writing anything, not after the DestinationRules.
        refuse_inexpressible(canary)?;
        for host in [
            canary.spec.canary_service_name(),
            canary.spec.primary_service_name(),
        ] {
            self.reconcile_destination_rule(canary, &host).await?;
        }
        self.reconcile_virtual_service(canary).await
    }

    async fn set_routes(
        &self,
        canary: &Canary,
        routes: Routes,
        status: &mut CanaryStatus,
    ) -> Result<(), RouterError> {
        // Flagger's SetRoutes rewrites the VirtualService Reconcile made; a missing one is an
        // error.
        let live = self.existing(canary).await?;
        let cookies = SessionCookies::from_status(status);
        let (spec, cookies) = desired_spec(canary, routes, &cookies, &mut RandomLetters::new())?;
        let owner = Self::owner(canary, Some(&live.metadata))?;
        let original = annotation(&live.metadata, ORIGINAL_CONFIGURATION_ANNOTATION);
        let object = virtual_service_object(canary, owner, original, spec)?;
        self.apply(VIRTUAL_SERVICE, &object).await?;
        cookies.write_to(status);
        Ok(())
    }

    async fn get_routes(&self, canary: &Canary) -> Result<Routes, RouterError> {
        let live = self.existing(canary).await?;
        let namespace = canary_namespace(canary)?;
        let spec = parse_spec(canary.spec.apex_service_name(), namespace, &live.spec)?;
        read_routes(canary, namespace, &spec)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
