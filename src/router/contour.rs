//! Contour: the HTTPProxy `<apex>` with weighted services (Flagger reference §4.6).
//!
//! One HTTPProxy named after the apex Service, in the Canary's namespace, sends the traffic
//! of `service.match[0].uri.prefix` (or `/`) to `<apex>-primary` and `<apex>-canary` by
//! weight. A parent HTTPProxy with the virtual host includes it (the Contour guide's
//! `podinfo-ingress`); Serin never writes a virtualhost. Everything Flagger derives from the
//! Canary is built by pure functions: [`proxy_spec`] (the spec `Reconcile` and `SetRoutes`
//! write), [`proxy_needs_update`] (when `Reconcile` rewrites a live proxy), [`read_routes`]
//! (what `GetRoutes` reports) and [`inexpressible`] (what this router refuses).

mod types;

pub use types::*;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::Patch;
use kube::{Api, Client, Resource};

use super::gateway_api::{RouteMetadata, route_metadata};
use super::{
    ApiAction, Inexpressible, Router, RouterError, Routes, api_error, canary_namespace,
    canary_service, controlled_by, owner_reference, strict_apply,
};
use super::{refuse, set_match_fields};
use crate::api::{Canary, CanaryService, CanaryStatus, HttpMatchRequest, StringMatch};

