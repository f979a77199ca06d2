//! Table tests of the HTTPProxy builders against Flagger's `contour_test.go` and the Contour
//! guide's Canary (`docs/gitbook/tutorials/contour-progressive-delivery.md`).

use std::collections::BTreeMap;

use super::*;
use crate::router::{FLUX_RECONCILE_ANNOTATION, HELM_DRIFT_DETECTION_ANNOTATION};

/// Flagger's `newTestCanary` (router_test.go), which `contour_test.go` routes.
const FLAGGER_CANARY: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: default, uid: uid-1}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service:
    port: 9898
    portDiscovery: true
    appProtocol: http
    headers:
      request: {add: {x-envoy-upstream-rq-timeout-ms: "15000"}, remove: [test]}
      response: {remove: [token]}
    corsPolicy: {allowMethods: [GET, POST]}
    match:
    - name: podinfo
      uri: {prefix: /podinfo}
      method: {exact: GET}
      ignoreUriCase: true
    retries: {attempts: 10, perTryTimeout: 30s, retryOn: "connect-failure,gateway-error"}
    gateways: [istio/public-gateway, mesh]
  analysis:
    threshold: 10
    stepWeight: 10
    maxWeight: 50
"#;

/// The Contour guide's Canary.
const GUIDE_CANARY: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test, uid: uid-1}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  autoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo}
  service:
    port: 80
    targetPort: 9898
    timeout: 15s
    retries: {attempts: 3, perTryTimeout: 5s, retryOn: "5xx"}
  analysis:
    interval: 30s
    threshold: 5
    maxWeight: 50
    stepWeight: 5
"#;

fn canary(yaml: &str) -> Canary {
    serde_saphyr::from_str(yaml).unwrap()
}

/// `canary` with `analysis` fields from a YAML fragment merged in.
fn with_analysis(yaml: &str, extra: &str) -> Canary {
    let mut c = canary(yaml);
    let analysis = c.spec.analysis.as_mut().unwrap();
    let extra: serde_json::Value = serde_saphyr::from_str(extra).unwrap();
    let mut base = serde_json::to_value(&*analysis).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    *analysis = serde_json::from_value(base).unwrap();
    c
}

/// `newTestABTest().Spec.Analysis.Match` with Flagger's `Iterations = 5`.
fn ab(yaml: &str) -> Canary {
    with_analysis(
        yaml,
        "{iterations: 5, match: [{headers: {x-user-type: {exact: test}}}]}",
    )
}

fn spec(yaml: &str) -> HttpProxySpec {
    serde_saphyr::from_str(yaml).unwrap()
}

fn weights(spec: &HttpProxySpec) -> Vec<Vec<(String, Option<i64>)>> {
    spec.routes
        .iter()
        .map(|r| {
            r.services
                .iter()
                .map(|s| (s.name.clone(), s.weight))
                .collect()
        })
        .collect()
}

const FLAGGER_UPSTREAMS: &str = r#"
  services:
  - name: podinfo-primary
    port: 9898
    weight: 100
    requestHeadersPolicy:
      set: [{name: l5d-dst-override, value: podinfo-primary.default.svc.cluster.local:9898}]
  - name: podinfo-canary
    port: 9898
    weight: 0
    requestHeadersPolicy:
      set: [{name: l5d-dst-override, value: podinfo-canary.default.svc.cluster.local:9898}]
  retryPolicy: {count: 10, perTryTimeout: 30s, retryOn: [connect-failure, gateway-error]}
"#;

#[test]
fn flaggers_reconcile_writes_one_weighted_route_on_the_prefix() {
    // TestContourRouter_Reconcile, "test insert": 100/0 and the ingress class.
    let c = canary(FLAGGER_CANARY);
    let want = spec(&format!(
        "ingressClassName: contour
routes:
- conditions: [{{prefix: /podinfo}}]
{FLAGGER_UPSTREAMS}"
    ));
    assert_eq!(
        proxy_spec(&c, Some("contour"), Routes::INITIAL).unwrap(),
        want
    );
    // Without a class, no ingressClassName.
    let without = proxy_spec(&c, None, Routes::INITIAL).unwrap();
    assert_eq!(without.ingress_class_name, None);
    assert_eq!(without.routes, want.routes);
    assert_eq!(proxy_spec(&c, Some(""), Routes::INITIAL).unwrap(), without);
}

