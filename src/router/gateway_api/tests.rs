//! Table tests of the HTTPRoute builders against Flagger's behaviour (reference §4.2) and the
//! Gateway API guide's Canaries (src/api/testdata/gatewayapi-istio-*.yaml).

use std::collections::VecDeque;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::*;
use crate::router::{FLUX_RECONCILE_ANNOTATION, HELM_DRIFT_DETECTION_ANNOTATION};

const SEED_CANARY: &str = include_str!("../../api/testdata/gatewayapi-istio-canary.yaml");
const SEED_AB: &str = include_str!("../../api/testdata/gatewayapi-istio-ab-canary.yaml");
const SEED_AFFINITY: &str =
    include_str!("../../api/testdata/gatewayapi-istio-session-affinity.yaml");
const SEED_MIRROR: &str = include_str!("../../api/testdata/gatewayapi-istio-mirroring.yaml");
const SEED_OPTIONS: &str =
    include_str!("../../api/testdata/gatewayapi-istio-httproute-options.yaml");

use GatewayApiVersion::{V1, V1beta1};

fn canary(yaml: &str) -> Canary {
    let mut canary: Canary = serde_saphyr::from_str(yaml).unwrap();
    canary.metadata.uid = Some("uid-1".into());
    canary
}

/// The seed canary with `service` fields from a YAML fragment merged in.
fn with_service(extra: &str) -> Canary {
    let mut c = canary(SEED_CANARY);
    let service = c.spec.service.as_mut().unwrap();
    let extra: CanaryService = serde_saphyr::from_str(extra).unwrap();
    let mut base = serde_json::to_value(&*service).unwrap();
    let extra = serde_json::to_value(extra).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    *service = serde_json::from_value(base).unwrap();
    c
}

fn spec(yaml: &str) -> HttpRouteSpec {
    serde_saphyr::from_str(yaml).unwrap()
}

fn rules(spec: &HttpRouteSpec) -> &[HttpRouteRules] {
    spec.rules.as_deref().unwrap()
}

