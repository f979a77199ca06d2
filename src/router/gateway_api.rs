//! The HTTPRoute of `gatewayapi:v1` and `gatewayapi:v1beta1` (Flagger reference §4.2).
//!
//! One HTTPRoute named after the apex Service, in the Canary's namespace, attached to
//! `service.gatewayRefs`, splits traffic between `<apex>-primary` and `<apex>-canary`.
//! Everything Flagger derives from the Canary is built here by pure functions:
//! [`reconcile_http_route_spec`] (the route `Reconcile` writes, weights 100/0),
//! [`desired_http_route`] (the route `SetRoutes` writes, with A/B rules, session-affinity
//! cookies and mirroring), [`route_needs_update`] (when `Reconcile` rewrites a live route),
//! [`parents_ready`] and [`read_routes`] (what `GetRoutes` checks and reports).
//!
//! Both API versions share one shape: the `gateway-api` crate's v1 types, served through
//! [`HttpRouteObject`] at `gateway.networking.k8s.io/v1` or `/v1beta1`. For v1beta1 the
//! builders leave out what Flagger's v1beta1 router never writes: CORS, timeouts and the
//! primary session cookie.

use std::borrow::Cow;
use std::collections::BTreeMap;

use gateway_api::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesBackendRefs,
    HttpRouteRulesBackendRefsFilters, HttpRouteRulesBackendRefsFiltersResponseHeaderModifier,
    HttpRouteRulesBackendRefsFiltersResponseHeaderModifierAdd,
    HttpRouteRulesBackendRefsFiltersType, HttpRouteRulesFilters, HttpRouteRulesFiltersCors,
    HttpRouteRulesFiltersRequestHeaderModifier, HttpRouteRulesFiltersRequestHeaderModifierAdd,
    HttpRouteRulesFiltersRequestHeaderModifierSet, HttpRouteRulesFiltersRequestMirror,
    HttpRouteRulesFiltersRequestMirrorBackendRef, HttpRouteRulesFiltersResponseHeaderModifier,
    HttpRouteRulesFiltersResponseHeaderModifierAdd, HttpRouteRulesFiltersResponseHeaderModifierSet,
    HttpRouteRulesFiltersType, HttpRouteRulesFiltersUrlRewrite,
    HttpRouteRulesFiltersUrlRewritePath, HttpRouteRulesFiltersUrlRewritePathType,
    HttpRouteRulesMatches, HttpRouteRulesMatchesHeaders, HttpRouteRulesMatchesHeadersType,
    HttpRouteRulesMatchesMethod, HttpRouteRulesMatchesPath, HttpRouteRulesMatchesPathType,
    HttpRouteRulesMatchesQueryParams, HttpRouteRulesMatchesQueryParamsType, HttpRouteRulesTimeouts,
    HttpRouteSpec, HttpRouteStatusParents,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::core::DynamicResourceScope;
use kube::{Api, Client, Resource};
use serde::{Deserialize, Serialize};

use super::cookie::{
    CookieValues, RandomLetters, SessionCookies, cookie_regex, new_cookie, set_cookie_value,
};
use super::{
    ApiAction, FIELD_MANAGER, MatchError, Router, RouterError, Routes, api_error, canary_namespace,
    canary_service, controlled_by, owner_reference, with_flux_opt_out,
};
use crate::api::{
    Canary, CanaryAnalysis, CanaryPhase, CanaryService, CanaryStatus, HeaderOperations,
    HttpMatchRequest, SessionAffinity, StringMatch, parse_go_duration,
};

/// The Gateway API group.
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";
/// The request header session-affinity rules match on.
pub const COOKIE_HEADER: &str = "Cookie";
/// The response header that issues session-affinity cookies.
pub const SET_COOKIE_HEADER: &str = "Set-Cookie";
/// Gateway API's `Accepted` route condition.
pub const ACCEPTED_CONDITION: &str = "Accepted";

const PRIMARY_ONLY_WEIGHT: u32 = 100;
/// Server-side defaults of the HTTPRoute CRD that the comparison must see on both sides.
const DEFAULT_BACKEND_WEIGHT: i32 = 1;
const DEFAULT_CORS_MAX_AGE: i32 = 5;
const DEFAULT_PATH: &str = "/";

/// The HTTPRoute API version a provider writes (Flagger's factory: `gatewayapi:v1beta1*` →
/// v1beta1, `gatewayapi:v1*` → v1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GatewayApiVersion {
    V1,
    V1beta1,
}

impl GatewayApiVersion {
    /// The version a `provider` value selects, `None` for a non-Gateway-API provider.
    pub fn from_provider(provider: &str) -> Option<Self> {
        if provider.starts_with("gatewayapi:v1beta1") {
            Some(GatewayApiVersion::V1beta1)
        } else if provider.starts_with("gatewayapi:v1") {
            Some(GatewayApiVersion::V1)
        } else {
            None
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            GatewayApiVersion::V1 => "v1",
            GatewayApiVersion::V1beta1 => "v1beta1",
        }
    }
}

/// An HTTPRoute at either served version, typed with the v1 spec.
///
/// v1beta1 and v1 HTTPRoutes have the same schema in Gateway API v1.4 (one CRD, two served
/// versions), so one Rust type serves both; the dynamic type picks the URL.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteObject {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: HttpRouteSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RouteStatus>,
}

/// The route status: which parents (Gateways) accepted the route. `parents` defaults to
/// empty so that a route whose status a controller has only started to write still reads.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RouteStatus {
    #[serde(default)]
    pub parents: Vec<HttpRouteStatusParents>,
}

impl Resource for HttpRouteObject {
    type DynamicType = GatewayApiVersion;
    type Scope = DynamicResourceScope;

