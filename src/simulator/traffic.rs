//! Where one HTTPRoute sends its synthetic requests: to a rule by its matches, to backends by
//! their weights, through each backend Service to the Deployments it selects.
//!
//! Pure: the views come from the cluster reader, the flows go to the meter. That keeps the
//! arithmetic a test can check (weights, matches, annotations) apart from the I/O.

use std::collections::BTreeMap;

use super::proxies::{ProxyRoute, Tag};
use gateway_api::httproutes::{
    HttpRoute, HttpRouteRules, HttpRouteRulesFiltersRequestMirror, HttpRouteRulesFiltersType,
    HttpRouteRulesMatches,
};

/// Pod-template annotation: the fraction (0..=1) of requests a workload answers with 500.
pub const ERROR_RATE_ANNOTATION: &str = "sim.serin.dev/error-rate";
/// Pod-template annotation: how many milliseconds a workload takes to answer.
pub const LATENCY_ANNOTATION: &str = "sim.serin.dev/latency-ms";

pub const DEFAULT_ERROR_RATE: f64 = 0.0;
pub const DEFAULT_LATENCY_MS: f64 = 50.0;

/// Gateway API's weight of a backendRef that does not set one.
const DEFAULT_BACKEND_WEIGHT: i32 = 1;

/// A Service as far as routing needs it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceView {
    pub namespace: String,
    pub name: String,
    /// Empty for a Service without selector (its endpoints are managed by hand).
    pub selector: BTreeMap<String, String>,
}

/// A Deployment as far as routing needs it: its pods' labels and annotations, and how many
/// of them are ready to take requests.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkloadView {
    pub namespace: String,
    pub name: String,
    pub pod_labels: BTreeMap<String, String>,
    pub pod_annotations: BTreeMap<String, String>,
    pub ready_replicas: i32,
}

/// The Services and workloads of the watched namespaces at one moment.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    services: BTreeMap<(String, String), ServiceView>,
    workloads: Vec<WorkloadView>,
}

impl ClusterView {
    pub fn new(
        services: impl IntoIterator<Item = ServiceView>,
        workloads: impl IntoIterator<Item = WorkloadView>,
    ) -> Self {
        ClusterView {
            services: services
                .into_iter()
                .map(|s| ((s.namespace.clone(), s.name.clone()), s))
                .collect(),
            workloads: workloads.into_iter().collect(),
        }
    }

    fn service(&self, namespace: &str, name: &str) -> Option<&ServiceView> {
        self.services
            .get(&(namespace.to_string(), name.to_string()))
    }
}

/// How a workload answers, as its pod template's annotations say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    pub error_rate: f64,
    pub latency_ms: f64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            error_rate: DEFAULT_ERROR_RATE,
            latency_ms: DEFAULT_LATENCY_MS,
        }
    }
}

impl Behaviour {
    /// The behaviour `workload`'s annotations ask for; an unusable value falls back to the
    /// default and is reported, so a typo shows up in the log instead of as a silent 0%.
    pub fn of(workload: &WorkloadView, problems: &mut Vec<String>) -> Behaviour {
        let mut behaviour = Behaviour::default();
        let annotations = &workload.pod_annotations;
        let mut problem = |key: &str, value: &str, want: &str, default: f64| {
            problems.push(format!(
                "Deployment {}/{}: pod template annotation {key}={value:?} is not {want}; using {default}",
                workload.namespace, workload.name
            ));
        };
        if let Some(value) = annotations.get(ERROR_RATE_ANNOTATION) {
            match value.trim().parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) => behaviour.error_rate = rate,
                _ => problem(
                    ERROR_RATE_ANNOTATION,
                    value,
                    "a fraction between 0 and 1",
                    DEFAULT_ERROR_RATE,
                ),
            }
        }
        if let Some(value) = annotations.get(LATENCY_ANNOTATION) {
            match value.trim().parse::<f64>() {
                Ok(ms) if ms.is_finite() && ms >= 0.0 => behaviour.latency_ms = ms,
                _ => problem(
                    LATENCY_ANNOTATION,
                    value,
                    "a number of milliseconds",
                    DEFAULT_LATENCY_MS,
                ),
            }
        }
        behaviour
    }
}

