//! Gloo Edge: the Upstreams `<ns>-<apex>-primaryupstream-<port>` /
//! `<ns>-<apex>-canaryupstream-<port>` and the RouteTable `<apex>` (Flagger reference §4.4).
//!
//! The user's Gloo VirtualService delegates to the RouteTable named after the apex Service;
//! its one route splits traffic between two Upstreams Serin creates for the `-primary` and
//! `-canary` Services (Gloo's discovery may be off, so Flagger never relies on discovered
//! Upstreams). Pure parts, table-tested without a cluster:
//! * [`desired_upstream`] and [`load_balancer_patch`]: the Upstreams (with the settings of
//!   `spec.upstreamRef` copied in) and the only change Flagger makes to them afterwards;
//! * [`route_table_spec`], [`route_table_object`], [`route_table_needs_update`] and
//!   [`read_routes`]: the route, when `Reconcile` rewrites it, and the weights it carries;
//! * [`inexpressible`]: the A/B conditions Flagger's Gloo router would drop or mangle.
//!
//! A/B testing adds one matcher (headers and methods from `analysis.match`) to the weighted
//! route, followed by a fallback route at 100/0. Flagger has no fallback, so requests that
//! do not match get a 404 from Gloo; Serin keeps them on the primary, as every other provider
//! does.

mod types;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Map, Value};

pub use types::{
    Destination, GATEWAY_GROUP, GLOO_GROUP, GLOO_VERSION, HeaderMatcher, KubeUpstream, Matcher,
    MultiDestination, ResourceRef, Route, RouteAction, RouteTable, RouteTableSpec, Upstream,
    UpstreamSpec, WeightedDestination,
};

use super::gateway_api::{RouteMetadata, route_metadata};
use super::{
    ApiAction, FIELD_MANAGER, Inexpressible, Router, RouterError, Routes, api_error,
    canary_namespace, canary_service, controlled_by, owner_reference, strict_apply,
    with_flux_opt_out,
};
use super::{refuse, set_match_fields};
use crate::api::{Canary, CanaryStatus, HttpMatchRequest, StringMatch};
use crate::workload::labels::include_by_prefix;

/// The provider name in messages.
const PROVIDER: &str = "gloo";

/// The names of the two Upstreams a Canary gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamNames {
    /// `<ns>-<apex>-primaryupstream-<port>`, pointing at `<apex>-primary`.
    pub primary: String,
    /// `<ns>-<apex>-canaryupstream-<port>`, pointing at `<apex>-canary`.
    pub canary: String,
}

/// Flagger's Upstream names: namespace, apex and port keep them unique in Gloo's namespace.
pub fn upstream_names(canary: &Canary) -> Result<UpstreamNames, RouterError> {
    let namespace = canary_namespace(canary)?;
    let (_, port) = canary_service(canary)?;
    let apex = canary.spec.apex_service_name();
    Ok(UpstreamNames {
        primary: format!("{namespace}-{apex}-primaryupstream-{port}"),
        canary: format!("{namespace}-{apex}-canaryupstream-{port}"),
    })
}

/// Where `spec.upstreamRef` points: its namespace defaults to the Canary's.
pub fn config_upstream_ref(canary: &Canary) -> Result<Option<(String, String)>, RouterError> {
    let Some(reference) = &canary.spec.upstream_ref else {
        return Ok(None);
    };
    let namespace = match reference.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => ns.to_string(),
        None => canary_namespace(canary)?.to_string(),
    };
    Ok(Some((
        reference.name.clone().unwrap_or_default(),
        namespace,
    )))
}

// ---------------------------------------------------------------------------------------
// Upstreams
// ---------------------------------------------------------------------------------------