/// Cookie values from a list, so generated cookies are known.
struct Fixed(VecDeque<&'static str>);

impl Fixed {
    fn new(values: &[&'static str]) -> Self {
        Fixed(values.iter().copied().collect())
    }
}

impl CookieValues for Fixed {
    fn next_value(&mut self) -> String {
        self.0
            .pop_front()
            .expect("no more cookie values")
            .to_string()
    }
}

fn set_routes(
    c: &Canary,
    version: GatewayApiVersion,
    routes: Routes,
    cookies: &SessionCookies,
) -> (HttpRouteSpec, SessionCookies) {
    desired_http_route(
        c,
        version,
        routes,
        cookies,
        &mut Fixed::new(&["AAAAAAAAAA", "BBBBBBBBBB"]),
    )
    .unwrap()
}

const BASE: &str = r#"
parentRefs:
- group: gateway.networking.k8s.io
  kind: Gateway
  name: gateway
  namespace: istio-ingress
hostnames: [www.example.com]
"#;

#[test]
fn seed_canary_gets_flaggers_route() {
    let want = spec(&format!(
        "{BASE}
rules:
- matches:
  - path: {{type: PathPrefix, value: /}}
  backendRefs:
  - {{group: '', kind: Service, name: podinfo-primary, port: 9898, weight: 100}}
  - {{group: '', kind: Service, name: podinfo-canary, port: 9898, weight: 0}}
"
    ));
    let c = canary(SEED_CANARY);
    for version in [V1, V1beta1] {
        assert_eq!(reconcile_http_route_spec(&c, version).unwrap(), want);
        // SetRoutes(100, 0) without A/B, affinity or mirroring writes the same route.
        let (set, cookies) = set_routes(&c, version, Routes::INITIAL, &SessionCookies::default());
        assert_eq!(set, want);
        assert_eq!(cookies, SessionCookies::default());
    }
    let (set, _) = set_routes(&c, V1, Routes::new(60, 40), &SessionCookies::default());
    let weights: Vec<_> = rules(&set)[0]
        .backend_refs
        .iter()
        .flatten()
        .map(|b| (b.name.as_str(), b.weight))
        .collect();
    assert_eq!(
        weights,
        [("podinfo-primary", Some(60)), ("podinfo-canary", Some(40))]
    );
}

#[test]
fn gateway_refs_are_required_with_flaggers_text() {
    for refs in ["gatewayRefs: []", "hosts: [a.example.com]"] {
        let mut c = canary(SEED_CANARY);
        if refs.starts_with("hosts") {
            c.spec.service.as_mut().unwrap().gateway_refs = None;
        } else {
            c.spec.service.as_mut().unwrap().gateway_refs = Some(vec![]);
        }
        let err = reconcile_http_route_spec(&c, V1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GatewayRefs must be specified when using Gateway API as a provider."
        );
        let err = desired_http_route(
            &c,
            V1,
            Routes::INITIAL,
            &SessionCookies::default(),
            &mut Fixed::new(&[]),
        )
        .unwrap_err();
        assert!(matches!(err, RouterError::MissingGatewayRefs));
    }
}

#[test]
fn parent_refs_carry_every_gateway_ref_field_with_defaults() {
    let c = with_service(
        "gatewayRefs:
- {name: a}
- {group: example.io, kind: Mesh, name: b, namespace: n, sectionName: https, port: 443}
hosts: []",
    );
    let got = reconcile_http_route_spec(&c, V1).unwrap();
    let want = spec(
        "parentRefs:
- {group: gateway.networking.k8s.io, kind: Gateway, name: a}
- {group: example.io, kind: Mesh, name: b, namespace: n, sectionName: https, port: 443}",
    );
    assert_eq!(got.parent_refs, want.parent_refs);
    // No hosts: no hostnames field at all.
    assert_eq!(got.hostnames, None);
}

#[test]
fn service_match_maps_to_gateway_api_matches() {
    let table: &[(&str, &str)] = &[
        // No match at all: everything, as a PathPrefix "/".
        ("[]", "[{path: {type: PathPrefix, value: /}}]"),
        (
            "[{uri: {prefix: /api}}]",
            "[{path: {type: PathPrefix, value: /api}}]",
        ),
        ("[{uri: {exact: /x}}]", "[{path: {type: Exact, value: /x}}]"),
        (
            "[{uri: {regex: '/v[0-9]+'}}]",
            "[{path: {type: RegularExpression, value: '/v[0-9]+'}}]",
        ),
        // regex wins over exact wins over prefix.
        (
            "[{uri: {exact: /x, regex: /y}}]",
            "[{path: {type: RegularExpression, value: /y}}]",
        ),
        (
            "[{uri: {exact: /x, prefix: /p}}]",
            "[{path: {type: Exact, value: /x}}]",
        ),
        ("[{method: {exact: POST}}]", "[{method: POST}]"),
        (
            "[{headers: {x-b: {regex: 'b.*'}, x-a: {exact: a}}}]",
            "[{headers: [{name: x-a, type: Exact, value: a}, {name: x-b, type: RegularExpression, value: 'b.*'}]}]",
        ),
        (
            "[{queryParams: {q: {exact: '1'}, r: {regex: '[0-9]'}}}]",
            "[{queryParams: [{name: q, type: Exact, value: '1'}, {name: r, type: RegularExpression, value: '[0-9]'}]}]",
        ),
        // Fields Gateway API cannot express are dropped, and an emptied match with them.
        (
            "[{authority: {exact: a.example}, uri: {prefix: /a}}, {sourceLabels: {app: x}}]",
            "[{path: {type: PathPrefix, value: /a}}]",
        ),
        (
            "[{uri: {prefix: /a}, method: {exact: GET}, headers: {x: {exact: '1'}}}, {uri: {prefix: /b}}]",
            "[{path: {type: PathPrefix, value: /a}, method: GET, headers: [{name: x, type: Exact, value: '1'}]}, {path: {type: PathPrefix, value: /b}}]",
        ),
    ];
    for (input, want) in table {
        let c = with_service(&format!("match: {input}"));
        let got = reconcile_http_route_spec(&c, V1).unwrap();
        let want: Vec<HttpRouteRulesMatches> = serde_saphyr::from_str(want).unwrap();
        assert_eq!(rules(&got)[0].matches.as_ref(), Some(&want), "{input}");
    }
}

#[test]
fn unsupported_selectors_are_errors_with_flaggers_text() {
    let table: &[(&str, &str)] = &[
        (
            "[{uri: {suffix: .png}}]",
            "Gateway API doesn't support the specified path matching selector: {suffix: \".png\"}",
        ),
        (
            "[{headers: {x-user: {prefix: adm}}}]",
            "Gateway API doesn't support the specified header matching selector: x-user: {prefix: \"adm\"}",
        ),
        (
            "[{headers: {x-user: {suffix: min}}}]",
            "Gateway API doesn't support the specified header matching selector: x-user: {suffix: \"min\"}",
        ),
        (
            "[{queryParams: {q: {prefix: a}}}]",
            "Gateway API doesn't support the specified query matching selector: q: {prefix: \"a\"}",
        ),
        (
            "[{method: {regex: 'GET|POST'}}]",
            "Gateway API doesn't support the specified method matching selector: {regex: \"GET|POST\"} (use exact with one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH)",
        ),
        (
            "[{method: {exact: get}}]",
            "Gateway API doesn't support the specified method matching selector: {exact: \"get\"} (use exact with one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH)",
        ),
    ];
    for (input, cause) in table {
        let c = with_service(&format!("match: {input}"));
        let err = reconcile_http_route_spec(&c, V1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid request matching selectors",
            "{input}"
        );
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some(*cause), "{input}");
    }
}

#[test]
fn unsupported_ab_match_is_an_error_not_a_full_switch() {
    let mut c = canary(SEED_AB);
    c.spec.analysis.as_mut().unwrap().r#match =
        Some(serde_saphyr::from_str("[{headers: {x-canary: {prefix: 'on'}}}]").unwrap());
    let err = reconcile_http_route_spec(&c, V1).unwrap_err();
    assert!(
        matches!(err, RouterError::InvalidMatch(MatchError::Header(_))),
        "{err}"
    );
}

#[test]
fn guide_header_rewrite_and_cors_options_become_filters() {
    let docs: Vec<Canary> = serde_saphyr::from_multiple(SEED_OPTIONS).unwrap();
    let service = |i: usize| docs[i].spec.service.clone().unwrap();

    let headers = make_filters(&service(0), V1);
    let want: Vec<HttpRouteRulesFilters> = serde_saphyr::from_str(
        "
- type: RequestHeaderModifier
  requestHeaderModifier:
    add: [{name: x-custom-header, value: custom-value}]
    set: [{name: x-api-version, value: v1}]
    remove: [x-debug-header]
- type: ResponseHeaderModifier
  responseHeaderModifier:
    add:
    - {name: x-content-type-options, value: nosniff}
    - {name: x-frame-options, value: DENY}
    set: [{name: cache-control, value: no-cache}]
    remove: [x-powered-by]
",
    )
    .unwrap();
    assert_eq!(headers, want);

    let full_path = make_filters(&service(1), V1);
    let want: Vec<HttpRouteRulesFilters> = serde_saphyr::from_str(
        "
- type: URLRewrite
  urlRewrite:
    hostname: api.example.com
    path: {type: ReplaceFullPath, replaceFullPath: /v2/api}
",
    )
    .unwrap();
    assert_eq!(full_path, want);

    let prefix = make_filters(&service(2), V1beta1);
    let want: Vec<HttpRouteRulesFilters> = serde_saphyr::from_str(
        "
- type: URLRewrite
  urlRewrite:
    path: {type: ReplacePrefixMatch, replacePrefixMatch: /api/v2}
",
    )
    .unwrap();
    assert_eq!(prefix, want);

    let cors = make_filters(&service(3), V1);
    let want: Vec<HttpRouteRulesFilters> = serde_saphyr::from_str(
        "
- type: CORS
  cors:
    allowOrigins: [https://foo.example, http://foo.example]
    allowMethods: [GET, PUT, POST, DELETE, PATCH, OPTIONS]
    allowHeaders: [Keep-Alive, User-Agent, X-Requested-With, If-Modified-Since, Cache-Control, Content-Type, Authorization]
    allowCredentials: true
    maxAge: 86400
",
    )
    .unwrap();
    assert_eq!(cors, want);
    // CORS is v1 only.
    assert_eq!(make_filters(&service(3), V1beta1), vec![]);
}

#[test]
fn filters_come_in_flaggers_order_on_every_rule() {
    let c = with_service(
        "headers:
  response: {set: {x-b: '2'}}
  request: {add: {x-a: '1'}}
corsPolicy: {allowOrigin: ['*'], allowOrigins: [{prefix: 'https://'}], exposeHeaders: [x-id]}
mirror:
- backendRef: {name: shadow, port: 80}
- backendRef: {name: audit, namespace: ops, group: '', kind: Service, port: 8080}
rewrite: {uri: /v2, type: Weird}",
    );
    let types = |filters: &Option<Vec<HttpRouteRulesFilters>>| -> Vec<HttpRouteRulesFiltersType> {
        filters.iter().flatten().map(|f| f.r#type.clone()).collect()
    };
    use HttpRouteRulesFiltersType::*;
    let got = reconcile_http_route_spec(&c, V1).unwrap();
    assert_eq!(
        types(&rules(&got)[0].filters),
        [
            RequestHeaderModifier,
            ResponseHeaderModifier,
            UrlRewrite,
            RequestMirror,
            RequestMirror,
            Cors
        ]
    );
    let filters = rules(&got)[0].filters.as_ref().unwrap();
    // An unknown rewrite type is a full-path rewrite, as in Flagger.
    let rewrite = filters[2]
        .url_rewrite
        .as_ref()
        .unwrap()
        .path
        .as_ref()
        .unwrap();
    assert_eq!(
        rewrite.r#type,
        HttpRouteRulesFiltersUrlRewritePathType::ReplaceFullPath
    );
    assert_eq!(rewrite.replace_full_path.as_deref(), Some("/v2"));
    // Static mirrors are copied as written (the API server defaults group and kind).
    let shadow = &filters[3].request_mirror.as_ref().unwrap().backend_ref;
    assert_eq!(
        (
            shadow.group.as_deref(),
            shadow.kind.as_deref(),
            shadow.name.as_str(),
            shadow.port
        ),
        (None, None, "shadow", Some(80))
    );
    let audit = &filters[4].request_mirror.as_ref().unwrap().backend_ref;
    assert_eq!(audit.namespace.as_deref(), Some("ops"));
    // Origin patterns are not expressible and are dropped (logged); maxAge unset stays unset.
    let cors = filters[5].cors.as_ref().unwrap();
    assert_eq!(cors.allow_origins, Some(vec!["*".to_string()]));
    assert_eq!(cors.max_age, None);
    assert_eq!(cors.expose_headers, Some(vec!["x-id".to_string()]));

    let v1beta1 = reconcile_http_route_spec(&c, V1beta1).unwrap();
    assert_eq!(
        types(&rules(&v1beta1)[0].filters),
        [
            RequestHeaderModifier,
            ResponseHeaderModifier,
            UrlRewrite,
            RequestMirror,
            RequestMirror
        ]
    );
}

#[test]
fn timeouts_are_v1_only() {
    let table = [
        ("timeout: 30s", Some(("30s", None))),
        ("backendTimeout: 10s", Some(("", Some("10s")))),
        (
            "{timeout: 30s, backendTimeout: 10s}",
            Some(("30s", Some("10s"))),
        ),
        ("timeout: ''", None),
    ];
    for (input, want) in table {
        let c = with_service(input);
        let got = reconcile_http_route_spec(&c, V1).unwrap();
        let want = want.map(|(request, backend)| HttpRouteRulesTimeouts {
            request: (!request.is_empty()).then(|| request.to_string()),
            backend_request: backend.map(str::to_string),
        });
        assert_eq!(rules(&got)[0].timeouts, want, "{input}");
        let v1beta1 = reconcile_http_route_spec(&c, V1beta1).unwrap();
        assert_eq!(rules(&v1beta1)[0].timeouts, None, "{input}");
    }
}

#[test]
fn ab_testing_routes_matching_requests_and_falls_back_to_primary() {
    let c = canary(SEED_AB);
    let want = |primary: u32, canary: u32| {
        spec(&format!(
            "{BASE}
rules:
- matches:
  - headers: [{{name: user-agent, type: RegularExpression, value: '.*Firefox.*'}}]
    path: {{type: PathPrefix, value: /}}
  - headers: [{{name: cookie, type: RegularExpression, value: '^(.*?;)?(type=insider)(;.*)?$'}}]
    path: {{type: PathPrefix, value: /}}
  backendRefs:
  - {{group: '', kind: Service, name: podinfo-primary, port: 9898, weight: {primary}}}
  - {{group: '', kind: Service, name: podinfo-canary, port: 9898, weight: {canary}}}
- matches:
  - path: {{type: PathPrefix, value: /}}
  backendRefs:
  - {{group: '', kind: Service, name: podinfo-primary, port: 9898, weight: 100}}
"
        ))
    };
    assert_eq!(reconcile_http_route_spec(&c, V1).unwrap(), want(100, 0));
    let (got, _) = set_routes(&c, V1, Routes::new(0, 100), &SessionCookies::default());
    assert_eq!(got, want(0, 100));
    let (got, _) = set_routes(&c, V1beta1, Routes::new(0, 100), &SessionCookies::default());
    assert_eq!(got, want(0, 100));
}

#[test]
fn ab_matches_merge_with_service_matches_and_keep_filters_and_timeouts() {
    let mut c = with_service(
        "match: [{uri: {prefix: /a}, headers: {x-svc: {exact: '1'}}}, {uri: {prefix: /b}}]
timeout: 5s
rewrite: {authority: api.example.com}",
    );
    c.spec.analysis = Some(
        serde_saphyr::from_str(
            "{interval: 1m, threshold: 1, iterations: 5,
              match: [{headers: {x-canary: {exact: insider}}}, {queryParams: {beta: {exact: 'true'}}}]}",
        )
        .unwrap(),
    );
    let got = reconcile_http_route_spec(&c, V1).unwrap();
    let want: Vec<HttpRouteRulesMatches> = serde_saphyr::from_str(
        "
- path: {type: PathPrefix, value: /a}
  headers: [{name: x-canary, type: Exact, value: insider}]
- path: {type: PathPrefix, value: /b}
  headers: [{name: x-canary, type: Exact, value: insider}]
- path: {type: PathPrefix, value: /a}
  headers: [{name: x-svc, type: Exact, value: '1'}]
  queryParams: [{name: beta, type: Exact, value: 'true'}]
- path: {type: PathPrefix, value: /b}
  queryParams: [{name: beta, type: Exact, value: 'true'}]
",
    )
    .unwrap();
    let r = rules(&got);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].matches.as_ref(), Some(&want));
    // The fallback rule keeps the service matches, the filters and the timeouts.
    let service_matches: Vec<HttpRouteRulesMatches> = serde_saphyr::from_str(
        "[{path: {type: PathPrefix, value: /a}, headers: [{name: x-svc, type: Exact, value: '1'}]},
          {path: {type: PathPrefix, value: /b}}]",
    )
    .unwrap();
    assert_eq!(r[1].matches.as_ref(), Some(&service_matches));
    assert_eq!(r[1].filters, r[0].filters);
    assert!(r[1].filters.is_some());
    assert_eq!(
        r[1].timeouts.as_ref().and_then(|t| t.request.as_deref()),
        Some("5s")
    );
    assert_eq!(r[1].backend_refs.as_ref().map(Vec::len), Some(1));
}

