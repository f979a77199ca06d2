//! The pure half of the Istio router: the objects Flagger's `istio.go` derives from a Canary,
//! the rule deciding when `Reconcile` rewrites a live VirtualService, and what `GetRoutes`
//! reads back. No I/O here, so every rule is table-tested (see `tests.rs`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::inexpressible::refuse_inexpressible;
use super::types::{
    CorsPolicy, Destination, DestinationRule, DestinationRuleSpec, HeaderOperations, Headers,
    HttpMatchRequest, HttpRetry, HttpRewrite, HttpRoute, HttpRouteDestination, L4MatchAttributes,
    Percent, PortSelector, RouteDestination, StringMatch, TcpRoute, VirtualService,
    VirtualServiceSpec,
};
use crate::api::{self, Canary, CanaryAnalysis, CanaryService, SessionAffinity};
use crate::router::cookie::{
    CookieValues, SessionCookies, cookie_regex, new_cookie, set_cookie_value,
};
use crate::router::{
    RouterError, Routes, canary_namespace, canary_service, controlled_by, with_flux_opt_out,
};

/// Name of the route that pins users carrying the canary cookie to the canary (Flagger's).
pub const STICKY_ROUTE_NAME: &str = "sticky-route";
/// Name of the route that pins users carrying the primary cookie to the primary.
pub const STICKY_PRIMARY_ROUTE_NAME: &str = "sticky-route-primary";
/// The request header session-affinity routes match on (Flagger's spelling).
pub const COOKIE_HEADER: &str = "Cookie";
/// The response header that issues session-affinity cookies.
pub const SET_COOKIE_HEADER: &str = "Set-Cookie";
/// Where the spec of a VirtualService that existed before Serin took it over is kept, so that
/// `finalize` can restore it (Flagger's `configAnnotation`).
pub const ORIGINAL_CONFIGURATION_ANNOTATION: &str = "flagger.kubernetes.io/original-configuration";
/// kubectl's copy of what a user applied; when present it is the original configuration.
pub const KUBECTL_LAST_APPLIED_ANNOTATION: &str =
    "kubectl.kubernetes.io/last-applied-configuration";
/// `service.appProtocol` value (any case) that switches the VirtualService to TCP routes.
pub const TCP_APP_PROTOCOL: &str = "tcp";
/// The Istio gateway meaning "the sidecars of the mesh".
pub const MESH_GATEWAY: &str = "mesh";

const PRIMARY_ONLY_WEIGHT: u32 = 100;

// ---------------------------------------------------------------------------------------
// Canary shapes → Istio shapes (Go's omitempty: empty strings and maps, false, 0 vanish)
// ---------------------------------------------------------------------------------------

fn non_empty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.is_empty())
}

/// `true` when `service.appProtocol` is `tcp` in any case (Flagger's `isTcp`).
pub fn is_tcp(service: &CanaryService) -> bool {
    service
        .app_protocol
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(TCP_APP_PROTOCOL))
}

/// A Canary string condition as Istio's. `suffix` has no Istio counterpart: `inexpressible`
/// refuses it before any builder runs.
pub fn string_match(m: &api::StringMatch) -> StringMatch {
    StringMatch {
        exact: non_empty(&m.exact),
        prefix: non_empty(&m.prefix),
        regex: non_empty(&m.regex),
    }
}

fn string_matches(
    map: &Option<BTreeMap<String, api::StringMatch>>,
) -> BTreeMap<String, StringMatch> {
    map.iter()
        .flatten()
        .map(|(name, m)| (name.clone(), string_match(m)))
        .collect()
}

/// A Canary match request (`service.match[]`, `analysis.match[]`) as Istio's.
pub fn match_request(m: &api::HttpMatchRequest) -> HttpMatchRequest {
    HttpMatchRequest {
        name: non_empty(&m.name),
        uri: m.uri.as_ref().map(string_match),
        scheme: m.scheme.as_ref().map(string_match),
        method: m.method.as_ref().map(string_match),
        authority: m.authority.as_ref().map(string_match),
        headers: string_matches(&m.headers),
        port: m.port.filter(|p| *p != 0),
        source_labels: m.source_labels.clone().unwrap_or_default(),
        gateways: m.gateways.clone().unwrap_or_default(),
        query_params: string_matches(&m.query_params),
        ignore_uri_case: m.ignore_uri_case.unwrap_or(false),
        without_headers: string_matches(&m.without_headers),
        source_namespace: non_empty(&m.source_namespace),
    }
}