/// The `spec.provider` value this router serves.
pub const PROVIDER: &str = "contour";
/// The header Linkerd reads to route a request to a Service rather than to the pod Envoy
/// picked; Flagger sets it on both upstreams so Contour works in front of a Linkerd mesh.
pub const LINKERD_DST_OVERRIDE: &str = "l5d-dst-override";
/// The per-route idle timeout Flagger writes along with `service.timeout`.
pub const IDLE_TIMEOUT: &str = "5m";
const DEFAULT_PREFIX: &str = "/";
/// Contour's `retryPolicy.retryOn` enum (v1.33 CRD).
pub const RETRY_ON: [&str; 16] = [
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

// ---------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// The path prefix every route matches: `service.match[0].uri.prefix`, else `/`
/// (Flagger's `makePrefix`).
pub fn route_prefix(service: &CanaryService) -> &str {
    service
        .r#match
        .as_deref()
        .and_then(<[_]>::first)
        .and_then(|m| m.uri.as_ref())
        .and_then(|uri| non_empty(&uri.prefix))
        .unwrap_or(DEFAULT_PREFIX)
}

/// Flagger's header mapping: exact stays exact; prefix and suffix become `contains` (Contour
/// has neither; the Contour guide relies on this for `user-agent` and `cookie`), prefix
/// winning over suffix. Anything else leaves a bare name, which [`inexpressible`] refuses.
fn header_condition(name: &str, selector: &StringMatch) -> HeaderMatchCondition {
    let contains = non_empty(&selector.prefix).or(non_empty(&selector.suffix));
    HeaderMatchCondition {
        name: name.to_string(),
        exact: contains
            .is_none()
            .then(|| non_empty(&selector.exact))
            .flatten()
            .map(str::to_string),
        contains: contains.map(str::to_string),
    }
}

/// The A/B route's conditions (Flagger's `makeConditions`): one per `analysis.match` header,
/// each with the route prefix. Headers come out sorted by name (Go iterates a map; a
/// stable order keeps the proxy from changing between ticks).
pub fn ab_conditions(matches: &[HttpMatchRequest], prefix: &str) -> Vec<MatchCondition> {
    matches
        .iter()
        .flat_map(|m| m.headers.iter().flatten())
        .map(|(name, selector)| MatchCondition {
            prefix: Some(prefix.to_string()),
            header: Some(header_condition(name, selector)),
        })
        .collect()
}

fn timeout_policy(service: &CanaryService) -> Option<TimeoutPolicy> {
    non_empty(&service.timeout).map(|timeout| TimeoutPolicy {
        response: Some(timeout.to_string()),
        idle: Some(IDLE_TIMEOUT.to_string()),
    })
}

/// `retryOn` split on commas as Flagger does; blanks around and between the commas are
/// dropped (Flagger would write `""` or `" 5xx"`, which Contour's enum refuses).
fn retry_on(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

fn retry_policy(service: &CanaryService) -> Option<RetryPolicy> {
    service.retries.as_ref().map(|retries| RetryPolicy {
        count: i64::from(retries.attempts.unwrap_or_default()),
        per_try_timeout: non_empty(&retries.per_try_timeout).map(str::to_string),
        retry_on: retry_on(retries.retry_on.as_deref()),
    })
}

/// What every route of one Canary's proxy is built from.
struct Plan<'a> {
    service: &'a CanaryService,
    namespace: &'a str,
    port: i32,
    primary: String,
    canary: String,
}

impl<'a> Plan<'a> {
    fn new(canary: &'a Canary) -> Result<Self, RouterError> {
        let (service, port) = canary_service(canary)?;
        Ok(Plan {
            service,
            namespace: canary_namespace(canary)?,
            port,
            primary: canary.spec.primary_service_name(),
            canary: canary.spec.canary_service_name(),
        })
    }

    fn upstream(&self, name: &str, weight: u32) -> Service {
        Service {
            name: name.to_string(),
            port: self.port,
            weight: Some(i64::from(weight)),
            request_headers_policy: Some(HeadersPolicy {
                set: vec![HeaderValue {
                    name: LINKERD_DST_OVERRIDE.into(),
                    value: format!("{name}.{}.svc.cluster.local:{}", self.namespace, self.port),
                }],
                remove: Vec::new(),
            }),
        }
    }

    fn route(&self, conditions: Vec<MatchCondition>, routes: Routes) -> Route {
        Route {
            conditions,
            services: vec![
                self.upstream(&self.primary, routes.primary),
                self.upstream(&self.canary, routes.canary),
            ],
            timeout_policy: timeout_policy(self.service),
            retry_policy: retry_policy(self.service),
        }
    }
}

/// The HTTPProxy spec for `routes` (Flagger's `Reconcile` writes it at 100/0, `SetRoutes`
/// at the weights of the step).
///
/// Without A/B: one route on the prefix. With `analysis.match`: the route carrying the
/// weights takes the requests matching the header conditions, and a second route on the
/// prefix sends the rest to the primary (100/0).
pub fn proxy_spec(
    canary: &Canary,
    ingress_class: Option<&str>,
    routes: Routes,
) -> Result<HttpProxySpec, RouterError> {
    let plan = Plan::new(canary)?;
    let prefix = route_prefix(plan.service);
    let on_prefix = || {
        vec![MatchCondition {
            prefix: Some(prefix.to_string()),
            header: None,
        }]
    };
    let matches = canary.analysis().map(|a| a.matches()).unwrap_or_default();
    let routes = if matches.is_empty() {
        vec![plan.route(on_prefix(), routes)]
    } else {
        vec![
            plan.route(ab_conditions(matches, prefix), routes),
            plan.route(on_prefix(), Routes::INITIAL),
        ]
    };
    Ok(HttpProxySpec {
        ingress_class_name: ingress_class.filter(|c| !c.is_empty()).map(str::to_string),
        routes,
    })
}

/// The proxy Serin applies: name `<apex>`, the Canary's namespace, `service.apex` labels and
/// annotations plus the Flux opt-out, the owner reference when the proxy is (to be) Serin's.
pub fn proxy_object(
    canary: &Canary,
    owner: Option<OwnerReference>,
    spec: HttpProxySpec,
) -> Result<HttpProxy, RouterError> {
    let namespace = canary_namespace(canary)?;
    let (service, _) = canary_service(canary)?;
    let metadata = route_metadata(service);
    Ok(HttpProxy {
        api_version: HttpProxy::api_version(&()).into_owned(),
        kind: HttpProxy::kind(&()).into_owned(),
        metadata: ObjectMeta {
            name: Some(canary.spec.apex_service_name().to_string()),
            namespace: Some(namespace.to_string()),
            labels: (!metadata.labels.is_empty()).then_some(metadata.labels),
            annotations: Some(metadata.annotations),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec,
        status: None,
    })
}

// ---------------------------------------------------------------------------------------
// Reconcile update rule and GetRoutes
// ---------------------------------------------------------------------------------------

fn without_weights(spec: &HttpProxySpec) -> Vec<Route> {
    let mut routes = spec.routes.clone();
    for service in routes.iter_mut().flat_map(|r| r.services.iter_mut()) {
        service.weight = None;
    }
    routes
}

/// Whether `Reconcile` must rewrite the live proxy (Flagger's comparison).
///
/// The routes are compared with service weights ignored (weights belong to `SetRoutes`);
/// fields Serin does not type (a virtualhost someone else wrote) are not compared, and
/// neither is `ingressClassName` when no ingress class is configured: under server-side
/// apply those stay with their owner, so comparing them would rewrite the proxy, and reset
/// its weights, on every tick.
///
/// Metadata: every desired label and annotation must be present with its value; keys other
/// controllers added are left alone (the same reason; Flagger demands equality).
pub fn proxy_needs_update(
    live_metadata: &ObjectMeta,
    live_spec: &HttpProxySpec,
    desired_metadata: &RouteMetadata,
    desired_spec: &HttpProxySpec,
) -> bool {
    let class_differs = desired_spec.ingress_class_name.is_some()
        && desired_spec.ingress_class_name != live_spec.ingress_class_name;
    let missing = |desired: &std::collections::BTreeMap<String, String>,
                   live: &Option<std::collections::BTreeMap<String, String>>| {
        desired
            .iter()
            .any(|(k, v)| live.as_ref().and_then(|l| l.get(k)) != Some(v))
    };
    class_differs
        || without_weights(live_spec) != without_weights(desired_spec)
        || missing(&desired_metadata.labels, &live_metadata.labels)
        || missing(&desired_metadata.annotations, &live_metadata.annotations)
}

/// The weights a live proxy carries (Flagger's `GetRoutes`): the primary's weight on the
/// first route (the A/B route when there is one), the canary the rest of 100. Contour
/// cannot mirror here, so never `mirrored`.
pub fn read_routes(
    canary: &Canary,
    namespace: &str,
    spec: &HttpProxySpec,
) -> Result<Routes, RouterError> {
    let first = spec.routes.first().filter(|r| r.services.len() >= 2);
    let Some(first) = first else {
        return Err(RouterError::Refused(format!(
            "HTTPProxy {}.{namespace} services not found",
            canary.spec.apex_service_name()
        )));
    };
    let primary = canary.spec.primary_service_name();
    Ok(first
        .services
        .iter()
        .find(|s| s.name == primary)
        .map(|s| {
            let weight = u32::try_from(s.weight.unwrap_or_default().clamp(0, 100)).unwrap_or(0);
            Routes::new(weight, 100 - weight)
        })
        .unwrap_or_default())
}

/// Flagger's `SetRoutes` refuses a split that sends traffic nowhere (Contour would split it
/// evenly).
pub fn valid_weights(canary: &Canary, routes: Routes) -> Result<(), RouterError> {
    if routes.primary == 0 && routes.canary == 0 {
        return Err(RouterError::Refused(format!(
            "HTTPProxy {}.{} update failed: no valid weights",
            canary.spec.apex_service_name(),
            canary_namespace(canary)?
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// What the router cannot express
// ---------------------------------------------------------------------------------------

/// Contour's duration pattern (`timeoutPolicy.response`, `retryPolicy.perTryTimeout`):
/// `infinity`, `infinite`, or one or more `<digits>[.<digits>]<unit>` with units
/// h, m, s, ms, us, µs, ns.
pub fn is_contour_duration(value: &str) -> bool {
    if matches!(value, "infinity" | "infinite") {
        return true;
    }
    let mut rest = value;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        if let Some(after) = rest.strip_prefix('.') {
            rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
        }
        let Some(unit) = ["ms", "us", "µs", "ns", "h", "m", "s"]
            .into_iter()
            .find(|u| rest.starts_with(u))
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

fn problem(field: String, problem: String, fix: impl Into<String>) -> Inexpressible {
    Inexpressible {
        field,
        problem,
        fix: fix.into(),
    }
}

/// Everything in the Canary that Flagger's Contour HTTPProxy cannot express, or would
/// express as a proxy Contour rejects or one that routes other requests than asked.
///
/// A/B matches are header conditions only: exact stays exact, prefix and suffix become
/// `contains` (Flagger's mapping, which the Contour guide uses); a regex or an empty
/// condition would leave a bare header name, which Contour ignores, sending every request
/// to the A/B route. Each header becomes its own condition carrying the route prefix, and
/// Contour refuses a route with two prefixes, so one header condition in all. Mirroring and
/// session affinity have no place in the proxy Flagger writes.
pub fn inexpressible(canary: &Canary) -> Vec<Inexpressible> {
    let quoted = format!("{PROVIDER:?}");
    let mut out = Vec::new();
    if let Some(service) = canary.spec.service.as_ref() {
        let prefix = route_prefix(service);
        if !prefix.starts_with('/') {
            out.push(problem(
                "spec.service.match[0].uri.prefix".into(),
                format!("provider {quoted} needs a path prefix that starts with /, not {prefix:?}"),
                format!("write the prefix as /{prefix}"),
            ));
        }
        if let Some(timeout) = non_empty(&service.timeout)
            && !is_contour_duration(timeout)
        {
            out.push(problem(
                "spec.service.timeout".into(),
                format!("provider {quoted} takes a duration like 15s, 1m30s or infinity, not {timeout:?}"),
                "write the timeout as a Go duration with units (e.g. 15s)",
            ));
        }
        if let Some(retries) = service.retries.as_ref() {
            if let Some(per_try) = non_empty(&retries.per_try_timeout)
                && !is_contour_duration(per_try)
            {
                out.push(problem(
                    "spec.service.retries.perTryTimeout".into(),
                    format!("provider {quoted} takes a duration like 5s, not {per_try:?}"),
                    "write perTryTimeout as a Go duration with units (e.g. 5s)",
                ));
            }
            for value in retry_on(retries.retry_on.as_deref()) {
                if !RETRY_ON.contains(&value.as_str()) {
                    out.push(problem(
                        "spec.service.retries.retryOn".into(),
                        format!("provider {quoted} does not know the retry condition {value:?}"),
                        format!("use a comma-separated list of: {}", RETRY_ON.join(", ")),
                    ));
                }
            }
        }
    }
    let Some(analysis) = canary.analysis() else {
        return out;
    };
    let a = format!("spec.{}", canary.spec.analysis_field());
    let mut headers_seen = 0usize;
    for (i, m) in analysis.matches().iter().enumerate() {
        let field = format!("{a}.match[{i}]");
        for name in set_match_fields(m) {
            out.push(problem(
                format!("{field}.{name}"),
                format!("provider {quoted} matches A/B requests by headers only; {name} cannot be expressed"),
                format!("remove {name} and match on a header"),
            ));
        }
        let headers = m.headers.iter().flatten();
        if m.headers.as_ref().is_none_or(|h| h.is_empty()) {
            out.push(problem(
                field.clone(),
                format!("provider {quoted} needs a header condition in every A/B match; without one every request goes to the canary"),
                "add headers with an exact, prefix or suffix condition",
            ));
        }
        for (name, selector) in headers {
            let header = format!("{field}.headers.{name}");
            let condition = header_condition(name, selector);
            if condition.exact.is_none() && condition.contains.is_none() {
                out.push(problem(
                    header.clone(),
                    format!("provider {quoted} matches headers by exact value, prefix or suffix only (prefix and suffix as \"contains\")"),
                    "use exact, prefix or suffix with a non-empty value",
                ));
            }
            headers_seen += 1;
            if headers_seen > 1 {
                out.push(problem(
                    header,
                    format!("provider {quoted} can A/B test on one header condition only: each header becomes a condition with its own path prefix, and Contour refuses a route with two prefixes"),
                    "keep a single header condition across all of match",
                ));
            }
        }
    }
    if analysis.mirror() {
        out.push(problem(
            format!("{a}.mirror"),
            format!("provider {quoted} does not mirror traffic"),
            "remove mirror, or use istio or a Gateway API provider",
        ));
    }
    if analysis.session_affinity.is_some() {
        out.push(problem(
            format!("{a}.sessionAffinity"),
            format!("provider {quoted} has no session affinity"),
            "remove sessionAffinity, or use istio or a Gateway API provider",
        ));
    }
    out
}

/// Fields of `spec.service` that Flagger's Contour router silently ignores; worth a
/// warning, not a refusal (Flagger's own test Canaries carry some of them).
pub fn ignored_fields(canary: &Canary) -> Vec<Inexpressible> {
    let quoted = format!("{PROVIDER:?}");
    let Some(service) = canary.spec.service.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, m) in service.r#match.iter().flatten().enumerate() {
        let field = format!("spec.service.match[{i}]");
        let mut fields: Vec<String> = set_match_fields(m).into_iter().map(String::from).collect();
        if m.headers.as_ref().is_some_and(|h| !h.is_empty()) {
            fields.push("headers".into());
        }
        if i == 0 {
            fields.retain(|f| f != "uri");
            if let Some(uri) = &m.uri
                && (uri.exact.is_some() || uri.suffix.is_some() || uri.regex.is_some())
            {
                fields.push("uri".into());
            }
        }
        for name in fields {
            out.push(problem(
                format!("{field}.{name}"),
                format!("provider {quoted} routes on service.match[0].uri.prefix only; {name} is ignored"),
                "route with service.match[0].uri.prefix, or remove the condition",
            ));
        }
    }
    let set = [
        ("headers", service.headers.is_some()),
        ("corsPolicy", service.cors_policy.is_some()),
        ("rewrite", service.rewrite.is_some()),
        (
            "mirror",
            service.mirror.as_ref().is_some_and(|m| !m.is_empty()),
        ),
        (
            "backendTimeout",
            non_empty(&service.backend_timeout).is_some(),
        ),
    ];
    for (name, _) in set.into_iter().filter(|(_, set)| *set) {
        out.push(problem(
            format!("spec.service.{name}"),
            format!("provider {quoted} ignores service.{name}"),
            format!("remove service.{name}, or configure it on the parent HTTPProxy"),
        ));
    }
    out
}

/// The refusal for input [`inexpressible`] flags, checked before any write.
fn refuse_inexpressible(canary: &Canary) -> Result<(), RouterError> {
    refuse(canary, "HTTPProxy", &inexpressible(canary))
}

// ---------------------------------------------------------------------------------------
// I/O
// ---------------------------------------------------------------------------------------

/// Writes and reads the HTTPProxy of `contour` canaries.
#[derive(Clone)]
pub struct ContourRouter {
    client: Client,
    ingress_class: Option<String>,
}

impl ContourRouter {
    /// `ingress_class`: the Contour instance's class (`-ingress-class`), written as
    /// `spec.ingressClassName`.
    pub fn new(client: Client, ingress_class: Option<String>) -> Self {
        ContourRouter {
            client,
            ingress_class: ingress_class.filter(|c| !c.is_empty()),
        }
    }

    /// Flagger's Contour router has nothing to undo: the proxy is the Canary's (owner
    /// reference) and goes with it.
    pub async fn finalize(&self, _canary: &Canary) -> Result<(), RouterError> {
        Ok(())
    }

    fn api(&self, namespace: &str) -> Api<HttpProxy> {
        Api::namespaced(self.client.clone(), namespace)
    }

    async fn get(&self, canary: &Canary) -> Result<Option<HttpProxy>, RouterError> {
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        self.api(namespace).get_opt(name).await.map_err(api_error(
            HTTP_PROXY_KIND,
            name,
            namespace,
            ApiAction::Get,
        ))
    }

    async fn live(&self, canary: &Canary) -> Result<HttpProxy, RouterError> {
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        self.api(namespace).get(name).await.map_err(api_error(
            HTTP_PROXY_KIND,
            name,
            namespace,
            ApiAction::Get,
        ))
    }

    /// Server-side apply of the whole proxy. The owner reference is only written on a proxy
    /// Serin creates or already owns: a proxy someone else made keeps its owners.
    async fn apply(
        &self,
        canary: &Canary,
        live: Option<&HttpProxy>,
        spec: HttpProxySpec,
    ) -> Result<(), RouterError> {
        let canary_name = canary.metadata.name.as_deref().unwrap_or_default();
        let owner = match live {
            Some(live) if !controlled_by(&live.metadata, canary_name) => None,
            _ => Some(owner_reference(canary)?),
        };
        let object = proxy_object(canary, owner, spec)?;
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        self.api(namespace)
            .patch(name, &strict_apply(), &Patch::Apply(&object))
            .await
            .map_err(api_error(
                HTTP_PROXY_KIND,
                name,
                namespace,
                ApiAction::Apply,
            ))?;
        Ok(())
    }
}

impl Router for ContourRouter {
    /// Creates the proxy at 100/0, or rewrites it when [`proxy_needs_update`] says so.
    async fn reconcile(&self, canary: &Canary) -> Result<(), RouterError> {
        refuse_inexpressible(canary)?;
        let desired = proxy_spec(canary, self.ingress_class.as_deref(), Routes::INITIAL)?;
        let (service, _) = canary_service(canary)?;
        let proxy = format!(
            "{}.{}",
            canary.spec.apex_service_name(),
            canary_namespace(canary)?
        );
        match self.get(canary).await? {
            None => {
                self.apply(canary, None, desired).await?;
                tracing::info!(canary = %canary.dotted_name(), "HTTPProxy {proxy} created");
            }
            Some(live)
                if proxy_needs_update(
                    &live.metadata,
                    &live.spec,
                    &route_metadata(service),
                    &desired,
                ) =>
            {
                self.apply(canary, Some(&live), desired).await?;
                tracing::info!(canary = %canary.dotted_name(), "HTTPProxy {proxy} updated");
            }
            Some(_) => {}
        }
        Ok(())
    }

    async fn set_routes(
        &self,
        canary: &Canary,
        routes: Routes,
        _status: &mut CanaryStatus,
    ) -> Result<(), RouterError> {
        valid_weights(canary, routes)?;
        refuse_inexpressible(canary)?;
        // Flagger's SetRoutes rewrites the proxy Reconcile made; a missing one is an error.
        let live = self.live(canary).await?;
        let spec = proxy_spec(canary, self.ingress_class.as_deref(), routes)?;
        self.apply(canary, Some(&live), spec).await
    }

    async fn get_routes(&self, canary: &Canary) -> Result<Routes, RouterError> {
        let live = self.live(canary).await?;
        read_routes(canary, canary_namespace(canary)?, &live.spec)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