#[test]
fn merge_match_conditions_is_flaggers() {
    let m = |yaml: &str| -> Vec<HttpRouteRulesMatches> { serde_saphyr::from_str(yaml).unwrap() };
    let service = m("[{path: {type: Exact, value: /s}, headers: [{name: h, value: s}]}]");
    let analysis = m("[{headers: [{name: h, value: a}]}, {queryParams: [{name: q, value: a}]}]");
    assert_eq!(merge_match_conditions(&[], &service), service);
    assert_eq!(merge_match_conditions(&analysis, &[]), analysis);
    assert_eq!(
        merge_match_conditions(&analysis, &service),
        m("[{path: {type: Exact, value: /s}, headers: [{name: h, value: a}]},
            {path: {type: Exact, value: /s}, headers: [{name: h, value: s}], queryParams: [{name: q, value: a}]}]")
    );
}

fn set_cookie_of(rule: &HttpRouteRules, backend: &str) -> Option<String> {
    let b = rule
        .backend_refs
        .iter()
        .flatten()
        .find(|b| b.name == backend)?;
    let f = b.filters.as_ref()?.first()?;
    assert_eq!(
        f.r#type,
        HttpRouteRulesBackendRefsFiltersType::ResponseHeaderModifier
    );
    let add = f.response_header_modifier.as_ref()?.add.as_ref()?;
    assert_eq!(add.len(), 1);
    assert_eq!(add[0].name, "Set-Cookie");
    Some(add[0].value.clone())
}

