//! Apache APISIX: the ApisixRoute `<routeRef>-<apex>-canary` beside the user's route (Flagger
//! reference §4.5).
//!
//! The user's ApisixRoute (`spec.routeRef`) sends some `spec.http[]` route to the apex Service.
//! Serin never changes it; it writes a second ApisixRoute holding a copy of that one route
//! with the highest priority, so APISIX prefers it, and two weighted backends, `<apex>-primary`
//! and `<apex>-canary`. Pure parts, table-tested without a cluster:
//! [`canary_route_spec`] and [`canary_route_object`] (what `Reconcile` writes, at 100/0),
//! [`route_needs_update`] (when it rewrites it), [`set_weights`] and [`read_routes`]
//! (`SetRoutes` and `GetRoutes`), [`inexpressible`] (what Flagger's APISIX router ignores).

mod types;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

pub use types::{
    APISIX_GROUP, APISIX_VERSION, ApisixRoute, ApisixRouteHttp, ApisixRouteHttpBackend,
    ApisixRouteSpec,
};

use super::gloo::check_weights;
use super::refuse;
use super::{
    ApiAction, FIELD_MANAGER, Inexpressible, Router, RouterError, Routes, api_error,
    canary_namespace, controlled_by, owner_reference, strict_apply, with_flux_opt_out,
};
use crate::api::{Canary, CanaryStatus};
use crate::workload::labels::without_toolkit;

/// The provider name in messages.
const PROVIDER: &str = "apisix";
/// Flagger's priority for the canary route: above any route a user would write.
pub const CANARY_ROUTE_PRIORITY: i64 = 10_000;
/// What APISIX's controller assumes for a backend without a weight.
pub const DEFAULT_BACKEND_WEIGHT: i64 = 100;
/// kubectl's record of the last applied manifest: it describes the user's route, not the copy.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `spec.routeRef.name`, which the APISIX router cannot do without (Flagger's text).
pub fn route_ref_name(canary: &Canary) -> Result<&str, RouterError> {
    canary
        .spec
        .route_ref
        .as_ref()
        .map(|r| r.name())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| RouterError::Refused("apisix route selector is empty".into()))
}

/// `<routeRef.name>-<apex>-canary`.
pub fn canary_route_name(canary: &Canary) -> Result<String, RouterError> {
    Ok(format!(
        "{}-{}-canary",
        route_ref_name(canary)?,
        canary.spec.apex_service_name()
    ))
}

/// The first `spec.http[]` route with a backend named `service` (Flagger's
/// `getTargetHttpRoute`).
pub fn target_http_index(spec: &ApisixRouteSpec, service: &str) -> Option<usize> {
    spec.http
        .iter()
        .position(|h| h.backends.iter().any(|b| b.service_name == service))
}

fn not_found(canary: &Canary, service: &str) -> RouterError {
    RouterError::Refused(format!(
        "Can not find {service} backend on apisix route {}.{}",
        canary
            .spec
            .route_ref
            .as_ref()
            .map(|r| r.name())
            .unwrap_or_default(),
        canary.metadata.namespace.as_deref().unwrap_or_default()
    ))
}

fn refuse_inexpressible(canary: &Canary) -> Result<(), RouterError> {
    refuse(canary, "a canary ApisixRoute", &inexpressible(canary))
}