/// Who sends a route's requests: the Gateway it is attached to (its first parentRef), as a
/// mesh would name the gateway's workload.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source {
    pub workload: String,
    pub namespace: String,
}

/// Where a share of requests ends up.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// A Deployment behind `service` answers them.
    Workload {
        namespace: String,
        service: String,
        workload: String,
        behaviour: Behaviour,
    },
    /// Nothing answers: the Service is missing, selects nothing, or has no ready pod. The
    /// gateway answers 503 itself, so only the sending side sees these requests.
    Unavailable { namespace: String, service: String },
}

/// `requests` requests from `source` to `destination` during one tick (fractional: the
/// meter carries the remainder to the next tick).
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub source: Source,
    pub destination: Destination,
    pub requests: f64,
    /// The proxy's own labels for these requests (none for an HTTPRoute's gateway).
    pub tag: Option<Tag>,
}

/// What one route did with one tick's requests, and what kept it from doing better.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteTraffic {
    pub flows: Vec<Flow>,
    pub problems: Vec<String>,
}

/// Sends `requests` synthetic requests through `route`.
///
/// A `match_fraction` share of them carries whatever rule[0]'s first match requires (the
/// header, cookie or query parameter of an A/B test or a session-affinity cookie), so it
/// lands on rule[0]. The rest is plain traffic for the route's host, which lands on the
/// first rule that asks for nothing beyond a path, or else the last rule. When rule[0]
/// itself asks for nothing beyond a path, all requests land there. A rule's `RequestMirror`
/// filters also send a copy of the requests it takes to the mirror's Service (blue/green with
/// `analysis.mirror` is analysed on those copies).
pub fn route_traffic(
    route: &HttpRoute,
    cluster: &ClusterView,
    requests: f64,
    match_fraction: f64,
) -> RouteTraffic {
    let mut out = RouteTraffic::default();
    let namespace = route.metadata.namespace.clone().unwrap_or_default();
    let name = route.metadata.name.clone().unwrap_or_default();
    let source = source(route, &namespace);
    let rules = route.spec.rules.as_deref().unwrap_or_default();
    for (index, share) in rule_shares(rules, match_fraction) {
        let rule_requests = requests * share;
        if rule_requests <= 0.0 {
            continue;
        }
        for (backend, backend_requests) in backend_shares(&rules[index], rule_requests) {
            if backend_requests <= 0.0 {
                continue;
            }
            let backend_namespace = backend.namespace.unwrap_or_else(|| namespace.clone());
            if !backend.is_service {
                out.problems.push(format!(
                    "HTTPRoute {namespace}/{name}: backendRef {} is not a Service; its requests are not simulated",
                    backend.name
                ));
                continue;
            }
            for (destination, share) in resolve(
                cluster,
                &backend_namespace,
                &backend.name,
                &mut out.problems,
            ) {
                out.flows.push(Flow {
                    source: source.clone(),
                    destination,
                    requests: backend_requests * share,
                    tag: None,
                });
            }
        }
        for (mirror, copies) in mirror_shares(&rules[index], rule_requests) {
            let mirror_namespace = mirror.namespace.unwrap_or_else(|| namespace.clone());
            if !mirror.is_service {
                out.problems.push(format!(
                    "HTTPRoute {namespace}/{name}: mirror {} is not a Service; its copies are not simulated",
                    mirror.name
                ));
                continue;
            }
            if copies <= 0.0 {
                continue;
            }
            let mut found = Vec::new();
            let destinations = resolve(cluster, &mirror_namespace, &mirror.name, &mut found);
            // The gateway discards the copies' responses: a mirror nobody answers fails no
            // request, so its copies are dropped rather than counted as 503s.
            if destinations
                .iter()
                .any(|(d, _)| matches!(d, Destination::Unavailable { .. }))
            {
                out.problems.push(format!(
                    "HTTPRoute {namespace}/{name}: mirror Service {mirror_namespace}/{} cannot take requests; its copies are dropped",
                    mirror.name
                ));
                continue;
            }
            out.problems.extend(found);
            for (destination, share) in destinations {
                out.flows.push(Flow {
                    source: source.clone(),
                    destination,
                    requests: copies * share,
                    tag: None,
                });
            }
        }
    }
    out
}