/// The Upstream Flagger creates for one of the two Services (`getGlooUpstreamKubeService`).
///
/// `spec.kube` points at `service_name` in the Canary's namespace on `service.port`, with the
/// Service's selector. With an `upstreamRef` (`config`), its TLS, circuit-breaker,
/// connection, load-balancer and HTTP/2 settings are copied as they are.
///
/// Labels: Flagger copies the referenced Upstream's `spec.labels` filtered by
/// `-include-label-prefix`, but Gloo's Upstream has no `spec.labels` (its schema prunes
/// them), so Flagger's copy is always empty. Serin copies the referenced Upstream's
/// `metadata.labels` through the same filter: with the default (no prefixes) nothing is
/// copied either.
pub fn desired_upstream(
    canary: &Canary,
    name: &str,
    service_name: &str,
    selector: BTreeMap<String, String>,
    config: Option<&Upstream>,
    include_label_prefixes: &[String],
) -> Result<Upstream, RouterError> {
    let namespace = canary_namespace(canary)?;
    let (_, port) = canary_service(canary)?;
    let copied = config.map(|c| c.spec.clone()).unwrap_or_default();
    let spec = UpstreamSpec {
        kube: Some(KubeUpstream {
            service_name: service_name.to_string(),
            service_namespace: namespace.to_string(),
            service_port: u32::try_from(port).ok(),
            selector,
        }),
        ssl_config: copied.ssl_config,
        circuit_breakers: copied.circuit_breakers,
        connection_config: copied.connection_config,
        load_balancer_config: copied.load_balancer_config,
        use_http2: copied.use_http2,
        initial_stream_window_size: copied.initial_stream_window_size,
        initial_connection_window_size: copied.initial_connection_window_size,
        max_concurrent_streams: copied.max_concurrent_streams,
        http_proxy_hostname: copied.http_proxy_hostname,
    };
    let labels = include_by_prefix(
        config.and_then(|c| c.metadata.labels.as_ref()),
        include_label_prefixes,
    );
    let metadata = ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: (!labels.is_empty()).then_some(labels),
        annotations: Some(with_flux_opt_out(None)),
        owner_references: Some(vec![owner_reference(canary)?]),
        ..Default::default()
    };
    Ok(Upstream::new(metadata, spec))
}

/// The merge patch that brings a generated Upstream's `loadBalancerConfig` back to the
/// referenced Upstream's, or `None` when they agree. This is the only setting Flagger keeps in
/// step after creation (so that e.g. slow-start tuning reaches a running canary); the others
/// are copied once.
pub fn load_balancer_patch(live: &Upstream, config: &Upstream) -> Option<Value> {
    let have = live
        .spec
        .load_balancer_config
        .clone()
        .unwrap_or(Value::Null);
    let want = config
        .spec
        .load_balancer_config
        .clone()
        .unwrap_or(Value::Null);
    (have != want).then(|| {
        serde_json::json!({
            "spec": { "loadBalancerConfig": merge_patch(&have, &want) }
        })
    })
}