#[test]
fn session_affinity_sticks_canary_users_while_the_canary_takes_traffic() {
    let c = canary(SEED_AFFINITY);
    let want = spec(&format!(
        "{BASE}
rules:
- matches:
  - headers: [{{name: Cookie, type: RegularExpression, value: '.*flagger-cookie.*AAAAAAAAAA.*'}}]
  backendRefs:
  - {{group: '', kind: Service, name: podinfo-primary, port: 9898, weight: 0}}
  - {{group: '', kind: Service, name: podinfo-canary, port: 9898, weight: 100}}
- matches:
  - path: {{type: PathPrefix, value: /}}
  backendRefs:
  - {{group: '', kind: Service, name: podinfo-primary, port: 9898, weight: 90}}
  - group: ''
    kind: Service
    name: podinfo-canary
    port: 9898
    weight: 10
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add: [{{name: Set-Cookie, value: 'flagger-cookie=AAAAAAAAAA; Max-Age=21600'}}]
"
    ));
    for version in [V1, V1beta1] {
        let (got, cookies) =
            set_routes(&c, version, Routes::new(90, 10), &SessionCookies::default());
        assert_eq!(got, want, "{version:?}");
        assert_eq!(
            cookies,
            SessionCookies {
                canary: Some("flagger-cookie=AAAAAAAAAA".into()),
                ..Default::default()
            }
        );
        // The next step of the same run keeps the cookie.
        let (next, again) = desired_http_route(
            &c,
            version,
            Routes::new(80, 20),
            &cookies,
            &mut Fixed::new(&[]),
        )
        .unwrap();
        assert_eq!(again, cookies);
        assert_eq!(rules(&next)[0], rules(&want)[0]);
        assert_eq!(
            read_routes(&c, &next),
            Routes::new(80, 20),
            "weights come from the rule with backend filters"
        );
    }
    // Reconcile never writes sticky rules.
    assert_eq!(rules(&reconcile_http_route_spec(&c, V1).unwrap()).len(), 1);
}