/// The Services `rule`'s `RequestMirror` filters copy its `requests` to, each with the number
/// of copies: all of them, or the filter's `percent` or `fraction` (denominator 100 unless set).
fn mirror_shares(rule: &HttpRouteRules, requests: f64) -> Vec<(Backend, f64)> {
    let share = |m: &HttpRouteRulesFiltersRequestMirror| -> f64 {
        let share = match (&m.fraction, m.percent) {
            (Some(f), _) => {
                let denominator = f.denominator.unwrap_or(100);
                if denominator <= 0 {
                    0.0
                } else {
                    f64::from(f.numerator) / f64::from(denominator)
                }
            }
            (None, Some(percent)) => f64::from(percent) / 100.0,
            (None, None) => 1.0,
        };
        share.clamp(0.0, 1.0)
    };
    rule.filters
        .iter()
        .flatten()
        .filter(|f| f.r#type == HttpRouteRulesFiltersType::RequestMirror)
        .filter_map(|f| f.request_mirror.as_ref())
        .map(|m| {
            let r = &m.backend_ref;
            let backend = Backend {
                name: r.name.clone(),
                namespace: r.namespace.clone(),
                is_service: r.group.as_deref().is_none_or(str::is_empty)
                    && r.kind.as_deref().is_none_or(|k| k == "Service"),
            };
            (backend, requests * share(m))
        })
        .collect()
}

fn source(route: &HttpRoute, namespace: &str) -> Source {
    match route.spec.parent_refs.as_deref().and_then(|p| p.first()) {
        Some(parent) => Source {
            workload: parent.name.clone(),
            namespace: parent
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.to_string()),
        },
        // Istio's word for a peer it cannot name.
        None => Source {
            workload: "unknown".into(),
            namespace: "unknown".into(),
        },
    }
}

/// A match that asks for more than a path: plain requests do not carry what it wants.
fn is_conditional(m: &HttpRouteRulesMatches) -> bool {
    m.headers.as_ref().is_some_and(|h| !h.is_empty())
        || m.query_params.as_ref().is_some_and(|q| !q.is_empty())
        || m.method.is_some()
}

/// A rule plain requests reach: no matches, or one match that asks only for a path.
fn takes_plain_requests(rule: &HttpRouteRules) -> bool {
    match rule.matches.as_deref() {
        None | Some([]) => true,
        Some(matches) => matches.iter().any(|m| !is_conditional(m)),
    }
}

/// Which rules get which share of the requests.
fn rule_shares(rules: &[HttpRouteRules], match_fraction: f64) -> Vec<(usize, f64)> {
    let conditional: Vec<bool> = rules.iter().map(|r| !takes_plain_requests(r)).collect();
    shares_by_condition(&conditional, match_fraction)
}

/// Which rules get which share of the requests, given which rules ask for something plain
/// requests lack: a `match_fraction` share carries what the first rule wants, the rest goes
/// to the first rule plain requests reach.
fn shares_by_condition(conditional: &[bool], match_fraction: f64) -> Vec<(usize, f64)> {
    let Some(first) = conditional.first() else {
        return Vec::new();
    };
    if !first {
        return vec![(0, 1.0)];
    }
    let matching = match_fraction.clamp(0.0, 1.0);
    // Every rule is conditional: plain requests fall to the last rule rather than vanish,
    // so a route always has traffic to judge.
    let plain = conditional
        .iter()
        .position(|c| !c)
        .unwrap_or(conditional.len() - 1);
    if plain == 0 {
        vec![(0, 1.0)]
    } else {
        vec![(0, matching), (plain, 1.0 - matching)]
    }
}