#[test]
fn flaggers_reconcile_update_follows_port_and_timeout() {
    // TestContourRouter_Reconcile, "test update": port 8080, timeout 1m.
    let before = canary(FLAGGER_CANARY);
    let mut c = before.clone();
    let service = c.spec.service.as_mut().unwrap();
    service.port = Some(8080);
    service.timeout = Some("1m".into());
    let desired = proxy_spec(&c, Some("contour"), Routes::INITIAL).unwrap();
    let route = &desired.routes[0];
    assert_eq!(route.services[0].port, 8080);
    assert_eq!(
        route.services[0].request_headers_policy,
        Some(HeadersPolicy {
            set: vec![HeaderValue {
                name: "l5d-dst-override".into(),
                value: "podinfo-primary.default.svc.cluster.local:8080".into()
            }],
            remove: vec![]
        })
    );
    assert_eq!(
        route.timeout_policy,
        Some(TimeoutPolicy {
            response: Some("1m".into()),
            idle: Some("5m".into())
        })
    );
    assert_eq!(route.conditions[0].prefix.as_deref(), Some("/podinfo"));
    assert_eq!(
        route.retry_policy,
        Some(RetryPolicy {
            count: 10,
            per_try_timeout: Some("30s".into()),
            retry_on: vec!["connect-failure".into(), "gateway-error".into()]
        })
    );
    let live = proxy_spec(&before, Some("contour"), Routes::INITIAL).unwrap();
    let metadata = route_metadata(c.spec.service.as_ref().unwrap());
    assert!(proxy_needs_update(
        &live_meta(&c),
        &live,
        &metadata,
        &desired
    ));
}

#[test]
fn flaggers_ab_route_matches_the_header_then_falls_back_to_the_primary() {
    // TestContourRouter_Reconcile, "test headers update", and TestContourRouter_Routes.
    let c = ab(FLAGGER_CANARY);
    let want = spec(&format!(
        "routes:
- conditions:
  - prefix: /podinfo
    header: {{name: x-user-type, exact: test}}
{FLAGGER_UPSTREAMS}
- conditions: [{{prefix: /podinfo}}]
{FLAGGER_UPSTREAMS}"
    ));
    assert_eq!(proxy_spec(&c, None, Routes::INITIAL).unwrap(), want);
    // SetRoutes(0, 100): the A/B route carries the weights, the fallback stays 100/0.
    let set = proxy_spec(&c, None, Routes::new(0, 100)).unwrap();
    let w = |p: &str, c: &str| {
        vec![
            ("podinfo-primary".to_string(), Some(p.parse().unwrap())),
            ("podinfo-canary".to_string(), Some(c.parse().unwrap())),
        ]
    };
    assert_eq!(weights(&set), vec![w("0", "100"), w("100", "0")]);
    assert_eq!(
        read_routes(&c, "default", &set).unwrap(),
        Routes::new(0, 100)
    );
}

#[test]
fn flaggers_set_and_get_routes() {
    // TestContourRouter_Routes: SetRoutes(50, 50), GetRoutes → canary 50.
    let c = canary(FLAGGER_CANARY);
    let set = proxy_spec(&c, None, Routes::new(50, 50)).unwrap();
    assert_eq!(set.routes[0].services[0].weight, Some(50));
    assert_eq!(
        read_routes(&c, "default", &set).unwrap(),
        Routes::new(50, 50)
    );
    // The weights are SetRoutes' business: Reconcile leaves them alone...
    let metadata = route_metadata(c.spec.service.as_ref().unwrap());
    let desired = proxy_spec(&c, None, Routes::INITIAL).unwrap();
    assert!(!proxy_needs_update(
        &live_meta(&c),
        &set,
        &metadata,
        &desired
    ));
    // ...until the Canary turns to A/B, which rewrites the proxy at 100/0.
    let a = ab(FLAGGER_CANARY);
    let desired_ab = proxy_spec(&a, None, Routes::INITIAL).unwrap();
    assert!(proxy_needs_update(
        &live_meta(&a),
        &set,
        &metadata,
        &desired_ab
    ));
    assert_eq!(
        read_routes(&a, "default", &desired_ab).unwrap(),
        Routes::INITIAL
    );
}

#[test]
fn set_routes_refuses_zero_weights_with_flaggers_text() {
    let c = canary(GUIDE_CANARY);
    assert_eq!(
        valid_weights(&c, Routes::new(0, 0))
            .unwrap_err()
            .to_string(),
        "HTTPProxy podinfo.test update failed: no valid weights"
    );
    for routes in [Routes::new(100, 0), Routes::new(0, 100), Routes::new(95, 5)] {
        assert!(valid_weights(&c, routes).is_ok());
    }
}