#[test]
fn primary_cookie_with_every_attribute_on_v1() {
    let mut c = with_service("match: [{uri: {prefix: /app}}]");
    c.spec.analysis.as_mut().unwrap().session_affinity = Some(
        serde_saphyr::from_str(
            "{cookieName: canary-c, primaryCookieName: primary-c, domain: example.com,
              httpOnly: true, partitioned: true, path: /, sameSite: Lax, secure: true}",
        )
        .unwrap(),
    );
    let (got, cookies) = set_routes(&c, V1, Routes::new(70, 30), &SessionCookies::default());
    assert_eq!(
        cookies,
        SessionCookies {
            canary: Some("canary-c=AAAAAAAAAA".into()),
            primary: Some("primary-c=BBBBBBBBBB".into()),
            previous: None,
        }
    );
    let r = rules(&got);
    assert_eq!(r.len(), 3);
    let sticky = |i: usize| -> (Vec<HttpRouteRulesMatches>, Vec<(String, Option<i32>)>) {
        (
            r[i].matches.clone().unwrap(),
            r[i].backend_refs
                .iter()
                .flatten()
                .map(|b| (b.name.clone(), b.weight))
                .collect(),
        )
    };
    let cookie_and_path = |regex: &str| -> Vec<HttpRouteRulesMatches> {
        serde_saphyr::from_str(&format!(
            "[{{path: {{type: PathPrefix, value: /app}}, headers: [{{name: Cookie, type: RegularExpression, value: '{regex}'}}]}}]"
        ))
        .unwrap()
    };
    assert_eq!(
        sticky(0),
        (
            cookie_and_path(".*canary-c.*AAAAAAAAAA.*"),
            vec![
                ("podinfo-primary".into(), Some(0)),
                ("podinfo-canary".into(), Some(100))
            ]
        )
    );
    assert_eq!(
        sticky(1),
        (
            cookie_and_path(".*primary-c.*BBBBBBBBBB.*"),
            vec![
                ("podinfo-primary".into(), Some(100)),
                ("podinfo-canary".into(), Some(0))
            ]
        )
    );
    let attrs = "Domain=example.com; HttpOnly; Partitioned; Path=/; SameSite=Lax; Secure";
    assert_eq!(
        set_cookie_of(&r[2], "podinfo-canary").as_deref(),
        Some(format!("canary-c=AAAAAAAAAA; Max-Age=86400; {attrs}").as_str())
    );
    // The primary cookie lasts one analysis interval (1m).
    assert_eq!(
        set_cookie_of(&r[2], "podinfo-primary").as_deref(),
        Some(format!("primary-c=BBBBBBBBBB; Max-Age=60; {attrs}").as_str())
    );
    assert_eq!(read_routes(&c, &got), Routes::new(70, 30));

    // v1beta1 has no primary cookie.
    let (beta, cookies) = set_routes(&c, V1beta1, Routes::new(70, 30), &SessionCookies::default());
    assert_eq!(rules(&beta).len(), 2);
    assert_eq!(cookies.primary, None);
    assert_eq!(set_cookie_of(&rules(&beta)[1], "podinfo-primary"), None);

    // An interval Go cannot parse fails like Flagger.
    c.spec.analysis.as_mut().unwrap().interval = None;
    let err = desired_http_route(
        &c,
        V1,
        Routes::new(70, 30),
        &SessionCookies::default(),
        &mut Fixed::new(&["AAAAAAAAAA", "BBBBBBBBBB"]),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "failed to parse canary interval");
}