    fn kind(_: &GatewayApiVersion) -> Cow<'_, str> {
        HttpRoute::kind(&())
    }

    fn group(_: &GatewayApiVersion) -> Cow<'_, str> {
        Cow::Borrowed(GATEWAY_API_GROUP)
    }

    fn version(version: &GatewayApiVersion) -> Cow<'_, str> {
        Cow::Borrowed(version.as_str())
    }

    fn plural(_: &GatewayApiVersion) -> Cow<'_, str> {
        HttpRoute::plural(&())
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Labels and annotations Serin sets on the HTTPRoute: `service.apex`'s, plus the Flux
/// opt-out annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteMetadata {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// The HTTPRoute's metadata from `service.apex`.
pub fn route_metadata(service: &CanaryService) -> RouteMetadata {
    let apex = service.apex.as_ref();
    RouteMetadata {
        labels: apex.and_then(|m| m.labels.clone()).unwrap_or_default(),
        annotations: with_flux_opt_out(apex.and_then(|m| m.annotations.as_ref())),
    }
}

// ---------------------------------------------------------------------------------------
// Matches
// ---------------------------------------------------------------------------------------

fn render(selector: &StringMatch) -> String {
    let fields = [
        ("exact", &selector.exact),
        ("prefix", &selector.prefix),
        ("suffix", &selector.suffix),
        ("regex", &selector.regex),
    ];
    let set: Vec<String> = fields
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v:?}")))
        .collect();
    format!("{{{}}}", set.join(", "))
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn method(name: &str) -> Option<HttpRouteRulesMatchesMethod> {
    use HttpRouteRulesMatchesMethod::*;
    Some(match name {
        "GET" => Get,
        "HEAD" => Head,
        "POST" => Post,
        "PUT" => Put,
        "DELETE" => Delete,
        "CONNECT" => Connect,
        "OPTIONS" => Options,
        "TRACE" => Trace,
        "PATCH" => Patch,
        _ => return None,
    })
}

/// Istio-style match requests as Gateway API matches (Flagger's `mapRouteMatches`).
///
/// uri regex/exact/prefix become path RegularExpression/Exact/PathPrefix (in that order of
/// precedence), method must be exact, headers and query parameters exact or regex. Fields
/// Gateway API has no counterpart for (scheme, authority, sourceLabels, ...) are ignored, and
/// a request that ends up empty is dropped. Headers come out sorted by name (Go iterates a
/// map; a stable order keeps the route from changing between ticks).
pub fn map_route_matches(
    requests: &[HttpMatchRequest],
) -> Result<Vec<HttpRouteRulesMatches>, MatchError> {
    let mut matches = Vec::new();
    for request in requests {
        let mut m = HttpRouteRulesMatches::default();
        if let Some(uri) = &request.uri {
            let (kind, value) = if let Some(v) = non_empty(&uri.regex) {
                (HttpRouteRulesMatchesPathType::RegularExpression, v)
            } else if let Some(v) = non_empty(&uri.exact) {
                (HttpRouteRulesMatchesPathType::Exact, v)
            } else if let Some(v) = non_empty(&uri.prefix) {
                (HttpRouteRulesMatchesPathType::PathPrefix, v)
            } else {
                return Err(MatchError::Path(render(uri)));
            };
            m.path = Some(HttpRouteRulesMatchesPath {
                r#type: Some(kind),
                value: Some(value.to_string()),
            });
        }
        if let Some(selector) = &request.method {
            let exact =
                non_empty(&selector.exact).ok_or_else(|| MatchError::Method(render(selector)))?;
            m.method = Some(method(exact).ok_or_else(|| MatchError::Method(render(selector)))?);
        }
        for (name, selector) in request.headers.iter().flatten() {
            let (kind, value) = if let Some(v) = non_empty(&selector.exact) {
                (HttpRouteRulesMatchesHeadersType::Exact, v)
            } else if let Some(v) = non_empty(&selector.regex) {
                (HttpRouteRulesMatchesHeadersType::RegularExpression, v)
            } else {
                return Err(MatchError::Header(format!("{name}: {}", render(selector))));
            };
            m.headers
                .get_or_insert_with(Vec::new)
                .push(HttpRouteRulesMatchesHeaders {
                    name: name.clone(),
                    r#type: Some(kind),
                    value: value.to_string(),
                });
        }
        for (name, selector) in request.query_params.iter().flatten() {
            let (kind, value) = if let Some(v) = non_empty(&selector.exact) {
                (HttpRouteRulesMatchesQueryParamsType::Exact, v)
            } else if let Some(v) = non_empty(&selector.regex) {
                (HttpRouteRulesMatchesQueryParamsType::RegularExpression, v)
            } else {
                return Err(MatchError::Query(format!("{name}: {}", render(selector))));
            };
            m.query_params
                .get_or_insert_with(Vec::new)
                .push(HttpRouteRulesMatchesQueryParams {
                    name: name.clone(),
                    r#type: Some(kind),
                    value: value.to_string(),
                });
        }
        if m != HttpRouteRulesMatches::default() {
            matches.push(m);
        }
    }
    Ok(matches)
}

/// Flagger's `mergeMatchConditions`: every analysis match combined with every service match,
/// the analysis match's headers and query parameters replacing the service match's when it
/// has any. Either side empty: the other side.
pub fn merge_match_conditions(
    analysis: &[HttpRouteRulesMatches],
    service: &[HttpRouteRulesMatches],
) -> Vec<HttpRouteRulesMatches> {
    if analysis.is_empty() {
        return service.to_vec();
    }
    if service.is_empty() {
        return analysis.to_vec();
    }
    let mut merged = Vec::with_capacity(analysis.len() * service.len());
    for a in analysis {
        for s in service {
            let mut m = s.clone();
            if a.headers.as_ref().is_some_and(|h| !h.is_empty()) {
                m.headers = a.headers.clone();
            }
            if a.query_params.as_ref().is_some_and(|q| !q.is_empty()) {
                m.query_params = a.query_params.clone();
            }
            merged.push(m);
        }
    }
    merged
}