/// Sends `requests` synthetic requests through a provider's routing object (see
/// [`super::proxies`]), by the same rules as [`route_traffic`]: rule by condition, backends by
/// weight (all 0: the proxy answers itself and no workload sees them), copies to mirrors.
pub fn proxy_traffic(
    route: &ProxyRoute,
    cluster: &ClusterView,
    requests: f64,
    match_fraction: f64,
) -> RouteTraffic {
    let mut out = RouteTraffic::default();
    let conditional: Vec<bool> = route.rules.iter().map(|r| r.conditional).collect();
    for (index, share) in shares_by_condition(&conditional, match_fraction) {
        let rule = &route.rules[index];
        let rule_requests = requests * share;
        if rule_requests <= 0.0 {
            continue;
        }
        let total: f64 = rule.backends.iter().map(|b| b.weight.max(0.0)).sum();
        if total > 0.0 {
            for backend in &rule.backends {
                let backend_requests = rule_requests * backend.weight.max(0.0) / total;
                if backend_requests <= 0.0 {
                    continue;
                }
                for (destination, share) in resolve(
                    cluster,
                    &backend.namespace,
                    &backend.service,
                    &mut out.problems,
                ) {
                    out.flows.push(Flow {
                        source: route.source.clone(),
                        destination,
                        requests: backend_requests * share,
                        tag: backend.tag.clone(),
                    });
                }
            }
        }
        for (mirror, copy_share) in &rule.mirrors {
            let copies = rule_requests * copy_share;
            if copies <= 0.0 {
                continue;
            }
            let mut found = Vec::new();
            let destinations = resolve(cluster, &mirror.namespace, &mirror.service, &mut found);
            if destinations
                .iter()
                .any(|(d, _)| matches!(d, Destination::Unavailable { .. }))
            {
                out.problems.push(format!(
                    "{} {}/{}: mirror Service {}/{} cannot take requests; its copies are dropped",
                    route.kind, route.namespace, route.name, mirror.namespace, mirror.service
                ));
                continue;
            }
            out.problems.extend(found);
            for (destination, share) in destinations {
                out.flows.push(Flow {
                    source: route.source.clone(),
                    destination,
                    requests: copies * share,
                    tag: mirror.tag.clone(),
                });
            }
        }
    }
    out
}

struct Backend {
    name: String,
    namespace: Option<String>,
    is_service: bool,
}

/// Each backendRef of `rule` with its share of `requests`, by weight. All weights 0 means
/// the gateway answers 500 itself and no workload sees the requests.
fn backend_shares(rule: &HttpRouteRules, requests: f64) -> Vec<(Backend, f64)> {
    let refs = rule.backend_refs.as_deref().unwrap_or_default();
    let weight = |w: Option<i32>| f64::from(w.unwrap_or(DEFAULT_BACKEND_WEIGHT).max(0));
    let total: f64 = refs.iter().map(|b| weight(b.weight)).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    refs.iter()
        .map(|b| {
            let core_group = b.group.as_deref().is_none_or(str::is_empty);
            let service_kind = b.kind.as_deref().is_none_or(|k| k == "Service");
            let backend = Backend {
                name: b.name.clone(),
                namespace: b.namespace.clone(),
                is_service: core_group && service_kind,
            };
            (backend, requests * weight(b.weight) / total)
        })
        .collect()
}