#[test]
fn session_affinity_expires_the_previous_cookie_at_weight_zero() {
    let c = with_service("headers: {response: {add: {x-served-by: serin}}}");
    let mut c = c;
    c.spec.analysis = canary(SEED_AFFINITY).spec.analysis;
    let running = SessionCookies {
        canary: Some("flagger-cookie=AAAAAAAAAA".into()),
        primary: Some("p=1".into()),
        previous: Some("flagger-cookie=OLD".into()),
    };
    let (got, cookies) = set_routes(&c, V1, Routes::new(100, 0), &running);
    assert_eq!(
        cookies,
        SessionCookies {
            canary: None,
            primary: Some("p=1".into()),
            previous: Some("flagger-cookie=AAAAAAAAAA".into()),
        }
    );
    let r = rules(&got);
    assert_eq!(r.len(), 2);
    let want_matches: Vec<HttpRouteRulesMatches> = serde_saphyr::from_str(
        "[{headers: [{name: Cookie, type: RegularExpression, value: '.*flagger-cookie.*AAAAAAAAAA.*'}]}]",
    )
    .unwrap();
    assert_eq!(r[0].matches.as_ref(), Some(&want_matches));
    // The expiry joins the ResponseHeaderModifier the service headers made: one per rule.
    let filters = r[0].filters.as_ref().unwrap();
    assert_eq!(filters.len(), 1);
    let add = filters[0]
        .response_header_modifier
        .as_ref()
        .unwrap()
        .add
        .clone()
        .unwrap();
    let add: Vec<(String, String)> = add.into_iter().map(|h| (h.name, h.value)).collect();
    assert_eq!(
        add,
        [
            ("x-served-by".to_string(), "serin".to_string()),
            (
                "Set-Cookie".to_string(),
                "flagger-cookie=AAAAAAAAAA; Max-Age=-1".to_string()
            )
        ]
    );
    // Both rules route by the current weights; no backend filters any more.
    for rule in r {
        let weights: Vec<_> = rule
            .backend_refs
            .iter()
            .flatten()
            .map(|b| b.weight)
            .collect();
        assert_eq!(weights, [Some(100), Some(0)]);
        assert!(
            rule.backend_refs
                .iter()
                .flatten()
                .all(|b| b.filters.is_none())
        );
    }
    assert_eq!(read_routes(&c, &got), Routes::INITIAL);

    // Later ticks at weight 0 keep expiring the same previous cookie.
    let (again, same) = set_routes(&c, V1, Routes::new(100, 0), &cookies);
    assert_eq!(same, cookies);
    assert_eq!(again, got);
}

#[test]
fn session_affinity_without_any_cookie_duplicates_the_weighted_rule() {
    let c = canary(SEED_AFFINITY);
    let (got, cookies) = set_routes(&c, V1, Routes::INITIAL, &SessionCookies::default());
    assert_eq!(cookies, SessionCookies::default());
    let r = rules(&got);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0], r[1]);
    // The previous cookie is expired with the attributes it was issued with.
    let mut c = c;
    let affinity = c
        .spec
        .analysis
        .as_mut()
        .unwrap()
        .session_affinity
        .as_mut()
        .unwrap();
    affinity.path = Some("/shop".into());
    let previous = SessionCookies {
        previous: Some("flagger-cookie=XYZ".into()),
        ..Default::default()
    };
    let (got, _) = set_routes(&c, V1, Routes::INITIAL, &previous);
    let f = &rules(&got)[0].filters.as_ref().unwrap()[0];
    assert_eq!(f.r#type, HttpRouteRulesFiltersType::ResponseHeaderModifier);
    let value = &f
        .response_header_modifier
        .as_ref()
        .unwrap()
        .add
        .as_ref()
        .unwrap()[0]
        .value;
    assert_eq!(value, "flagger-cookie=XYZ; Max-Age=-1; Path=/shop");
}

#[test]
fn blue_green_mirroring_adds_a_request_mirror_to_the_canary() {
    let c = canary(SEED_MIRROR);
    let mirrored = Routes {
        primary: 100,
        canary: 0,
        mirrored: true,
    };
    for version in [V1, V1beta1] {
        let (got, _) = set_routes(&c, version, mirrored, &SessionCookies::default());
        let want: Vec<HttpRouteRulesFilters> = serde_saphyr::from_str(
            "[{type: RequestMirror, requestMirror: {backendRef: {group: '', kind: Service, name: podinfo-canary, port: 9898}}}]",
        )
        .unwrap();
        assert_eq!(rules(&got)[0].filters.as_ref(), Some(&want));
        assert_eq!(read_routes(&c, &got), mirrored);
        let (plain, _) = set_routes(&c, version, Routes::new(0, 100), &SessionCookies::default());
        assert_eq!(rules(&plain)[0].filters, None);
        assert!(!read_routes(&c, &plain).mirrored);
    }
    // Canary strategy (no iterations): Flagger ignores mirroring on Gateway API.
    let c = canary(SEED_CANARY);
    let (got, _) = set_routes(&c, V1, mirrored, &SessionCookies::default());
    assert_eq!(rules(&got)[0].filters, None);
    assert!(!read_routes(&c, &got).mirrored);
}

#[test]
fn read_routes_takes_the_two_backend_rule() {
    let c = canary(SEED_AB);
    let route = spec(
        "rules:
- backendRefs: [{name: podinfo-primary, weight: 0}, {name: podinfo-canary, weight: 100}]
- backendRefs: [{name: podinfo-primary, weight: 100}]",
    );
    assert_eq!(read_routes(&c, &route), Routes::new(0, 100));
    // Unset weights are Gateway API's default 1; no route at all reads as 0/0.
    let unset = spec(
        "rules: [{backendRefs: [{name: podinfo-primary}, {name: podinfo-canary, weight: 5}]}]",
    );
    assert_eq!(read_routes(&c, &unset), Routes::new(1, 5));
    assert_eq!(
        read_routes(&c, &HttpRouteSpec::default()),
        Routes::new(0, 0)
    );
    // A static mirror pointing at the canary Service counts as mirrored, as in Flagger.
    let mirror = spec(
        "rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: podinfo-canary}}}]}]",
    );
    assert!(read_routes(&c, &mirror).mirrored);
}

fn condition(status: &str, observed: i64) -> Condition {
    Condition {
        type_: "Accepted".into(),
        status: status.into(),
        observed_generation: Some(observed),
        last_transition_time: Time(Default::default()),
        message: String::new(),
        reason: "Accepted".into(),
    }
}