/// The canary route's spec, from the user's route (Flagger's `Reconcile`): the first http
/// route with the apex Service as its one backend, at priority 10000, that backend renamed to
/// `<apex>-primary` at weight 100 and a `<apex>-canary` backend at weight 0 with the same
/// port, resolve granularity and subset.
///
/// Everything else in the copied route is kept. Two things are not copied, as in Flagger:
/// the route's `upstreams` (ApisixUpstream references would take a share of the traffic the
/// two backends split) and `spec.stream` (a second copy of a stream route would clash with
/// the user's on the same port); `spec.ingressClassName` is kept so the same controller
/// serves the copy.
pub fn canary_route_spec(
    canary: &Canary,
    user_route: &ApisixRoute,
) -> Result<ApisixRouteSpec, RouterError> {
    let route_name = route_ref_name(canary)?;
    let namespace = canary_namespace(canary)?;
    refuse_inexpressible(canary)?;
    if user_route.spec.http.is_empty() {
        return Err(RouterError::Refused(format!(
            "APISIX route {route_name}.{namespace}'s spec.http is empty"
        )));
    }
    let apex = canary.spec.apex_service_name();
    let index = target_http_index(&user_route.spec, apex).ok_or_else(|| not_found(canary, apex))?;
    let mut http = user_route.spec.http[index].clone();
    if http.backends.len() != 1 {
        return Err(RouterError::Refused(format!(
            "APISIX route {route_name}.{namespace}'s http route {} only one http backend is \
             supported",
            http.name
        )));
    }
    if http.other.remove("upstreams").is_some() {
        tracing::warn!(
            canary = %canary.dotted_name(),
            "APISIX route {route_name}.{namespace}'s http route {}: upstreams are not copied \
             to the canary route",
            http.name
        );
    }
    http.priority = Some(CANARY_ROUTE_PRIORITY);
    let mut primary = http.backends.remove(0);
    primary.service_name = canary.spec.primary_service_name();
    primary.weight = Some(DEFAULT_BACKEND_WEIGHT);
    let canary_backend = ApisixRouteHttpBackend {
        service_name: canary.spec.canary_service_name(),
        service_port: primary.service_port.clone(),
        resolve_granularity: primary.resolve_granularity.clone(),
        weight: Some(0),
        subset: primary.subset.clone(),
        other: BTreeMap::new(),
    };
    http.backends = vec![primary, canary_backend];
    let mut other = user_route.spec.other.clone();
    other.remove("stream");
    Ok(ApisixRouteSpec {
        http: vec![http],
        other,
    })
}

/// The canary route: `<routeRef>-<apex>-canary` in the Canary's namespace with the user
/// route's labels and annotations (less Flux's ownership keys and kubectl's last-applied
/// record) plus the Flux opt-out, and the owner reference when the route is (to be) Serin's.
pub fn canary_route_object(
    canary: &Canary,
    user_route: &ApisixRoute,
    owner: Option<OwnerReference>,
    spec: ApisixRouteSpec,
) -> Result<ApisixRoute, RouterError> {
    let labels = without_toolkit(user_route.metadata.labels.as_ref());
    let mut annotations = without_toolkit(user_route.metadata.annotations.as_ref());
    annotations.remove(LAST_APPLIED_ANNOTATION);
    let metadata = ObjectMeta {
        name: Some(canary_route_name(canary)?),
        namespace: Some(canary_namespace(canary)?.to_string()),
        labels: (!labels.is_empty()).then_some(labels),
        annotations: Some(with_flux_opt_out(Some(&annotations))),
        owner_references: owner.map(|o| vec![o]),
        ..Default::default()
    };
    Ok(ApisixRoute::new(metadata, spec))
}

fn without_weights(spec: &ApisixRouteSpec) -> ApisixRouteSpec {
    let mut spec = spec.clone();
    for backend in spec.http.iter_mut().flat_map(|h| h.backends.iter_mut()) {
        backend.weight = None;
    }
    spec
}

/// Whether `Reconcile` must rewrite the live canary route (which resets the weights to 100/0,
/// as in Flagger): the specs differ with backend weights ignored, or a desired label or
/// annotation is missing (keys other controllers added are left alone).
pub fn route_needs_update(live: &ApisixRoute, desired: &ApisixRoute) -> bool {
    let missing = |want: &Option<BTreeMap<String, String>>,
                   have: &Option<BTreeMap<String, String>>| {
        want.iter()
            .flatten()
            .any(|(k, v)| have.as_ref().and_then(|h| h.get(k)) != Some(v))
    };
    without_weights(&live.spec) != without_weights(&desired.spec)
        || missing(&desired.metadata.labels, &live.metadata.labels)
        || missing(&desired.metadata.annotations, &live.metadata.annotations)
}