fn header_operations(ops: &api::HeaderOperations) -> HeaderOperations {
    HeaderOperations {
        set: ops.set.clone().unwrap_or_default(),
        add: ops.add.clone().unwrap_or_default(),
        remove: ops.remove.clone().unwrap_or_default(),
    }
}

/// `service.headers` as Istio's route-level header operations.
pub fn headers(h: &api::Headers) -> Headers {
    Headers {
        request: h.request.as_ref().map(header_operations),
        response: h.response.as_ref().map(header_operations),
    }
}

/// `service.corsPolicy` as Istio's. `allowCredentials: false` is left out, as Go's
/// `omitempty` leaves it out of Flagger's route (false is Istio's default).
pub fn cors_policy(c: &api::CorsPolicy) -> CorsPolicy {
    CorsPolicy {
        allow_origin: c.allow_origin.clone().unwrap_or_default(),
        allow_origins: c.allow_origins.iter().flatten().map(string_match).collect(),
        allow_methods: c.allow_methods.clone().unwrap_or_default(),
        allow_headers: c.allow_headers.clone().unwrap_or_default(),
        expose_headers: c.expose_headers.clone().unwrap_or_default(),
        max_age: non_empty(&c.max_age),
        allow_credentials: c.allow_credentials.filter(|allow| *allow),
    }
}

/// `service.rewrite` as Istio's (Flagger's `GetIstioRewrite`: uri and authority; the Gateway
/// API `type` has no meaning here).
pub fn rewrite(r: &api::HttpRewrite) -> HttpRewrite {
    HttpRewrite {
        uri: non_empty(&r.uri),
        authority: non_empty(&r.authority),
    }
}

/// `service.retries` as Istio's; `attempts` is always written, as in Flagger.
pub fn retries(r: &api::HttpRetry) -> HttpRetry {
    HttpRetry {
        attempts: r.attempts.unwrap_or(0),
        per_try_timeout: non_empty(&r.per_try_timeout),
        retry_on: non_empty(&r.retry_on),
    }
}

fn weight(w: u32) -> i32 {
    i32::try_from(w).unwrap_or(i32::MAX)
}

// ---------------------------------------------------------------------------------------
// Match merging
// ---------------------------------------------------------------------------------------

fn overlay_map<V: Clone>(base: &mut BTreeMap<String, V>, overlay: &BTreeMap<String, V>) {
    for (k, v) in overlay {
        base.insert(k.clone(), v.clone());
    }
}

/// One request matching both `base` and `overlay`: Istio ANDs the fields of one match
/// request, so the conditions are combined field by field. Where both set the same field
/// (or map key) the overlay's wins; `inexpressible` refuses an A/B match that would
/// overwrite a different `service.match` condition that way. The name stays the base's.
pub fn and_match(overlay: &HttpMatchRequest, base: &HttpMatchRequest) -> HttpMatchRequest {
    let mut m = base.clone();
    if overlay.uri.is_some() {
        m.uri = overlay.uri.clone();
    }
    if overlay.scheme.is_some() {
        m.scheme = overlay.scheme.clone();
    }
    if overlay.method.is_some() {
        m.method = overlay.method.clone();
    }
    if overlay.authority.is_some() {
        m.authority = overlay.authority.clone();
    }
    if overlay.port.is_some() {
        m.port = overlay.port;
    }
    if !overlay.gateways.is_empty() {
        m.gateways = overlay.gateways.clone();
    }
    if overlay.source_namespace.is_some() {
        m.source_namespace = overlay.source_namespace.clone();
    }
    m.ignore_uri_case |= overlay.ignore_uri_case;
    overlay_map(&mut m.headers, &overlay.headers);
    overlay_map(&mut m.query_params, &overlay.query_params);
    overlay_map(&mut m.without_headers, &overlay.without_headers);
    overlay_map(&mut m.source_labels, &overlay.source_labels);
    m
}