/// The workloads behind Service `namespace/name`, each with its share of the Service's
/// requests (by ready pods, as kube-proxy or a mesh would spread them).
fn resolve(
    cluster: &ClusterView,
    namespace: &str,
    name: &str,
    problems: &mut Vec<String>,
) -> Vec<(Destination, f64)> {
    let unavailable = |problems: &mut Vec<String>, why: &str| {
        problems.push(format!(
            "Service {namespace}/{name} {why}; its requests fail with 503"
        ));
        vec![(
            Destination::Unavailable {
                namespace: namespace.to_string(),
                service: name.to_string(),
            },
            1.0,
        )]
    };
    let Some(service) = cluster.service(namespace, name) else {
        return unavailable(problems, "does not exist");
    };
    if service.selector.is_empty() {
        return unavailable(problems, "has no selector");
    }
    let selected: Vec<&WorkloadView> = cluster
        .workloads
        .iter()
        .filter(|w| w.namespace == namespace)
        .filter(|w| {
            service
                .selector
                .iter()
                .all(|(k, v)| w.pod_labels.get(k) == Some(v))
        })
        .collect();
    if selected.is_empty() {
        return unavailable(problems, "selects no Deployment");
    }
    let ready: i32 = selected.iter().map(|w| w.ready_replicas.max(0)).sum();
    if ready == 0 {
        return unavailable(problems, "has no ready pod");
    }
    selected
        .into_iter()
        .filter(|w| w.ready_replicas > 0)
        .map(|w| {
            let destination = Destination::Workload {
                namespace: namespace.to_string(),
                service: name.to_string(),
                workload: w.name.clone(),
                behaviour: Behaviour::of(w, problems),
            };
            (destination, f64::from(w.ready_replicas) / f64::from(ready))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use gateway_api::httproutes::{
        HttpRouteParentRefs, HttpRouteRulesBackendRefs, HttpRouteRulesFilters,
        HttpRouteRulesFiltersRequestMirrorBackendRef, HttpRouteRulesFiltersRequestMirrorFraction,
        HttpRouteRulesMatchesHeaders, HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesPath,
        HttpRouteRulesMatchesPathType, HttpRouteSpec,
    };

    pub(crate) const NS: &str = "test";

    pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub(crate) fn service(name: &str, app: &str) -> ServiceView {
        ServiceView {
            namespace: NS.into(),
            name: name.into(),
            selector: labels(&[("app", app)]),
        }
    }

    pub(crate) fn workload(name: &str, error_rate: &str, latency: &str) -> WorkloadView {
        WorkloadView {
            namespace: NS.into(),
            name: name.into(),
            pod_labels: labels(&[("app", name)]),
            pod_annotations: labels(&[
                (ERROR_RATE_ANNOTATION, error_rate),
                (LATENCY_ANNOTATION, latency),
            ]),
            ready_replicas: 1,
        }
    }

    /// podinfo (canary: 30% errors, 300 ms) and podinfo-primary (no errors, 50 ms) behind
    /// Flagger's two Services.
    pub(crate) fn cluster() -> ClusterView {
        ClusterView::new(
            [
                service("podinfo-canary", "podinfo"),
                service("podinfo-primary", "podinfo-primary"),
            ],
            [
                workload("podinfo", "0.3", "300"),
                workload("podinfo-primary", "0", "50"),
            ],
        )
    }

    pub(crate) fn backend(name: &str, weight: Option<i32>) -> HttpRouteRulesBackendRefs {
        HttpRouteRulesBackendRefs {
            name: name.into(),
            port: Some(9898),
            weight,
            ..Default::default()
        }
    }

    fn path_match() -> HttpRouteRulesMatches {
        HttpRouteRulesMatches {
            path: Some(HttpRouteRulesMatchesPath {
                r#type: Some(HttpRouteRulesMatchesPathType::PathPrefix),
                value: Some("/".into()),
            }),
            ..Default::default()
        }
    }

    fn header_match(name: &str, value: &str) -> HttpRouteRulesMatches {
        HttpRouteRulesMatches {
            headers: Some(vec![HttpRouteRulesMatchesHeaders {
                name: name.into(),
                r#type: Some(HttpRouteRulesMatchesHeadersType::RegularExpression),
                value: value.into(),
            }]),
            ..path_match()
        }
    }

    pub(crate) fn rule(
        matches: Vec<HttpRouteRulesMatches>,
        backends: Vec<HttpRouteRulesBackendRefs>,
    ) -> HttpRouteRules {
        HttpRouteRules {
            matches: Some(matches),
            backend_refs: Some(backends),
            ..Default::default()
        }
    }

    pub(crate) fn route(rules: Vec<HttpRouteRules>) -> HttpRoute {
        let mut route = HttpRoute::new(
            "podinfo",
            HttpRouteSpec {
                parent_refs: Some(vec![HttpRouteParentRefs {
                    name: "gateway".into(),
                    namespace: Some("istio-ingress".into()),
                    ..Default::default()
                }]),
                rules: Some(rules),
                ..Default::default()
            },
        );
        route.metadata.namespace = Some(NS.into());
        route.metadata.generation = Some(1);
        route
    }

    /// Flagger's weighted route.
    pub(crate) fn weighted(primary: i32, canary: i32) -> HttpRoute {
        route(vec![rule(
            vec![path_match()],
            vec![
                backend("podinfo-primary", Some(primary)),
                backend("podinfo-canary", Some(canary)),
            ],
        )])
    }

    /// Requests per workload name ("-" for unavailable backends).
    fn per_workload(traffic: &RouteTraffic) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for flow in &traffic.flows {
            let key = match &flow.destination {
                Destination::Workload { workload, .. } => workload.clone(),
                Destination::Unavailable { service, .. } => format!("-{service}"),
            };
            *out.entry(key).or_insert(0.0) += flow.requests;
        }
        out
    }

    fn assert_split(traffic: &RouteTraffic, want: &[(&str, f64)]) {
        let got = per_workload(traffic);
        let want: BTreeMap<String, f64> = want.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{got:?}"
        );
        for (k, v) in &want {
            assert!((got[k] - v).abs() < 1e-9, "{k}: got {}, want {v}", got[k]);
        }
    }

    #[test]
    fn weights_split_requests_between_primary_and_canary() {
        let cases = [
            (100, 0, vec![("podinfo-primary", 100.0)]),
            (80, 20, vec![("podinfo-primary", 80.0), ("podinfo", 20.0)]),
            (0, 100, vec![("podinfo", 100.0)]),
            // Weights are relative, not percentages.
            (1, 3, vec![("podinfo-primary", 25.0), ("podinfo", 75.0)]),
            // All weights 0: the gateway answers 500 itself; no workload sees a request.
            (0, 0, vec![]),
        ];
        for (primary, canary, want) in cases {
            let traffic = route_traffic(&weighted(primary, canary), &cluster(), 100.0, 0.1);
            assert_split(&traffic, &want);
            assert!(traffic.problems.is_empty(), "{:?}", traffic.problems);
        }
    }

    #[test]
    fn unset_weight_counts_as_one() {
        let r = route(vec![rule(
            vec![path_match()],
            vec![
                backend("podinfo-primary", None),
                backend("podinfo-canary", Some(1)),
            ],
        )]);
        assert_split(
            &route_traffic(&r, &cluster(), 10.0, 0.1),
            &[("podinfo-primary", 5.0), ("podinfo", 5.0)],
        );
    }

    #[test]
    fn matching_share_goes_to_the_ab_rule_and_the_rest_to_the_plain_rule() {
        // Flagger's A/B route: rule[0] wants a cookie and sends it to the canary; rule[1]
        // takes everything else to the primary.
        let ab = route(vec![
            rule(
                vec![header_match("Cookie", "^(.*?;)?(type=insider)(;.*)?$")],
                vec![
                    backend("podinfo-primary", Some(0)),
                    backend("podinfo-canary", Some(100)),
                ],
            ),
            rule(vec![path_match()], vec![backend("podinfo-primary", None)]),
        ]);
        assert_split(
            &route_traffic(&ab, &cluster(), 100.0, 0.1),
            &[("podinfo-primary", 90.0), ("podinfo", 10.0)],
        );
        // Out-of-range fractions are clamped rather than creating or losing requests.
        assert_split(
            &route_traffic(&ab, &cluster(), 100.0, 7.0),
            &[("podinfo", 100.0)],
        );
    }

    #[test]
    fn plain_requests_skip_conditional_rules_to_the_first_rule_without_conditions() {
        // Session affinity with a primary cookie: sticky-canary, sticky-primary, weighted.
        let sticky = route(vec![
            rule(
                vec![header_match("Cookie", ".*flagger-cookie.*abc.*")],
                vec![
                    backend("podinfo-primary", Some(0)),
                    backend("podinfo-canary", Some(100)),
                ],
            ),
            rule(
                vec![header_match("Cookie", ".*primary-cookie.*def.*")],
                vec![
                    backend("podinfo-primary", Some(100)),
                    backend("podinfo-canary", Some(0)),
                ],
            ),
            rule(
                vec![path_match()],
                vec![
                    backend("podinfo-primary", Some(50)),
                    backend("podinfo-canary", Some(50)),
                ],
            ),
        ]);
        assert_split(
            &route_traffic(&sticky, &cluster(), 100.0, 0.2),
            &[("podinfo-primary", 40.0), ("podinfo", 60.0)],
        );
    }

    #[test]
    fn all_conditional_rules_send_plain_requests_to_the_last_rule() {
        let r = route(vec![
            rule(
                vec![header_match("x-canary", "yes")],
                vec![backend("podinfo-canary", None)],
            ),
            rule(
                vec![header_match("x-other", "yes")],
                vec![backend("podinfo-primary", None)],
            ),
        ]);
        assert_split(
            &route_traffic(&r, &cluster(), 100.0, 0.25),
            &[("podinfo-primary", 75.0), ("podinfo", 25.0)],
        );
        // One conditional rule only: it takes everything.
        let single = route(vec![rule(
            vec![header_match("x-canary", "yes")],
            vec![backend("podinfo-canary", None)],
        )]);
        assert_split(
            &route_traffic(&single, &cluster(), 100.0, 0.25),
            &[("podinfo", 100.0)],
        );
    }

    #[test]
    fn a_rule_without_matches_takes_plain_requests() {
        let mut r = weighted(100, 0);
        if let Some(rules) = r.spec.rules.as_mut() {
            rules[0].matches = None;
        }
        assert_split(
            &route_traffic(&r, &cluster(), 10.0, 0.5),
            &[("podinfo-primary", 10.0)],
        );
    }

    #[test]
    fn annotations_set_behaviour_and_bad_values_are_reported() {
        let traffic = route_traffic(&weighted(50, 50), &cluster(), 10.0, 0.0);
        let behaviours: BTreeMap<String, Behaviour> = traffic
            .flows
            .iter()
            .filter_map(|f| match &f.destination {
                Destination::Workload {
                    workload,
                    behaviour,
                    ..
                } => Some((workload.clone(), *behaviour)),
                Destination::Unavailable { .. } => None,
            })
            .collect();
        assert_eq!(
            behaviours["podinfo"],
            Behaviour {
                error_rate: 0.3,
                latency_ms: 300.0
            }
        );
        assert_eq!(
            behaviours["podinfo-primary"],
            Behaviour {
                error_rate: 0.0,
                latency_ms: 50.0
            }
        );

        let mut problems = Vec::new();
        let mut w = workload("podinfo", "30%", "-5");
        assert_eq!(Behaviour::of(&w, &mut problems), Behaviour::default());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("sim.serin.dev/error-rate=\"30%\""),
            "{problems:?}"
        );
        w.pod_annotations.clear();
        problems.clear();
        assert_eq!(Behaviour::of(&w, &mut problems), Behaviour::default());
        assert!(problems.is_empty());
    }

    #[test]
    fn missing_or_empty_backends_are_unavailable() {
        let mut c = cluster();
        c.workloads[0].ready_replicas = 0;
        let traffic = route_traffic(&weighted(50, 50), &c, 10.0, 0.0);
        assert_split(
            &traffic,
            &[("podinfo-primary", 5.0), ("-podinfo-canary", 5.0)],
        );
        assert_eq!(
            traffic.problems,
            ["Service test/podinfo-canary has no ready pod; its requests fail with 503"]
        );

        let r = route(vec![rule(vec![path_match()], vec![backend("nope", None)])]);
        let traffic = route_traffic(&r, &cluster(), 10.0, 0.0);
        assert_split(&traffic, &[("-nope", 10.0)]);
        assert!(traffic.problems[0].contains("does not exist"));
    }

    #[test]
    fn a_service_spreads_requests_over_deployments_by_ready_pods() {
        let mut c = cluster();
        let mut other = workload("podinfo-old", "0", "10");
        other.pod_labels = labels(&[("app", "podinfo"), ("track", "old")]);
        other.ready_replicas = 3;
        c.workloads.push(other);
        assert_split(
            &route_traffic(&weighted(0, 100), &c, 100.0, 0.0),
            &[("podinfo", 25.0), ("podinfo-old", 75.0)],
        );
    }

    /// Flagger's mirrored blue/green route: all traffic on the primary, copied to `to`.
    fn mirrored(to: &str, percent: Option<i32>, fraction: Option<(i32, Option<i32>)>) -> HttpRoute {
        let mut r = weighted(100, 0);
        if let Some(rules) = r.spec.rules.as_mut() {
            rules[0].filters = Some(vec![HttpRouteRulesFilters {
                r#type: HttpRouteRulesFiltersType::RequestMirror,
                request_mirror: Some(HttpRouteRulesFiltersRequestMirror {
                    backend_ref: HttpRouteRulesFiltersRequestMirrorBackendRef {
                        group: Some(String::new()),
                        kind: Some("Service".into()),
                        name: to.into(),
                        namespace: None,
                        port: Some(9898),
                    },
                    fraction: fraction.map(|(numerator, denominator)| {
                        HttpRouteRulesFiltersRequestMirrorFraction {
                            numerator,
                            denominator,
                        }
                    }),
                    percent,
                }),
                ..Default::default()
            }]);
        }
        r
    }

    #[test]
    fn request_mirror_copies_the_rules_requests_to_the_mirror_service() {
        // Every request still reaches the primary; the canary gets a copy of each.
        let traffic = route_traffic(
            &mirrored("podinfo-canary", None, None),
            &cluster(),
            100.0,
            0.1,
        );
        assert_split(&traffic, &[("podinfo-primary", 100.0), ("podinfo", 100.0)]);
        assert!(traffic.problems.is_empty(), "{:?}", traffic.problems);
        for (percent, fraction, copies) in [
            (Some(50), None, 50.0),
            (None, Some((1, Some(4))), 25.0),
            (None, Some((30, None)), 30.0),
            (Some(50), Some((1, Some(10))), 10.0),
            (None, Some((1, Some(0))), 0.0),
        ] {
            let traffic = route_traffic(
                &mirrored("podinfo-canary", percent, fraction),
                &cluster(),
                100.0,
                0.1,
            );
            let want: &[(&str, f64)] = if copies > 0.0 {
                &[("podinfo-primary", 100.0), ("podinfo", copies)]
            } else {
                &[("podinfo-primary", 100.0)]
            };
            assert_split(&traffic, want);
        }
    }

    #[test]
    fn copies_nobody_can_take_are_dropped_not_failed() {
        let mut c = cluster();
        c.workloads[0].ready_replicas = 0;
        let traffic = route_traffic(&mirrored("podinfo-canary", None, None), &c, 10.0, 0.0);
        assert_split(&traffic, &[("podinfo-primary", 10.0)]);
        assert_eq!(
            traffic.problems,
            [
                "HTTPRoute test/podinfo: mirror Service test/podinfo-canary cannot take requests; its copies are dropped"
            ]
        );
    }

    #[test]
    fn source_is_the_first_parent_gateway() {
        let traffic = route_traffic(&weighted(100, 0), &cluster(), 1.0, 0.0);
        assert_eq!(
            traffic.flows[0].source,
            Source {
                workload: "gateway".into(),
                namespace: "istio-ingress".into()
            }
        );
    }
}