/// What `Reconcile` applies over `live`, if anything: `desired` when the route is missing or
/// its spec changed (weights reset to 100/0, as in Flagger); when only labels or annotations
/// of the user's route changed, those with the live spec, so a running analysis keeps its
/// weights (Flagger compares the spec only and never carries them over).
pub fn route_to_apply(live: Option<&ApisixRoute>, mut desired: ApisixRoute) -> Option<ApisixRoute> {
    let Some(live) = live else {
        return Some(desired);
    };
    if !route_needs_update(live, &desired) {
        return None;
    }
    if without_weights(&live.spec) == without_weights(&desired.spec) {
        desired.spec = live.spec.clone();
    }
    Some(desired)
}

/// `SetRoutes` on the live canary route's spec: the primary and canary backends of the first
/// http route that has the primary get the new weights; nothing else changes.
pub fn set_weights(
    canary: &Canary,
    spec: &mut ApisixRouteSpec,
    routes: Routes,
) -> Result<(), RouterError> {
    let primary = canary.spec.primary_service_name();
    let canary_svc = canary.spec.canary_service_name();
    let index = target_http_index(spec, &primary).ok_or_else(|| not_found(canary, &primary))?;
    for backend in &mut spec.http[index].backends {
        if backend.service_name == primary {
            backend.weight = Some(i64::from(routes.primary));
        } else if backend.service_name == canary_svc {
            backend.weight = Some(i64::from(routes.canary));
        }
    }
    Ok(())
}

/// The split the live canary route carries (Flagger's `GetRoutes`): the primary backend's
/// weight, the canary getting the rest of 100.
pub fn read_routes(canary: &Canary, spec: &ApisixRouteSpec) -> Result<Routes, RouterError> {
    let primary = canary.spec.primary_service_name();
    let index = target_http_index(spec, &primary).ok_or_else(|| not_found(canary, &primary))?;
    let weight = spec.http[index]
        .backends
        .iter()
        .find(|b| b.service_name == primary)
        .map_or(DEFAULT_BACKEND_WEIGHT, |b| {
            b.weight.unwrap_or(DEFAULT_BACKEND_WEIGHT)
        });
    let weight = u32::try_from(weight.clamp(0, 100)).unwrap_or(0);
    Ok(Routes::new(weight, 100 - weight))
}

/// Everything in the Canary Flagger's APISIX router cannot do: it needs `routeRef`, and it
/// has neither A/B matching (`analysis.match` is ignored, so an A/B run would send every
/// request to the canary) nor session affinity.
pub fn inexpressible(canary: &Canary) -> Vec<Inexpressible> {
    let mut out = Vec::new();
    if route_ref_name(canary).is_err() {
        out.push(Inexpressible {
            field: "spec.routeRef".into(),
            problem: format!(
                "provider {PROVIDER:?} needs routeRef, the ApisixRoute whose route to the apex \
                 Service the canary route copies"
            ),
            fix: "set routeRef: {apiVersion: apisix.apache.org/v2, kind: ApisixRoute, name: \
                  <route>}"
                .into(),
        });
    }
    let Some(analysis) = canary.analysis() else {
        return out;
    };
    let base = format!("spec.{}", canary.spec.analysis_field());
    if !analysis.matches().is_empty() {
        out.push(Inexpressible {
            field: format!("{base}.match"),
            problem: format!(
                "provider {PROVIDER:?} cannot route by request attributes (no A/B testing); \
                 the match conditions would be ignored and an A/B run would send every \
                 request to the canary"
            ),
            fix: "remove match and shift traffic by weight (stepWeight, or iterations for \
                  blue/green), or use a provider with A/B testing (istio, gatewayapi:v1, \
                  nginx, contour, gloo)"
                .into(),
        });
    }
    if analysis.session_affinity.is_some() {
        out.push(Inexpressible {
            field: format!("{base}.sessionAffinity"),
            problem: format!(
                "provider {PROVIDER:?} has no session affinity; sessionAffinity would be ignored"
            ),
            fix: "remove sessionAffinity, or use istio or a Gateway API provider".into(),
        });
    }
    out
}