fn path_prefix_root() -> HttpRouteRulesMatches {
    HttpRouteRulesMatches {
        path: Some(HttpRouteRulesMatchesPath {
            r#type: Some(HttpRouteRulesMatchesPathType::PathPrefix),
            value: Some(DEFAULT_PATH.into()),
        }),
        ..Default::default()
    }
}

fn cookie_match(cookie: &str) -> HttpRouteRulesMatches {
    HttpRouteRulesMatches {
        headers: Some(vec![HttpRouteRulesMatchesHeaders {
            name: COOKIE_HEADER.into(),
            r#type: Some(HttpRouteRulesMatchesHeadersType::RegularExpression),
            value: cookie_regex(cookie),
        }]),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------

fn request_headers(ops: &HeaderOperations) -> HttpRouteRulesFiltersRequestHeaderModifier {
    // BTreeMap iteration is Flagger's sort by name (then value: one value per name).
    HttpRouteRulesFiltersRequestHeaderModifier {
        add: non_empty_vec(ops.add.iter().flatten().map(|(name, value)| {
            HttpRouteRulesFiltersRequestHeaderModifierAdd {
                name: name.clone(),
                value: value.clone(),
            }
        })),
        set: non_empty_vec(ops.set.iter().flatten().map(|(name, value)| {
            HttpRouteRulesFiltersRequestHeaderModifierSet {
                name: name.clone(),
                value: value.clone(),
            }
        })),
        remove: ops.remove.clone().filter(|r| !r.is_empty()),
    }
}

fn response_headers(ops: &HeaderOperations) -> HttpRouteRulesFiltersResponseHeaderModifier {
    HttpRouteRulesFiltersResponseHeaderModifier {
        add: non_empty_vec(ops.add.iter().flatten().map(|(name, value)| {
            HttpRouteRulesFiltersResponseHeaderModifierAdd {
                name: name.clone(),
                value: value.clone(),
            }
        })),
        set: non_empty_vec(ops.set.iter().flatten().map(|(name, value)| {
            HttpRouteRulesFiltersResponseHeaderModifierSet {
                name: name.clone(),
                value: value.clone(),
            }
        })),
        remove: ops.remove.clone().filter(|r| !r.is_empty()),
    }
}

fn non_empty_vec<T>(items: impl Iterator<Item = T>) -> Option<Vec<T>> {
    let items: Vec<T> = items.collect();
    (!items.is_empty()).then_some(items)
}

fn filter(kind: HttpRouteRulesFiltersType) -> HttpRouteRulesFilters {
    HttpRouteRulesFilters {
        r#type: kind,
        cors: None,
        extension_ref: None,
        request_header_modifier: None,
        request_mirror: None,
        request_redirect: None,
        response_header_modifier: None,
        url_rewrite: None,
    }
}

/// The rule filters of `spec.service` in Flagger's order (`makeFilters`): request headers,
/// response headers, URL rewrite, one mirror per `service.mirror[]`, and (v1 only) CORS.
pub fn make_filters(
    service: &CanaryService,
    version: GatewayApiVersion,
) -> Vec<HttpRouteRulesFilters> {
    let mut filters = Vec::new();
    if let Some(headers) = &service.headers {
        if let Some(ops) = &headers.request {
            filters.push(HttpRouteRulesFilters {
                request_header_modifier: Some(request_headers(ops)),
                ..filter(HttpRouteRulesFiltersType::RequestHeaderModifier)
            });
        }
        if let Some(ops) = &headers.response {
            filters.push(HttpRouteRulesFilters {
                response_header_modifier: Some(response_headers(ops)),
                ..filter(HttpRouteRulesFiltersType::ResponseHeaderModifier)
            });
        }
    }
    if let Some(rewrite) = &service.rewrite {
        let path = non_empty(&rewrite.uri).map(|uri| {
            if rewrite.replaces_prefix() {
                HttpRouteRulesFiltersUrlRewritePath {
                    r#type: HttpRouteRulesFiltersUrlRewritePathType::ReplacePrefixMatch,
                    replace_prefix_match: Some(uri.to_string()),
                    replace_full_path: None,
                }
            } else {
                HttpRouteRulesFiltersUrlRewritePath {
                    r#type: HttpRouteRulesFiltersUrlRewritePathType::ReplaceFullPath,
                    replace_full_path: Some(uri.to_string()),
                    replace_prefix_match: None,
                }
            }
        });
        filters.push(HttpRouteRulesFilters {
            url_rewrite: Some(HttpRouteRulesFiltersUrlRewrite {
                hostname: non_empty(&rewrite.authority).map(str::to_string),
                path,
            }),
            ..filter(HttpRouteRulesFiltersType::UrlRewrite)
        });
    }
    for mirror in service.mirror.iter().flatten() {
        let Some(backend) = &mirror.backend_ref else {
            continue;
        };
        filters.push(HttpRouteRulesFilters {
            request_mirror: Some(HttpRouteRulesFiltersRequestMirror {
                backend_ref: HttpRouteRulesFiltersRequestMirrorBackendRef {
                    group: backend.group.clone(),
                    kind: backend.kind.clone(),
                    name: backend.name.clone().unwrap_or_default(),
                    namespace: backend.namespace.clone(),
                    port: backend.port,
                },
                fraction: None,
                percent: None,
            }),
            ..filter(HttpRouteRulesFiltersType::RequestMirror)
        });
    }
    if version == GatewayApiVersion::V1
        && let Some(cors) = &service.cors_policy
    {
        if cors.allow_origins.as_ref().is_some_and(|o| !o.is_empty()) {
            // Flagger logs and carries on: Gateway API's CORS filter has no origin patterns.
            tracing::error!(
                "corsPolicy.allowOrigins (exact/prefix/regex patterns) is not supported by \
                 Gateway API; use corsPolicy.allowOrigin"
            );
        }
        let max_age =
            cors.max_age.as_deref().filter(|m| !m.is_empty()).and_then(
                |raw| match parse_go_duration(raw) {
                    Ok(d) => Some(i32::try_from(d.as_secs()).unwrap_or(i32::MAX)),
                    Err(err) => {
                        tracing::error!("corsPolicy.maxAge {raw:?} is not a duration: {err}");
                        None
                    }
                },
            );
        filters.push(HttpRouteRulesFilters {
            cors: Some(HttpRouteRulesFiltersCors {
                allow_origins: cors.allow_origin.clone().filter(|v| !v.is_empty()),
                allow_methods: cors.allow_methods.clone().filter(|v| !v.is_empty()),
                allow_headers: cors.allow_headers.clone().filter(|v| !v.is_empty()),
                expose_headers: cors.expose_headers.clone().filter(|v| !v.is_empty()),
                allow_credentials: cors.allow_credentials,
                max_age,
            }),
            ..filter(HttpRouteRulesFiltersType::Cors)
        });
    }
    filters
}

// ---------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------

fn weight(w: u32) -> i32 {
    // Gateway API caps weights at 1,000,000; Serin's are percentages.
    i32::try_from(w).unwrap_or(i32::MAX)
}

fn backend(name: &str, w: u32, port: i32) -> HttpRouteRulesBackendRefs {
    HttpRouteRulesBackendRefs {
        group: Some(String::new()),
        kind: Some("Service".into()),
        name: name.to_string(),
        namespace: None,
        port: Some(port),
        weight: Some(weight(w)),
        filters: None,
    }
}

/// What every rule of one Canary's route is built from.
struct Plan<'a> {
    version: GatewayApiVersion,
    service: &'a CanaryService,
    analysis: Option<&'a CanaryAnalysis>,
    port: i32,
    primary: String,
    canary: String,
    /// `service.match` as Gateway API matches; may be empty.
    service_matches: Vec<HttpRouteRulesMatches>,
    /// `analysis.match` as Gateway API matches (A/B testing when non-empty).
    analysis_matches: Vec<HttpRouteRulesMatches>,
}

impl<'a> Plan<'a> {
    fn new(canary: &'a Canary, version: GatewayApiVersion) -> Result<Self, RouterError> {
        let (service, port) = canary_service(canary)?;
        if service.gateway_refs.as_ref().is_none_or(Vec::is_empty) {
            return Err(RouterError::MissingGatewayRefs);
        }
        let analysis = canary.analysis();
        let service_matches = map_route_matches(service.r#match.as_deref().unwrap_or_default())
            .map_err(RouterError::InvalidMatch)?;
        // Flagger drops an A/B match it cannot map and then sends *all* traffic to the
        // canary (the A/B rule degenerates to the fallback's matches); Serin refuses instead.
        let analysis_matches = map_route_matches(analysis.map(|a| a.matches()).unwrap_or_default())
            .map_err(RouterError::InvalidMatch)?;
        Ok(Plan {
            version,
            service,
            analysis,
            port,
            primary: canary.spec.primary_service_name(),
            canary: canary.spec.canary_service_name(),
            service_matches,
            analysis_matches,
        })
    }

    /// The matches of the weighted rule: `service.match`, or everything (`PathPrefix /`).
    fn route_matches(&self) -> Vec<HttpRouteRulesMatches> {
        if self.service_matches.is_empty() {
            vec![path_prefix_root()]
        } else {
            self.service_matches.clone()
        }
    }

    fn timeouts(&self) -> Option<HttpRouteRulesTimeouts> {
        if self.version != GatewayApiVersion::V1 {
            return None;
        }
        let request = non_empty(&self.service.timeout).map(str::to_string);
        let backend_request = non_empty(&self.service.backend_timeout).map(str::to_string);
        (request.is_some() || backend_request.is_some()).then_some(HttpRouteRulesTimeouts {
            request,
            backend_request,
        })
    }

    fn rule(
        &self,
        matches: Vec<HttpRouteRulesMatches>,
        backends: Vec<HttpRouteRulesBackendRefs>,
    ) -> HttpRouteRules {
        let filters = make_filters(self.service, self.version);
        HttpRouteRules {
            matches: Some(matches),
            filters: (!filters.is_empty()).then_some(filters),
            backend_refs: Some(backends),
            timeouts: self.timeouts(),
            name: None,
        }
    }

    fn weighted_rule(&self, primary: u32, canary: u32) -> HttpRouteRules {
        self.rule(
            self.route_matches(),
            vec![
                backend(&self.primary, primary, self.port),
                backend(&self.canary, canary, self.port),
            ],
        )
    }

    fn spec(&self, rules: Vec<HttpRouteRules>) -> HttpRouteSpec {
        let refs = self.service.gateway_refs.iter().flatten();
        HttpRouteSpec {
            // The API server defaults group and kind; writing them keeps the live route
            // equal to the desired one.
            parent_refs: Some(
                refs.map(|r| HttpRouteParentRefs {
                    group: Some(r.group().to_string()),
                    kind: Some(r.kind().to_string()),
                    name: r.name.clone().unwrap_or_default(),
                    namespace: r.namespace.clone(),
                    section_name: r.section_name.clone(),
                    port: r.port,
                })
                .collect(),
            ),
            hostnames: self.service.hosts.clone().filter(|h| !h.is_empty()),
            rules: Some(rules),
        }
    }

    /// A/B testing: the first rule only takes requests matching `analysis.match` (merged
    /// with `service.match`); a fallback rule sends the rest to the primary.
    fn add_ab_rules(&self, rules: &mut Vec<HttpRouteRules>) {
        if self.analysis_matches.is_empty() {
            return;
        }
        if let Some(first) = rules.first_mut() {
            first.matches = Some(merge_match_conditions(
                &self.analysis_matches,
                &self.route_matches(),
            ));
        }
        rules.push(self.rule(
            self.route_matches(),
            vec![backend(&self.primary, PRIMARY_ONLY_WEIGHT, self.port)],
        ));
    }
}

/// The route Flagger's `Reconcile` writes: the weighted rule at 100/0 and, for A/B testing,
/// the match rule plus the primary-only fallback rule.
pub fn reconcile_http_route_spec(
    canary: &Canary,
    version: GatewayApiVersion,
) -> Result<HttpRouteSpec, RouterError> {
    let plan = Plan::new(canary, version)?;
    let mut rules = vec![plan.weighted_rule(Routes::INITIAL.primary, Routes::INITIAL.canary)];
    plan.add_ab_rules(&mut rules);
    Ok(plan.spec(rules))
}

/// The route Flagger's `SetRoutes` writes for `routes`, and the session cookies to store in
/// the Canary status afterwards.
///
/// Rules: the weighted rule (plus a `RequestMirror` to the canary when `routes.mirrored` and
/// the analysis counts iterations, i.e. blue/green); with session affinity the sticky rules
/// come first (see `session_affinity_rules`); with A/B testing the first rule's matches
/// become the merged A/B matches and the primary-only fallback rule is appended.
pub fn desired_http_route(
    canary: &Canary,
    version: GatewayApiVersion,
    routes: Routes,
    cookies: &SessionCookies,
    values: &mut dyn CookieValues,
) -> Result<(HttpRouteSpec, SessionCookies), RouterError> {
    let plan = Plan::new(canary, version)?;
    let mut weighted = plan.weighted_rule(routes.primary, routes.canary);
    if routes.mirrored && plan.analysis.is_some_and(|a| a.iterations() > 0) {
        weighted
            .filters
            .get_or_insert_with(Vec::new)
            .push(HttpRouteRulesFilters {
                request_mirror: Some(HttpRouteRulesFiltersRequestMirror {
                    backend_ref: HttpRouteRulesFiltersRequestMirrorBackendRef {
                        group: Some(String::new()),
                        kind: Some("Service".into()),
                        name: plan.canary.clone(),
                        namespace: None,
                        port: Some(plan.port),
                    },
                    fraction: None,
                    percent: None,
                }),
                ..filter(HttpRouteRulesFiltersType::RequestMirror)
            });
    }
    let mut cookies = cookies.clone();
    let mut rules = match plan.analysis.and_then(|a| a.session_affinity.as_ref()) {
        Some(affinity) => session_affinity_rules(
            &plan,
            canary,
            affinity,
            routes.canary,
            weighted,
            &mut cookies,
            values,
        )?,
        None => vec![weighted],
    };
    plan.add_ab_rules(&mut rules);
    Ok((plan.spec(rules), cookies))
}

fn set_cookie_filter(value: String) -> HttpRouteRulesBackendRefsFilters {
    HttpRouteRulesBackendRefsFilters {
        r#type: HttpRouteRulesBackendRefsFiltersType::ResponseHeaderModifier,
        response_header_modifier: Some(HttpRouteRulesBackendRefsFiltersResponseHeaderModifier {
            add: Some(vec![
                HttpRouteRulesBackendRefsFiltersResponseHeaderModifierAdd {
                    name: SET_COOKIE_HEADER.into(),
                    value,
                },
            ]),
            remove: None,
            set: None,
        }),
        cors: None,
        extension_ref: None,
        request_header_modifier: None,
        request_mirror: None,
        request_redirect: None,
        url_rewrite: None,
    }
}

/// Session affinity (Flagger's `getSessionAffinityRouteRules`).
///
/// While the canary takes traffic: responses from the canary set the canary cookie (generated
/// once per run and kept in the status), a sticky rule sends requests carrying it to the
/// canary, and (v1, with `primaryCookieName`) responses from the primary set a primary cookie
/// for one analysis interval, which a second sticky rule pins to the primary.
/// Rules: `[sticky canary, sticky primary?, weighted]`.
///
/// At canary weight 0 the current cookie becomes the previous one; a rule matching the
/// previous cookie answers with a `Set-Cookie` that expires it, routing by the current
/// weights. Rules: `[that rule, weighted]` (without a previous cookie the first rule is a
/// plain copy of the weighted one, as in Flagger).
fn session_affinity_rules(
    plan: &Plan<'_>,
    canary: &Canary,
    affinity: &SessionAffinity,
    canary_weight: u32,
    mut weighted: HttpRouteRules,
    cookies: &mut SessionCookies,
    values: &mut dyn CookieValues,
) -> Result<Vec<HttpRouteRules>, RouterError> {
    // The sticky rules start as copies of the weighted rule: same filters and timeouts.
    let mut sticky = weighted.clone();
    if canary_weight != 0 {
        let canary_cookie = cookies
            .canary
            .get_or_insert_with(|| new_cookie(affinity.cookie_name(), values))
            .clone();
        let primary_name = affinity
            .primary_cookie_name
            .as_deref()
            .filter(|n| !n.is_empty() && plan.version == GatewayApiVersion::V1);
        let primary_cookie = primary_name.map(|name| {
            cookies
                .primary
                .get_or_insert_with(|| new_cookie(name, values))
                .clone()
        });

        let canary_set_cookie =
            set_cookie_value(&canary_cookie, i64::from(affinity.max_age()), affinity);
        add_backend_filter(&mut weighted, &plan.canary, canary_set_cookie);
        if let Some(primary_cookie) = &primary_cookie {
            // The primary cookie lasts one analysis interval: long enough to keep a user on
            // the primary between two weight changes, so the weights stay fair.
            let raw = canary
                .analysis()
                .and_then(|a| a.interval.as_deref())
                .unwrap_or_default();
            let interval = parse_go_duration(raw).map_err(RouterError::InvalidInterval)?;
            let max_age = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
            let value = set_cookie_value(primary_cookie, max_age, affinity);
            add_backend_filter(&mut weighted, &plan.primary, value);
        }

        sticky.matches = Some(merge_match_conditions(
            &[cookie_match(&canary_cookie)],
            &plan.service_matches,
        ));
        sticky.backend_refs = Some(vec![
            backend(&plan.primary, 0, plan.port),
            backend(&plan.canary, 100, plan.port),
        ]);
        let mut rules = vec![sticky.clone()];
        if let Some(primary_cookie) = &primary_cookie {
            let mut sticky_primary = sticky;
            sticky_primary.matches = Some(merge_match_conditions(
                &[cookie_match(primary_cookie)],
                &plan.service_matches,
            ));
            sticky_primary.backend_refs = Some(vec![
                backend(&plan.primary, 100, plan.port),
                backend(&plan.canary, 0, plan.port),
            ]);
            rules.push(sticky_primary);
        }
        rules.push(weighted);
        return Ok(rules);
    }

    if let Some(current) = cookies.canary.take() {
        cookies.previous = Some(current);
    }
    if let Some(previous) = &cookies.previous {
        sticky.matches = Some(merge_match_conditions(
            &[cookie_match(previous)],
            &plan.service_matches,
        ));
        // Same attributes as when the cookie was issued: a browser only deletes a cookie
        // whose Domain and Path match.
        let expire = HttpRouteRulesFiltersResponseHeaderModifierAdd {
            name: SET_COOKIE_HEADER.into(),
            value: set_cookie_value(previous, -1, affinity),
        };
        let filters = sticky.filters.get_or_insert_with(Vec::new);
        // Gateway API allows one ResponseHeaderModifier per rule: join the one from
        // `service.headers.response` rather than add a second (which the API server rejects).
        match filters
            .iter_mut()
            .find(|f| f.r#type == HttpRouteRulesFiltersType::ResponseHeaderModifier)
        {
            Some(existing) => existing
                .response_header_modifier
                .get_or_insert_with(Default::default)
                .add
                .get_or_insert_with(Vec::new)
                .push(expire),
            None => filters.push(HttpRouteRulesFilters {
                response_header_modifier: Some(HttpRouteRulesFiltersResponseHeaderModifier {
                    add: Some(vec![expire]),
                    remove: None,
                    set: None,
                }),
                ..filter(HttpRouteRulesFiltersType::ResponseHeaderModifier)
            }),
        }
    }
    Ok(vec![sticky, weighted])
}

fn add_backend_filter(rule: &mut HttpRouteRules, service: &str, set_cookie: String) {
    for b in rule.backend_refs.iter_mut().flatten() {
        if b.name == service {
            b.filters
                .get_or_insert_with(Vec::new)
                .push(set_cookie_filter(set_cookie.clone()));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reconcile update rule
// ---------------------------------------------------------------------------------------

/// Whether `Reconcile` must rewrite the live route (Flagger's comparison).
///
/// The specs are compared with backend weights ignored (weights belong to `SetRoutes`) and
/// empty lists equal to absent ones. With session affinity the cookie-matching sticky rules
/// and every backendRef filter (the `Set-Cookie` modifiers) are ignored too; with
/// `analysis.mirror` during Waiting/Progressing/WaitingPromotion the rule filters are, since
/// the mirror filter `SetRoutes` added is not in the reconciled spec. Both sides get the
/// HTTPRoute CRD's server-side defaults first, so a stored route equals what was written.
///
/// Metadata: every desired label and annotation must be present with its value; keys other
/// controllers added are left alone. (Flagger demands label equality, but its updates also
/// drop foreign labels; with server-side apply foreign labels survive the write, so equality
/// would rewrite the route, and reset its weights, on every tick.)
pub fn route_needs_update(
    canary: &Canary,
    live_metadata: &ObjectMeta,
    live_spec: &HttpRouteSpec,
    desired_metadata: &RouteMetadata,
    desired_spec: &HttpRouteSpec,
) -> bool {
    let analysis = canary.analysis();
    let affinity = analysis.and_then(|a| a.session_affinity.as_ref());
    let phase = canary.status.as_ref().map(|s| s.phase).unwrap_or_default();
    let ignore = Ignore {
        cookie_names: affinity
            .map(|a| {
                vec![
                    a.cookie_name().to_string(),
                    a.primary_cookie_name.clone().unwrap_or_default(),
                ]
            })
            .unwrap_or_default(),
        backend_filters: affinity.is_some(),
        rule_filters: analysis.is_some_and(CanaryAnalysis::mirror)
            && matches!(
                phase,
                CanaryPhase::Waiting | CanaryPhase::Progressing | CanaryPhase::WaitingPromotion
            ),
    };
    let spec_differs = comparable(live_spec, &ignore) != comparable(desired_spec, &ignore);
    let missing = |desired: &BTreeMap<String, String>, live: &Option<BTreeMap<String, String>>| {
        desired
            .iter()
            .any(|(k, v)| live.as_ref().and_then(|l| l.get(k)) != Some(v))
    };
    spec_differs
        || missing(&desired_metadata.labels, &live_metadata.labels)
        || missing(&desired_metadata.annotations, &live_metadata.annotations)
}

struct Ignore {
    /// Rules matching a `Cookie` header regex containing one of these are ignored.
    cookie_names: Vec<String>,
    backend_filters: bool,
    rule_filters: bool,
}

impl Ignore {
    fn is_cookie_rule(&self, rule: &HttpRouteRules) -> bool {
        rule.matches.iter().flatten().any(|m| {
            m.headers.iter().flatten().any(|h| {
                h.r#type == Some(HttpRouteRulesMatchesHeadersType::RegularExpression)
                    && h.name == COOKIE_HEADER
                    // As in Flagger, an empty name (no primaryCookieName) matches every
                    // cookie rule.
                    && self.cookie_names.iter().any(|n| h.value.contains(n.as_str()))
            })
        })
    }
}

fn comparable(spec: &HttpRouteSpec, ignore: &Ignore) -> serde_json::Value {
    let mut spec = spec.clone();
    apply_server_defaults(&mut spec);
    if let Some(rules) = spec.rules.as_mut() {
        rules.retain(|rule| !ignore.is_cookie_rule(rule));
        for rule in rules {
            if ignore.rule_filters {
                rule.filters = None;
            }
            for b in rule.backend_refs.iter_mut().flatten() {
                b.weight = None;
                if ignore.backend_filters {
                    b.filters = None;
                }
            }
        }
    }
    let mut value = serde_json::to_value(&spec).unwrap_or_default();
    strip_empty(&mut value);
    value
}

/// Go's `cmpopts.EquateEmpty`: an empty list or a null is the same as an absent field.
fn strip_empty(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for v in map.values_mut() {
                strip_empty(v);
            }
            map.retain(|_, v| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty)));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_empty),
        _ => {}
    }
}

/// The defaults the HTTPRoute CRD's schema fills in on the server.
fn apply_server_defaults(spec: &mut HttpRouteSpec) {
    for parent in spec.parent_refs.iter_mut().flatten() {
        parent.group.get_or_insert_with(|| GATEWAY_API_GROUP.into());
        parent.kind.get_or_insert_with(|| "Gateway".into());
    }
    for rule in spec.rules.iter_mut().flatten() {
        let matches = rule.matches.get_or_insert_with(Vec::new);
        if matches.is_empty() {
            matches.push(path_prefix_root());
        }
        for m in matches {
            let path = m.path.get_or_insert_with(Default::default);
            path.r#type
                .get_or_insert(HttpRouteRulesMatchesPathType::PathPrefix);
            path.value.get_or_insert_with(|| DEFAULT_PATH.into());
            for h in m.headers.iter_mut().flatten() {
                h.r#type
                    .get_or_insert(HttpRouteRulesMatchesHeadersType::Exact);
            }
            for q in m.query_params.iter_mut().flatten() {
                q.r#type
                    .get_or_insert(HttpRouteRulesMatchesQueryParamsType::Exact);
            }
        }
        for f in rule.filters.iter_mut().flatten() {
            if let Some(mirror) = f.request_mirror.as_mut() {
                mirror.backend_ref.group.get_or_insert_with(String::new);
                mirror
                    .backend_ref
                    .kind
                    .get_or_insert_with(|| "Service".into());
            }
            if let Some(cors) = f.cors.as_mut() {
                cors.max_age.get_or_insert(DEFAULT_CORS_MAX_AGE);
            }
        }
        for b in rule.backend_refs.iter_mut().flatten() {
            b.group.get_or_insert_with(String::new);
            b.kind.get_or_insert_with(|| "Service".into());
            b.weight.get_or_insert(DEFAULT_BACKEND_WEIGHT);
            for f in b.filters.iter_mut().flatten() {
                if let Some(mirror) = f.request_mirror.as_mut() {
                    mirror.backend_ref.group.get_or_insert_with(String::new);
                    mirror
                        .backend_ref
                        .kind
                        .get_or_insert_with(|| "Service".into());
                }
                if let Some(cors) = f.cors.as_mut() {
                    cors.max_age.get_or_insert(DEFAULT_CORS_MAX_AGE);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// GetRoutes
// ---------------------------------------------------------------------------------------

/// Flagger's v1 readiness check: for every parentRef, a status entry for exactly that
/// parent with an `Accepted` condition must be True for the current generation. A parent
/// with no status entry (no controller has looked yet, or one that writes no status) does
/// not block, as in Flagger.
pub fn parents_ready(
    name: &str,
    namespace: &str,
    generation: i64,
    spec: &HttpRouteSpec,
    status: Option<&RouteStatus>,
) -> Result<(), RouterError> {
    let parents = status.map(|s| s.parents.as_slice()).unwrap_or_default();
    for parent in spec.parent_refs.iter().flatten() {
        for entry in parents {
            let r = &entry.parent_ref;
            let same = r.group == parent.group
                && r.kind == parent.kind
                && r.name == parent.name
                && r.namespace == parent.namespace
                && r.section_name == parent.section_name
                && r.port == parent.port;
            if !same {
                continue;
            }
            for condition in &entry.conditions {
                let observed = condition.observed_generation.unwrap_or_default();
                if condition.type_ == ACCEPTED_CONDITION
                    && (condition.status != "True" || observed < generation)
                {
                    return Err(RouterError::ParentNotReady {
                        route: name.to_string(),
                        namespace: namespace.to_string(),
                        parent: parent.name.clone(),
                        status: condition.status.clone(),
                        observed_generation: observed,
                        current_generation: generation,
                    });
                }
            }
        }
    }
    Ok(())
}

/// The weights and mirroring a live route carries (Flagger's `GetRoutes`).
///
/// Weights come from the last rule with exactly two backendRefs (the A/B fallback has one);
/// with session affinity from the rule whose backendRefs carry filters (the weighted rule,
/// not the sticky ones). `mirrored`: some rule mirrors to `<apex>-canary`.
pub fn read_routes(canary: &Canary, spec: &HttpRouteSpec) -> Routes {
    let primary = canary.spec.primary_service_name();
    let canary_svc = canary.spec.canary_service_name();
    let affinity = canary
        .analysis()
        .is_some_and(|a| a.session_affinity.is_some());
    let weight_of = |b: &HttpRouteRulesBackendRefs| {
        u32::try_from(b.weight.unwrap_or(DEFAULT_BACKEND_WEIGHT)).unwrap_or(0)
    };
    let mut routes = Routes::default();
    let mut weighted: Option<&HttpRouteRules> = None;
    for rule in spec.rules.iter().flatten() {
        let backends = rule.backend_refs.as_deref().unwrap_or_default();
        if affinity
            && backends
                .iter()
                .any(|b| b.filters.as_ref().is_some_and(|f| !f.is_empty()))
        {
            weighted = Some(rule);
        }
        if backends.len() == 2 {
            for b in backends {
                if b.name == primary {
                    routes.primary = weight_of(b);
                }
                if b.name == canary_svc {
                    routes.canary = weight_of(b);
                }
            }
        }
        for f in rule.filters.iter().flatten() {
            if f.r#type == HttpRouteRulesFiltersType::RequestMirror
                && f.request_mirror
                    .as_ref()
                    .is_some_and(|m| m.backend_ref.name == canary_svc)
            {
                routes.mirrored = true;
            }
        }
    }
    for b in weighted
        .iter()
        .flat_map(|r| r.backend_refs.iter().flatten())
    {
        if b.name == primary {
            routes.primary = weight_of(b);
        }
        if b.name == canary_svc {
            routes.canary = weight_of(b);
        }
    }
    routes
}

// ---------------------------------------------------------------------------------------
// I/O
// ---------------------------------------------------------------------------------------

/// The route object Serin applies: name `<apex>`, the Canary's namespace, `service.apex`
/// metadata, the owner reference when the route is (to be) Serin's.
pub fn route_object(
    canary: &Canary,
    version: GatewayApiVersion,
    owner: Option<OwnerReference>,
    spec: HttpRouteSpec,
) -> Result<HttpRouteObject, RouterError> {
    let namespace = canary_namespace(canary)?;
    let (service, _) = canary_service(canary)?;
    let metadata = route_metadata(service);
    Ok(HttpRouteObject {
        api_version: HttpRouteObject::api_version(&version).into_owned(),
        kind: HttpRouteObject::kind(&version).into_owned(),
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

/// Writes and reads the HTTPRoute of `gatewayapi:v1` / `gatewayapi:v1beta1` canaries.
#[derive(Clone)]
pub struct GatewayApiRouter {
    client: Client,
    version: GatewayApiVersion,
}

impl GatewayApiRouter {
    pub fn new(client: Client, version: GatewayApiVersion) -> Self {
        GatewayApiRouter { client, version }
    }

    pub fn version(&self) -> GatewayApiVersion {
        self.version
    }

    fn api(&self, namespace: &str) -> Api<HttpRouteObject> {
        Api::namespaced_with(self.client.clone(), namespace, &self.version)
    }

    async fn live(&self, canary: &Canary) -> Result<Option<HttpRouteObject>, RouterError> {
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        self.api(namespace).get_opt(name).await.map_err(api_error(
            "HTTPRoute",
            name,
            namespace,
            ApiAction::Get,
        ))
    }

    /// Server-side apply of the whole route. The owner reference is only written on a route
    /// Serin creates or already owns: a route someone else made keeps its owners (deleting
    /// the Canary must not delete it).
    async fn apply(
        &self,
        canary: &Canary,
        live: Option<&HttpRouteObject>,
        spec: HttpRouteSpec,
    ) -> Result<(), RouterError> {
        let canary_name = canary.metadata.name.as_deref().unwrap_or_default();
        let owner = match live {
            Some(live) if !controlled_by(&live.metadata, canary_name) => None,
            _ => Some(owner_reference(canary)?),
        };
        let object = route_object(canary, self.version, owner, spec)?;
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        self.api(namespace)
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .map_err(api_error("HTTPRoute", name, namespace, ApiAction::Apply))?;
        Ok(())
    }
}

impl Router for GatewayApiRouter {
    /// Creates the route at 100/0, or rewrites it when [`route_needs_update`] says so.
    async fn reconcile(&self, canary: &Canary) -> Result<(), RouterError> {
        let desired = reconcile_http_route_spec(canary, self.version)?;
        let live = self.live(canary).await?;
        let (service, _) = canary_service(canary)?;
        let route = format!(
            "{}.{}",
            canary.spec.apex_service_name(),
            canary_namespace(canary)?
        );
        match &live {
            None => {
                self.apply(canary, None, desired).await?;
                tracing::info!(canary = %canary.dotted_name(), "HTTPRoute {route} created");
            }
            Some(live)
                if route_needs_update(
                    canary,
                    &live.metadata,
                    &live.spec,
                    &route_metadata(service),
                    &desired,
                ) =>
            {
                self.apply(canary, Some(live), desired).await?;
                tracing::info!(canary = %canary.dotted_name(), "HTTPRoute {route} updated");
            }
            Some(_) => {}
        }
        Ok(())
    }

    async fn set_routes(
        &self,
        canary: &Canary,
        routes: Routes,
        status: &mut CanaryStatus,
    ) -> Result<(), RouterError> {
        // Flagger's SetRoutes rewrites the route Reconcile made; a missing one is an error.
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        let live = self.api(namespace).get(name).await.map_err(api_error(
            "HTTPRoute",
            name,
            namespace,
            ApiAction::Get,
        ))?;
        let cookies = SessionCookies::from_status(status);
        let mut values = RandomLetters::new();
        let (spec, cookies) =
            desired_http_route(canary, self.version, routes, &cookies, &mut values)?;
        self.apply(canary, Some(&live), spec).await?;
        cookies.write_to(status);
        Ok(())
    }

    async fn get_routes(&self, canary: &Canary) -> Result<Routes, RouterError> {
        let namespace = canary_namespace(canary)?;
        let name = canary.spec.apex_service_name();
        let live = self.api(namespace).get(name).await.map_err(api_error(
            "HTTPRoute",
            name,
            namespace,
            ApiAction::Get,
        ))?;
        if self.version == GatewayApiVersion::V1 {
            parents_ready(
                name,
                namespace,
                live.metadata.generation.unwrap_or_default(),
                &live.spec,
                live.status.as_ref(),
            )?;
        }
        Ok(read_routes(canary, &live.spec))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