fn status_for(parent: &str, conditions: Vec<Condition>) -> RouteStatus {
    serde_json::from_value(serde_json::json!({
        "parents": [{
            "controllerName": "example.io/gateway",
            "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                          "name": parent, "namespace": "istio-ingress"},
            "conditions": conditions,
        }]
    }))
    .unwrap()
}

#[test]
fn parents_must_accept_the_current_generation() {
    let c = canary(SEED_CANARY);
    let route = reconcile_http_route_spec(&c, V1).unwrap();
    let check = |status: Option<&RouteStatus>| parents_ready("podinfo", "test", 2, &route, status);
    // No status, or status for another parent: nothing to wait for (Flagger).
    assert!(check(None).is_ok());
    assert!(check(Some(&status_for("other", vec![condition("False", 2)]))).is_ok());
    assert!(check(Some(&status_for("gateway", vec![condition("True", 2)]))).is_ok());
    assert!(check(Some(&status_for("gateway", vec![condition("True", 3)]))).is_ok());
    let table = [
        (
            condition("False", 2),
            "status: False, observed generation: 2, current generation: 2",
        ),
        (
            condition("True", 1),
            "status: True, observed generation: 1, current generation: 2",
        ),
        (
            condition("Unknown", 0),
            "status: Unknown, observed generation: 0, current generation: 2",
        ),
    ];
    for (cond, detail) in table {
        let err = check(Some(&status_for("gateway", vec![cond]))).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("HTTPRoute podinfo.test parent gateway is not ready ({detail})")
        );
    }
    // Other condition types do not count.
    let mut resolved = condition("False", 0);
    resolved.type_ = "ResolvedRefs".into();
    assert!(check(Some(&status_for("gateway", vec![resolved]))).is_ok());
}

/// What the API server stores for `spec`: the CRD's defaults filled in.
fn stored(spec: &HttpRouteSpec) -> HttpRouteSpec {
    let mut s = spec.clone();
    apply_server_defaults(&mut s);
    s
}

fn live_meta(c: &Canary) -> ObjectMeta {
    let metadata = route_metadata(c.spec.service.as_ref().unwrap());
    ObjectMeta {
        labels: Some(metadata.labels),
        annotations: Some(metadata.annotations),
        ..Default::default()
    }
}

fn needs_update(c: &Canary, live: &HttpRouteSpec) -> bool {
    let desired = reconcile_http_route_spec(c, V1).unwrap();
    let metadata = route_metadata(c.spec.service.as_ref().unwrap());
    route_needs_update(c, &live_meta(c), live, &metadata, &desired)
}

#[test]
fn reconcile_leaves_weights_and_server_defaults_alone() {
    let c = with_service(
        "mirror: [{backendRef: {name: shadow, port: 80}}]
corsPolicy: {allowOrigin: ['https://a.example']}",
    );
    let desired = reconcile_http_route_spec(&c, V1).unwrap();
    assert!(!needs_update(&c, &desired));
    // The stored route has group/kind on the mirror and CORS maxAge 5: no update.
    let live = stored(&desired);
    assert_ne!(live, desired);
    assert!(!needs_update(&c, &live));
    // Weights set by SetRoutes do not count.
    let (weighted, _) = set_routes(&c, V1, Routes::new(30, 70), &SessionCookies::default());
    assert!(!needs_update(&c, &stored(&weighted)));
    // Empty lists equal absent ones.
    let mut empty = stored(&desired);
    empty.rules.as_mut().unwrap()[0]
        .backend_refs
        .as_mut()
        .unwrap()[0]
        .filters = Some(vec![]);
    assert!(!needs_update(&c, &empty));
    // A real change does.
    let mut other = stored(&desired);
    other.hostnames = Some(vec!["other.example.com".into()]);
    assert!(needs_update(&c, &other));
    let mut no_filters = stored(&desired);
    no_filters.rules.as_mut().unwrap()[0].filters = None;
    assert!(needs_update(&c, &no_filters));
}

#[test]
fn reconcile_ignores_sticky_rules_and_cookie_filters_with_session_affinity() {
    let c = canary(SEED_AFFINITY);
    let (live, _) = set_routes(&c, V1, Routes::new(90, 10), &SessionCookies::default());
    assert!(!needs_update(&c, &stored(&live)));
    // Without session affinity the same live route is a change.
    let mut plain = c.clone();
    plain.spec.analysis.as_mut().unwrap().session_affinity = None;
    assert!(needs_update(&plain, &stored(&live)));
}

#[test]
fn reconcile_ignores_the_mirror_filter_only_while_a_run_is_in_progress() {
    let mut c = canary(SEED_MIRROR);
    let mirrored = Routes {
        primary: 100,
        canary: 0,
        mirrored: true,
    };
    let (live, _) = set_routes(&c, V1, mirrored, &SessionCookies::default());
    let live = stored(&live);
    for (phase, update) in [
        (CanaryPhase::Waiting, false),
        (CanaryPhase::Progressing, false),
        (CanaryPhase::WaitingPromotion, false),
        (CanaryPhase::Promoting, true),
        (CanaryPhase::Succeeded, true),
        (CanaryPhase::Unknown, true),
    ] {
        c.status = Some(CanaryStatus {
            phase,
            ..Default::default()
        });
        assert_eq!(needs_update(&c, &live), update, "{phase:?}");
    }
}