/// Writes and reads the canary ApisixRoute of `provider: apisix` canaries.
#[derive(Clone)]
pub struct ApisixRouter {
    client: Client,
}

impl ApisixRouter {
    pub fn new(client: Client) -> Self {
        ApisixRouter { client }
    }

    /// What Flagger's Finalize does for APISIX: nothing. The user's route was never changed,
    /// and the canary route is owned by the Canary and goes with it.
    pub async fn finalize(&self, _canary: &Canary) -> Result<(), RouterError> {
        Ok(())
    }

    fn api(&self, namespace: &str) -> Api<ApisixRoute> {
        Api::namespaced(self.client.clone(), namespace)
    }

    async fn live_canary_route(&self, canary: &Canary) -> Result<ApisixRoute, RouterError> {
        let namespace = canary_namespace(canary)?;
        let name = canary_route_name(canary)?;
        self.api(namespace).get(&name).await.map_err(api_error(
            "ApisixRoute",
            &name,
            namespace,
            ApiAction::Get,
        ))
    }
}

impl Router for ApisixRouter {
    /// Creates the canary route at 100/0 from the user's route; rewrites it when
    /// [`route_needs_update`] says so.
    async fn reconcile(&self, canary: &Canary) -> Result<(), RouterError> {
        let namespace = canary_namespace(canary)?;
        let user_name = route_ref_name(canary)?;
        let user_route = self.api(namespace).get(user_name).await.map_err(api_error(
            "ApisixRoute",
            user_name,
            namespace,
            ApiAction::Get,
        ))?;
        let spec = canary_route_spec(canary, &user_route)?;
        let name = canary_route_name(canary)?;
        let live = self.api(namespace).get_opt(&name).await.map_err(api_error(
            "ApisixRoute",
            &name,
            namespace,
            ApiAction::Get,
        ))?;
        let canary_name = canary.metadata.name.as_deref().unwrap_or_default();
        let owner = match &live {
            // A route someone else made keeps its owners.
            Some(live) if !controlled_by(&live.metadata, canary_name) => None,
            _ => Some(owner_reference(canary)?),
        };
        let desired = canary_route_object(canary, &user_route, owner, spec)?;
        let action = if live.is_some() { "updated" } else { "created" };
        let Some(desired) = route_to_apply(live.as_ref(), desired) else {
            return Ok(());
        };
        self.api(namespace)
            .patch(&name, &strict_apply(), &Patch::Apply(&desired))
            .await
            .map_err(api_error("ApisixRoute", &name, namespace, ApiAction::Apply))?;
        tracing::info!(canary = %canary.dotted_name(), "APISIX route {name}.{namespace} {action}");
        Ok(())
    }

    async fn set_routes(
        &self,
        canary: &Canary,
        routes: Routes,
        _status: &mut CanaryStatus,
    ) -> Result<(), RouterError> {
        check_weights(canary, routes)?;
        refuse_inexpressible(canary)?;
        let mut live = self.live_canary_route(canary).await?;
        set_weights(canary, &mut live.spec, routes)?;
        // Only the weights change, on the version just read (Flagger's Update): a route
        // rewritten meanwhile makes this a conflict, retried next tick.
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": live.metadata.resource_version },
            "spec": { "http": live.spec.http },
        });
        let mut params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..Default::default()
        };
        params.field_validation = Some(kube::api::ValidationDirective::Strict);
        let namespace = canary_namespace(canary)?;
        let name = canary_route_name(canary)?;
        self.api(namespace)
            .patch(&name, &params, &Patch::Merge(&patch))
            .await
            .map_err(api_error(
                "ApisixRoute",
                &name,
                namespace,
                ApiAction::Update,
            ))?;
        Ok(())
    }

    async fn get_routes(&self, canary: &Canary) -> Result<Routes, RouterError> {
        let live = self.live_canary_route(canary).await?;
        read_routes(canary, &live.spec)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