#[test]
fn guide_canary_gets_the_whole_proxy() {
    let c = canary(GUIDE_CANARY);
    let owner = owner_reference(&c).unwrap();
    let object = proxy_object(
        &c,
        Some(owner),
        proxy_spec(&c, Some("contour"), Routes::new(95, 5)).unwrap(),
    )
    .unwrap();
    let want = serde_json::json!({
        "apiVersion": "projectcontour.io/v1",
        "kind": "HTTPProxy",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "annotations": {
                "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
                "helm.toolkit.fluxcd.io/driftDetection": "disabled"
            },
            "ownerReferences": [{
                "apiVersion": "flagger.app/v1beta1",
                "kind": "Canary",
                "name": "podinfo",
                "uid": "uid-1",
                "controller": true,
                "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "ingressClassName": "contour",
            "routes": [{
                "conditions": [{"prefix": "/"}],
                "services": [
                    {"name": "podinfo-primary", "port": 80, "weight": 95,
                     "requestHeadersPolicy": {"set": [{"name": "l5d-dst-override",
                        "value": "podinfo-primary.test.svc.cluster.local:80"}]}},
                    {"name": "podinfo-canary", "port": 80, "weight": 5,
                     "requestHeadersPolicy": {"set": [{"name": "l5d-dst-override",
                        "value": "podinfo-canary.test.svc.cluster.local:80"}]}}
                ],
                "timeoutPolicy": {"response": "15s", "idle": "5m"},
                "retryPolicy": {"count": 3, "perTryTimeout": "5s", "retryOn": ["5xx"]}
            }]
        }
    });
    assert_eq!(serde_json::to_value(&object).unwrap(), want);
    assert_eq!(
        HttpProxy::url_path(&(), Some("test")),
        "/apis/projectcontour.io/v1/namespaces/test/httpproxies"
    );
    assert!(inexpressible(&c).is_empty());
    assert!(ignored_fields(&c).is_empty());
}

#[test]
fn headers_map_as_flagger_maps_them() {
    // The Contour guide's A/B conditions, and Flagger's precedence: prefix over suffix.
    let cases = [
        ("{exact: insider}", Some("insider"), None),
        ("{suffix: insider}", None, Some("insider")),
        ("{prefix: Mobile}", None, Some("Mobile")),
        ("{suffix: Firefox/71.0}", None, Some("Firefox/71.0")),
        ("{prefix: a, suffix: b}", None, Some("a")),
        ("{exact: a, suffix: b}", None, Some("b")),
    ];
    for (selector, exact, contains) in cases {
        let selector: StringMatch = serde_saphyr::from_str(selector).unwrap();
        assert_eq!(
            header_condition("x-canary", &selector),
            HeaderMatchCondition {
                name: "x-canary".into(),
                exact: exact.map(Into::into),
                contains: contains.map(Into::into),
            },
            "{selector:?}"
        );
    }
}

#[test]
fn ab_conditions_carry_the_prefix() {
    let matches: Vec<HttpMatchRequest> =
        serde_saphyr::from_str("[{headers: {cookie: {suffix: insider}}}]").unwrap();
    assert_eq!(
        ab_conditions(&matches, "/api"),
        vec![MatchCondition {
            prefix: Some("/api".into()),
            header: Some(HeaderMatchCondition {
                name: "cookie".into(),
                exact: None,
                contains: Some("insider".into()),
            }),
        }]
    );
}

#[test]
fn retry_policy_without_retry_on_writes_no_conditions() {
    let mut c = canary(GUIDE_CANARY);
    let retries = c.spec.service.as_mut().unwrap().retries.as_mut().unwrap();
    retries.retry_on = None;
    retries.per_try_timeout = None;
    let spec = proxy_spec(&c, None, Routes::INITIAL).unwrap();
    assert_eq!(
        spec.routes[0].retry_policy,
        Some(RetryPolicy {
            count: 3,
            per_try_timeout: None,
            retry_on: vec![]
        })
    );
    assert_eq!(
        retry_on(Some("5xx, gateway-error,,reset")),
        ["5xx", "gateway-error", "reset"]
    );
    let mut plain = canary(GUIDE_CANARY);
    let service = plain.spec.service.as_mut().unwrap();
    service.retries = None;
    service.timeout = None;
    let spec = proxy_spec(&plain, None, Routes::INITIAL).unwrap();
    assert_eq!(spec.routes[0].retry_policy, None);
    assert_eq!(spec.routes[0].timeout_policy, None);
}

#[test]
fn read_routes_needs_two_services_on_the_first_route() {
    let c = canary(GUIDE_CANARY);
    for live in [
        "{}",
        "{routes: [{services: [{name: podinfo-primary, port: 80, weight: 100}]}]}",
    ] {
        assert_eq!(
            read_routes(&c, "test", &spec(live))
                .unwrap_err()
                .to_string(),
            "HTTPProxy podinfo.test services not found"
        );
    }
    // No primary among them: nothing to report, as in Flagger.
    let other = spec("{routes: [{services: [{name: a, port: 80}, {name: b, port: 80}]}]}");
    assert_eq!(read_routes(&c, "test", &other).unwrap(), Routes::new(0, 0));
    // Absent weight is 0.
    let absent = spec(
        "{routes: [{services: [{name: podinfo-primary, port: 80}, {name: podinfo-canary, port: 80, weight: 100}]}]}",
    );
    assert_eq!(
        read_routes(&c, "test", &absent).unwrap(),
        Routes::new(0, 100)
    );
}

fn live_meta(c: &Canary) -> ObjectMeta {
    let metadata = route_metadata(c.spec.service.as_ref().unwrap());
    ObjectMeta {
        labels: Some(metadata.labels),
        annotations: Some(metadata.annotations),
        ..Default::default()
    }
}

#[test]
fn reconcile_rule_keeps_foreign_metadata_and_unconfigured_class() {
    let mut c = canary(GUIDE_CANARY);
    c.spec.service.as_mut().unwrap().apex =
        serde_saphyr::from_str("{labels: {team: shop}, annotations: {owner: shop}}").unwrap();
    let metadata = route_metadata(c.spec.service.as_ref().unwrap());
    assert_eq!(
        metadata.annotations,
        BTreeMap::from([
            ("owner".to_string(), "shop".to_string()),
            (
                FLUX_RECONCILE_ANNOTATION.to_string(),
                "disabled".to_string()
            ),
            (
                HELM_DRIFT_DETECTION_ANNOTATION.to_string(),
                "disabled".to_string()
            ),
        ])
    );
    let desired = proxy_spec(&c, None, Routes::INITIAL).unwrap();
    let update = |meta: &ObjectMeta, live: &HttpProxySpec, desired: &HttpProxySpec| {
        proxy_needs_update(meta, live, &metadata, desired)
    };
    let mut meta = live_meta(&c);
    assert!(!update(&meta, &desired, &desired));
    meta.annotations
        .as_mut()
        .unwrap()
        .insert("projectcontour.io/ingress.class".into(), "x".into());
    meta.labels
        .as_mut()
        .unwrap()
        .insert("other".into(), "x".into());
    assert!(!update(&meta, &desired, &desired));
    meta.labels
        .as_mut()
        .unwrap()
        .insert("team".into(), "web".into());
    assert!(update(&meta, &desired, &desired));
    assert!(update(&ObjectMeta::default(), &desired, &desired));

    // A class someone else set is not compared unless Serin has one to write.
    let meta = live_meta(&c);
    let mut classed = desired.clone();
    classed.ingress_class_name = Some("internal".into());
    assert!(!update(&meta, &classed, &desired));
    let want_class = proxy_spec(&c, Some("contour"), Routes::INITIAL).unwrap();
    assert!(update(&meta, &classed, &want_class));
    assert!(update(&meta, &desired, &want_class));
    // Route changes other than weights count.
    let mut changed = desired.clone();
    changed.routes[0].conditions[0].prefix = Some("/v2".into());
    assert!(update(&meta, &changed, &desired));
}

#[test]
fn contour_durations() {
    for (value, ok) in [
        ("15s", true),
        ("1m30s", true),
        ("1.5s", true),
        ("100ms", true),
        ("2h", true),
        ("10us", true),
        ("10µs", true),
        ("5ns", true),
        ("infinity", true),
        ("infinite", true),
        ("", false),
        ("15", false),
        ("0", false),
        ("1d", false),
        ("-1s", false),
        ("15 s", false),
    ] {
        assert_eq!(is_contour_duration(value), ok, "{value:?}");
    }
}

fn fields(problems: &[Inexpressible]) -> Vec<&str> {
    problems.iter().map(|p| p.field.as_str()).collect()
}

#[test]
fn inexpressible_ab_matches() {
    let cases: [(&str, &[&str]); 9] = [
        ("[{headers: {x-canary: {exact: insider}}}]", &[]),
        ("[{headers: {cookie: {suffix: insider}}}]", &[]),
        ("[{headers: {user-agent: {prefix: Mobile}}}]", &[]),
        (
            "[{headers: {x-canary: {regex: '^ins.*'}}}]",
            &["spec.analysis.match[0].headers.x-canary"],
        ),
        (
            "[{headers: {x-canary: {exact: ''}}}]",
            &["spec.analysis.match[0].headers.x-canary"],
        ),
        (
            "[{headers: {x-a: {exact: a}, x-b: {exact: b}}}]",
            &["spec.analysis.match[0].headers.x-b"],
        ),
        (
            "[{headers: {x-a: {exact: a}}}, {headers: {cookie: {suffix: b}}}]",
            &["spec.analysis.match[1].headers.cookie"],
        ),
        (
            "[{uri: {prefix: /api}, method: {exact: GET}, headers: {x-a: {exact: a}}}]",
            &[
                "spec.analysis.match[0].uri",
                "spec.analysis.match[0].method",
            ],
        ),
        (
            "[{queryParams: {v: {exact: '2'}}}]",
            &[
                "spec.analysis.match[0].queryParams",
                "spec.analysis.match[0]",
            ],
        ),
    ];
    for (matches, want) in cases {
        let c = with_analysis(
            GUIDE_CANARY,
            &format!("{{iterations: 5, match: {matches}}}"),
        );
        let problems = inexpressible(&c);
        assert_eq!(fields(&problems), want, "{matches}: {problems:#?}");
        for p in &problems {
            assert!(p.problem.starts_with("provider \"contour\" "), "{p:?}");
        }
    }
    let c = with_analysis(
        GUIDE_CANARY,
        "{iterations: 5, match: [{headers: {x-canary: {regex: x}}}]}",
    );
    assert_eq!(
        inexpressible(&c),
        vec![Inexpressible {
            field: "spec.analysis.match[0].headers.x-canary".into(),
            problem: "provider \"contour\" matches headers by exact value, prefix or suffix only \
                      (prefix and suffix as \"contains\")"
                .into(),
            fix: "use exact, prefix or suffix with a non-empty value".into(),
        }]
    );
}

#[test]
fn inexpressible_service_and_analysis_options() {
    let mut c = with_analysis(
        GUIDE_CANARY,
        "{mirror: true, sessionAffinity: {cookieName: flagger-cookie}}",
    );
    let service = c.spec.service.as_mut().unwrap();
    service.timeout = Some("15".into());
    service.r#match = serde_saphyr::from_str("[{uri: {prefix: api}}]").unwrap();
    let retries = service.retries.as_mut().unwrap();
    retries.per_try_timeout = Some("5 seconds".into());
    retries.retry_on = Some("5xx,gateway-error,retriable-5xx".into());
    assert_eq!(
        fields(&inexpressible(&c)),
        [
            "spec.service.match[0].uri.prefix",
            "spec.service.timeout",
            "spec.service.retries.perTryTimeout",
            "spec.service.retries.retryOn",
            "spec.analysis.mirror",
            "spec.analysis.sessionAffinity",
        ]
    );
    let err = refuse_inexpressible(&c).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "canary podinfo.test cannot be routed by HTTPProxy: spec.service.match[0].uri.prefix: \
             provider \"contour\" needs a path prefix that starts with /, not \"api\"; "
        ),
        "{err}"
    );
    assert!(refuse_inexpressible(&canary(GUIDE_CANARY)).is_ok());
}

#[test]
fn ignored_fields_of_flaggers_test_canary() {
    let c = canary(FLAGGER_CANARY);
    assert!(inexpressible(&c).is_empty());
    assert_eq!(
        fields(&ignored_fields(&c)),
        [
            "spec.service.match[0].method",
            "spec.service.match[0].ignoreUriCase",
            "spec.service.headers",
            "spec.service.corsPolicy",
        ]
    );
    let mut other = canary(GUIDE_CANARY);
    other.spec.service.as_mut().unwrap().r#match = serde_saphyr::from_str(
        "[{uri: {exact: /a}, headers: {x: {exact: y}}}, {uri: {prefix: /b}}]",
    )
    .unwrap();
    assert_eq!(
        fields(&ignored_fields(&other)),
        [
            "spec.service.match[0].headers",
            "spec.service.match[0].uri",
            "spec.service.match[1].uri",
        ]
    );
    // An exact uri leaves the route on /.
    assert_eq!(route_prefix(other.spec.service.as_ref().unwrap()), "/");
}