#[test]
fn reconcile_metadata_rule_keeps_foreign_keys() {
    let c = with_service("apex: {labels: {team: shop}, annotations: {owner: shop}}");
    let desired = reconcile_http_route_spec(&c, V1).unwrap();
    let metadata = route_metadata(c.spec.service.as_ref().unwrap());
    assert_eq!(metadata.labels["team"], "shop");
    assert_eq!(metadata.annotations["owner"], "shop");
    assert_eq!(metadata.annotations[FLUX_RECONCILE_ANNOTATION], "disabled");
    assert_eq!(
        metadata.annotations[HELM_DRIFT_DETECTION_ANNOTATION],
        "disabled"
    );
    let mut live = live_meta(&c);
    let update = |live: &ObjectMeta| route_needs_update(&c, live, &desired, &metadata, &desired);
    assert!(!update(&live));
    // Keys other controllers add are preserved, not a reason to rewrite.
    live.labels
        .as_mut()
        .unwrap()
        .insert("ctrl/extra".into(), "x".into());
    live.annotations
        .as_mut()
        .unwrap()
        .insert("aws/arn".into(), "y".into());
    assert!(!update(&live));
    // A missing or different Serin key is.
    live.annotations
        .as_mut()
        .unwrap()
        .remove(FLUX_RECONCILE_ANNOTATION);
    assert!(update(&live));
    let mut live = live_meta(&c);
    live.labels
        .as_mut()
        .unwrap()
        .insert("team".into(), "other".into());
    assert!(update(&live));
    assert!(update(&ObjectMeta::default()));
}

#[test]
fn route_object_names_version_metadata_and_owner() {
    let c = with_service("apex: {labels: {team: shop}}");
    let owner = crate::router::owner_reference(&c).unwrap();
    let spec = reconcile_http_route_spec(&c, V1beta1).unwrap();
    let object = route_object(&c, V1beta1, Some(owner.clone()), spec.clone()).unwrap();
    assert_eq!(object.api_version, "gateway.networking.k8s.io/v1beta1");
    assert_eq!(object.kind, "HTTPRoute");
    assert_eq!(object.metadata.name.as_deref(), Some("podinfo"));
    assert_eq!(object.metadata.namespace.as_deref(), Some("test"));
    assert_eq!(object.metadata.owner_references, Some(vec![owner]));
    assert_eq!(object.metadata.labels.as_ref().unwrap()["team"], "shop");
    let v1 = route_object(&c, V1, None, spec).unwrap();
    assert_eq!(v1.api_version, "gateway.networking.k8s.io/v1");
    assert_eq!(v1.metadata.owner_references, None);
    assert_eq!(
        HttpRouteObject::url_path(&V1, Some("test")),
        "/apis/gateway.networking.k8s.io/v1/namespaces/test/httproutes"
    );
    // Serialized as the API server expects an apply body.
    let json = serde_json::to_value(&v1).unwrap();
    assert_eq!(json["apiVersion"], "gateway.networking.k8s.io/v1");
    assert!(json.get("status").is_none());
}

#[test]
fn provider_strings_pick_the_version() {
    assert_eq!(GatewayApiVersion::from_provider("gatewayapi:v1"), Some(V1));
    assert_eq!(
        GatewayApiVersion::from_provider("gatewayapi:v1beta1"),
        Some(V1beta1)
    );
    assert_eq!(
        GatewayApiVersion::from_provider("gatewayapi:v1beta1:x"),
        Some(V1beta1)
    );
    assert_eq!(GatewayApiVersion::from_provider("istio"), None);
}

#[test]
fn route_status_reads_without_parents() {
    let status: RouteStatus = serde_json::from_value(serde_json::json!({})).unwrap();
    assert!(status.parents.is_empty());
}

#[test]
fn validation_refuses_exactly_the_matches_the_router_cannot_express() {
    let cases = [
        (r#"{"headers": {"x-canary": {"exact": "insider"}}}"#, true),
        (r#"{"headers": {"x-canary": {"regex": "^ins"}}}"#, true),
        (r#"{"headers": {"x-canary": {"prefix": "ins"}}}"#, false),
        (r#"{"headers": {"x-canary": {"suffix": "der"}}}"#, false),
        (r#"{"queryParams": {"v": {"prefix": "2"}}}"#, false),
        (r#"{"queryParams": {"v": {"exact": "2"}}}"#, true),
        (r#"{"method": {"exact": "GET"}}"#, true),
        (r#"{"method": {"exact": "BREW"}}"#, false),
        (r#"{"method": {"prefix": "G"}}"#, false),
        (r#"{"uri": {"prefix": "/api"}}"#, true),
        (r#"{"uri": {"suffix": ".json"}}"#, false),
    ];
    for (m, expressible) in cases {
        let request: HttpMatchRequest = serde_json::from_str(m).expect("match");
        let routed = map_route_matches(std::slice::from_ref(&request)).is_ok();
        let canary: Canary = serde_json::from_value(serde_json::json!({
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": { "name": "podinfo", "namespace": "test" },
            "spec": {
                "provider": "gatewayapi:v1",
                "targetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo" },
                "service": { "port": 9898, "gatewayRefs": [{ "name": "gw" }] },
                "analysis": { "interval": "1m", "threshold": 5, "iterations": 10,
                              "match": [serde_json::from_str::<serde_json::Value>(m).expect("json")] }
            }
        }))
        .expect("canary");
        let refused = canary
            .validate()
            .iter()
            .any(|f| f.is_error() && f.to_string().contains("provider \"gatewayapi:v1\" matches"));
        assert_eq!(routed, expressible, "router on {m}");
        assert_eq!(
            refused,
            !expressible,
            "validation on {m}: {:?}",
            canary.validate()
        );
    }
}