/// Flagger's `mergeMatchConditions`: every canary condition combined with every
/// `service.match` request; without service matches, the canary conditions as they are.
///
/// Deliberate difference: Flagger copies the service request and *replaces* its headers and
/// sourceLabels with the canary condition's, dropping every other field of the canary
/// condition; Serin ANDs them ([`and_match`]). The result is the same whenever the service
/// requests carry no headers or sourceLabels and the A/B conditions only headers or
/// sourceLabels (every example in Flagger's docs and tests); otherwise Flagger's route would
/// send the canary requests the user did not select.
pub fn merge_match_conditions(
    canary: &[HttpMatchRequest],
    service: &[HttpMatchRequest],
) -> Vec<HttpMatchRequest> {
    if service.is_empty() {
        return canary.to_vec();
    }
    canary
        .iter()
        .flat_map(|c| service.iter().map(move |s| and_match(c, s)))
        .collect()
}

fn cookie_match(cookie: &str) -> HttpMatchRequest {
    HttpMatchRequest {
        headers: [(
            COOKIE_HEADER.to_string(),
            StringMatch::regex(cookie_regex(cookie)),
        )]
        .into(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------
// The VirtualService spec
// ---------------------------------------------------------------------------------------

/// What every route of one Canary's VirtualService is built from.
struct Plan<'a> {
    canary: &'a Canary,
    service: &'a CanaryService,
    analysis: Option<&'a CanaryAnalysis>,
    port: i32,
    primary: String,
    canary_host: String,
    service_matches: Vec<HttpMatchRequest>,
    analysis_matches: Vec<HttpMatchRequest>,
}

impl<'a> Plan<'a> {
    fn new(canary: &'a Canary) -> Result<Self, RouterError> {
        refuse_inexpressible(canary)?;
        let (service, port) = canary_service(canary)?;
        let analysis = canary.analysis();
        Ok(Plan {
            canary,
            service,
            analysis,
            port,
            primary: canary.spec.primary_service_name(),
            canary_host: canary.spec.canary_service_name(),
            service_matches: service
                .r#match
                .iter()
                .flatten()
                .map(match_request)
                .collect(),
            analysis_matches: analysis
                .map(|a| a.matches().iter().map(match_request).collect())
                .unwrap_or_default(),
        })
    }

    fn delegation(&self) -> bool {
        self.service.delegation.unwrap_or(false)
    }

    /// `service.hosts` plus the apex Service's name unless it (or `*`) is already there; none
    /// for a delegate VirtualService.
    fn hosts(&self) -> Vec<String> {
        if self.delegation() {
            return Vec::new();
        }
        let apex = self.canary.spec.apex_service_name();
        let mut hosts = self.service.hosts.clone().unwrap_or_default();
        if !hosts.iter().any(|h| h == apex || h == "*") {
            hosts.push(apex.to_string());
        }
        hosts
    }

    /// `service.gateways`, else `mesh`; none for a delegate VirtualService.
    fn gateways(&self) -> Vec<String> {
        if self.delegation() {
            return Vec::new();
        }
        self.service
            .istio_gateways()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Flagger's `makeDestination`: the port is named when port discovery is on and the
    /// route is served by an ingress gateway (the first gateway is not `mesh`) or delegated
    /// to, since a gateway cannot infer it.
    fn destination(&self, host: &str) -> Destination {
        let gateways = self.service.gateways.as_deref().unwrap_or_default();
        let gateway = gateways.first().is_some_and(|g| g != MESH_GATEWAY);
        let named = self.service.port_discovery.unwrap_or(false) && (gateway || self.delegation());
        Destination {
            host: host.to_string(),
            subset: None,
            port: named.then(|| PortSelector {
                number: u32::try_from(self.port).ok().filter(|n| *n != 0),
            }),
        }
    }

    fn http_destination(&self, host: &str, w: u32) -> HttpRouteDestination {
        HttpRouteDestination {
            destination: self.destination(host),
            weight: weight(w),
            headers: None,
        }
    }

    fn split(&self, primary: u32, canary: u32) -> Vec<HttpRouteDestination> {
        vec![
            self.http_destination(&self.primary, primary),
            self.http_destination(&self.canary_host, canary),
        ]
    }

    /// A route with everything `spec.service` sets on routes.
    fn http_route(
        &self,
        matches: Vec<HttpMatchRequest>,
        route: Vec<HttpRouteDestination>,
    ) -> HttpRoute {
        HttpRoute {
            r#match: matches,
            route,
            rewrite: self.service.rewrite.as_ref().map(rewrite),
            timeout: non_empty(&self.service.timeout),
            retries: self.service.retries.as_ref().map(retries),
            cors_policy: self.service.cors_policy.as_ref().map(cors_policy),
            headers: self.service.headers.as_ref().map(headers),
            ..Default::default()
        }
    }

    fn weighted_route(&self, primary: u32, canary: u32) -> HttpRoute {
        self.http_route(self.service_matches.clone(), self.split(primary, canary))
    }

    /// A/B testing: requests matching `analysis.match` (ANDed with `service.match`) are split
    /// by the weights; the rest go to the primary alone.
    fn ab_routes(&self, primary: u32, canary: u32, fallback: u32) -> Vec<HttpRoute> {
        vec![
            self.http_route(
                merge_match_conditions(&self.analysis_matches, &self.service_matches),
                self.split(primary, canary),
            ),
            self.http_route(
                self.service_matches.clone(),
                vec![self.http_destination(&self.primary, fallback)],
            ),
        ]
    }

    fn tcp_route(&self, primary: u32, canary: u32) -> TcpRoute {
        let tcp = |host: &str, w: u32| RouteDestination {
            destination: self.destination(host),
            weight: weight(w),
        };
        TcpRoute {
            // Flagger's `canaryToL4Match`: the port of each `service.match` request.
            r#match: self
                .service_matches
                .iter()
                .map(|m| L4MatchAttributes { port: m.port })
                .collect(),
            route: vec![tcp(&self.primary, primary), tcp(&self.canary_host, canary)],
        }
    }

    fn spec(&self) -> VirtualServiceSpec {
        VirtualServiceSpec {
            hosts: self.hosts(),
            gateways: self.gateways(),
            ..Default::default()
        }
    }
}

/// The VirtualService spec Flagger's `Reconcile` writes: all traffic to the primary, in one
/// HTTP route (or TCP route for `appProtocol: tcp`), or with A/B testing the match route plus
/// the primary-only fallback.
pub fn reconcile_spec(canary: &Canary) -> Result<VirtualServiceSpec, RouterError> {
    let plan = Plan::new(canary)?;
    let Routes {
        primary, canary: c, ..
    } = Routes::INITIAL;
    let mut spec = plan.spec();
    if is_tcp(plan.service) {
        spec.tcp = vec![plan.tcp_route(primary, c)];
    } else if plan.analysis_matches.is_empty() {
        spec.http = vec![plan.weighted_route(primary, c)];
    } else {
        spec.http = plan.ab_routes(primary, c, PRIMARY_ONLY_WEIGHT);
    }
    Ok(spec)
}

/// The VirtualService spec Flagger's `SetRoutes` writes for `routes`, and the session cookies
/// to store in the Canary status afterwards.
///
/// HTTP: the weighted route; with session affinity the sticky routes first (see
/// `session_affinity_routes`); when `routes.mirrored` the first route also mirrors to the
/// canary (`mirrorPercentage` = `analysis.mirrorWeight` when set). A/B testing replaces all of
/// that with the match route at the weights and the fallback route, whose single primary
/// destination takes everything (weight 100). TCP: the weighted TCP route.
pub fn desired_spec(
    canary: &Canary,
    routes: Routes,
    cookies: &SessionCookies,
    values: &mut dyn CookieValues,
) -> Result<(VirtualServiceSpec, SessionCookies), RouterError> {
    let plan = Plan::new(canary)?;
    let mut spec = plan.spec();
    let mut cookies = cookies.clone();
    if is_tcp(plan.service) {
        spec.tcp = vec![plan.tcp_route(routes.primary, routes.canary)];
        return Ok((spec, cookies));
    }
    let weighted = plan.weighted_route(routes.primary, routes.canary);
    // With A/B the match routes replace everything below (as in Flagger), so no cookie is
    // issued that no route would read.
    let affinity = plan
        .analysis
        .and_then(|a| a.session_affinity.as_ref())
        .filter(|_| plan.analysis_matches.is_empty());
    let mut http = match affinity {
        Some(affinity) => session_affinity_routes(
            &plan,
            affinity,
            routes.canary,
            weighted,
            &mut cookies,
            values,
        )?,
        None => vec![weighted],
    };
    if routes.mirrored
        && let Some(first) = http.first_mut()
    {
        first.mirror = Some(Destination {
            host: plan.canary_host.clone(),
            subset: None,
            port: None,
        });
        let mirror_weight = plan.analysis.map_or(0, CanaryAnalysis::mirror_weight);
        if mirror_weight > 0 {
            first.mirror_percentage = Some(Percent {
                value: f64::from(mirror_weight),
            });
        }
    }
    if !plan.analysis_matches.is_empty() {
        // Flagger gives the lone fallback destination the primary weight, which is 0 during
        // the run; its Go client then leaves the field out, and Istio sends everything to a
        // lone destination whatever its weight. Serin writes the 100 Istio applies, so the
        // object says what happens.
        http = plan.ab_routes(routes.primary, routes.canary, PRIMARY_ONLY_WEIGHT);
    }
    spec.http = http;
    Ok((spec, cookies))
}

fn set_cookie_headers(value: String) -> Headers {
    Headers {
        request: None,
        response: Some(HeaderOperations {
            add: [(SET_COOKIE_HEADER.to_string(), value)].into(),
            ..Default::default()
        }),
    }
}

fn set_destination_headers(route: &mut HttpRoute, host: &str, value: String) {
    for d in route
        .route
        .iter_mut()
        .filter(|d| d.destination.host == host)
    {
        d.headers = Some(set_cookie_headers(value.clone()));
    }
}

/// Session affinity (Flagger's `SetRoutes` with `analysis.sessionAffinity`).
///
/// While the canary takes traffic: responses from the canary destination set the canary
/// cookie (generated once per run, kept in the status), and a route named `sticky-route`
/// sends requests carrying it to the canary. With `primaryCookieName` (Flagger 1.43),
/// responses from the primary set a primary cookie lasting one analysis interval, which a
/// route named `sticky-route-primary` pins to the primary, so the split stays fair.
/// Routes: `[sticky-route, sticky-route-primary?, weighted]`.
///
/// At canary weight 0 the current cookie becomes the previous one; `sticky-route` then
/// matches the previous cookie and answers with a `Set-Cookie` that expires it, routing by
/// the current weights. Routes: `[sticky-route, weighted]` (without a previous cookie
/// `sticky-route` is a plain copy of the weighted route, as in Flagger).
///
/// Deliberate differences: the expiring `Set-Cookie` carries the cookie's attributes (a
/// browser only deletes a cookie whose Domain and Path match), and it is added to a copy of
/// `service.headers`: Flagger writes it into the shared map, so with `service.headers` set
/// the weighted route expires the cookie too.
fn session_affinity_routes(
    plan: &Plan<'_>,
    affinity: &SessionAffinity,
    canary_weight: u32,
    mut weighted: HttpRoute,
    cookies: &mut SessionCookies,
    values: &mut dyn CookieValues,
) -> Result<Vec<HttpRoute>, RouterError> {
    let cookie_matches =
        |cookie: &str| merge_match_conditions(&[cookie_match(cookie)], &plan.service_matches);
    if canary_weight != 0 {
        let canary_cookie = cookies
            .canary
            .get_or_insert_with(|| new_cookie(affinity.cookie_name(), values))
            .clone();
        let primary_name = affinity
            .primary_cookie_name
            .as_deref()
            .filter(|n| !n.is_empty());
        let primary_cookie = primary_name.map(|name| {
            cookies
                .primary
                .get_or_insert_with(|| new_cookie(name, values))
                .clone()
        });

        let value = set_cookie_value(&canary_cookie, i64::from(affinity.max_age()), affinity);
        set_destination_headers(&mut weighted, &plan.canary_host, value);
        let mut sticky = plan.http_route(cookie_matches(&canary_cookie), plan.split(0, 100));
        sticky.name = Some(STICKY_ROUTE_NAME.into());
        let mut routes = vec![sticky];

        if let Some(primary_cookie) = primary_cookie {
            let raw = plan
                .analysis
                .and_then(|a| a.interval.as_deref())
                .unwrap_or_default();
            let interval = api::parse_go_duration(raw).map_err(RouterError::InvalidInterval)?;
            let max_age = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
            let value = set_cookie_value(&primary_cookie, max_age, affinity);
            set_destination_headers(&mut weighted, &plan.primary, value);
            let mut sticky = plan.http_route(cookie_matches(&primary_cookie), plan.split(100, 0));
            sticky.name = Some(STICKY_PRIMARY_ROUTE_NAME.into());
            routes.push(sticky);
        }
        routes.push(weighted);
        return Ok(routes);
    }

    if let Some(current) = cookies.canary.take() {
        cookies.previous = Some(current);
    }
    let mut sticky = weighted.clone();
    sticky.name = Some(STICKY_ROUTE_NAME.into());
    if let Some(previous) = &cookies.previous {
        sticky.r#match = cookie_matches(previous);
        sticky
            .headers
            .get_or_insert_with(Headers::default)
            .response
            .get_or_insert_with(HeaderOperations::default)
            .add
            .insert(
                SET_COOKIE_HEADER.into(),
                set_cookie_value(previous, -1, affinity),
            );
    }
    Ok(vec![sticky, weighted])
}

// ---------------------------------------------------------------------------------------
// Reconcile update rule
// ---------------------------------------------------------------------------------------

fn is_sticky(route: &HttpRoute) -> bool {
    matches!(
        route.name.as_deref(),
        Some(STICKY_ROUTE_NAME | STICKY_PRIMARY_ROUTE_NAME)
    )
}

/// The spec as Flagger's comparison sees it: destination weights and route mirrors belong to
/// `SetRoutes`; with session affinity so do the sticky routes and the destinations'
/// `Set-Cookie` headers; a delegate VirtualService's hosts and gateways are not compared.
fn comparable(canary: &Canary, spec: &VirtualServiceSpec) -> VirtualServiceSpec {
    let mut spec = spec.clone();
    let service = canary.spec.service.as_ref();
    if service.is_some_and(|s| s.delegation.unwrap_or(false)) {
        spec.hosts.clear();
        spec.gateways.clear();
    }
    let affinity = canary
        .analysis()
        .is_some_and(|a| a.session_affinity.is_some());
    if affinity {
        spec.http.retain(|r| !is_sticky(r));
    }
    for route in &mut spec.http {
        route.mirror = None;
        route.mirror_percentage = None;
        for d in &mut route.route {
            d.weight = 0;
            if affinity {
                d.headers = None;
            }
        }
    }
    for route in &mut spec.tcp {
        for d in &mut route.route {
            d.weight = 0;
        }
    }
    spec
}

/// Whether `Reconcile` must rewrite the live spec (which resets the weights to 100/0, as in
/// Flagger): the specs differ once what `SetRoutes` owns is ignored (see `comparable`).
pub fn spec_needs_update(
    canary: &Canary,
    live: &VirtualServiceSpec,
    desired: &VirtualServiceSpec,
) -> bool {
    comparable(canary, live) != comparable(canary, desired)
}

/// Whether a desired label or annotation is missing from (or different on) the live object.
/// Keys other controllers added are left alone: server-side apply keeps them, so demanding
/// equality, as Flagger does, would rewrite the object on every tick.
pub fn metadata_needs_update(live: &ObjectMeta, desired: &ObjectMeta) -> bool {
    let missing = |want: &Option<BTreeMap<String, String>>,
                   have: &Option<BTreeMap<String, String>>| {
        want.iter()
            .flatten()
            .any(|(k, v)| have.as_ref().and_then(|h| h.get(k)) != Some(v))
    };
    missing(&desired.labels, &live.labels) || missing(&desired.annotations, &live.annotations)
}

fn annotation<'m>(metadata: &'m ObjectMeta, key: &str) -> Option<&'m String> {
    metadata.annotations.as_ref().and_then(|a| a.get(key))
}

/// The `flagger.kubernetes.io/original-configuration` value the VirtualService must carry
/// after `Reconcile`: the one it has, or, when Serin takes over a VirtualService it did not
/// create and rewrites its spec, the spec it had (unless kubectl's last-applied annotation
/// already keeps the user's version).
///
/// Deliberate difference: Flagger overwrites the annotation on every spec change, so after
/// one change of the Canary's service it holds a spec Flagger generated and `Finalize`
/// restores that; Serin keeps the first, the user's.
pub fn original_configuration(
    canary: &Canary,
    live: &ObjectMeta,
    live_spec: &serde_json::Value,
    spec_differs: bool,
) -> Option<String> {
    if let Some(kept) = annotation(live, ORIGINAL_CONFIGURATION_ANNOTATION) {
        return Some(kept.clone());
    }
    let canary_name = canary.metadata.name.as_deref().unwrap_or_default();
    let take_over = spec_differs
        && annotation(live, KUBECTL_LAST_APPLIED_ANNOTATION).is_none()
        && !controlled_by(live, canary_name);
    take_over.then(|| live_spec.to_string())
}

fn strip_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The spec `Finalize` restores (Flagger's order: kubectl's last-applied configuration, else
/// the original-configuration annotation); `None` when the VirtualService has neither.
/// Nulls are dropped (Go writes a nil `hosts` as `null`), so the spec applies as it was.
pub fn original_spec(
    name: &str,
    namespace: &str,
    metadata: &ObjectMeta,
) -> Result<Option<serde_json::Value>, RouterError> {
    let unreadable = |key: &str| {
        RouterError::Refused(format!(
            "VirtualService {name}.{namespace} failed to unMarshal annotation {key}"
        ))
    };
    let parse = |key: &str, raw: &str| -> Result<serde_json::Value, RouterError> {
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(value) if value.is_object() => Ok(value),
            _ => Err(unreadable(key)),
        }
    };
    let mut spec = if let Some(raw) = annotation(metadata, KUBECTL_LAST_APPLIED_ANNOTATION) {
        let object = parse(KUBECTL_LAST_APPLIED_ANNOTATION, raw)?;
        match object.get("spec") {
            Some(spec) if spec.is_object() => spec.clone(),
            None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
            Some(_) => return Err(unreadable(KUBECTL_LAST_APPLIED_ANNOTATION)),
        }
    } else if let Some(raw) = annotation(metadata, ORIGINAL_CONFIGURATION_ANNOTATION) {
        parse(ORIGINAL_CONFIGURATION_ANNOTATION, raw)?
    } else {
        return Ok(None);
    };
    strip_nulls(&mut spec);
    Ok(Some(spec))
}

// ---------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------

/// The VirtualService Serin applies: name `<apex>`, the Canary's namespace, `service.apex`'s
/// labels and annotations plus the Flux opt-out (and the original configuration when there
/// is one), the owner reference when the VirtualService is (to be) Serin's.
pub fn virtual_service_object(
    canary: &Canary,
    owner: Option<OwnerReference>,
    original: Option<String>,
    spec: VirtualServiceSpec,
) -> Result<VirtualService, RouterError> {
    let namespace = canary_namespace(canary)?;
    let (service, _) = canary_service(canary)?;
    let apex = service.apex.as_ref();
    let labels = apex.and_then(|m| m.labels.clone()).unwrap_or_default();
    let mut annotations = with_flux_opt_out(apex.and_then(|m| m.annotations.as_ref()));
    if let Some(original) = original {
        annotations.insert(ORIGINAL_CONFIGURATION_ANNOTATION.into(), original);
    }
    Ok(VirtualService::new(
        ObjectMeta {
            name: Some(canary.spec.apex_service_name().to_string()),
            namespace: Some(namespace.to_string()),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: Some(annotations),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec,
    ))
}

/// The DestinationRule Flagger writes for `host` (`<apex>-primary` or `<apex>-canary`): named
/// after the host, with `service.trafficPolicy`. Flagger sets no metadata on it; Serin adds
/// the Flux opt-out, as on every object it generates.
pub fn destination_rule_object(
    canary: &Canary,
    host: &str,
    owner: Option<OwnerReference>,
) -> Result<DestinationRule, RouterError> {
    let namespace = canary_namespace(canary)?;
    let (service, _) = canary_service(canary)?;
    Ok(DestinationRule::new(
        ObjectMeta {
            name: Some(host.to_string()),
            namespace: Some(namespace.to_string()),
            annotations: Some(with_flux_opt_out(None)),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        DestinationRuleSpec {
            host: host.to_string(),
            traffic_policy: service.traffic_policy.clone(),
        },
    ))
}

/// Whether `Reconcile` must rewrite a live DestinationRule: its spec differs (Flagger's
/// rule) or a desired annotation is missing.
pub fn destination_rule_needs_update(live: &DestinationRule, desired: &DestinationRule) -> bool {
    live.spec != desired.spec || metadata_needs_update(&live.metadata, &desired.metadata)
}

// ---------------------------------------------------------------------------------------
// GetRoutes
// ---------------------------------------------------------------------------------------

fn read_weight(w: i32) -> u32 {
    u32::try_from(w).unwrap_or(0)
}

/// The split a live VirtualService carries (Flagger's `GetRoutes`).
///
/// The weights come from the last route that has a destination `<apex>-canary` (HTTP, or TCP
/// for `appProtocol: tcp`); with session affinity from the destinations carrying headers (the
/// weighted route's `Set-Cookie`), which wins over the sticky routes. Both weights 0 is
/// Flagger's error.
///
/// `mirrored`: a route with the canary destination mirrors somewhere. (Flagger looks only at
/// the route it read the weights from; with session affinity the mirror sits on the sticky
/// route, so Flagger never reports a mirror it wrote.) TCP routes never mirror.
pub fn read_routes(
    canary: &Canary,
    namespace: &str,
    spec: &VirtualServiceSpec,
) -> Result<Routes, RouterError> {
    let apex = canary.spec.apex_service_name();
    let primary = canary.spec.primary_service_name();
    let canary_host = canary.spec.canary_service_name();
    let mut routes = Routes::default();
    let mut assign = |host: &str, w: i32| {
        if host == primary {
            routes.primary = read_weight(w);
        }
        if host == canary_host {
            routes.canary = read_weight(w);
        }
    };
    let tcp = canary.spec.service.as_ref().is_some_and(is_tcp);
    let mut mirrored = false;
    if tcp {
        let last = spec
            .tcp
            .iter()
            .rfind(|r| r.route.iter().any(|d| d.destination.host == canary_host));
        for d in last.iter().flat_map(|r| r.route.iter()) {
            assign(&d.destination.host, d.weight);
        }
    } else {
        let with_canary =
            |r: &&HttpRoute| r.route.iter().any(|d| d.destination.host == canary_host);
        for d in spec
            .http
            .iter()
            .rfind(with_canary)
            .iter()
            .flat_map(|r| r.route.iter())
        {
            assign(&d.destination.host, d.weight);
        }
        mirrored = spec
            .http
            .iter()
            .filter(with_canary)
            .any(|r| r.mirror.as_ref().is_some_and(|m| !m.host.is_empty()));
        if canary
            .analysis()
            .is_some_and(|a| a.session_affinity.is_some())
        {
            let with_headers = spec
                .http
                .iter()
                .flat_map(|r| r.route.iter())
                .filter(|d| d.headers.is_some());
            for d in with_headers {
                assign(&d.destination.host, d.weight);
            }
        }
    }
    routes.mirrored = mirrored;
    if routes.primary == 0 && routes.canary == 0 {
        return Err(RouterError::Refused(format!(
            "VirtualService {apex}.{namespace} does not contain routes for {apex}-primary and \
             {apex}-canary"
        )));
    }
    Ok(routes)
}

/// A live VirtualService's spec, as Serin reads it (fields it never writes are ignored,
/// except on HTTP routes: see [`HttpRoute::other`]).
pub fn parse_spec(
    name: &str,
    namespace: &str,
    raw: &serde_json::Value,
) -> Result<VirtualServiceSpec, RouterError> {
    if raw.is_null() {
        return Ok(VirtualServiceSpec::default());
    }
    serde_json::from_value(raw.clone()).map_err(|e| {
        RouterError::Refused(format!(
            "VirtualService {name}.{namespace} spec cannot be read: {e}"
        ))
    })
}