/// The JSON merge patch (RFC 7386) that turns `from` into `to`: keys `to` lacks become
/// `null`, objects are patched key by key, anything else is replaced.
pub fn merge_patch(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(from), Value::Object(to)) => {
            let mut patch = Map::new();
            for key in from.keys().filter(|k| !to.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            for (key, want) in to {
                match from.get(key) {
                    Some(have) if have == want => {}
                    Some(have) => {
                        patch.insert(key.clone(), merge_patch(have, want));
                    }
                    None => {
                        patch.insert(key.clone(), want.clone());
                    }
                }
            }
            Value::Object(patch)
        }
        (_, to) => to.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// RouteTable
// ---------------------------------------------------------------------------------------

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// The A/B matcher (Flagger's `getMatchers`): the headers of every `analysis.match` entry
/// (regex when set, else exact) and their exact methods, in one matcher; none without
/// conditions. Headers come out sorted by name within an entry (Go iterates a map; a stable
/// order keeps the route from changing between ticks).
pub fn matchers(canary: &Canary) -> Vec<Matcher> {
    let requests = canary.analysis().map(|a| a.matches()).unwrap_or_default();
    let mut matcher = Matcher::default();
    for request in requests {
        for (name, selector) in request.headers.iter().flatten() {
            matcher.headers.push(match non_empty(&selector.regex) {
                Some(regex) => HeaderMatcher {
                    name: name.clone(),
                    value: regex.to_string(),
                    regex: true,
                    invert_match: false,
                },
                None => HeaderMatcher {
                    name: name.clone(),
                    value: selector.exact.clone().unwrap_or_default(),
                    regex: false,
                    invert_match: false,
                },
            });
        }
        if let Some(method) = &request.method {
            matcher
                .methods
                .push(method.exact.clone().unwrap_or_default());
        }
    }
    if matcher == Matcher::default() {
        Vec::new()
    } else {
        vec![matcher]
    }
}

fn destination(name: &str, namespace: &str, weight: u32) -> WeightedDestination {
    WeightedDestination {
        destination: Destination {
            upstream: Some(ResourceRef {
                name: name.to_string(),
                namespace: namespace.to_string(),
            }),
        },
        weight: Some(weight),
    }
}

/// The RouteTable spec for `routes`: one route inheriting the delegating VirtualService's
/// path matchers, with the A/B matcher, splitting between the primary and canary Upstreams.
///
/// Refuses a Canary [`inexpressible`] lists, instead of silently routing differently.
pub fn route_table_spec(canary: &Canary, routes: Routes) -> Result<RouteTableSpec, RouterError> {
    refuse(canary, "a RouteTable", &inexpressible(canary))?;
    let namespace = canary_namespace(canary)?;
    let names = upstream_names(canary)?;
    let route = |matchers: Vec<_>, routes: Routes| Route {
        matchers,
        inheritable_path_matchers: Some(true),
        route_action: Some(RouteAction {
            multi: Some(MultiDestination {
                destinations: vec![
                    destination(&names.primary, namespace, routes.primary),
                    destination(&names.canary, namespace, routes.canary),
                ],
            }),
        }),
    };
    let matchers = matchers(canary);
    let ab = !matchers.is_empty();
    let mut table = vec![route(matchers, routes)];
    // Flagger's A/B table has the matching route only, so a request without the header gets
    // a 404 from Gloo. Serin adds the fallback at 100/0 every other provider has.
    if ab {
        table.push(route(Vec::new(), Routes::INITIAL));
    }
    Ok(RouteTableSpec { routes: table })
}

/// Flagger's guard in `SetRoutes`: a split of 0/0 routes nothing.
pub fn check_weights(canary: &Canary, routes: Routes) -> Result<(), RouterError> {
    if routes.primary == 0 && routes.canary == 0 {
        return Err(RouterError::Refused(format!(
            "RoutingRule {}.{} update failed: no valid weights",
            canary.spec.apex_service_name(),
            canary_namespace(canary)?
        )));
    }
    Ok(())
}

/// The RouteTable Serin applies: name `<apex>`, the Canary's namespace, `service.apex`'s
/// labels and annotations plus the Flux opt-out, the owner reference when the table is (to
/// be) Serin's.
pub fn route_table_object(
    canary: &Canary,
    owner: Option<OwnerReference>,
    spec: RouteTableSpec,
) -> Result<RouteTable, RouterError> {
    let namespace = canary_namespace(canary)?;
    let (service, _) = canary_service(canary)?;
    let RouteMetadata {
        labels,
        annotations,
    } = route_metadata(service);
    let metadata = ObjectMeta {
        name: Some(canary.spec.apex_service_name().to_string()),
        namespace: Some(namespace.to_string()),
        labels: (!labels.is_empty()).then_some(labels),
        annotations: Some(annotations),
        owner_references: owner.map(|o| vec![o]),
        ..Default::default()
    };
    Ok(RouteTable::new(metadata, spec))
}

fn without_weights(spec: &RouteTableSpec) -> RouteTableSpec {
    let mut spec = spec.clone();
    for route in &mut spec.routes {
        let destinations = route
            .route_action
            .iter_mut()
            .flat_map(|a| a.multi.iter_mut())
            .flat_map(|m| m.destinations.iter_mut());
        for d in destinations {
            d.weight = None;
        }
    }
    spec
}

/// Whether `Reconcile` must rewrite the live RouteTable (which resets the weights to 100/0,
/// as in Flagger): the specs differ with weights ignored, or a desired label or annotation
/// is missing. Keys other controllers added are left alone (server-side apply keeps them, so
/// demanding equality would rewrite the table on every tick).
pub fn route_table_needs_update(live: &RouteTable, desired: &RouteTable) -> bool {
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

/// The split a live RouteTable carries (Flagger's `GetRoutes`): the primary Upstream's weight
/// in the first route, the canary getting the rest of 100. A first route with fewer than two
/// destinations is an error; one without the primary reads as 0/0.
pub fn read_routes(canary: &Canary, spec: &RouteTableSpec) -> Result<Routes, RouterError> {
    let names = upstream_names(canary)?;
    let destinations = spec
        .routes
        .first()
        .and_then(|r| r.route_action.as_ref())
        .and_then(|a| a.multi.as_ref())
        .map(|m| m.destinations.as_slice())
        .unwrap_or_default();
    if destinations.len() < 2 {
        return Err(RouterError::Refused(format!(
            "RouteTable {}.{} destinations not found",
            canary.spec.apex_service_name(),
            canary_namespace(canary)?
        )));
    }
    let primary = destinations.iter().find(|d| {
        d.destination
            .upstream
            .as_ref()
            .is_some_and(|u| u.name == names.primary)
    });
    Ok(match primary {
        Some(d) => {
            let weight = d.weight.unwrap_or(0).min(100);
            Routes::new(weight, 100 - weight)
        }
        None => Routes::new(0, 0),
    })
}

// ---------------------------------------------------------------------------------------
// What Gloo (as Flagger drives it) cannot express
// ---------------------------------------------------------------------------------------

fn problem(field: String, problem: &str, fix: &str) -> Inexpressible {
    Inexpressible {
        field,
        problem: format!("provider {PROVIDER:?} {problem}"),
        fix: fix.to_string(),
    }
}

fn has_conditions(request: &HttpMatchRequest) -> bool {
    request.headers.as_ref().is_some_and(|h| !h.is_empty()) || request.method.is_some()
}

fn header_expressible(selector: &StringMatch) -> bool {
    non_empty(&selector.exact).is_some() || non_empty(&selector.regex).is_some()
}

/// Everything in the Canary that Flagger's Gloo router would drop or turn into a different
/// condition. Its A/B matcher only knows header values (exact or regex) and exact methods,
/// all ANDed in one matcher; it has no session affinity.
pub fn inexpressible(canary: &Canary) -> Vec<Inexpressible> {
    let Some(analysis) = canary.analysis() else {
        return Vec::new();
    };
    let base = format!("spec.{}", canary.spec.analysis_field());
    let mut out = Vec::new();
    let requests = analysis.matches();
    for (i, request) in requests.iter().enumerate() {
        let field = format!("{base}.match[{i}]");
        for (name, selector) in request.headers.iter().flatten() {
            if !header_expressible(selector) {
                // Flagger would write the empty exact value: a presence check.
                out.push(problem(
                    format!("{field}.headers.{name}"),
                    "matches headers by exact value or regex only",
                    "use exact or regex (a prefix /^value/ or suffix /value$/ can be written \
                     as a regex)",
                ));
            }
        }
        if let Some(method) = &request.method
            && non_empty(&method.exact).is_none()
        {
            out.push(problem(
                format!("{field}.method"),
                "matches the method by exact name only",
                "use method.exact",
            ));
        }
        // Gloo matches the method itself (above); gateways are a mesh notion it lacks.
        let dropped = set_match_fields(request)
            .into_iter()
            .filter(|key| *key != "method");
        for key in dropped {
            let (problem_text, fix) = if key == "gateways" {
                (
                    "has no gateway condition in A/B matches; gateways would be ignored"
                        .to_string(),
                    "remove gateways".to_string(),
                )
            } else {
                (
                    format!(
                        "matches A/B requests on headers and method only; {key} would be \
                         ignored, sending more requests to the canary than intended"
                    ),
                    format!(
                        "remove {key} and express the condition as a header match (paths \
                         belong in the VirtualService that delegates to the RouteTable)"
                    ),
                )
            };
            out.push(problem(format!("{field}.{key}"), &problem_text, &fix));
        }
    }
    // One matcher ANDs its headers; Istio's match list is an OR. Entries that only name a
    // method are the exception: Gloo's method list is an OR too.
    let conditional: Vec<&HttpMatchRequest> =
        requests.iter().filter(|r| has_conditions(r)).collect();
    let methods_only = conditional
        .iter()
        .all(|r| r.headers.as_ref().is_none_or(BTreeMap::is_empty));
    if conditional.len() > 1 && !methods_only {
        out.push(problem(
            format!("{base}.match"),
            "puts every match entry into one matcher, so a request would have to satisfy \
             all entries instead of any one of them",
            "use a single match entry (one header regex can list alternatives, e.g. \
             '^(a|b)$')",
        ));
    }
    if analysis.session_affinity.is_some() {
        out.push(problem(
            format!("{base}.sessionAffinity"),
            "has no session affinity; sessionAffinity would be ignored",
            "remove sessionAffinity, or use istio or a Gateway API provider",
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------
// I/O
// ---------------------------------------------------------------------------------------

/// Writes and reads the Upstreams and the RouteTable of `provider: gloo` canaries.
#[derive(Clone)]
pub struct GlooRouter {
    client: Client,
    include_label_prefixes: Vec<String>,
}

impl GlooRouter {
    pub fn new(client: Client) -> Self {
        GlooRouter {
            client,
            include_label_prefixes: Vec::new(),
        }
    }

    /// Label prefixes copied from the `upstreamRef` Upstream to the generated ones
    /// (`--include-label-prefix`; none by default).
    pub fn with_include_label_prefixes(mut self, prefixes: Vec<String>) -> Self {
        self.include_label_prefixes = prefixes;
        self
    }

    /// What Flagger's Finalize does for Gloo: nothing. The generated objects are owned by the
    /// Canary and go with it.
    pub async fn finalize(&self, _canary: &Canary) -> Result<(), RouterError> {
        Ok(())
    }

    fn upstreams(&self, namespace: &str) -> Api<Upstream> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn route_tables(&self, namespace: &str) -> Api<RouteTable> {
        Api::namespaced(self.client.clone(), namespace)
    }

    async fn config_upstream(&self, canary: &Canary) -> Result<Option<Upstream>, RouterError> {
        let Some((name, namespace)) = config_upstream_ref(canary)? else {
            return Ok(None);
        };
        let upstream = self
            .upstreams(&namespace)
            .get(&name)
            .await
            .map_err(api_error("Upstream", &name, &namespace, ApiAction::Get))?;
        Ok(Some(upstream))
    }

    /// Creates the Upstream for `service_name` if it is missing; otherwise only keeps its
    /// `loadBalancerConfig` in step with the referenced Upstream.
    async fn ensure_upstream(
        &self,
        canary: &Canary,
        name: &str,
        service_name: &str,
        config: Option<&Upstream>,
    ) -> Result<(), RouterError> {
        let namespace = canary_namespace(canary)?;
        let api = self.upstreams(namespace);
        let live = api.get_opt(name).await.map_err(api_error(
            "Upstream",
            name,
            namespace,
            ApiAction::Get,
        ))?;
        match (live, config) {
            (None, _) => {
                let services: Api<Service> = Api::namespaced(self.client.clone(), namespace);
                let service = services.get(service_name).await.map_err(api_error(
                    "Service",
                    service_name,
                    namespace,
                    ApiAction::Get,
                ))?;
                let selector = service.spec.and_then(|s| s.selector).unwrap_or_default();
                let upstream = desired_upstream(
                    canary,
                    name,
                    service_name,
                    selector,
                    config,
                    &self.include_label_prefixes,
                )?;
                api.patch(name, &strict_apply(), &Patch::Apply(&upstream))
                    .await
                    .map_err(api_error("Upstream", name, namespace, ApiAction::Apply))?;
                tracing::info!(canary = %canary.dotted_name(), "Upstream {name}.{namespace} created");
            }
            (Some(live), Some(config)) => {
                if let Some(patch) = load_balancer_patch(&live, config) {
                    let mut params = PatchParams {
                        field_manager: Some(FIELD_MANAGER.to_string()),
                        ..Default::default()
                    };
                    params.field_validation = Some(kube::api::ValidationDirective::Strict);
                    api.patch(name, &params, &Patch::Merge(&patch))
                        .await
                        .map_err(api_error("Upstream", name, namespace, ApiAction::Update))?;
                    tracing::info!(
                        canary = %canary.dotted_name(),
                        "Upstream {name}.{namespace} loadBalancerConfig updated"
                    );
                }
            }
            (Some(_), None) => {}
        }
        Ok(())
    }

    /// Server-side apply of the whole RouteTable. The owner reference is only written on a
    /// table Serin creates or already owns: one someone else made keeps its owners.
    async fn apply_route_table(
        &self,
        canary: &Canary,
        live: Option<&RouteTable>,
        spec: RouteTableSpec,
    ) -> Result<(), RouterError> {
        let canary_name = canary.metadata.name.as_deref().unwrap_or_default();
        let owner = match live {
            Some(live) if !controlled_by(&live.metadata, canary_name) => None,
            _ => Some(owner_reference(canary)?),
        };
        let object = route_table_object(canary, owner, spec)?;
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        self.route_tables(namespace)
            .patch(name, &strict_apply(), &Patch::Apply(&object))
            .await
            .map_err(api_error("RouteTable", name, namespace, ApiAction::Apply))?;
        Ok(())
    }

    async fn live_route_table(&self, canary: &Canary) -> Result<RouteTable, RouterError> {
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        self.route_tables(namespace)
            .get(name)
            .await
            .map_err(api_error("RouteTable", name, namespace, ApiAction::Get))
    }
}

impl Router for GlooRouter {
    /// Creates the two Upstreams and the RouteTable at 100/0; rewrites the table when
    /// [`route_table_needs_update`] says so.
    async fn reconcile(&self, canary: &Canary) -> Result<(), RouterError> {
        // Built first: a Canary Serin refuses gets no Upstreams either.
        let spec = route_table_spec(canary, Routes::INITIAL)?;
        let names = upstream_names(canary)?;
        let config = self.config_upstream(canary).await?;
        self.ensure_upstream(
            canary,
            &names.primary,
            &canary.spec.primary_service_name(),
            config.as_ref(),
        )
        .await?;
        self.ensure_upstream(
            canary,
            &names.canary,
            &canary.spec.canary_service_name(),
            config.as_ref(),
        )
        .await?;

        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        let live = self
            .route_tables(namespace)
            .get_opt(name)
            .await
            .map_err(api_error("RouteTable", name, namespace, ApiAction::Get))?;
        match &live {
            None => {
                self.apply_route_table(canary, None, spec).await?;
                tracing::info!(canary = %canary.dotted_name(), "RouteTable {name}.{namespace} created");
            }
            Some(live) => {
                let desired = route_table_object(canary, None, spec.clone())?;
                if route_table_needs_update(live, &desired) {
                    self.apply_route_table(canary, Some(live), spec).await?;
                    tracing::info!(canary = %canary.dotted_name(), "RouteTable {name}.{namespace} updated");
                }
            }
        }
        Ok(())
    }

    async fn set_routes(
        &self,
        canary: &Canary,
        routes: Routes,
        _status: &mut CanaryStatus,
    ) -> Result<(), RouterError> {
        check_weights(canary, routes)?;
        // Flagger's SetRoutes rewrites the table Reconcile made; a missing one is an error.
        let live = self.live_route_table(canary).await?;
        let spec = route_table_spec(canary, routes)?;
        self.apply_route_table(canary, Some(&live), spec).await
    }

    async fn get_routes(&self, canary: &Canary) -> Result<Routes, RouterError> {
        let live = self.live_route_table(canary).await?;
        read_routes(canary, &live.spec)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
